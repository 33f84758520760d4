"""Summary figures against a small data set whose answers this test works out by itself.

The district is the factories' one: county C → townships T and T2 → schools S (under T) and
S2 (under T2). Rows are written straight to the database; every expected number below is
computed from the lists of inputs, never by calling the code under test.
"""

from __future__ import annotations

import io
import statistics
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import District
from openpyxl import load_workbook

from bot.config import Severity
from bot.i18n import translator
from bot.models import (
    Checkin,
    ClockEvent,
    DailyReport,
    Escalation,
    EscalationLevel,
    Incident,
    Person,
    Shift,
)
from bot.services import daily_reports
from bot.services.checkins import compliance as checkin_compliance  # the function
from bot.services.reports import figures as report_figures
from bot.services.reports.figures import PeriodKind, days_between, period_of
from bot.services.reports.workbook import summary_workbook
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")
FIRST, LAST = date(2026, 12, 7), date(2026, 12, 13)  # Monday to Sunday
START = datetime(2026, 12, 7, tzinfo=TZ).astimezone(UTC)
NOW = START + timedelta(days=6, hours=12)  # Sunday 12:00 local
DEADLINE_SEVERITIES = {Severity.ESPECIALLY_SERIOUS, Severity.SERIOUS}


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


# unit, category, severity, occurred (h after START), reported_late, forwarded_late, drill,
# levels: (level, reached minutes after occurrence, acknowledged minutes after reaching or None)
INCIDENTS = [
    ("S", "fire", "serious", 10, False, False, False, [("unit", 1, 3), ("parent", 12, 5)]),
    ("S", "fire", "serious", 30, False, True, False, [("unit", 2, None), ("parent", 50, 2)]),
    (
        "S",
        "traffic",
        "especially_serious",
        50,
        True,
        False,
        False,
        [("unit", 70, 1), ("parent", 71, 4), ("county", 71, 9)],
    ),
    ("S", "other", "general", 60, False, False, False, [("unit", 0, 7)]),
    ("S", "student_injury_illness", "large", 80, False, False, False, [("unit", 0, 11)]),
    ("S", "flood_weather", "serious", 100, False, False, False, [("unit", 0, 2), ("parent", 9, 6)]),
    # Not in the scope of T (a school of T2), nor of S.
    ("S2", "fire", "serious", 20, True, False, False, [("unit", 0, 20)]),
    # Before the period, and a drill: both left out of the incident figures.
    ("S", "fire", "serious", -5, False, False, False, [("unit", 0, 1)]),
    ("S", "fire", "serious", 40, False, False, True, [("unit", 0, 4), ("parent", 3, 2)]),
    ("S", "fire", "general", 90, False, False, True, [("unit", 0, None)]),
]

# unit, person key, start (h after START), length h, clock-in minutes after start or None
SHIFTS = [
    ("S", "staff", 8, 8, 0),
    ("S", "staff", 32, 8, 5),
    ("S", "staff", 56, 8, None),  # missed
    ("S", "leader", 8, 24, -10),  # clocked in early: on time
    ("S", "leader", 80, 24, 61),
    ("S", "leader", 104, 24, None),  # missed
    ("S", "leader", 61, 2, None),  # missed; leader2's check-in hangs on it (handed over)
    ("S", None, 128, 8, None),  # nobody assigned
    ("S", "staff", 152, 8, None),  # under way at NOW (156 h): not counted yet
    ("S", "staff", 158, 8, None),  # starts after NOW: not counted
    ("S2", "staff", 8, 8, None),  # out of scope T
    ("S", "staff", -16, 8, None),  # before the period
]

# unit, person key, due (h after START), answered minutes after due or None
CHECKINS = [
    ("S", "staff", 9, 5),
    ("S", "staff", 33, 29),
    ("S", "staff", 57, 31),  # late (deadline due + 30 min)
    ("S", "leader", 81, 45),  # late
    ("S", "leader", 105, None),  # missing
    ("S", "staff", 129, None),  # missing
    ("S", "staff", 156, None),  # open at NOW (deadline 156.5 h)
    ("S", "nolink", 60, None),  # the person left: void
    ("S", "leader2", 62, None),  # the shift was handed to someone else: void
    ("S2", "staff", 10, None),  # out of scope T
    ("S", "staff", -15, 1),  # before the period
]

