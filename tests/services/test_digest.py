"""The digest's pure parts: the window, planning, ordering and the 4,096-character cut."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from factories import District
from sqlmodel import col, select

from bot.config import DigestSettings
from bot.i18n import translator
from bot.models import Deadline, OutboxMessage
from bot.services import daily_reports
from bot.services.checkins.compliance import Figures
from bot.services.digest import (
    MAX_LATE,
    Digest,
    IncidentLine,
    MissedShift,
    UnitFigures,
    bucket_of,
    days_to_plan,
    plan_upcoming,
    render,
    scope_view,
    window_of,
)
from bot.services.outbox import Notice, enqueue_notices
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = DigestSettings()


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def county(schools: int, *, trouble: bool) -> Digest:
    """A county (id 1) with one township (id 2) and `schools` schools under it."""
    units = {
        1: UnitFigures(1, "青川县教育局", "county", "/1/"),
        2: UnitFigures(2, "石坝乡中心校", "township", "/1/2/"),
    }
    for n in range(schools):
        unit_id = 10 + n
        row = UnitFigures(unit_id, f"第{n:03d}小学", "school", f"/1/2/{unit_id}/")
        row.daily_report = daily_reports.Status.IN_TIME
        row.checkins = Figures(in_time=2)
        if trouble:
            row.daily_report = daily_reports.Status.MISSING
            row.missed_shifts.append(MissedShift(unit_id, "值班室", local(2, 20), "某某"))
        units[unit_id] = row
    return Digest(local(2, 8), local(3, 8), units)


def test_the_window_is_the_24_hours_up_to_the_digest_time() -> None:
    assert window_of(date(2026, 12, 3), SETTINGS, TZ) == (local(2, 8), local(3, 8))
    evening = DigestSettings(time=time(20, 0))
    assert window_of(date(2026, 12, 3), evening, TZ) == (local(2, 20), local(3, 20))


def test_a_class_counts_with_its_school() -> None:
    kinds = {1: "county", 2: "township", 3: "school", 4: "class"}
    assert [bucket_of(p, kinds) for p in ("/1/2/3/4/", "/1/2/3/", "/1/2/", "/1/")] == [3, 3, 2, 1]


def test_planning_once_ahead_late_after_an_outage_and_not_past_twelve_hours() -> None:
    def plan(now: datetime, mark: datetime) -> list[date]:
        return days_to_plan(now=now, looked_ahead=mark, settings=SETTINGS, tz=TZ)

    # 05:00: the 08:00 digest comes within the 3-hour horizon, once.
    assert plan(local(3, 5), local(3, 4, 59)) == [date(2026, 12, 3)]
    assert plan(local(3, 5, 1), local(3, 8)) == []
    # First start at 09:00 (the mark is now): today's digest has gone by, tomorrow's not yet due.
    assert plan(local(3, 9), local(3, 9)) == []
    # Down from 04:00 to 10:00: planned on return (sent late); down to 21:00: more than 12 h.
    assert plan(local(3, 10), local(3, 4)) == [date(2026, 12, 3)]
    assert plan(local(3, 8) + MAX_LATE + timedelta(minutes=1), local(3, 4)) == []


def test_nothing_to_say_is_one_line_never_silence() -> None:
    view = scope_view(county(3, trouble=False), unit_id=1)
    assert render(translator("zh"), view, TZ) == (
        "📰 青川县教育局昨日（12-02 08:00–12-03 08:00）一切正常："
        "无事件，各班次均到岗，平安报告与日报齐全。"
    )
    school = scope_view(county(3, trouble=False), unit_id=10)
    assert render(translator("en"), school, TZ, late=True).splitlines() == [
        "📰 第000小学, yesterday (12-02 08:00–12-03 08:00): all in order — no incidents, "
        "every shift manned, check-ins and daily reports complete.",
        "⚠️ Sent late: Zhiban was not running at the time.",
    ]


def test_a_county_of_600_troubled_schools_fits_one_message_problems_first() -> None:
    digest = county(600, trouble=True)
    late = IncidentLine("20261202-001", "fire", "serious", 599, local(2, 9), late=True)
    digest.units[609].incidents.append(late)
    text = render(translator("en"), scope_view(digest, unit_id=1), TZ)
    lines = text.splitlines()
    assert len(text.encode("utf-16-le")) // 2 <= 4096
    assert lines[:2] == [
        "📰 <b>Daily digest of 青川县教育局</b>, 12-02 08:00–12-03 08:00",
        "Incidents: 1 (1 reported late); drills: 0",
    ]
    assert "Daily reports: 0 on time, 0 late, 600 missing of 600" in lines
    assert "Check-ins: 1200/1200 answered (100%), 0 late" in lines
    first = lines.index("By unit, problems first:") + 1
    assert lines[first].startswith(
        "❌ 第599小学: 1 incident (1 reported late), daily report missing"
    )
    shown = sum(line.startswith("❌ ") for line in lines)
    assert lines[-2] == f"… and {600 - shown} more units"
    assert lines[-1] == "✅ 2 other units: all in order"
    assert 50 < shown < 600


async def test_a_batch_of_notices_is_one_row_each_and_a_long_one_is_cut(
    db: Database, district: District
) -> None:
    person = next(iter(district.people.values()))
    notices = [
        Notice(person, "📰 short", dedupe_key="digest:test:1"),
        Notice(person, "长" * 5000, dedupe_key="digest:test:2"),
    ]
    async with db.uow() as uow:
        queued = await enqueue_notices(
            uow.session, now=local(3, 8), notices=notices, kind="digest", late=True
        )
        await uow.commit()
    assert queued == 2
    async with db.read() as uow:
        rows = (await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    assert [(r.body["text"][:8], r.dedupe_key, r.kind, r.late) for r in rows] == [
        ("📰 short", "digest:test:1", "digest", True),
        ("长" * 8, "digest:test:2", "digest", True),
        ("长" * 8, None, "digest", True),
    ]


async def test_a_district_that_turns_the_digest_off_gets_none_planned(db: Database) -> None:
    off = DigestSettings(enabled=False)
    assert await plan_upcoming(db, now=local(3, 7), settings=off, tz=TZ) == 0
    assert await plan_upcoming(db, now=local(3, 7), settings=SETTINGS, tz=TZ) == 1
    async with db.read() as uow:
        planned = (await uow.session.exec(select(Deadline))).all()
    assert [d.key for d in planned] == ["digest:2026-12-03"]
