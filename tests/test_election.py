"""The election of the instance taking updates: its role follows the lock, one log line a change."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.election import (
    LEADER_LOCK_KEY,
    Election,
    InstanceLockedError,
    PostgresLeaderLock,
    hold_sqlite_file,
)
from bot.leadership import Leadership, Role


class SharedLock:
    """One advisory lock on one database, as several instances see it."""

    def __init__(self) -> None:
        self.owner: FakeLock | None = None


class FakeLock:
    """One instance's lock connection to the shared lock; the test cuts it or the database."""

    def __init__(self, shared: SharedLock) -> None:
        self.shared = shared
        self.connected = True
        self.reachable = True
        self.released = 0
        self.lost = asyncio.Event()

    async def try_acquire(self) -> bool:
        if not self.reachable:
            raise OSError("connection refused")
        self.connected = True
        if self.shared.owner is None:
            self.shared.owner = self
            self.lost = asyncio.Event()
        return self.shared.owner is self

    async def held(self) -> bool:
        return self.connected and self.shared.owner is self

    async def release(self) -> None:
        self.released += 1
        if self.shared.owner is self:
            self.shared.owner = None

    async def wait_lost(self) -> None:
        await self.lost.wait()

    def cut(self) -> None:
        """The connection drops: the server ends the session and frees its lock."""
        self.connected = False
        self.lost.set()
        if self.shared.owner is self:
            self.shared.owner = None


class Instance:
    """An instance's election, with what it did about updates."""

    def __init__(self, shared: SharedLock, *, retry_every: float = 0.01) -> None:
        self.lock = FakeLock(shared)
        self.leadership = Leadership(Role.STANDBY)  # as run_bot makes it on PostgreSQL
        self.taking = False
        self.fail_to_take = False
        self.events: list[str] = []
        self.took, self.stopped = asyncio.Event(), asyncio.Event()
        self.election = Election(
            self.lock,
            self.leadership,
            take_updates=self.take,
            stop_updates=self.stop,
            retry_every=retry_every,
        )

    async def take(self) -> None:
        if self.fail_to_take:
            raise OSError("Bot API unreachable")
        assert self.lock.shared.owner is self.lock, "took updates without the lock"
        self.taking = True
        self.events.append("take")
        self.took.set()

    async def stop(self) -> None:
        self.taking = False
        self.events.append("stop")
        self.stopped.set()


async def test_leadership_follows_the_lock_with_one_log_line_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.election")
    shared = SharedLock()
    first, second = Instance(shared), Instance(shared)
    await first.election.round()
    await second.election.round()
    for _ in range(3):  # rounds that change nothing say nothing
        await first.election.round()
        await second.election.round()
    assert (first.leadership.role, first.taking) == (Role.LEADER, True)
    assert (second.leadership.role, second.taking) == (Role.STANDBY, False)
    assert [r.getMessage() for r in caplog.records] == [
        f"leader (advisory lock {LEADER_LOCK_KEY}): Zhiban is taking updates (polling)",
        f"standby: another instance leads (advisory lock {LEADER_LOCK_KEY}); retrying every 0.01 s",
    ]
    caplog.clear()
    # The leader's lock connection drops: it stops taking updates at its next round, and the
    # standby takes over at its own.
    first.lock.cut()
    await first.election.round()
    assert (first.leadership.role, first.taking, first.events) == (
        Role.STANDBY,
        False,
        ["take", "stop"],
    )
    await second.election.round()
    assert (second.leadership.role, second.taking) == (Role.LEADER, True)
    await first.election.round()  # it competes again, and stands by
    assert first.leadership.role is Role.STANDBY and not first.taking
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "standby: the connection holding the leader lock was lost; "
            "stopped taking updates and competing again",
        ),
        ("INFO", f"leader (advisory lock {LEADER_LOCK_KEY}): Zhiban is taking updates (polling)"),
        (
            "INFO",
            f"standby: another instance leads (advisory lock {LEADER_LOCK_KEY}); "
            "retrying every 0.01 s",
        ),
    ]