# unit, day of December, submitted minutes after the deadline (17:00) or None
DAILY = [
    ("S", 7, -30),
    ("S", 8, -1),
    ("S", 9, 10),  # late
    ("S", 10, None),  # missing
    ("S", 11, 0),  # at the deadline: in time
    ("S", 12, None),  # missing
    ("S", 13, None),  # its deadline (17:00) is after NOW: still open
    ("S2", 7, None),
    ("S", 6, None),  # before the period
]


async def _write(db: Database, district: District) -> None:
    async with db.uow() as uow:
        session = uow.session
        for index, (code, category, severity, hours, rl, fl, drill, levels) in enumerate(INCIDENTS):
            occurred = at(hours)
            incident = Incident(
                number=f"20261207-{index:03d}",
                unit_id=district.units[code],
                category=category,
                severity=severity,
                occurred_at=occurred,
                reported_at=occurred + timedelta(minutes=1),
                reported_late=rl,
                forwarded_late=fl,
                is_drill=drill,
            )
            session.add(incident)
            await session.flush()
            matter = Escalation(
                policy="incident",
                subject_type="incident",
                subject_id=incident.id or 0,
                unit_id=incident.unit_id,
                started_at=incident.reported_at,
                is_drill=drill,
            )
            session.add(matter)
            await session.flush()
            for level, reached, acknowledged in levels:
                reached_at = occurred + timedelta(minutes=reached)
                session.add(
                    EscalationLevel(
                        escalation_id=matter.id or 0,
                        level=level,
                        unit_id=incident.unit_id,
                        reached_at=reached_at,
                        reached_how="start",
                        acknowledged_at=(
                            reached_at + timedelta(minutes=acknowledged)
                            if acknowledged is not None
                            else None
                        ),
                    )
                )
        shift_ids: dict[tuple[str | None, float], int] = {}
        for index, (code, key, hours, length, clocked) in enumerate(SHIFTS):
            shift = Shift(
                unit_id=district.units[code],
                post=f"post{index}",
                start=at(hours),
                end=at(hours + length),
                person_id=district.people[key] if key else None,
            )
            session.add(shift)
            await session.flush()
            shift_ids[key, hours] = shift.id or 0
            if clocked is not None:
                session.add(
                    ClockEvent(
                        shift_id=shift.id or 0,
                        person_id=district.people[key or "staff"],
                        kind="in",
                        at=at(hours) + timedelta(minutes=clocked),
                        late_minutes=max(clocked, 0),
                    )
                )
        # leader2's check-in hangs on a shift that now belongs to the leader.
        handed = shift_ids["leader", 61]
        for code, key, hours, answered in CHECKINS:
            due = at(hours)
            session.add(
                Checkin(
                    person_id=district.people[key],
                    unit_id=district.units[code],
                    shift_id=handed if key == "leader2" else None,
                    due_at=due,
                    deadline=due + timedelta(minutes=30),
                    answered_at=due + timedelta(minutes=answered) if answered is not None else None,
                )
            )
        left = await session.get(Person, district.people["nolink"])
        assert left is not None
        left.active = False
        for code, day, submitted in DAILY:
            deadline = datetime(2026, 12, day, 17, 0, tzinfo=TZ).astimezone(UTC)
            session.add(
                DailyReport(
                    unit_id=district.units[code],
                    day=date(2026, 12, day),
                    deadline=deadline,
                    submitted_at=(
                        deadline + timedelta(minutes=submitted) if submitted is not None else None
                    ),
                )
            )
        await uow.commit()


