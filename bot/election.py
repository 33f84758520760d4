"""Electing the one instance that takes updates (SPEC §10), and keeping SQLite to one process.

On PostgreSQL every `zhiban run` competes for one session advisory lock (`LEADER_LOCK_KEY`),
taken with `pg_try_advisory_lock` on a connection of its own that the instance holds for as
long as it leads. The server releases a session lock when its session ends, so when the leader
dies (`kill -9`, a crash, the machine gone) its connection closes and the lock is free at once;
a standby, trying every `RETRY_EVERY` seconds, takes it and starts taking updates. The leader
pings its lock connection at the same pace: if the connection is lost (a network blip, the
server restarted, the session terminated) it no longer knows whether it holds the lock, so it
stops taking updates at once and competes again like any standby (a session the server ends is
noticed at once, through asyncpg's termination listener). The lock connection asks
the server for TCP keepalives, so a leader cut off without its socket closing (a partition)
loses the lock on the server's side within about 11 s as well.

Only taking updates is elected: the engine and the outbox sender run in every instance and
share the work through row locks (`FOR UPDATE SKIP LOCKED`).

SQLite serves one process: `hold_sqlite_file` takes an exclusive `flock` on a file next to the
database for the life of the process, and a second `zhiban run` on the same file is refused.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from bot.leadership import Leadership, Role

log = logging.getLogger(__name__)

# The advisory lock the instances on one database compete for (any fixed number; the
# migrations take turns under 7202611). Seen by an operator in pg_locks as objid 7202612.
LEADER_LOCK_KEY = 7_202_612
# How often a standby tries the lock, and a leader checks its lock connection (seconds).
RETRY_EVERY = 1.0
# How long one call on the lock connection may take before it counts as lost (seconds).
LOCK_CALL_TIMEOUT = 5.0
# Probing an idle lock connection: the server drops a silent leader's session (and its lock)
# after about idle + interval × count seconds.
_KEEPALIVES = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}


class LeaderLock(Protocol):
    """The lock an election is about."""

    async def try_acquire(self) -> bool:
        """Take the lock if it is free; raise if the database cannot be reached."""

    async def held(self) -> bool:
        """Whether the lock is still ours (False once its connection is lost)."""

    async def release(self) -> None:
        """Give the lock back (if held) and close its connection."""

    async def wait_lost(self) -> None:
        """Return as soon as the lock's connection is known to be lost (perhaps never)."""


class PostgresLeaderLock:
    """`pg_try_advisory_lock(LEADER_LOCK_KEY)` on a connection of its own."""

    def __init__(
        self, url: str, *, key: int = LEADER_LOCK_KEY, timeout: float = LOCK_CALL_TIMEOUT
    ) -> None:
        self._key = key
        self._timeout = timeout
        # Autocommit: the session holds the lock, so no transaction is left open on the server.
        self._engine = create_async_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "timeout": timeout,
                "server_settings": {"application_name": "zhiban leader lock", **_KEEPALIVES},
            },
        )
        self._connection: AsyncConnection | None = None
        # Set when the driver sees the lock's connection close (the server ended the session).
        self._lost = asyncio.Event()

    async def try_acquire(self) -> bool:
        """Take the lock if it is free, connecting first if need be."""
        try:
            if self._connection is None:
                self._connection = await asyncio.wait_for(self._engine.connect(), self._timeout)
                self._lost = asyncio.Event()
                await self._listen_for_termination(self._connection, self._lost)
            result = await asyncio.wait_for(
                self._connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ),
                self._timeout,
            )
            return bool(result.scalar_one())
        except BaseException:
            await self._drop()
            raise

    async def held(self) -> bool:
        """Ping the lock's connection: while the session lives, the lock is ours."""
        if self._connection is None:
            return False
        if self._lost.is_set():
            await self._drop()
            return False
        try:
            await asyncio.wait_for(self._connection.execute(text("SELECT 1")), self._timeout)
        except Exception:  # any failure: the session, and with it the lock, may be gone
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        """Close the lock's connection (the server releases the lock with the session)."""
        await self._drop()
        await self._engine.dispose()

    async def wait_lost(self) -> None:
        """Return when asyncpg reports the lock's connection closed."""
        await self._lost.wait()

    @staticmethod
    async def _listen_for_termination(connection: AsyncConnection, lost: asyncio.Event) -> None:
        # A session ended by the server (pg_terminate_backend, a restart) is seen at once, not
        # at the next ping, so the leader stops taking updates before a standby starts.
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        add_listener = getattr(driver, "add_termination_listener", None)
        if add_listener is not None:
            add_listener(lambda _connection: lost.set())

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with suppress(Exception):
            await asyncio.wait_for(connection.close(), self._timeout)
        with suppress(Exception):
            await connection.invalidate()


