"""The database engine: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL via asyncpg."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import DatabaseSettings
from bot.sqlite_trips import one_trip

# Execution option marking a unit of work that only reads.
READ_ONLY = "zhiban_read_only"
# Execution option marking a connection that runs one reading statement (Database.rows): on
# SQLite it needs no BEGIN, the statement is its own read transaction.
ONE_READ = "zhiban_one_read"


def is_sqlite(url: str) -> bool:
    """Tell whether a database URL names SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """Create the async engine, with SQLite set up for a long-running bot."""
    url = settings.url
    if not is_sqlite(url):
        return create_async_engine(url, echo=settings.echo, pool_pre_ping=True)
    busy_ms = int(settings.busy_timeout.total_seconds() * 1000)
    engine = create_async_engine(
        url, echo=settings.echo, connect_args={"timeout": settings.busy_timeout.total_seconds()}
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        one_trip(dbapi_connection)  # each statement one trip to aiosqlite's thread
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers (the board) run while the engine writes; memory databases refuse it.
        if make_url(url).database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        # Take the write lock up front: a transaction that reads, then writes, never fails
        # half-way with "database is locked"; it waits its turn (busy_timeout) instead.
        # Read-only units of work (Database.read) need no lock and do not queue for it; one
        # reading statement needs no transaction around it at all.
        options = connection.get_execution_options()
        if options.get(ONE_READ):
            return
        if options.get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