def _expected_for(codes: set[str]) -> dict[str, object]:
    """The figures for the units `codes`, worked out from the inputs above."""
    end = START + timedelta(days=7)
    real = [
        row for row in INCIDENTS if row[0] in codes and not row[6] and START <= at(row[3]) < end
    ]
    by_category: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    for row in real:
        by_category[row[1]] = by_category.get(row[1], 0) + 1
        by_severity[row[2]] = by_severity.get(row[2], 0) + 1
    ruled = [row for row in real if row[2] in ("serious", "especially_serious")]
    on_time = [row for row in ruled if not row[4] and not row[5]]
    waits: dict[str, list[float]] = {"unit": [], "parent": [], "county": []}
    reached = {"unit": 0, "parent": 0, "county": 0}
    for row in real:
        for level, _reach, acknowledged in row[7]:
            reached[level] += 1
            if acknowledged is not None:
                waits[level].append(acknowledged)
    medians = {
        level: statistics.median(values) if values else None for level, values in waits.items()
    }
    shifts = {"on_time": 0, "late": 0, "missed": 0, "unfilled": 0}
    now_h = (NOW - START).total_seconds() / 3600
    for code, key, hours, length, clocked in SHIFTS:
        if code not in codes or not 0 <= hours < 168 or hours >= now_h:
            continue
        if key is None:
            shifts["unfilled"] += 1
        elif clocked is not None:
            shifts["late" if clocked > 0 else "on_time"] += 1
        elif hours + length <= now_h:
            shifts["missed"] += 1
    checkins = {"in_time": 0, "late": 0, "missing": 0, "open": 0}
    for code, key, hours, answered in CHECKINS:
        if code not in codes or not 0 <= hours < 168 or key in ("nolink", "leader2"):
            continue
        if answered is not None:
            checkins["late" if answered > 30 else "in_time"] += 1
        else:
            checkins["missing" if hours + 0.5 < now_h else "open"] += 1
    daily = {"in_time": 0, "late": 0, "missing": 0, "open": 0}
    for code, day, submitted in DAILY:
        if code not in codes or not 7 <= day <= 13:
            continue
        deadline = datetime(2026, 12, day, 17, tzinfo=TZ)
        if submitted is not None:
            daily["late" if submitted > 0 else "in_time"] += 1
        else:
            daily["missing" if deadline <= NOW else "open"] += 1
    drills = [row for row in INCIDENTS if row[0] in codes and row[6] and START <= at(row[3]) < end]
    drill_acks = []
    for row in drills:
        # First acknowledgement at any level, from the drill's start (its report).
        times = [
            reach + ack - 1  # reached after occurrence; the drill starts at its report (+1 min)
            for _level, reach, ack in row[7]
            if ack is not None
        ]
        drill_acks.append(min(times) if times else None)
    return {
        "by_category": by_category,
        "by_severity": by_severity,
        "with_deadline": len(ruled),
        "on_time": len(on_time),
        "reached": reached,
        "medians": medians,
        "shifts": shifts,
        "checkins": checkins,
        "daily": daily,
        "drills": len(drills),
        "drill_acks": drill_acks,
    }


