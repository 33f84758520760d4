"""Daily safety reports as a service: planned days, who may submit, compliance, roll-ups."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import District, build_district
from sqlmodel import col, select

from bot.config import settings_from_mapping
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import translator
from bot.message_parts import MESSAGE_LIMIT, split_html, visible_length
from bot.models import AuditEntry, DailyReport, Deadline
from bot.services import daily_reports
from bot.services.daily_reports import SchoolLine, Status
from bot.services.escalation import PagingContext
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")
CTX = PagingContext(tz=TZ, default_language="zh")
SETTINGS = settings_from_mapping({}, environ={}).daily_report  # due 17:00, prompt 15:00


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def planned(now: datetime, mark: datetime, first_start: bool) -> list[int]:
    days = daily_reports.days_to_plan(
        now=now, looked_ahead=mark, settings=SETTINGS, tz=TZ, first_start=first_start
    )
    return [day.day for day in days]


@pytest.mark.parametrize(
    ("now", "mark", "first_start", "days"),
    [
        (local(2, 11, 59), local(2, 14, 59), False, []),  # the prompt is beyond the horizon
        (local(2, 12), local(2, 14, 59), False, [2]),  # comes within it: planned
        (local(2, 13), local(2, 15), False, []),  # planned already, not again at every step
        (local(2, 19), local(2, 19), True, []),  # first start after the prompt: quiet that day
        (local(2, 16), local(2, 16), True, [2]),  # first start an hour after the prompt
        (local(2, 16), local(2, 16), False, []),  # the same moment, not a first start
        (local(4, 10), local(2, 9), False, [2, 3]),  # down from 06:00 on 12-02: both, late
        (local(4, 13), local(3, 18), False, [4]),  # down after 12-03's prompt had been planned
    ],
)
def test_days_are_planned_once_when_their_prompt_comes_within_the_horizon_or_fell_in_an_outage(
    now: datetime, mark: datetime, first_start: bool, days: list[int]
) -> None:
    assert planned(now, mark, first_start) == days


async def plan_days(db: Database, *moments: datetime) -> None:
    for moment in moments:
        await daily_reports.plan_upcoming(db, now=moment, settings=SETTINGS, tz=TZ)


async def reports(db: Database, district: District, code: str) -> dict[date, DailyReport]:
    async with db.read() as uow:
        rows = (
            await uow.session.exec(
                select(DailyReport).where(DailyReport.unit_id == district.units[code])
            )
        ).all()
    return {row.day: row for row in rows}


async def test_planning_owes_one_report_per_school_and_day_with_its_deadlines(db: Database) -> None:
    district = await build_district(db)
    await plan_days(db, local(1, 12), local(1, 13), local(2, 12))
    s = await reports(db, district, "S")
    assert sorted(day.day for day in s) == [1, 2]
    assert s[date(2026, 12, 1)].deadline == local(1, 17)
    assert set(await reports(db, district, "T")) == set()  # a township owes none
    async with db.read() as uow:
        keys = {
            (d.kind, d.due_at)
            for d in (await uow.session.exec(select(Deadline))).all()
            if d.kind.startswith("daily.")
        }
    assert ("daily.prompt", local(1, 15)) in keys
    assert ("daily.missing", local(1, 17)) in keys
    assert ("daily.rollup", local(1, 18)) in keys
    assert len([k for k in keys if k[0] == "daily.rollup"]) == 2  # one per day, not per school


async def test_who_may_submit_and_what_a_refusal_changes(db: Database) -> None:
    district = await build_district(db)
    await plan_days(db, local(2, 12))
    report_id = (await reports(db, district, "S"))[date(2026, 12, 2)].id
    assert report_id is not None
    for key in ("staff", "officer", "desk", "officer2"):
        with pytest.raises(NotAllowed):
            await daily_reports.submit(
                db,
                person_id=district.people[key],
                report_id=report_id,
                now=local(2, 15),
                ctx=CTX,
                nothing_to_report=True,
            )
    done = await daily_reports.submit(
        db, person_id=district.people["safety"], report_id=report_id, now=local(2, 15), ctx=CTX
    )
    # Send with nothing written and no incident that day says the same as 零报告.
    assert (done.late, done.nothing_to_report) == (False, True)
    with pytest.raises(InvalidInput):
        await daily_reports.submit(
            db,
            person_id=district.people["principal"],
            report_id=report_id,
            now=local(2, 15, 1),
            ctx=CTX,
            text="again",
        )
    stored = (await reports(db, district, "S"))[date(2026, 12, 2)]
    assert (stored.submitted_by_id, stored.text) == (district.people["safety"], None)
    async with db.read() as uow:
        refused = (
            await uow.session.exec(
                select(AuditEntry.actor_person_id).where(
                    AuditEntry.action == "daily_report.submit", col(AuditEntry.allowed).is_(False)
                )
            )
        ).all()
    assert sorted(refused) == sorted(
        district.people[k] for k in ("staff", "officer", "desk", "officer2")
    )


async def test_compliance_counts_in_time_late_and_missing_for_a_unit_and_period(
    db: Database,
) -> None:
    district = await build_district(db)
    await plan_days(db, local(1, 12), local(2, 12), local(3, 12), local(4, 12))
    s = await reports(db, district, "S")
    leader = district.people["leader"]

    async def submit(day: int, at: datetime) -> None:
        report_id = s[date(2026, 12, day)].id
        assert report_id is not None
        await daily_reports.submit(
            db, person_id=leader, report_id=report_id, now=at, ctx=CTX, text="平安"
        )

    await submit(1, local(1, 16))  # in time
    await submit(2, local(2, 19))  # late
    # 12-03: missing; 12-04: still open at 16:00
    now = local(4, 16)
    first, last = date(2026, 12, 1), date(2026, 12, 4)
    school = await daily_reports.compliance(
        db, unit_id=district.units["S"], first=first, last=last, now=now
    )
    assert (school.in_time, school.late, school.missing, school.pending) == (1, 1, 1, 1)
    assert school.owed == 3
    county = await daily_reports.compliance(
        db, unit_id=district.units["C"], first=first, last=last, now=now
    )
    assert (county.in_time, county.late, county.missing, county.pending) == (1, 1, 4, 2)
    one_day = await daily_reports.compliance(
        db, unit_id=district.units["T"], first=date(2026, 12, 2), last=date(2026, 12, 2), now=now
    )
    assert (one_day.in_time, one_day.late, one_day.missing) == (0, 1, 0)


def test_roll_ups_put_problems_first_escape_names_and_split_within_telegrams_limit() -> None:
    tr = translator("en")
    township = daily_reports.township_rollup_text(
        tr,
        township="T<1>",
        day="12-02",
        lines=[
            SchoolLine("A & B school", Status.IN_TIME, False),
            SchoolLine("Quiet <school>", Status.MISSING, False),
            SchoolLine("Zero school", Status.IN_TIME, True),
            SchoolLine("Slow school", Status.LATE, False),
        ],
        late=False,
    )
    assert township.splitlines() == [
        "📋 Daily safety reports of T&lt;1&gt; for 12-02",
        "1 missing, 1 late, 2 reported, 1 nothing to report",
        "❌ Quiet &lt;school&gt;: missing",
        "📝 Slow school: reported, late",
        "📝 A &amp; B school: reported",
        "✅ Zero school: nothing to report",
    ]
    groups = [
        (
            f"镇{n:03d}",
            [
                SchoolLine(f"学校{n:03d}-{k}", Status.IN_TIME if n % 7 else Status.MISSING, False)
                for k in range(6)
            ],
        )
        for n in range(300)
    ]
    county = daily_reports.county_rollup_text(tr, day="12-02", groups=groups, late=True)
    parts = split_html(county)
    assert len(parts) > 1
    assert all(visible_length(part) <= MESSAGE_LIMIT for part in parts)
    lines = parts[0].splitlines()
    assert lines[:3] == [
        "📋 Daily safety reports of the county for 12-02",
        "258 schools missing",
        "⚠️ Sent late: Zhiban was not running at the time.",
    ]
    assert lines[3].startswith("❌ 镇000: 0/6 submitted")
    assert parts[-1].splitlines()[-1].startswith("✅ 镇299: 6/6 submitted")


def test_status_of_a_report() -> None:
    report = DailyReport(unit_id=1, day=date(2026, 12, 2), deadline=local(2, 17))
    assert daily_reports.status_of(report, local(2, 16)) == Status.PENDING
    assert daily_reports.status_of(report, local(2, 17)) == Status.MISSING
    report.submitted_at = local(2, 17)
    assert daily_reports.status_of(report, local(3, 1)) == Status.IN_TIME
    report.submitted_at = local(2, 17) + timedelta(seconds=1)
    assert daily_reports.status_of(report, local(3, 1)) == Status.LATE
