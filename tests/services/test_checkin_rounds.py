"""Check-in rounds as the engine runs them: who owes one, exactly once, downtime, compliance."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import District
from sqlmodel import col, select

from bot.config import settings_from_mapping
from bot.models import (
    AuditEntry,
    Checkin,
    ClockEvent,
    Deadline,
    Escalation,
    OutboxMessage,
    Person,
    Shift,
)
from bot.services import checkins, escalation, incidents
from bot.services.checkins import CheckinStatus, Figures
from bot.services.engine import run_due
from bot.services.escalation import PagingContext
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")
CTX = PagingContext(tz=TZ, default_language="en")
SETTINGS = settings_from_mapping({}, environ={})
ROUNDS = SETTINGS.checkins  # 09:00 and 21:00, answer within 30m, reminder after 15m
HANDLERS = {
    escalation.STEP_KIND: escalation.step_handler(CTX),
    **checkins.deadline_handlers(ROUNDS, SETTINGS.shifts, CTX),
}


def local(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def test_round_times_are_local_and_the_next_round_closes_the_last() -> None:
    found = checkins.round_times(ROUNDS.times, TZ, start=local(8), end=local(9, day=2))
    assert found == [local(9), local(21), local(9, day=2)]
    assert checkins.closes_at(local(9), ROUNDS.times, TZ) == local(21)
    assert checkins.closes_at(local(21), ROUNDS.times, TZ) == local(9, day=2)
    assert checkins.closes_at(local(9), [time(9)], TZ) == local(9, day=2)


@pytest.mark.parametrize(
    ("answered", "now", "expected"),
    [
        (local(9, 30), local(10), CheckinStatus.IN_TIME),
        (local(9, 31), local(10), CheckinStatus.LATE),
        (None, local(9, 29), CheckinStatus.OPEN),
        (None, local(9, 31), CheckinStatus.MISSING),
    ],
)
def test_a_checkins_status_follows_from_its_answer_and_deadline(
    answered: datetime | None, now: datetime, expected: CheckinStatus
) -> None:
    checkin = Checkin(
        person_id=1, unit_id=1, due_at=local(9), deadline=local(9, 30), answered_at=answered
    )
    assert checkins.status(checkin, now=now) == expected


async def shift(
    db: Database, district: District, key: str, start: datetime, end: datetime, **extra: object
) -> int:
    async with db.uow() as uow:
        row = Shift(
            unit_id=district.units["S"],
            post=f"岗{key}",
            start=start,
            end=end,
            person_id=district.people[key],
            planned_at=start,
            **extra,
        )
        uow.session.add(row)
        await uow.commit()
        assert row.id is not None
        return row.id


async def clock(
    db: Database, district: District, shift_id: int, key: str, kind: str, at: datetime
) -> None:
    async with db.uow() as uow:
        uow.session.add(
            ClockEvent(shift_id=shift_id, person_id=district.people[key], kind=kind, at=at)
        )
        await uow.commit()


async def owed(db: Database) -> dict[int, Checkin]:
    async with db.read() as uow:
        rows = (await uow.session.exec(select(Checkin).order_by(col(Checkin.id)))).all()
    return {row.person_id: row for row in rows}


async def test_everyone_on_duty_owes_one_checkin_and_is_prompted_once(
    db: Database, district: District
) -> None:
    await shift(db, district, "staff", local(8), local(20))  # scheduled, not clocked in
    early = await shift(db, district, "safety", local(9, 20), local(21))
    await clock(db, district, early, "safety", "in", local(8, 55))  # clocked in early
    gone = await shift(db, district, "leader2", local(6), local(18))
    await clock(db, district, gone, "leader2", "in", local(6))
    await clock(db, district, gone, "leader2", "out", local(8, 30))  # left before the round
    await shift(db, district, "principal", local(10), local(22))  # not yet
    await shift(db, district, "officer", local(0), local(8, 59))  # over
    await shift(db, district, "nolink", local(8), local(20))
    async with db.uow() as uow:
        person = await uow.session.get(Person, district.people["nolink"])
        assert person is not None
        person.active = False  # deactivated: owes nothing
        await uow.commit()
    await checkins.plan_upcoming(db, now=local(7), settings=ROUNDS, tz=TZ)
    await checkins.plan_upcoming(db, now=local(7, 5), settings=ROUNDS, tz=TZ)  # again: same
    await run_due(db, now=local(9), handlers=HANDLERS, worker="w")
    await run_due(db, now=local(9), handlers=HANDLERS, worker="w")
    rows = await owed(db)
    assert set(rows) == {district.people["staff"], district.people["safety"]}
    assert all(row.deadline == local(9, 30) and row.due_at == local(9) for row in rows.values())
    async with db.read() as uow:
        prompts = (await uow.session.exec(select(OutboxMessage))).all()
    assert sorted(p.person_id for p in prompts if p.person_id is not None) == sorted(rows)
    assert all(p.body["text"].startswith("🛡 Safety check-in") for p in prompts)


async def test_reminder_then_a_page_per_silent_person_to_the_duty_leader(
    db: Database, district: District
) -> None:
    await shift(db, district, "staff", local(8), local(20))
    await shift(db, district, "safety", local(8), local(20))
    await shift(db, district, "nolink", local(8), local(20))  # never opened the invite
    await checkins.plan_upcoming(db, now=local(8), settings=ROUNDS, tz=TZ)
    await run_due(db, now=local(9), handlers=HANDLERS, worker="w")
    await run_due(db, now=local(9, 15), handlers=HANDLERS, worker="w")
    await run_due(db, now=local(9, 30), handlers=HANDLERS, worker="w")
    async with db.read() as uow:
        rows = (await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    reminders = [r.person_id for r in rows if r.body["text"].startswith("⏰ You have not")]
    assert sorted(reminders) == sorted([district.people["staff"], district.people["safety"]])
    pages = [r for r in rows if r.kind == "page"]
    assert {r.person_id for r in pages} == {district.people["leader"], district.people["leader2"]}
    named = [r.body["text"].splitlines()[0] for r in pages]
    assert len(named) == 4
    assert sum("张老师" in line for line in named) == sum("孙安全" in line for line in named) == 2
    assert not any("刘老师" in line for line in named)
    async with db.read() as uow:
        matters = (await uow.session.exec(select(Escalation))).all()
    assert len(matters) == 2  # one matter per silent person who could be asked
    assert {m.subject_type for m in matters} == {"checkin"}
    figures = await checkins.compliance(
        db, unit_id=district.units["S"], start=local(0), end=local(23), now=local(10)
    )
    assert figures.total == Figures(missing=3)  # the unlinked one is missing all the same


async def test_a_round_found_late_within_its_window_goes_out_and_gives_the_full_window(
    db: Database, district: District
) -> None:
    await shift(db, district, "staff", local(8), local(20))
    await checkins.plan_upcoming(db, now=local(8), settings=ROUNDS, tz=TZ)
    # the bot was down from 08:30 to 09:10
    await run_due(db, now=local(9, 10), handlers=HANDLERS, worker="w")
    row = (await owed(db))[district.people["staff"]]
    assert row.due_at == local(9) and row.deadline == local(9, 40)
    async with db.read() as uow:
        prompt = (await uow.session.exec(select(OutboxMessage))).one()
        done = (
            await uow.session.exec(select(Deadline).where(Deadline.kind == "checkin.round"))
        ).one()
        later = (
            await uow.session.exec(
                select(Deadline.kind, Deadline.due_at).where(Deadline.kind != "checkin.round")
            )
        ).all()
    assert prompt.late and done.late
    assert sorted(later) == [("checkin.remind", local(9, 25)), ("checkin.silent", local(9, 40))]


async def test_a_round_found_after_its_window_is_skipped_and_audited(
    db: Database, district: District
) -> None:
    await shift(db, district, "staff", local(8), local(20))
    await checkins.plan_upcoming(db, now=local(8), settings=ROUNDS, tz=TZ)
    await run_due(db, now=local(11), handlers=HANDLERS, worker="w")  # down 08:30 to 11:00
    assert await owed(db) == {}
    async with db.read() as uow:
        skipped = (
            await uow.session.exec(
                select(AuditEntry).where(AuditEntry.action == "checkin.round_skipped")
            )
        ).one()
        sent = (await uow.session.exec(select(OutboxMessage))).all()
    assert skipped.detail is not None and skipped.detail["due"] == local(9).isoformat()
    assert sent == []


async def test_rounds_before_the_first_start_are_never_planned_and_downtime_rounds_are(
    db: Database, district: District
) -> None:
    await shift(db, district, "staff", local(8), local(20))
    await checkins.plan_upcoming(db, now=local(9, 10), settings=ROUNDS, tz=TZ)  # first start
    async with db.read() as uow:
        keys = (await uow.session.exec(select(Deadline.key))).all()
    assert keys == []  # 09:00 was before the installation started
    await checkins.plan_upcoming(db, now=local(19), settings=ROUNDS, tz=TZ)
    # the bot was then down from 19:00 to 21:10: the 21:00 round is found and goes out late
    await checkins.plan_upcoming(db, now=local(21, 10), settings=ROUNDS, tz=TZ)
    async with db.read() as uow:
        keys = (await uow.session.exec(select(Deadline.key))).all()
    assert keys == ["checkin:20261201T1300Z:round"]


async def test_compliance_counts_in_time_late_and_missing_per_person_and_unit(
    db: Database, district: District
) -> None:
    async with db.uow() as uow:
        for key, due, answered in (
            ("staff", local(9), local(9, 5)),
            ("staff", local(21), local(21, 45)),
            ("leader", local(9), None),
            ("leader", local(21), local(21, 1)),
            ("leader", local(9, day=2), None),  # still open at `now`
            ("leader", local(9, day=3), local(9, day=3)),  # outside the period
        ):
            uow.session.add(
                Checkin(
                    person_id=district.people[key],
                    unit_id=district.units["S"],
                    due_at=due,
                    deadline=due + timedelta(minutes=30),
                    answered_at=answered,
                    answer="normal" if answered else None,
                )
            )
        await uow.commit()
    figures = await checkins.compliance(
        db,
        unit_id=district.units["T"],
        start=local(0),
        end=local(0, day=3),
        now=local(9, 10, day=2),
    )
    assert figures.total == Figures(in_time=2, late=1, missing=1, open=1)
    assert figures.total.owed == 4
    assert figures.by_person == {
        district.people["staff"]: Figures(in_time=1, late=1),
        district.people["leader"]: Figures(in_time=1, missing=1, open=1),
    }
    assert figures.by_unit == {district.units["S"]: figures.total}
    assert figures.person_names[district.people["staff"]] == "张老师"
    other = await checkins.compliance(
        db, unit_id=district.units["S2"], start=local(0), end=local(0, day=3), now=local(12)
    )
    assert other.total == Figures() and other.by_unit == {}


async def test_a_problem_reported_after_the_window_answers_late_and_closes_the_page(
    db: Database, district: District
) -> None:
    await shift(db, district, "staff", local(8), local(20))
    await checkins.plan_upcoming(db, now=local(8), settings=ROUNDS, tz=TZ)
    for moment in (local(9), local(9, 15), local(9, 30)):
        await run_due(db, now=moment, handlers=HANDLERS, worker="w")
    checkin = (await owed(db))[district.people["staff"]]
    assert checkin.id is not None
    draft = incidents.ReportDraft(
        category="building_facility",
        severity="general",
        description="The stairwell window is cracked.",
        occurred_at=local(9, 40),
    )
    done = await checkins.report_problem(
        db,
        person_id=district.people["staff"],
        checkin_id=checkin.id,
        draft=draft,
        now=local(9, 41),
        policies=SETTINGS.escalation,
        times=ROUNDS.times,
        ctx=CTX,
    )
    assert done.answered is not None and done.answered.late
    row = (await owed(db))[district.people["staff"]]
    assert (row.answer, row.incident_id, row.answered_at) == (
        "problem",
        done.report.incident_id,
        local(9, 41),
    )
    async with db.read() as uow:
        matter = (
            await uow.session.exec(select(Escalation).where(Escalation.subject_type == "checkin"))
        ).one()
        edits = (
            await uow.session.exec(select(OutboxMessage).where(OutboxMessage.kind == "edit"))
        ).all()
    # (the pages were never sent here, so there is no page message to edit; the e2e tests
    # read the note on a page that was)
    assert matter.status == "resolved" and matter.resolved_at == local(9, 41)
    prompt = f"🚨 Problem reported at 09:41: {done.report.number}."
    assert sum(e.body["text"] == prompt for e in edits) == 2  # the prompt and the reminder
    # a second report from the same prompt is stored, and leaves the answer as it was
    again = await checkins.report_problem(
        db,
        person_id=district.people["staff"],
        checkin_id=checkin.id,
        draft=draft,
        now=local(9, 50),
        policies=SETTINGS.escalation,
        times=ROUNDS.times,
        ctx=CTX,
    )
    assert again.answered is None and again.report.incident_id != done.report.incident_id
    assert (await owed(db))[district.people["staff"]].incident_id == done.report.incident_id