def _minutes(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds() / 60


@pytest.mark.parametrize(("scope", "codes"), [("T", {"S"}), ("C", {"S", "S2"})])
async def test_summary_figures_match_the_inputs(
    db: Database, district: District, scope: str, codes: set[str]
) -> None:
    await _write(db, district)
    expected = _expected_for(codes)
    period = days_between(FIRST, LAST, TZ)
    got = await report_figures.figures(
        db,
        unit_id=district.units[scope],
        period=period,
        now=NOW,
        deadline_severities=DEADLINE_SEVERITIES,
    )
    assert {k.value: v for k, v in got.by_category.items()} == expected["by_category"]
    assert {k.value: v for k, v in got.by_severity.items()} == expected["by_severity"]
    assert got.reporting.with_deadline == expected["with_deadline"]
    assert got.reporting.on_time == expected["on_time"]
    assert {a.level.value: a.reached for a in got.acks} == expected["reached"]
    assert {a.level.value: _minutes(a.median) for a in got.acks} == expected["medians"]
    shifts = got.shifts
    assert {
        "on_time": shifts.on_time,
        "late": shifts.late,
        "missed": shifts.missed,
        "unfilled": shifts.unfilled,
    } == expected["shifts"]
    for figures_row, key in ((got.checkins, "checkins"), (got.daily_reports, "daily")):
        assert {
            "in_time": figures_row.in_time,
            "late": figures_row.late,
            "missing": figures_row.missing,
            "open": figures_row.open,
        } == expected[key]
    assert len(got.drills) == expected["drills"]
    assert [_minutes(d.first_ack_after) for d in got.drills] == expected["drill_acks"]

    # The same rules as the compliance functions the check-in and daily-report code offers.
    kept = await checkin_compliance(
        db, unit_id=district.units[scope], start=period.start, end=period.end, now=NOW
    )
    assert (kept.total.in_time, kept.total.late, kept.total.missing, kept.total.open) == (
        got.checkins.in_time,
        got.checkins.late,
        got.checkins.missing,
        got.checkins.open,
    )
    daily = await daily_reports.compliance(
        db, unit_id=district.units[scope], first=FIRST, last=LAST, now=NOW
    )
    assert (daily.in_time, daily.late, daily.missing, daily.pending) == (
        got.daily_reports.in_time,
        got.daily_reports.late,
        got.daily_reports.missing,
        got.daily_reports.open,
    )

    # The workbook holds those figures, as numbers, under headers in each language.
    shift_sheets = {"en": "Shifts", "zh": "班次"}
    checkin_sheets = {"en": "Check-ins", "zh": "平安报告"}
    for language, sheet_names, header in (
        ("en", ("Incidents by category", "Reporting on time", "Acknowledgement"), "Category"),
        ("zh", ("事件（按类别）", "报告及时率", "接报用时"), "类别"),
    ):
        book = load_workbook(
            io.BytesIO(summary_workbook(translator(language), got, TZ)), read_only=False
        )
        assert len(book.sheetnames) == 8
        categories = book[sheet_names[0]]
        assert categories["A1"].value == header
        fire = translator(language)._("Fire")
        rows = {row[0]: row[1] for row in categories.iter_rows(min_row=2, values_only=True)}
        assert rows[fire] == expected["by_category"].get("fire", 0)  # type: ignore[attr-defined]
        reporting = book[sheet_names[1]]
        assert reporting["B2"].value == expected["with_deadline"]
        assert reporting["C2"].value == expected["on_time"]
        assert reporting["E2"].value == pytest.approx(
            expected["on_time"] / expected["with_deadline"]  # type: ignore[operator]
        )
        assert reporting["E2"].number_format == "0.0%"
        # Shifts, check-ins and daily reports: a row per unit of the scope, then the total.
        units = {"S": "石坝小学 (S)", "S2": "木鱼小学 (S2)"}
        for sheet_name, key, columns in (
            (shift_sheets[language], "shifts", ("on_time", "late", "missed", "unfilled")),
            (checkin_sheets[language], "checkins", ("in_time", "late", "missing", "open")),
        ):
            rows = list(book[sheet_name].iter_rows(min_row=2, values_only=True))
            wanted = [
                (units[code], *(_expected_for({code})[key][c] for c in columns))  # type: ignore[index]
                for code in sorted(codes)
            ]
            counts: dict[str, int] = expected[key]  # type: ignore[assignment]
            total = ("Total" if language == "en" else "合计", *(counts[c] for c in columns))
            picked = [(r[0], *r[2:6]) for r in rows]
            assert picked == [*wanted, total]
        acks = book[sheet_names[2]]
        medians = expected["medians"]
        assert [acks.cell(row, 5).value for row in (2, 3, 4)] == [
            round(medians[level], 1) if medians[level] is not None else None  # type: ignore[index]
            for level in ("unit", "parent", "county")
        ]


def test_periods_start_on_monday_the_first_and_the_term() -> None:
    terms = [(2, 15), (9, 1)]
    now = datetime(2026, 12, 10, 9, 30, tzinfo=TZ)  # a Thursday
    week = period_of(PeriodKind.WEEK, now=now, tz=TZ, term_starts=terms)
    assert week.start == datetime(2026, 12, 7, tzinfo=TZ) and week.end == now
    month = period_of(PeriodKind.MONTH, now=now, tz=TZ, term_starts=terms)
    assert month.start == datetime(2026, 12, 1, tzinfo=TZ)
    term = period_of(PeriodKind.TERM, now=now, tz=TZ, term_starts=terms)
    assert term.start == datetime(2026, 9, 1, tzinfo=TZ)
    january = datetime(2027, 1, 20, 8, 0, tzinfo=TZ)
    assert period_of(PeriodKind.TERM, now=january, tz=TZ, term_starts=terms).start == datetime(
        2026, 9, 1, tzinfo=TZ
    )
    spring = datetime(2027, 2, 15, 0, 5, tzinfo=TZ)
    assert period_of(PeriodKind.TERM, now=spring, tz=TZ, term_starts=terms).start == datetime(
        2027, 2, 15, tzinfo=TZ
    )
