"""The rota generator: holidays and 调休, a fair rotation with rest, idempotent, all or nothing."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, func, select, update

from bot.config import RotaSettings
from bot.errors import InvalidInput
from bot.models import AuditEntry, ClockEvent, Person, Shift, ShiftKind, Unit
from bot.services.holidays import load_holidays
from bot.services.roster import import_roster, sample_district_files
from bot.services.rota import (
    Commitments,
    DayKind,
    GenerateSummary,
    PlannedShift,
    RotaNote,
    Rotation,
    day_kinds,
    day_slots,
    generate,
    plan_days,
    rotation_start,
)
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")
ROTA = RotaSettings()
NOW = datetime(2026, 9, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
A, B, C, D, E = 1, 2, 3, 4, 5


def local(moment: datetime) -> str:
    return moment.astimezone(TZ).strftime("%m-%d %H:%M")


def days(first: date, last: date) -> dict[date, DayKind]:
    return day_kinds(first, last)


def staff_only(plan: list[PlannedShift]) -> list[PlannedShift]:
    return [shift for shift in plan if shift.slot.kind is ShiftKind.STAFF]


def clashes(spans: Sequence[tuple[int | None, datetime, datetime]]) -> list[str]:
    """Shifts of one person that overlap or touch."""
    by_person: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for person_id, start, end in spans:
        if person_id is not None:
            by_person[person_id].append((start, end))
    found = []
    for person_id, held in by_person.items():
        held.sort()
        for (_, end), (start, _) in itertools.pairwise(held):
            if start <= end:
                found.append(f"{person_id} at {local(start)}")
    return found


# Days and the pattern.


def test_national_day_follows_the_holiday_pattern() -> None:
    national_day = date(2026, 10, 1)
    assert days(national_day, national_day) == {national_day: DayKind.HOLIDAY}
    slots = day_slots({national_day: DayKind.HOLIDAY}, rota=ROTA, tz=TZ)
    assert [(s.post, local(s.start), local(s.end), s.kind) for s in slots] == [
        ("值班室", "10-01 08:00", "10-02 08:00", ShiftKind.STAFF),
        ("带班", "10-01 08:00", "10-02 08:00", ShiftKind.LEADER),
    ]


def test_adjusted_workday_saturday_follows_the_workday_pattern() -> None:
    saturday = date(2026, 10, 10)  # 调休: worked to make up for the National Day week
    assert saturday.weekday() == 5
    assert days(saturday, saturday) == {saturday: DayKind.WORKDAY}
    slots = day_slots(days(saturday, saturday), rota=ROTA, tz=TZ)
    assert [(s.post, local(s.start), local(s.end)) for s in slots] == [
        ("值班室", "10-10 08:00", "10-10 20:00"),
        ("带班", "10-10 08:00", "10-11 08:00"),
        ("值班室", "10-10 20:00", "10-11 08:00"),
    ]


def test_ordinary_saturday_follows_the_holiday_pattern() -> None:
    saturday = date(2026, 10, 17)
    assert days(saturday, saturday) == {saturday: DayKind.HOLIDAY}


def test_a_week_with_a_festival_mixes_both_patterns() -> None:
    kinds = days(date(2026, 9, 21), date(2026, 9, 28))
    assert [kinds[date(2026, 9, d)] for d in range(21, 29)] == [
        DayKind.WORKDAY,  # Mon
        DayKind.WORKDAY,
        DayKind.WORKDAY,
        DayKind.WORKDAY,
        DayKind.HOLIDAY,  # Fri: Mid-autumn Festival
        DayKind.HOLIDAY,
        DayKind.HOLIDAY,
        DayKind.WORKDAY,  # Mon
    ]


def test_an_overnight_shift_ends_at_the_local_wall_clock_time_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    rota = RotaSettings(workday_shifts=["20:00-08:00"])
    night = day_slots({date(2026, 3, 28): DayKind.WORKDAY}, rota=rota, tz=berlin)[1]
    assert night.end.astimezone(berlin).time() == time(8, 0)
    assert night.end - night.start == timedelta(hours=11)


def test_a_year_the_holiday_calendar_does_not_know_is_one_sentence() -> None:
    with pytest.raises(InvalidInput) as refused:
        day_kinds(date(2026, 12, 30), date(2027, 1, 2))
    assert str(refused.value) == (
        "The holiday calendar does not know the year 2027 (needed for 2027-01-01): add the line "
        '"2027" = { off = [], work = [] } to [rota] holidays_file with the days off and adjusted '
        "workdays of the State Council's notice for 2027."
    )


def test_a_holidays_file_extends_and_overrides_the_package(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.toml"
    holidays.write_text(
        '"2027" = { off = ["2027-01-01", "2027-02-06..2027-02-08"], work = ["2027-01-02"] }\n'
        '"2026" = { off = ["2026-12-01"] }\n'
    )
    calendar = load_holidays(holidays)

    kinds = day_kinds(date(2026, 11, 30), date(2027, 2, 8), calendar)

    assert kinds[date(2026, 11, 30)] is DayKind.WORKDAY  # Monday, from the package
    assert kinds[date(2026, 12, 1)] is DayKind.HOLIDAY  # the file overrides the package
    assert kinds[date(2027, 1, 1)] is DayKind.HOLIDAY  # Friday off by the file
    assert kinds[date(2027, 1, 2)] is DayKind.WORKDAY  # Saturday worked (调休)
    assert kinds[date(2027, 1, 3)] is DayKind.HOLIDAY  # Sunday, by the week
    assert kinds[date(2027, 1, 4)] is DayKind.WORKDAY
    assert [kinds[date(2027, 2, d)] for d in (5, 6, 7, 8)] == [
        DayKind.WORKDAY,
        DayKind.HOLIDAY,
        DayKind.HOLIDAY,
        DayKind.HOLIDAY,  # a Monday off by the range
    ]
    with pytest.raises(InvalidInput) as refused:
        day_kinds(date(2027, 12, 31), date(2028, 1, 1), calendar)
    assert '"2028" = { off = [], work = [] }' in str(refused.value)
    assert str(holidays) in str(refused.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('"2027" = { off = ["2027-13-01"] }', "2027.off[0]: a list of dates"),
        ('"2027" = { off = "2027-01-01" }', "2027.off: a list of dates"),
        ('"2027" = { holidays = [] }', "2027.holidays: unknown key"),
        ("y2027 = { off = [] }", 'y2027: write each year as "2027"'),
        ('"2027" = { off = ["2027-01-01"], work = ["2027-01-01"] }', "2027-01-01: a day cannot"),
        ('"2027" = { off = ["2027-03-01..2027-01-01"] }', "2027.off[0]: a range runs"),
        ("not toml [", "not a valid TOML file"),
    ],
)
def test_a_bad_holidays_file_is_one_sentence_naming_the_key(
    tmp_path: Path, text: str, problem: str
) -> None:
    holidays = tmp_path / "holidays.toml"
    holidays.write_text(text)
    with pytest.raises(InvalidInput) as refused:
        load_holidays(holidays)
    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_backwards_or_too_long_range_is_refused() -> None:
    with pytest.raises(InvalidInput, match="before the first day"):
        day_kinds(date(2026, 10, 2), date(2026, 10, 1))
    with pytest.raises(InvalidInput, match="at most 366 days"):
        day_kinds(date(2025, 1, 1), date(2026, 1, 2))


# The rotation, planned without a database.


def test_staff_and_leaders_rotate_round_robin() -> None:
    plan = plan_days(
        days(date(2026, 9, 28), date(2026, 9, 30)),  # three workdays
        rota=ROTA,
        tz=TZ,
        staff=Rotation((A, B, C)),
        leaders=Rotation((D, E)),
    )
    assert [s.person_id for s in staff_only(plan)] == [A, B, C, A, B, C]
    assert [s.person_id for s in plan if s.slot.kind is ShiftKind.LEADER] == [D, E, D]
    assert not any(s.without_rest for s in plan)


def test_rotation_starts_after_the_last_holder_in_staff_number_order() -> None:
    staff_nos = ["S01", "S02", "S03"]
    assert rotation_start(staff_nos, None) == 0
    assert rotation_start(staff_nos, "S01") == 1
    assert rotation_start(staff_nos, "S03") == 0
    assert rotation_start(staff_nos, "S02a") == 2  # the last holder has left the pool


def test_with_two_people_nobody_works_both_shifts_of_a_day() -> None:
    first, last = date(2026, 9, 24), date(2026, 10, 12)  # festival, National Day, 调休
    plan = plan_days(
        days(first, last),
        rota=ROTA,
        tz=TZ,
        staff=Rotation((A, B)),
        leaders=Rotation((C, D)),
    )
    spans = [(s.person_id, s.slot.start, s.slot.end) for s in plan]
    assert clashes(spans) == []
    assert not any(s.without_rest for s in plan)
    assert len(staff_only(plan)) == sum(
        2 if kind is DayKind.WORKDAY else 1 for kind in days(first, last).values()
    )


def test_a_person_passed_over_for_rest_keeps_their_place() -> None:
    # A worked the night before, so B takes the morning and A comes straight after.
    night_before = (
        datetime(2026, 10, 7, 20, tzinfo=TZ).astimezone(UTC),
        datetime(2026, 10, 8, 8, tzinfo=TZ).astimezone(UTC),
    )
    plan = plan_days(
        days(date(2026, 10, 8), date(2026, 10, 9)),
        rota=ROTA,
        tz=TZ,
        staff=Rotation((A, B, C), start=0),
        leaders=Rotation(()),
        busy=Commitments({A: [night_before]}),
    )
    assert [(local(s.slot.start), s.person_id) for s in plan] == [
        ("10-08 08:00", B),
        ("10-08 20:00", A),
        ("10-09 08:00", C),
        ("10-09 20:00", B),
    ]


def test_a_lone_person_still_fills_the_post_and_the_plan_says_without_rest() -> None:
    plan = plan_days(
        days(date(2026, 9, 28), date(2026, 9, 28)),
        rota=ROTA,
        tz=TZ,
        staff=Rotation((A,)),
        leaders=Rotation(()),
    )
    assert [(s.person_id, s.without_rest) for s in plan] == [(A, False), (A, True)]


def test_existing_shifts_count_as_turns_and_other_duties_as_busy() -> None:
    day = {date(2026, 9, 28): DayKind.WORKDAY}
    slots = day_slots(day, rota=ROTA, tz=TZ)
    morning = slots[0]
    plan = plan_days(
        day,
        rota=ROTA,
        tz=TZ,
        staff=Rotation((A, B, C)),
        leaders=Rotation(()),
        fixed={morning.key: B},
        # C is on duty elsewhere overnight.
        busy=Commitments({C: [(morning.end, morning.end + timedelta(hours=12))]}),
    )
    # B's existing morning shift was B's turn; the night goes to A, as C is busy.
    assert [(local(s.slot.start), s.person_id) for s in plan] == [("09-28 20:00", A)]


# Generating into the database.


async def load_sample(db: Database) -> None:
    await import_roster(db, sample_district_files(), tz=TZ, default_language="zh", now=NOW)


async def run(
    db: Database,
    unit: str,
    first: date,
    last: date,
    *,
    replace: bool = False,
    now: datetime = NOW,
    progress: Callable[[RotaNote], None] | None = None,
) -> GenerateSummary:
    return await generate(
        db,
        unit_code=unit,
        first=first,
        last=last,
        rota=ROTA,
        tz=TZ,
        replace=replace,
        now=now,
        progress=progress,
    )


async def shifts_at(
    db: Database, unit: str, *, post: str = "值班室", since: date, until: date
) -> list[tuple[str, str, str | None]]:
    """(local start, local end, staff number) of a unit's shifts at a post on these days."""
    async with db.uow() as uow:
        statement = (
            select(Shift.start, Shift.end, Person.staff_no)
            .join(Unit, col(Unit.id) == Shift.unit_id)
            .outerjoin(Person, col(Person.id) == Shift.person_id)
            .where(Unit.code == unit, Shift.post == post)
            .order_by(col(Shift.start))
        )
        rows = (await uow.session.exec(statement)).all()
    begin = datetime.combine(since, time()).replace(tzinfo=TZ)
    end_ = datetime.combine(until + timedelta(days=1), time()).replace(tzinfo=TZ)
    return [
        (local(start), local(end), staff_no)
        for start, end, staff_no in rows
        if begin <= start < end_
    ]


