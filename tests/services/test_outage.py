"""Shifts after an outage of any length: chased late if they were there, quiet if added late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from factories import District
from sqlmodel import col, select

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.models import Deadline, EngineMark, OutboxMessage, Shift
from bot.services import attendance, escalation, roster
from bot.services.attendance import PLAN_AHEAD, PLAN_MARK, chase
from bot.services.escalation import PagingContext
from bot.uow import Database
from jobs.engine import EngineJob

TZ = ZoneInfo("Asia/Shanghai")
CTX = PagingContext(tz=TZ, default_language="zh")
SETTINGS = settings_from_mapping({}, environ={}).shifts
DOWN = datetime(2026, 12, 1, 20, 0, tzinfo=TZ)  # the bot dies at 20:00 ...
BACK = DOWN + timedelta(hours=10)  # ... and is back at 06:00 the next morning
NIGHT = datetime(2026, 12, 2, 0, 0, tzinfo=TZ)  # the night shift nobody came to


def engine(db: Database, clock: MovableClock) -> EngineJob:
    """The engine job as the app wires it, stepped by hand (no JobQueue)."""

    async def plan_shifts(now: datetime) -> int:
        return await attendance.plan_upcoming(db, now=now, settings=SETTINGS)

    return EngineJob(
        db=db,
        clock=clock,
        handlers={
            escalation.STEP_KIND: escalation.step_handler(CTX),
            **attendance.deadline_handlers(SETTINGS, CTX),
        },
        worker="test",
        planners=[plan_shifts],
    )


async def add_shift(db: Database, district: District, start: datetime) -> int:
    async with db.uow() as uow:
        shift = Shift(
            unit_id=district.units["S"],
            post="值班室",
            start=start,
            end=start + timedelta(hours=8),
            person_id=district.people["staff"],
        )
        uow.session.add(shift)
        await uow.commit()
        assert shift.id is not None
        return shift.id


async def pages(db: Database) -> list[OutboxMessage]:
    async with db.read() as uow:
        rows = await uow.session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "page")
            .order_by(col(OutboxMessage.id))
        )
        return list(rows.all())


async def deadlines_of(db: Database, shift_id: int) -> list[str]:
    async with db.read() as uow:
        rows = await uow.session.exec(
            select(Deadline.key).where(
                Deadline.subject_type == "shift", Deadline.subject_id == shift_id
            )
        )
        return sorted(rows.all())


@pytest.mark.parametrize(
    ("started_ago", "looked_ahead_ago", "chased"),
    [
        (timedelta(hours=1), timedelta(hours=-2), True),  # within PLAN_AHEAD: as always
        (PLAN_AHEAD, timedelta(hours=-2), True),
        (timedelta(hours=6), timedelta(hours=7), True),  # beyond the mark: fell in an outage
        (timedelta(hours=6), timedelta(hours=6), False),  # planning had looked past it
        (timedelta(hours=6), timedelta(hours=-2), False),  # added hours after its start
    ],
)
def test_chase_decides_by_start_and_the_planning_mark(
    started_ago: timedelta, looked_ahead_ago: timedelta, chased: bool
) -> None:
    assert chase(BACK - started_ago, now=BACK, looked_ahead=BACK - looked_ahead_ago) is chased


async def test_a_shift_that_started_during_a_ten_hour_outage_is_paged_late(
    db: Database, district: District
) -> None:
    clock = MovableClock(DOWN - timedelta(hours=1))
    shift_id = await add_shift(db, district, NIGHT)  # on the rota well before the outage
    await engine(db, clock).step()
    clock.set(DOWN)
    await engine(db, clock).step()  # the last step before the process dies
    assert await deadlines_of(db, shift_id) == []  # 00:00 was beyond the planning horizon
    clock.set(BACK)  # ten hours later, a new process
    result = await engine(db, clock).step()
    assert result.late >= 1
    sent = await pages(db)
    assert sent, "the unmanned night shift was never paged"
    assert all(row.late for row in sent)
    assert all("岗位无人：值班室，张老师" in row.body["text"] for row in sent)
    assert all("系统未运行" in row.body["text"] for row in sent)  # the "sent late" line
    assert len(sent) == len({row.person_id for row in sent})  # each leader paged once
    again = await engine(db, clock).step()
    assert again.handled == 0 and len(await pages(db)) == len(sent)


async def test_a_shift_added_hours_after_its_start_while_the_bot_runs_stays_quiet(
    db: Database, district: District
) -> None:
    clock = MovableClock(BACK)
    await engine(db, clock).step()
    shift_id = await add_shift(db, district, BACK - timedelta(hours=6))
    clock.advance(timedelta(seconds=15))
    await engine(db, clock).step()
    assert await deadlines_of(db, shift_id) == []
    assert await pages(db) == []


async def test_a_shift_imported_after_its_start_during_an_outage_stays_quiet(
    db: Database, district: District, tmp_path: Path
) -> None:
    clock = MovableClock(DOWN)
    await engine(db, clock).step()
    clock.set(BACK)
    # While the bot is down, an administrator imports the night's rota, too late.
    shifts = tmp_path / "shifts.csv"
    row = "S,值班室,2026-12-02 00:00,2026-12-02 08:00,T007,staff"
    shifts.write_text(f"unit,post,start,end,staff_no,kind\n{row}\n", encoding="utf-8")
    await roster.import_roster(db, [shifts], tz=TZ, default_language="zh", now=clock.now())
    clock.advance(timedelta(minutes=5))
    await engine(db, clock).step()
    async with db.read() as uow:
        imported = (await uow.session.exec(select(Shift))).one()
    assert imported.start == NIGHT
    assert await deadlines_of(db, imported.id or 0) == []
    assert await pages(db) == []


async def test_the_first_start_of_an_installation_does_not_page_old_shifts(
    db: Database, district: District
) -> None:
    old = await add_shift(db, district, BACK - timedelta(hours=10))
    recent = await add_shift(db, district, BACK - timedelta(hours=1))
    clock = MovableClock(BACK)
    await engine(db, clock).step()
    assert await deadlines_of(db, old) == []
    assert f"shift:{recent}:missed" in await deadlines_of(db, recent)  # within PLAN_AHEAD
    sent = await pages(db)
    assert sent and all("岗位无人" in row.body["text"] for row in sent)
    async with db.read() as uow:
        mark = (
            await uow.session.exec(select(EngineMark).where(EngineMark.name == PLAN_MARK))
        ).one()
    assert mark.at.astimezone(UTC) >= BACK + PLAN_AHEAD  # how far planning has looked


async def test_a_failing_planner_is_counted_and_what_is_due_is_still_paged(
    db: Database, district: District
) -> None:
    clock = MovableClock(BACK)
    job = engine(db, clock)

    async def broken(now: datetime) -> int:
        raise RuntimeError("a planner that fails")

    job.planners.insert(0, broken)
    await add_shift(db, district, BACK - timedelta(hours=1))
    result = await job.step()
    assert job.planner_failures == 1
    assert result.handled >= 1 and await pages(db)
