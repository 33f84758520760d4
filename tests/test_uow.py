"""Units of work: a burst of writers in one process all commit, on either backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import event, func
from sqlmodel import select

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.models import Unit
from bot.uow import Database

WRITERS = 24


@pytest.fixture
async def impatient(database_url: str) -> AsyncIterator[Database]:
    """The database with a busy timeout far shorter than a burst of writers takes."""
    settings = DatabaseSettings(url=database_url, busy_timeout=timedelta(milliseconds=50))
    database = Database(create_engine(settings))
    try:
        yield database
    finally:
        await database.dispose()


async def _units(db: Database) -> int:
    async with db.read() as uow:
        return int((await uow.session.exec(select(func.count()).select_from(Unit))).one())


async def test_a_burst_of_writers_all_commit(impatient: Database) -> None:
    """Each writer works a little between its statements, as a handler does; none is refused.

    On SQLite the writers used to race for the write lock in SQLite's busy handler and, once
    the burst outlasted the busy timeout, fail with "database is locked".
    """

    async def write(index: int) -> None:
        async with impatient.uow() as uow:
            uow.session.add(Unit(code=f"W{index:03d}", name=f"写入{index}", kind="school"))
            await uow.session.flush()
            await asyncio.sleep(0.01)  # the handler's own work, inside the transaction
            await uow.commit()

    await asyncio.wait_for(asyncio.gather(*(write(i) for i in range(WRITERS))), 30)
    assert await _units(impatient) == WRITERS


async def test_a_unit_of_work_inside_another_does_not_wait_for_itself(impatient: Database) -> None:
    """A use case that opens a second unit of work before writing in its first goes on."""

    async def nested() -> None:
        async with impatient.uow() as outer:
            async with impatient.uow() as inner:
                inner.session.add(Unit(code="INNER", name="内", kind="school"))
                await inner.commit()
            outer.session.add(Unit(code="OUTER", name="外", kind="school"))
            await outer.commit()

    await asyncio.wait_for(nested(), 10)
    assert await _units(impatient) == 2


async def test_a_failed_writer_lets_the_next_one_in(impatient: Database) -> None:
    """A writer that fails and rolls back does not keep the others waiting."""
    with pytest.raises(RuntimeError):
        async with impatient.uow() as uow:
            uow.session.add(Unit(code="GONE", name="无", kind="school"))
            await uow.session.flush()
            raise RuntimeError("the use case failed")

    async def write() -> None:
        async with impatient.uow() as uow:
            uow.session.add(Unit(code="NEXT", name="下一个", kind="school"))
            await uow.commit()

    await asyncio.wait_for(write(), 10)
    assert await _units(impatient) == 1


async def test_a_writer_another_holder_waits_for_goes_on_after_its_patience(
    impatient: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A use case that waits, inside its unit of work, for another task's writer is no deadlock.

    The queue is not the place to wait for ever: after its patience the second writer goes on
    unqueued and SQLite's own locking decides, as before the queue.
    """
    writers = getattr(impatient, "_writers", None)
    if writers is None:
        pytest.skip("PostgreSQL: writers do not queue in the process")
    writers.patience = 0.2

    async def inner() -> None:
        async with impatient.uow() as uow:
            uow.session.add(Unit(code="INNER", name="内", kind="school"))
            await uow.commit()

    async def outer() -> None:
        async with impatient.uow() as uow:
            await asyncio.create_task(inner())  # another task: it queues behind this one
            uow.session.add(Unit(code="OUTER", name="外", kind="school"))
            await uow.commit()

    await asyncio.wait_for(outer(), 10)
    assert await _units(impatient) == 2
    assert "going on unqueued" in caplog.text


async def test_one_read_sends_only_its_statement_and_sees_what_was_committed(
    impatient: Database,
) -> None:
    """Database.rows: no BEGIN around the one statement, even while a writer holds the lock."""
    sent: list[str] = []

    def seen(*args: object) -> None:
        sent.append(str(args[2]).split()[0].upper())

    event.listen(impatient.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with impatient.uow() as uow:
            uow.session.add(Unit(code="R1", name="读校", kind="school", path="/R1/"))
            await uow.commit()
        async with impatient.uow() as writer:  # holds SQLite's write lock meanwhile
            writer.session.add(Unit(code="R2", name="写校", kind="school", path="/R2/"))
            await writer.session.flush()
            sent.clear()
            found = await impatient.rows(select(Unit.code).where(Unit.code.in_(["R1", "R2"])))
            assert [row[0] for row in found] == ["R1"]  # the writer's row is not committed
            assert sent == ["SELECT"]
            await writer.commit()
    finally:
        event.remove(impatient.engine.sync_engine, "before_cursor_execute", seen)