async def all_shifts(db: Database) -> list[tuple[object, ...]]:
    async with db.uow() as uow:
        statement = select(Shift).order_by(col(Shift.id))
        return [
            (s.id, s.unit_id, s.post, s.start, s.end, s.person_id, s.kind, s.source)
            for s in (await uow.session.exec(statement)).all()
        ]


async def test_generate_fills_every_unit_with_staff_and_skips_the_rest(db: Database) -> None:
    await load_sample(db)
    notes: list[RotaNote] = []
    first, last = date(2026, 9, 28), date(2026, 10, 4)
    summary = await run(db, "QC", first, last, progress=notes.append)
    per_unit = sum(3 if k is DayKind.WORKDAY else 2 for k in days(first, last).values())
    # Eight units have staff; the two classes have nobody to rotate.
    assert (summary.created, summary.updated, summary.unchanged) == (8 * per_unit, 0, 0)
    assert (summary.units, summary.skipped) == (8, ("SB01-C1", "SB01-C6"))
    # Nothing before: the rotation starts with the first staff number, then one 24-hour
    # shift a day over the National Day holiday.
    assert await shifts_at(db, "SB01", since=date(2026, 9, 30), until=date(2026, 10, 4)) == [
        ("09-30 08:00", "09-30 20:00", "SB01-03"),
        ("09-30 20:00", "10-01 08:00", "SB01-04"),
        ("10-01 08:00", "10-02 08:00", "SB01-05"),
        ("10-02 08:00", "10-03 08:00", "SB01-06"),
        ("10-03 08:00", "10-04 08:00", "SB01-03"),
        ("10-04 08:00", "10-05 08:00", "SB01-04"),
    ]
    assert len(notes) == 10
    assert "skipped" in notes[-1].message