class Election:
    """Compete for the lock until stopped; take updates while holding it, never without it."""

    def __init__(
        self,
        lock: LeaderLock,
        leadership: Leadership,
        *,
        take_updates: Callable[[], Awaitable[None]],
        stop_updates: Callable[[], Awaitable[None]],
        mode: str = "polling",
        retry_every: float = RETRY_EVERY,
    ) -> None:
        self._lock = lock
        self._leadership = leadership
        self._take_updates = take_updates
        self._stop_updates = stop_updates
        self._mode = mode
        self._retry_every = retry_every
        # What the last round found, so each change is logged once (not once a second).
        self._last_seen: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Hold elections every `retry_every` seconds until `stop` is set, then step down."""
        self._leadership.set(Role.STANDBY)
        try:
            while not stop.is_set():
                await self.round()
                await self._pause(stop)
        finally:
            if self._leadership.is_leader:
                self._leadership.set(Role.STANDBY)
                await self._stop_updates()
            await self._lock.release()

    async def _pause(self, stop: asyncio.Event) -> None:
        """Wait `retry_every` seconds; a leader wakes early if its lock connection is lost."""
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
        if self._leadership.is_leader:
            waits.append(asyncio.ensure_future(self._lock.wait_lost()))
        try:
            await asyncio.wait(
                waits, timeout=self._retry_every, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiting in waits:
                waiting.cancel()

    async def round(self) -> None:
        """One turn: a leader checks its lock, a standby tries to take it."""
        if self._leadership.is_leader:
            if await self._lock.held():
                return
            # Whether the lock is still ours is unknown: stop taking updates before anyone else
            # can start, then compete again.
            self._leadership.set(Role.STANDBY)
            await self._stop_updates()
            self._note(
                "lost",
                logging.WARNING,
                "standby: the connection holding the leader lock was lost; "
                "stopped taking updates and competing again",
            )
            return
        try:
            won = await self._lock.try_acquire()
        except Exception as error:
            self._note(
                "unreachable",
                logging.WARNING,
                "standby: cannot reach the database for the leader lock (%s); retrying every %g s",
                _reason(error),
                self._retry_every,
            )
            return
        if not won:
            self._note(
                "standby",
                logging.INFO,
                "standby: another instance leads (advisory lock %d); retrying every %g s",
                LEADER_LOCK_KEY,
                self._retry_every,
            )
            return
        try:
            await self._take_updates()
        except Exception as error:
            # Let another instance try: holding the lock without taking updates helps no one.
            await self._lock.release()
            self._note(
                "failed",
                logging.WARNING,
                "standby: won the leader lock but could not take updates (%s); released it",
                _reason(error),
            )
            return
        self._leadership.set(Role.LEADER)
        self._note(
            "leader",
            logging.INFO,
            "leader (advisory lock %d): Zhiban is taking updates (%s)",
            LEADER_LOCK_KEY,
            self._mode,
        )

    def _note(self, seen: str, level: int, message: str, *args: object) -> None:
        if seen != self._last_seen:
            log.log(level, message, *args)
        self._last_seen = seen


def _reason(error: BaseException) -> str:
    """The first line of what went wrong, for a one-line log."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


class InstanceLockedError(Exception):
    """Another process runs on this SQLite database; the message is the one line to print."""


def hold_sqlite_file(url: str) -> IO[str] | None:
    """Lock the SQLite database's companion file for this process's life, or refuse.

    The lock is `<database>.lock`, held with `flock`; the system drops it when the process
    ends, however it ends, so a stale file never blocks a restart. Other databases (and
    SQLite in memory) need none: None.
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    path = Path(f"{database}.lock")
    handle = path.open("a", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise InstanceLockedError(
            f"{database} is in use by another zhiban run: SQLite serves one process "
            "(several instances need PostgreSQL, see README: Several instances)"
        ) from None
    return handle
