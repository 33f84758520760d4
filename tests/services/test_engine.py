"""The deadline engine: idempotent scheduling, exactly-once handling, crashes, two instances."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.models import Deadline, OutboxMessage
from bot.services import deadlines, outbox
from bot.services.engine import BATCH, run_due
from bot.uow import Database

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
WORKER = Path(__file__).with_name("crash_worker.py")


async def notice(session: AsyncSession, deadline: Deadline, now: datetime, late: bool) -> None:
    """A test handler: one outbox message per deadline, addressed to the subject id."""
    await outbox.enqueue(
        session, now=now, text=f"#{deadline.subject_id}", chat_id=deadline.subject_id, late=late
    )


HANDLERS = {"notice": notice}


async def schedule_many(db: Database, count: int, *, due: datetime = T0) -> None:
    async with db.uow() as uow:
        for number in range(count):
            await deadlines.schedule(
                uow.session,
                key=f"n:{number}",
                kind="notice",
                subject_type="test",
                subject_id=number,
                due_at=due,
                now=T0,
            )
        await uow.commit()


async def messages(db: Database) -> list[OutboxMessage]:
    async with db.uow() as uow:
        return list((await uow.session.exec(select(OutboxMessage))).all())


async def test_scheduling_the_same_key_twice_keeps_one_deadline(db: Database) -> None:
    async with db.uow() as uow:
        first = await deadlines.schedule(
            uow.session, key="k", kind="notice", subject_type="t", subject_id=1, due_at=T0, now=T0
        )
        again = await deadlines.schedule(
            uow.session,
            key="k",
            kind="notice",
            subject_type="t",
            subject_id=1,
            due_at=T0 + timedelta(hours=1),
            now=T0,
        )
        await uow.commit()
    assert (first, again) == (True, False)
    async with db.uow() as uow:
        assert await deadlines.next_due(uow.session) == T0


async def test_moved_and_cancelled_deadlines_fire_when_and_if_they_should(db: Database) -> None:
    await schedule_many(db, 3)
    async with db.uow() as uow:
        assert await deadlines.move(uow.session, key="n:1", due_at=T0 + timedelta(minutes=10))
        assert await deadlines.cancel(uow.session, now=T0, key="n:2") == 1
        await uow.commit()
    await run_due(db, now=T0, handlers=HANDLERS, worker="w")
    assert [m.chat_id for m in await messages(db)] == [0]
    await run_due(db, now=T0 + timedelta(minutes=10), handlers=HANDLERS, worker="w")
    assert sorted(m.chat_id or 0 for m in await messages(db)) == [0, 1]


async def test_a_failing_handler_is_retried_later_without_blocking_the_others(
    db: Database,
) -> None:
    calls: list[int] = []

    async def flaky(session: AsyncSession, deadline: Deadline, now: datetime, late: bool) -> None:
        calls.append(deadline.subject_id)
        if deadline.subject_id == 1 and len(calls) < 4:
            await outbox.enqueue(session, now=now, text="half-done", chat_id=99)
            raise RuntimeError("boom")
        await notice(session, deadline, now, late)

    await schedule_many(db, 3)
    result = await run_due(db, now=T0, handlers={"notice": flaky}, worker="w")
    assert (result.handled, result.failed) == (2, 0)
    assert sorted(m.chat_id or 0 for m in await messages(db)) == [0, 2]  # no half-done row
    async with db.uow() as uow:
        retry = (await uow.session.exec(select(Deadline).where(Deadline.key == "n:1"))).one()
    assert (retry.status, retry.attempts, retry.due_at) == ("pending", 1, T0 + timedelta(minutes=1))
    assert retry.last_error == "RuntimeError: boom"
    await run_due(db, now=T0 + timedelta(minutes=1), handlers={"notice": flaky}, worker="w")
    assert sorted(m.chat_id or 0 for m in await messages(db)) == [0, 1, 2]


async def test_a_storm_commits_its_first_pages_at_once_and_lets_the_sender_in_between_batches(
    db: Database,
) -> None:
    # 300 deadlines due together: a batch is small, so its messages are committed (and
    # can go out) before the rest are handled; and a writer woken after a batch (the sender,
    # claiming what it made) gets its turn before the next batch, not after the whole storm.
    await schedule_many(db, 300)
    seen: list[int] = []
    claims: list[asyncio.Task[None]] = []

    async def sender_claims() -> None:
        async with db.uow() as uow:  # a writer, as the sender's claim is
            count = select(func.count()).select_from(OutboxMessage)
            seen.append((await uow.session.exec(count)).one())
            await uow.commit()

    def woken() -> None:
        claims.append(asyncio.create_task(sender_claims()))

    result = await run_due(db, now=T0, handlers=HANDLERS, worker="w", after_batch=woken)
    await asyncio.gather(*claims)
    assert result.handled == 300
    assert seen[0] == BATCH
    # Each claim saw the messages of the batches before it, and never the whole storm at once.
    assert seen == sorted(seen) and seen[:3] == [BATCH, 2 * BATCH, 3 * BATCH]


async def test_work_due_during_downtime_is_handled_once_and_marked_late(db: Database) -> None:
    await schedule_many(db, 5)
    later = T0 + timedelta(hours=3)
    first = await run_due(db, now=later, handlers=HANDLERS, worker="w")
    second = await run_due(db, now=later, handlers=HANDLERS, worker="w")
    assert (first.handled, first.late, second.handled) == (5, 5, 0)
    assert all(m.late for m in await messages(db))


async def test_two_engines_on_one_database_handle_1000_deadlines_exactly_once(
    db: Database, database_url: str
) -> None:
    await schedule_many(db, 1000)
    other = Database(create_engine(DatabaseSettings(url=database_url)))
    try:
        results = await asyncio.gather(
            run_due(db, now=T0, handlers=HANDLERS, worker="one", batch=50),
            run_due(other, now=T0, handlers=HANDLERS, worker="two", batch=50),
        )
    finally:
        await other.dispose()
    assert sum(r.handled for r in results) == 1000
    async with db.uow() as uow:
        total = (await uow.session.exec(select(func.count()).select_from(OutboxMessage))).one()
        distinct = (
            await uow.session.exec(select(func.count(func.distinct(OutboxMessage.chat_id))))
        ).one()
        workers = (
            await uow.session.exec(select(Deadline.handled_by).group_by(col(Deadline.handled_by)))
        ).all()
    assert (total, distinct) == (1000, 1000)
    if db.engine.dialect.name == "postgresql":
        assert set(workers) == {"one", "two"}  # the work really was shared


async def test_two_engine_processes_handle_1000_deadlines_exactly_once(
    db: Database, database_url: str
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("several processes share one database only on PostgreSQL")
    await schedule_many(db, 1000)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        database_url,
        "engine",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert process.stdout is not None
    assert (await asyncio.wait_for(process.stdout.readline(), timeout=60)).strip() == b"ready"
    mine = await run_due(db, now=T0, handlers=HANDLERS, worker="test", batch=20)
    theirs = int((await asyncio.wait_for(process.stdout.readline(), timeout=120)).strip())
    await process.wait()
    assert mine.handled + theirs == 1000
    async with db.uow() as uow:
        total = (await uow.session.exec(select(func.count()).select_from(OutboxMessage))).one()
        distinct = (
            await uow.session.exec(select(func.count(func.distinct(OutboxMessage.chat_id))))
        ).one()
    assert (total, distinct) == (1000, 1000)


async def _run_worker_until_ready(database_url: str, mode: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        database_url,
        mode,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    assert line.strip() == b"ready"
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert process.returncode == -signal.SIGKILL


async def test_kill_9_after_claiming_deadlines_loses_nothing_and_doubles_nothing(
    db: Database, database_url: str
) -> None:
    await schedule_many(db, 20)
    await _run_worker_until_ready(database_url, "deadlines")
    assert await messages(db) == []  # the killed transaction left nothing behind
    await run_due(db, now=T0, handlers=HANDLERS, worker="survivor")
    assert sorted(m.chat_id or 0 for m in await messages(db)) == list(range(20))


async def test_kill_9_after_claiming_messages_sends_them_once_the_lease_runs_out(
    db: Database, database_url: str
) -> None:
    async with db.uow() as uow:
        for chat in range(5):
            await outbox.enqueue(uow.session, now=T0, text="page", chat_id=chat)
        await uow.commit()
    await _run_worker_until_ready(database_url, "outbox")
    lease = timedelta(minutes=2)
    async with db.uow() as uow:
        early = await outbox.claim(
            uow.session, now=T0 + timedelta(minutes=1), limit=10, worker="survivor", lease=lease
        )
        assert early == []  # the dead worker's claim still holds
    async with db.uow() as uow:
        late = await outbox.claim(
            uow.session, now=T0 + timedelta(minutes=3), limit=10, worker="survivor", lease=lease
        )
        await uow.commit()
    assert sorted(row.chat_id or 0 for row in late) == [0, 1, 2, 3, 4]
    assert {row.attempts for row in late} == {2}


async def test_finding_due_work_reads_the_deadline_index(db: Database) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("reads SQLite's EXPLAIN QUERY PLAN; bench/due_lookup.py covers PostgreSQL")
    async with db.engine.connect() as connection:
        plan = (
            await connection.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT due_at FROM deadlines WHERE status = 'pending' "
                    "ORDER BY due_at LIMIT 1"
                )
            )
        ).all()
    assert any(
        "USING INDEX ix_deadlines_due" in str(row)
        or "USING COVERING INDEX ix_deadlines_due" in str(row)
        for row in plan
    ), plan