async def test_the_first_generated_shift_follows_the_imported_schedule(db: Database) -> None:
    await load_sample(db)
    # The sample ends with SB01-04 on the night of 6 December and SB01-02 leading that day.
    await run(db, "SB01", date(2026, 12, 7), date(2026, 12, 8))
    assert await shifts_at(db, "SB01", since=date(2026, 12, 7), until=date(2026, 12, 8)) == [
        ("12-07 08:00", "12-07 20:00", "SB01-05"),
        ("12-07 20:00", "12-08 08:00", "SB01-06"),
        ("12-08 08:00", "12-08 20:00", "SB01-03"),
        ("12-08 20:00", "12-09 08:00", "SB01-04"),
    ]
    leaders = await shifts_at(
        db, "SB01", post="带班", since=date(2026, 12, 7), until=date(2026, 12, 8)
    )
    assert [staff_no for _, _, staff_no in leaders] == ["SB01-01", "SB01-02"]


async def test_generating_week_by_week_continues_the_rotation(db: Database) -> None:
    await load_sample(db)
    await run(db, "SB01", date(2026, 12, 7), date(2026, 12, 13))
    await run(db, "SB01", date(2026, 12, 14), date(2026, 12, 20))
    held = [
        staff_no
        for _, _, staff_no in await shifts_at(
            db, "SB01", since=date(2026, 12, 7), until=date(2026, 12, 20)
        )
    ]
    cycle = ["SB01-05", "SB01-06", "SB01-03", "SB01-04"]
    assert held == [cycle[i % 4] for i in range(len(held))]
    assert len(held) == 5 * 2 * 2 + 2 * 2  # ten workdays of two shifts, four weekend days


