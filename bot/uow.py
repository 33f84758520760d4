"""Unit of work: one transaction per use case; leaving without commit rolls back."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import READ_ONLY, session_factory


class UnitOfWork:
    """An async context that opens a session and a transaction for one use case."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, read_only: bool = False
    ) -> None:
        self._sessions = sessions
        self._read_only = read_only
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        """The open session."""
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._sessions()
        await self._session.begin()
        if self._read_only:
            await self._session.connection(execution_options={READ_ONLY: True})
        return self

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
            await session.close()
            self._session = None

    async def commit(self) -> None:
        """Commit the use case's changes."""
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self.session.commit()


class Database:
    """The engine and a way to open units of work on it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)

    def uow(self) -> UnitOfWork:
        """Open a new unit of work."""
        return UnitOfWork(self.sessions)

    def read(self) -> UnitOfWork:
        """Open a unit of work that only reads (on SQLite it does not wait for the write lock)."""
        return UnitOfWork(self.sessions, read_only=True)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
