"""Unit of work: one transaction per use case; leaving without commit rolls back.

On SQLite only one transaction at a time may write (bot/db.py takes the write lock with
BEGIN IMMEDIATE). When several of the process's own units of work asked for it at once, the
losers slept in SQLite's busy handler (1, 2, 5, 10 … 100 ms between tries) and, under a burst of
updates, gave up after `busy_timeout` with "database is locked": the update was answered with
an apology, an outbox row was put back. Writing units of work of one process therefore queue
for the lock here, in order, without sleeping; SQLite's busy handler still arbitrates between
processes (`zhiban doctor`, the CLI). Units that only read (`Database.read`) never queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import ONE_READ, READ_ONLY, session_factory

_log = logging.getLogger(__name__)


class UnitOfWork:
    """An async context that opens a session and a transaction for one use case."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        read_only: bool = False,
        writers: WriterQueue | None = None,
    ) -> None:
        self._sessions = sessions
        self._read_only = read_only
        self._writers = None if read_only else writers
        self._queued = False
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        """The open session."""
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        if self._writers is not None:
            self._queued = await self._writers.acquire()
        try:
            self._session = self._sessions()
            await self._begin(self._session)
        except BaseException:
            self._release()
            raise
        return self

    async def _begin(self, session: AsyncSession) -> None:
        self._session = session
        await session.begin()
        if self._read_only:
            await session.connection(execution_options={READ_ONLY: True})

    def _release(self) -> None:
        if self._queued and self._writers is not None:
            self._queued = False
            self._writers.release()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if session.in_transaction():
                # Keep what was read usable after a read-only use case; nothing is written.
                session.expunge_all()
                await session.rollback()
        finally:
            try:
                await session.close()
            finally:
                self._session = None
                self._release()

    async def commit(self) -> None:
        """Commit the use case's changes."""
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        try:
            await self.session.commit()
        finally:
            self._release()  # SQLite's write lock went with the transaction


class WriterQueue:
    """The process's writing units of work on SQLite, one at a time, first come first served.

    A task already holding it (a unit of work opened inside another) does not queue again: it
    goes on as it did before the queue, and SQLite decides.
    """

    def __init__(self, patience: float = 120.0) -> None:
        self.patience = patience
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._holder: asyncio.Task[object] | None = None

    async def acquire(self) -> bool:
        """Wait for the turn; False when the current task holds it already."""
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            return False
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            self._locks = {loop: (lock := asyncio.Lock())}  # a new loop: forget the old ones
        try:
            await asyncio.wait_for(lock.acquire(), timeout=self.patience)
        except TimeoutError:
            # Longer than any burst has queued: something holds its turn while it waits for
            # another writer. Go on unqueued, as before the queue, and let SQLite's busy
            # handler decide rather than wait here for ever.
            _log.warning("a writer waited %.0f s for its turn; going on unqueued", self.patience)
            return False
        self._holder = task
        return True

    def release(self) -> None:
        """Give the turn to the next writer."""
        self._holder = None
        self._locks[asyncio.get_running_loop()].release()


class Database:
    """The engine and a way to open units of work on it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self._writers = WriterQueue() if engine.dialect.name == "sqlite" else None

    def uow(self) -> UnitOfWork:
        """Open a new unit of work."""
        return UnitOfWork(self.sessions, writers=self._writers)

    def read(self) -> UnitOfWork:
        """Open a unit of work that only reads (on SQLite it does not wait for the write lock)."""
        return UnitOfWork(self.sessions, read_only=True)

    async def rows(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[*tuple[Any, ...]]]:
        """Run one reading statement on a connection of its own and return its rows.

        For a lookup every update makes (who is writing): no ORM session to build, flush and
        close around it, which in a profile of 360 clock-ins cost more than the statement.
        Like `read`, it takes no write lock on SQLite, and it sends no BEGIN there either: a
        single statement reads one consistent state of the database on its own.
        """
        async with self.engine.connect() as connection:
            reading = await connection.execution_options(**{READ_ONLY: True, ONE_READ: True})
            return (await reading.execute(statement, parameters)).all()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