async def test_a_two_person_school_never_puts_one_person_on_touching_shifts(db: Database) -> None:
    await load_sample(db)
    summary = await run(db, "SB02", date(2026, 9, 24), date(2026, 10, 18))
    assert summary.without_rest == 0
    async with db.uow() as uow:
        statement = (
            select(Shift.person_id, Shift.start, Shift.end)
            .join(Unit, col(Unit.id) == Shift.unit_id)
            .where(Unit.code == "SB02")
        )
        spans = [(p, start, end) for p, start, end in (await uow.session.exec(statement)).all()]
    assert clashes(spans) == []


async def test_generating_the_same_range_twice_changes_nothing(db: Database) -> None:
    await load_sample(db)
    first = await run(db, "QC", date(2026, 9, 28), date(2026, 10, 11))
    before = await all_shifts(db)
    again = await run(db, "QC", date(2026, 9, 28), date(2026, 10, 11))
    assert (again.created, again.updated, again.unchanged) == (0, 0, first.created)
    assert await all_shifts(db) == before
    async with db.uow() as uow:
        audits = await uow.session.exec(
            select(func.count()).where(AuditEntry.action == "shifts_generate")
        )
        assert audits.one() == 1


async def test_existing_shifts_in_the_range_are_left_alone_without_replace(db: Database) -> None:
    await load_sample(db)
    # The sample already has 5 and 6 December (with two shifts on each weekend day).
    summary = await run(db, "SB01", date(2026, 12, 5), date(2026, 12, 6))
    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 4)
    assert [
        s
        for _, _, s in await shifts_at(db, "SB01", since=date(2026, 12, 5), until=date(2026, 12, 6))
    ] == [
        "SB01-05",
        "SB01-06",
        "SB01-03",
        "SB01-04",
    ]