async def test_a_standby_that_cannot_reach_the_database_says_so_once_and_keeps_trying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.election")
    instance = Instance(SharedLock())
    instance.lock.reachable = False
    for _ in range(5):
        await instance.election.round()
    assert instance.leadership.role is Role.STANDBY and not instance.taking
    instance.lock.reachable = True
    await instance.election.round()
    assert instance.leadership.role is Role.LEADER and instance.taking
    assert [r.getMessage() for r in caplog.records] == [
        "standby: cannot reach the database for the leader lock (connection refused); "
        "retrying every 0.01 s",
        f"leader (advisory lock {LEADER_LOCK_KEY}): Zhiban is taking updates (polling)",
    ]


async def test_an_instance_that_cannot_take_updates_gives_the_lock_to_another() -> None:
    shared = SharedLock()
    broken, healthy = Instance(shared), Instance(shared)
    broken.fail_to_take = True
    await broken.election.round()
    assert broken.leadership.role is Role.STANDBY and shared.owner is None
    await healthy.election.round()
    assert healthy.leadership.role is Role.LEADER and healthy.taking


async def test_run_stands_by_until_elected_and_on_stop_stops_updates_then_releases() -> None:
    shared = SharedLock()
    other = FakeLock(shared)
    assert await other.try_acquire()
    instance = Instance(shared)
    stop = asyncio.Event()
    running = asyncio.create_task(instance.election.run(stop))
    await asyncio.sleep(0.05)
    assert instance.leadership.role is Role.STANDBY and not instance.taking
    other.cut()  # the leader dies
    for _ in range(100):
        await asyncio.sleep(0.01)
        if instance.taking:
            break
    assert instance.leadership.role is Role.LEADER and shared.owner is instance.lock
    stop.set()
    await asyncio.wait_for(running, 1)
    assert instance.events == ["take", "stop"]
    assert instance.leadership.role is Role.STANDBY
    assert shared.owner is None and instance.lock.released == 1


async def test_a_leader_whose_lock_connection_closes_stops_taking_updates_without_waiting() -> None:
    instance = Instance(SharedLock(), retry_every=60)  # its next round would be a minute away
    stop = asyncio.Event()
    running = asyncio.create_task(instance.election.run(stop))
    await asyncio.wait_for(instance.took.wait(), 1)
    instance.lock.cut()
    await asyncio.wait_for(instance.stopped.wait(), 1)
    assert instance.leadership.role is Role.STANDBY
    stop.set()
    await asyncio.wait_for(running, 1)


def test_a_second_hold_on_one_sqlite_file_is_refused_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/zhiban.db"
    first = hold_sqlite_file(url)
    assert first is not None
    with pytest.raises(InstanceLockedError) as refused:
        hold_sqlite_file(url)
    assert str(refused.value) == (
        f"{tmp_path}/zhiban.db is in use by another zhiban run: SQLite serves one process "
        "(several instances need PostgreSQL, see README: Several instances)"
    )
    first.close()  # the first process ends: the next one may start
    again = hold_sqlite_file(url)
    assert again is not None
    again.close()
    assert hold_sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert hold_sqlite_file("postgresql+asyncpg://u@h/zhiban") is None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgres_lock_is_one_holders_and_passes_on_when_its_session_ends(
    database_url: str,
) -> None:
    leader, standby = PostgresLeaderLock(database_url), PostgresLeaderLock(database_url)
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        assert await leader.try_acquire()
        assert not await standby.try_acquire()
        assert await leader.held()
        # The leader's session ends as on a network failure: the server frees the lock.
        async with admin.connect() as connection:
            ended = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'zhiban leader lock' AND pid IN "
                    "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :key "
                    # only this test's database: other tests run bots on theirs meanwhile
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()))"
                ),
                {"key": LEADER_LOCK_KEY},
            )
            assert ended.scalars().all() == [True]
        await asyncio.wait_for(leader.wait_lost(), 5)  # known at once, not at the next ping
        assert not await leader.held()
        assert await standby.try_acquire()
        assert not await leader.try_acquire()  # it reconnects and stands by
        await standby.release()
        assert await leader.try_acquire()
    finally:
        await leader.release()
        await standby.release()
        await admin.dispose()