async def test_replace_reassigns_people_but_keeps_clocked_in_and_begun_shifts(
    db: Database,
) -> None:
    await load_sample(db)
    await run(db, "SB01", date(2026, 12, 7), date(2026, 12, 13))
    rotated = await shifts_at(db, "SB01", since=date(2026, 12, 7), until=date(2026, 12, 13))
    async with db.uow() as uow:
        session = uow.session
        sb01 = (await session.exec(select(Unit).where(Unit.code == "SB01"))).one()
        lone = (await session.exec(select(Person).where(Person.staff_no == "SB01-03"))).one()
        # Someone put SB01-03 on every post by hand, then SB01-03 clocked in on the 8th.
        await session.execute(
            update(Shift)
            .where(col(Shift.unit_id) == sb01.id, col(Shift.post) == "值班室")
            .values(person_id=lone.id)
        )
        clocked = (
            await session.exec(
                select(Shift).where(
                    Shift.unit_id == sb01.id,
                    Shift.post == "值班室",
                    Shift.start == datetime(2026, 12, 8, 8, tzinfo=TZ),
                )
            )
        ).one()
        assert clocked.id is not None and lone.id is not None
        session.add(
            ClockEvent(
                shift_id=clocked.id,
                person_id=lone.id,
                kind="in",
                at=datetime(2026, 12, 8, 7, 55, tzinfo=TZ),
            )
        )
        await uow.commit()
    count = len(await all_shifts(db))
    summary = await run(
        db,
        "SB01",
        date(2026, 12, 7),
        date(2026, 12, 13),
        replace=True,
        now=datetime(2026, 12, 7, 12, 0, tzinfo=TZ),  # the first morning shift has begun
    )
    after = await shifts_at(db, "SB01", since=date(2026, 12, 7), until=date(2026, 12, 13))
    assert len(await all_shifts(db)) == count  # nothing deleted, nothing added
    assert after[0] == ("12-07 08:00", "12-07 20:00", "SB01-03")  # begun
    assert after[2] == ("12-08 08:00", "12-08 20:00", "SB01-03")  # clocked in
    assert {s for _, _, s in after} == {s for _, _, s in rotated}  # everyone rotates again
    assert clashes([(hash(s), *_span(start, end)) for start, end, s in after]) == []
    assert summary.updated == sum(1 for _, _, s in after if s != "SB01-03")
    assert summary.created == 0


def _span(start: str, end: str) -> tuple[datetime, datetime]:
    def parse(text: str) -> datetime:
        return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=TZ)

    return parse(start), parse(end)


async def test_an_error_midway_leaves_nothing_behind(db: Database) -> None:
    await load_sample(db)
    before = await all_shifts(db)
    notes: list[RotaNote] = []

    def fail_at_the_third_unit(note: RotaNote) -> None:
        notes.append(note)
        if len(notes) == 3:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        await run(db, "QC", date(2026, 9, 28), date(2026, 10, 4), progress=fail_at_the_third_unit)
    assert await all_shifts(db) == before


async def test_bad_input_is_refused_before_anything_changes(db: Database) -> None:
    await load_sample(db)
    before = await all_shifts(db)
    with pytest.raises(InvalidInput, match="unknown unit NOPE"):
        await run(db, "NOPE", date(2026, 10, 1), date(2026, 10, 2))
    with pytest.raises(InvalidInput, match="2027"):
        await run(db, "QC", date(2026, 12, 1), date(2027, 1, 31))
    assert await all_shifts(db) == before


# The command line.


def zhiban(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZHIBAN_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_generates_with_progress_and_a_summary_and_refuses_bad_input_in_one_line(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/z.db"\n[bot]\nlanguage = "en"\n'
    )
    assert zhiban("roster", "sample", "--config", str(config)).returncode == 0
    command = ["shifts", "generate", "--unit", "SB01", "--config", str(config)]
    result = zhiban(*command, "--from", "2026-10-01", "--to", "2026-10-03")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Shifts: 6 new, 0 updated, 0 unchanged"
    progress = result.stderr.strip().splitlines()
    assert progress[0] == "[1/3] SB01 石坝小学: 6 new, 0 updated, 0 unchanged"
    assert progress[1].startswith("[2/3] SB01-C1 ")
    again = zhiban(*command, "--from", "2026-10-01", "--to", "2026-10-03")
    assert again.stdout.strip() == "Shifts: 0 new, 0 updated, 6 unchanged"

    backwards = zhiban(*command, "--from", "2026-10-03", "--to", "2026-10-01")
    assert backwards.returncode == 1
    assert backwards.stderr.splitlines() == [
        "zhiban: The last day 2026-10-01 is before the first day 2026-10-03."
    ]
    unknown = zhiban(
        *command[:3], "NOPE", *command[4:], "--from", "2026-10-01", "--to", "2026-10-01"
    )
    assert (unknown.returncode, unknown.stderr.splitlines()) == (1, ["zhiban: unknown unit NOPE"])
    not_a_date = zhiban(*command, "--from", "2026-13-01", "--to", "2026-10-01")
    assert not_a_date.returncode == 1
    assert len(not_a_date.stderr.splitlines()) == 1


async def test_generating_into_2027_follows_the_holidays_file(db: Database, tmp_path: Path) -> None:
    await load_sample(db)
    first, last = date(2027, 1, 1), date(2027, 1, 4)
    with pytest.raises(InvalidInput):
        await generate(db, unit_code="SB01", first=first, last=last, rota=ROTA, tz=TZ, now=NOW)
    holidays = tmp_path / "holidays.toml"
    holidays.write_text('"2027" = { off = ["2027-01-01", "2027-01-04"], work = ["2027-01-02"] }\n')

    await generate(
        db,
        unit_code="SB01",
        first=first,
        last=last,
        rota=ROTA,
        tz=TZ,
        now=NOW,
        calendar=load_holidays(holidays),
    )

    starts = [start for start, _end, _who in await shifts_at(db, "SB01", since=first, until=last)]
    # Friday 1st off (one 24-hour shift), Saturday 2nd worked (调休: day and night), Sunday off,
    # Monday 4th off by the file.
    assert starts == [
        "01-01 08:00",
        "01-02 08:00",
        "01-02 20:00",
        "01-03 08:00",
        "01-04 08:00",
    ]
