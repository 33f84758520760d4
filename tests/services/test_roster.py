"""Roster import and export: all-or-nothing, idempotent, in Chinese or English, CSV or XLSX."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import func, select

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.errors import RosterError, RosterRejected
from bot.i18n import translator
from bot.models import AuditEntry, Person, Role, RoleGrant, Shift, ShiftKind, Unit
from bot.services.roster import (
    ImportSummary,
    export_roster,
    import_roster,
    is_within,
    person_by_staff_no,
    sample_district_files,
    unit_by_code,
    write_templates,
)
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
ENGLISH = {
    "units": ["code", "name", "parent", "kind", "latitude", "longitude", "radius_m"],
    "people": ["staff_no", "name", "unit", "roles", "phone", "language"],
    "shifts": ["unit", "post", "start", "end", "staff_no", "kind"],
}
Rows = list[list[str]]
Snapshot = dict[str, list[tuple[object, ...]]]


def utc_time(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=TZ).astimezone(UTC)


async def run_import(db: Database, paths: list[Path]) -> ImportSummary:
    return await import_roster(db, paths, tz=TZ, default_language="zh", now=NOW)


def read_rows(path: Path) -> Rows:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def write_rows(path: Path, rows: Rows, *, bom: bool = True) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    """A copy of the packaged sample district that a test may edit."""
    folder = tmp_path / "sample"
    folder.mkdir()
    for path in sample_district_files():
        shutil.copyfile(path, folder / path.name)
    return folder


def csv_files(folder: Path) -> list[Path]:
    return [folder / "units.csv", folder / "people.csv", folder / "shifts.csv"]


async def snapshot(db: Database) -> Snapshot:
    """Every roster row (and the audit log) by natural keys, so two databases compare."""
    async with db.uow() as uow:
        session = uow.session
        units = (await session.exec(select(Unit))).all()
        people = (await session.exec(select(Person))).all()
        grants = (await session.exec(select(RoleGrant))).all()
        shifts = (await session.exec(select(Shift))).all()
        audits = (await session.exec(select(AuditEntry))).all()
        return _natural(units, people, grants, shifts, audits)


def _natural(
    units: Sequence[Unit],
    people: Sequence[Person],
    grants: Sequence[RoleGrant],
    shifts: Sequence[Shift],
    audits: Sequence[AuditEntry],
) -> Snapshot:
    code = {u.id: u.code for u in units}
    staff = {p.id: p.staff_no for p in people}

    def path_codes(path: str) -> str:
        return "/".join(code[int(part)] for part in path.strip("/").split("/"))

    return {
        "units": sorted(
            (
                u.code,
                u.name,
                u.kind,
                code.get(u.parent_id),
                path_codes(u.path),
                u.latitude,
                u.longitude,
                u.radius_m,
            )
            for u in units
        ),
        "people": sorted(
            (p.staff_no, p.name, code[p.unit_id], p.phone, p.language, p.active, p.email)
            for p in people
        ),
        "grants": sorted((staff[g.person_id], g.role, code[g.unit_id]) for g in grants),
        "shifts": sorted(
            (code[s.unit_id], s.post, s.start, s.end, staff.get(s.person_id), s.kind)
            for s in shifts
        ),
        "audit": sorted((a.action, a.at) for a in audits),
    }


async def test_sample_district_imports_every_unit_person_role_and_shift(db: Database) -> None:
    summary = await run_import(db, sample_district_files())

    assert (summary.units.created, summary.people.created, summary.shifts.created) == (10, 39, 168)
    assert summary.changed
    data = await snapshot(db)
    assert len(data["units"]) == 10
    assert len(data["people"]) == 39
    assert len(data["shifts"]) == 168
    assert {role for _, role, _ in data["grants"]} == {role.value for role in Role}
    # Two posts are left unfilled on purpose: 2026-12-03 day at MY02, 2026-12-01 night at SB02.
    assert [(s[0], s[2], s[3]) for s in data["shifts"] if s[4] is None] == [
        ("MY02", utc_time("2026-12-03 08:00"), utc_time("2026-12-03 20:00")),
        ("SB02", utc_time("2026-12-01 20:00"), utc_time("2026-12-02 08:00")),
    ]
    unit_of = {staff_no: unit for staff_no, _, unit, *_ in data["people"]}
    assert all(unit_of[s[4]] == s[0] for s in data["shifts"] if s[4] is not None)
    assert data["units"][next(i for i, u in enumerate(data["units"]) if u[0] == "SB01-C1")][:5] == (
        "SB01-C1",
        "石坝小学一年级（1）班",
        "class",
        "SB01",
        "QC/SB/SB01/SB01-C1",
    )
    assert ("SB01-04", "safety_officer", "SB01-C1") in data["grants"]
    assert ("SB01-05", "马俊", "SB01", "13800000015", "en", True, None) in data["people"]
    assert data["audit"] == [("roster_import", NOW)]


async def test_importing_the_same_files_twice_changes_nothing(db: Database) -> None:
    await run_import(db, sample_district_files())
    before = await snapshot(db)

    summary = await run_import(db, sample_district_files())

    assert not summary.changed
    assert (summary.units.unchanged, summary.people.unchanged, summary.shifts.unchanged) == (
        10,
        39,
        168,
    )
    assert await snapshot(db) == before


def _append(name: str, row: list[str]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        rows = read_rows(folder / name)
        write_rows(folder / name, [*rows, row])

    return edit


def _set_cell(name: str, row: int, column: int, value: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        rows = read_rows(folder / name)
        rows[row - 1][column] = value
        write_rows(folder / name, rows)

    return edit


# (edit of the sample, file, row, column as written, message id)
BAD_ROWS = {
    "unknown_unit": (
        _append("people.csv", ["T001", "测试", "XX99", "staff", "", ""]),
        "people.csv",
        41,
        "单位",
        "unknown unit {code}",
    ),
    "duplicate_phone": (
        _append("people.csv", ["T001", "测试", "SB01", "staff", "138 0000 0001", ""]),
        "people.csv",
        41,
        "电话",
        "{value} is also on row {row}",
    ),
    "duplicate_staff_no": (
        _append("people.csv", ["SB01-03", "测试", "SB01", "staff", "", ""]),
        "people.csv",
        41,
        "工号",
        "{value} is also on row {row}",
    ),
    "unknown_role": (
        _set_cell("people.csv", 3, 3, "desk;captain"),
        "people.csv",
        3,
        "角色",
        "unknown role {role}",
    ),
    "bad_time": (
        _set_cell("shifts.csv", 169, 2, "2026-11-31 08:00"),
        "shifts.csv",
        169,
        "开始",
        "{value} is not a local time; write it like 2026-11-30 08:00",
    ),
    "end_before_start": (
        _set_cell("shifts.csv", 50, 3, "2026-11-30 07:00"),
        "shifts.csv",
        50,
        "结束",
        "the end must be after the start",
    ),
    "shift_too_long": (
        _set_cell("shifts.csv", 50, 3, "2026-12-31 08:00"),
        "shifts.csv",
        50,
        "结束",
        "a shift may last at most {hours} hours",
    ),
    "unknown_staff_no": (
        _set_cell("shifts.csv", 20, 4, "SB09-01"),
        "shifts.csv",
        20,
        "工号",
        "unknown staff number {staff_no}",
    ),
    "unknown_header": (
        _set_cell("units.csv", 1, 6, "备注"),
        "units.csv",
        1,
        "备注",
        "unknown column {column}",
    ),
    "half_a_geofence": (
        _set_cell("units.csv", 4, 6, ""),
        "units.csv",
        4,
        "半径",
        "give latitude, longitude and radius together, or leave all three empty",
    ),
    "parent_loop": (
        _set_cell("units.csv", 2, 2, "MY"),
        "units.csv",
        2,
        "上级",
        "{code} ({kind}) cannot be under {parent} ({parent_kind})",
    ),
    "second_top_unit": (
        _append("units.csv", ["GY", "广元市教育局", "", "county", "", "", ""]),
        "units.csv",
        12,
        "上级",
        "there is already a top unit: {code}",
    ),
}


async def test_roster_with_one_bad_row_changes_nothing_and_names_file_row_and_column(
    db: Database, tmp_path: Path
) -> None:
    # One database for all cases: each file would otherwise create the whole sample district.
    for case, (edit, file, row, column, message) in BAD_ROWS.items():
        folder = tmp_path / case
        folder.mkdir()
        for path in sample_district_files():
            shutil.copyfile(path, folder / path.name)
        edit(folder)

        with pytest.raises(RosterError) as raised:
            await run_import(db, csv_files(folder))

        error = raised.value
        assert (error.file, error.row, error.column, error.problem.message) == (
            file,
            row,
            column,
            message,
        ), case
        assert await snapshot(db) == {
            k: [] for k in ("units", "people", "grants", "shifts", "audit")
        }


async def test_roster_with_unknown_unit_changes_nothing_and_names_row_and_column(
    db: Database, tmp_path: Path
) -> None:
    await run_import(db, sample_district_files())
    before = await snapshot(db)
    people = write_rows(
        tmp_path / "People.CSV",
        [
            ENGLISH["people"],
            ["N001", "新人甲", "SB01", "staff", "13900000001", ""],
            ["N002", "新人乙", "ZZ", "staff", "13900000002", ""],
        ],
    )

    with pytest.raises(RosterError) as raised:
        await run_import(db, [people])

    assert str(raised.value) == "People.CSV row 3, column unit: unknown unit ZZ"
    assert await snapshot(db) == before


async def test_phone_of_a_person_in_the_database_is_refused(db: Database, tmp_path: Path) -> None:
    await run_import(db, sample_district_files())
    before = await snapshot(db)
    people = write_rows(
        tmp_path / "people.csv",
        [ENGLISH["people"], ["N001", "新人", "SB01", "staff", "13800000001", ""]],
    )

    with pytest.raises(RosterError) as raised:
        await run_import(db, [people])

    assert str(raised.value) == (
        "people.csv row 2, column phone: 13800000001 already belongs to QC001"
    )
    assert await snapshot(db) == before


async def test_missing_header_is_refused(db: Database, tmp_path: Path) -> None:
    shifts = write_rows(tmp_path / "shifts.csv", [["unit", "post", "start", "end", "staff_no"]])

    with pytest.raises(RosterError) as raised:
        await run_import(db, [shifts])

    assert (raised.value.row, raised.value.column) == (1, None)
    assert raised.value.problem.params == {"column": "kind / 类型"}


async def test_files_without_bom_read_the_same(db: Database, sample_dir: Path) -> None:
    await run_import(db, sample_district_files())
    for path in csv_files(sample_dir):
        write_rows(path, read_rows(path), bom=False)
        assert not path.read_bytes().startswith(b"\xef\xbb\xbf")

    summary = await run_import(db, csv_files(sample_dir))

    assert not summary.changed


async def test_english_headers_in_any_order_read_the_same_as_chinese(
    db: Database, sample_dir: Path
) -> None:
    await run_import(db, sample_district_files())
    for path in csv_files(sample_dir):
        rows = read_rows(path)
        rows[0] = [f"  {header.upper()} " for header in ENGLISH[path.stem]]
        # Reverse the columns: the order of columns is free.
        write_rows(path, [list(reversed(row)) for row in rows])

    summary = await run_import(db, csv_files(sample_dir))

    assert not summary.changed


def _workbook_from(folder: Path, target: Path) -> Path:
    """The sample as an office keeps it in Excel: numbers as numbers, times as dates."""
    book = Workbook()
    book.active.title = "说明 (help)"  # type: ignore[union-attr]
    book["说明 (help)"].append(["any notes", "are ignored"])
    for path in csv_files(folder):
        sheet = book.create_sheet(path.stem.capitalize())
        for index, row in enumerate(read_rows(path)):
            cells: list[object] = list(row)
            if index and path.stem == "people":
                cells[4] = int(row[4])
            if index and path.stem == "shifts":
                cells[2] = datetime.strptime(row[2], "%Y-%m-%d %H:%M")  # noqa: DTZ007
            sheet.append(cells)
    book.save(target)
    return target


async def test_xlsx_workbook_imports_like_the_csv_files(
    db: Database, sample_dir: Path, tmp_path: Path
) -> None:
    workbook = _workbook_from(sample_dir, tmp_path / "district.xlsx")

    summary = await run_import(db, [workbook])

    assert (summary.units.created, summary.people.created, summary.shifts.created) == (10, 39, 168)
    assert not (await run_import(db, sample_district_files())).changed


async def test_bad_cell_in_workbook_names_sheet_row_and_column(
    db: Database, sample_dir: Path, tmp_path: Path
) -> None:
    workbook = _workbook_from(sample_dir, tmp_path / "district.xlsx")
    book = load_workbook(workbook)
    book["Shifts"]["F7"] = "night"
    book.save(workbook)

    with pytest.raises(RosterError) as raised:
        await run_import(db, [workbook])

    assert (raised.value.file, raised.value.row, raised.value.column) == (
        "district.xlsx:Shifts",
        7,
        "类型",
    )
    assert (await snapshot(db))["units"] == []


async def test_export_then_import_into_an_empty_database_gives_the_same_roster(
    db: Database, tmp_path: Path, sqlite_template: Path
) -> None:
    await run_import(db, sample_district_files())
    expected = await snapshot(db)

    written = await export_roster(db, tmp_path / "export", tz=TZ)

    assert [p.name for p in written] == ["units.csv", "people.csv", "shifts.csv", "roster.xlsx"]
    assert (tmp_path / "export" / "people.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_rows(tmp_path / "export" / "people.csv")[0] == [
        *ENGLISH["people"],
        "active",
        "email",
    ]
    assert not (await run_import(db, written[:3])).changed
    for files in (written[:3], written[3:]):
        copy = tmp_path / f"empty-{len(files)}.db"
        shutil.copyfile(sqlite_template, copy)
        empty = Database(create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{copy}")))
        try:
            await run_import(empty, files)
            restored = await snapshot(empty)
        finally:
            await empty.dispose()
        assert {k: v for k, v in restored.items() if k != "audit"} == {
            k: v for k, v in expected.items() if k != "audit"
        }


async def test_templates_are_written_and_import_once_filled(db: Database, tmp_path: Path) -> None:
    written = write_templates(tmp_path / "templates")

    assert [p.name for p in written] == [
        "units.csv",
        "people.csv",
        "shifts.csv",
        "roster_template.xlsx",
    ]
    assert read_rows(written[1]) == [
        ["工号", "姓名", "单位", "角色", "电话", "语言", "在职", "电子邮箱"],
        ["#QC001", "王德明", "QC", "admin;staff", "13800000001", "", "是", "wangdm@example.edu.cn"],
    ]
    book = load_workbook(written[3])
    assert book.sheetnames == ["units", "people", "shifts", "说明 (help)"]
    help_rows = [tuple(r) for r in book["说明 (help)"].iter_rows(values_only=True)]
    assert ("people", "电话", "phone") in [r[:3] for r in help_rows]
    assert ("people", "电子邮箱", "email") in [r[:3] for r in help_rows]

    units = [
        ["QC", "青川县教育局", "", "县", "", "", ""],
        ["X1", "新建小学", "QC", "学校", "", "", ""],
    ]
    write_rows(written[0], [*read_rows(written[0]), *units])
    write_rows(written[1], [*read_rows(written[1]), ["X1-01", "赵一", "X1", "staff", "", ""]])
    write_rows(
        written[2],
        [
            *read_rows(written[2]),
            ["X1", "值班室", "2026/12/1 8:00", "2026-12-01 24:00", "X1-01", "值班"],
        ],
    )
    summary = await run_import(db, written[:3])
    assert (summary.units.created, summary.people.created, summary.shifts.created) == (2, 1, 1)
    async with db.uow() as uow:
        shift = (await uow.session.exec(select(Shift))).one()
        assert (shift.start, shift.end) == (
            datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
            datetime(2026, 12, 1, 16, 0, tzinfo=UTC),
        )

    for sheet, row in (
        ("units", ["X2", "另一小学", "QC", "school", 32.5, 105.2, 300]),
        ("people", ["X2-01", "钱二", "X2", "staff;admin@X2", 13900000002, "en"]),
    ):
        book[sheet].append(row)
    book.save(written[3])
    summary = await run_import(db, [written[3]])
    assert (summary.units.created, summary.units.unchanged, summary.people.created) == (1, 0, 1)


async def test_roles_in_the_file_replace_the_persons_grants(db: Database, tmp_path: Path) -> None:
    await run_import(db, sample_district_files())
    people = write_rows(
        tmp_path / "people.csv",
        [
            ENGLISH["people"],
            ["SB01-03", "郑强", "SB01", "staff;duty_leader", "13800000013", ""],
        ],
    )

    summary = await run_import(db, [people])

    assert (summary.people.updated, summary.people.unchanged) == (1, 0)
    grants = [g for g in (await snapshot(db))["grants"] if g[0] == "SB01-03"]
    assert grants == [("SB01-03", "duty_leader", "SB01"), ("SB01-03", "staff", "SB01")]


async def test_moving_a_school_rewrites_the_paths_below_it(db: Database, tmp_path: Path) -> None:
    await run_import(db, sample_district_files())
    units = write_rows(
        tmp_path / "units.csv",
        [ENGLISH["units"], ["SB01", "石坝小学", "MY", "school", "32.4825", "105.154", "400"]],
    )

    summary = await run_import(db, [units])

    assert (summary.units.updated, summary.people.updated) == (1, 0)
    paths = {u[0]: u[4] for u in (await snapshot(db))["units"]}
    assert paths["SB01"] == "QC/MY/SB01"
    assert paths["SB01-C1"] == "QC/MY/SB01/SB01-C1"
    async with db.uow() as uow:
        sb01 = await unit_by_code(uow.session, "SB01")
        class_1 = await unit_by_code(uow.session, "SB01-C1")
        my = await unit_by_code(uow.session, "MY")
        sb = await unit_by_code(uow.session, "SB")
        assert sb01 and class_1 and my and sb
        assert is_within(class_1.path, my.path)
        assert is_within(sb01.path, sb01.path)
        assert not is_within(class_1.path, sb.path)


async def test_two_people_may_swap_phone_numbers(db: Database, tmp_path: Path) -> None:
    await run_import(db, sample_district_files())
    people = write_rows(
        tmp_path / "people.csv",
        [
            ENGLISH["people"],
            ["SB01-05", "马俊", "SB01", "staff", "15900000016", "en"],
            ["SB01-06", "唐磊", "SB01", "staff", "13800000015", ""],
        ],
    )

    summary = await run_import(db, [people])

    assert summary.people.updated == 2
    async with db.uow() as uow:
        ma = await person_by_staff_no(uow.session, "SB01-05")
        count = (await uow.session.exec(select(func.count()).select_from(Person))).one()
        assert ma is not None and ma.phone == "15900000016"
    assert count == 39


async def test_reassigning_a_shift_updates_it_in_place(db: Database, tmp_path: Path) -> None:
    await run_import(db, sample_district_files())
    shifts = write_rows(
        tmp_path / "shifts.csv",
        [
            ENGLISH["shifts"],
            ["SB01", "值班室", "2026-11-30 08:00", "2026-11-30 20:00", "SB01-06", "staff"],
            ["SB01", "值班室", "2026-12-07 08:00", "2026-12-07 20:00", "", ""],
        ],
    )

    summary = await run_import(db, [shifts])

    assert (summary.shifts.created, summary.shifts.updated) == (1, 1)
    rows = [s for s in (await snapshot(db))["shifts"] if s[0] == "SB01" and s[1] == "值班室"]
    assert rows[0][4] == "SB01-06"
    assert rows[-1][4:] == (None, ShiftKind.STAFF.value)


async def test_csv_saved_by_chinese_excel_in_gb18030_reads_the_same(
    db: Database, sample_dir: Path
) -> None:
    await run_import(db, sample_district_files())
    people = sample_dir / "people.csv"
    people.write_bytes(people.read_text(encoding="utf-8-sig").encode("gb18030"))

    assert not (await run_import(db, [people])).changed


async def test_an_email_column_is_imported_checked_row_by_row_and_exported_again(
    db: Database, sample_dir: Path, tmp_path: Path
) -> None:
    await run_import(db, csv_files(sample_dir))
    people = read_rows(sample_dir / "people.csv")
    header = people[0]
    staff = header.index("工号")
    # 邮箱 as offices often write it; the address of a shared desk mailbox twice is fine.
    mailed = {
        people[1][staff]: "desk@qc.example.edu.cn",
        people[2][staff]: "desk@qc.example.edu.cn",
    }
    bad = [people[3][staff], people[4][staff]]
    rows = [[*header, "邮箱"]]
    for row in people[1:]:
        rows.append([*row, mailed.get(row[staff], "")])
    rows[3][-1] = "王老师@学校"
    rows[4][-1] = "a@b.cn; c@d.cn"
    rows[5][-1] = "x" * 250 + "@b.cn"
    write_rows(sample_dir / "people.csv", rows)

    with pytest.raises(RosterRejected) as raised:
        await run_import(db, csv_files(sample_dir))
    assert [(e.row, e.column) for e in raised.value.problems] == [
        (4, "邮箱"),
        (5, "邮箱"),
        (6, "邮箱"),
    ]
    tr = translator("en")
    assert "王老师@学校 is not an e-mail address" in raised.value.problems[0].render(tr)
    assert "too long: at most 254 characters" in raised.value.problems[2].render(tr)
    async with db.uow() as uow:
        assert all(p.email is None for p in (await uow.session.exec(select(Person))).all())

    rows[3][-1], rows[4][-1], rows[5][-1] = "", "  Li.Lei+duty@school.example.cn ", ""
    write_rows(sample_dir / "people.csv", rows)
    summary = await run_import(db, csv_files(sample_dir))
    assert summary.people.updated == 3
    async with db.uow() as uow:
        assert (await person_by_staff_no(uow.session, bad[1])).email == (  # type: ignore[union-attr]
            "Li.Lei+duty@school.example.cn"
        )

    written = await export_roster(db, tmp_path / "export", tz=TZ)
    exported = read_rows(written[1])
    column = exported[0].index("email")
    by_staff = {row[0]: row[column] for row in exported[1:]}
    assert {k: v for k, v in by_staff.items() if v} == {
        **mailed,
        bad[1]: "Li.Lei+duty@school.example.cn",
    }
    assert not (await run_import(db, written[:3])).changed
    assert not (await run_import(db, written[3:])).changed, "the workbook holds them too"

    # A sheet without the column keeps the addresses; an empty cell clears one.
    write_rows(sample_dir / "people.csv", people)
    assert not (await run_import(db, csv_files(sample_dir))).people.updated
    rows[4][-1] = ""
    write_rows(sample_dir / "people.csv", rows)
    await run_import(db, csv_files(sample_dir))
    async with db.uow() as uow:
        assert (await person_by_staff_no(uow.session, bad[1])).email is None  # type: ignore[union-attr]
        kept = (await person_by_staff_no(uow.session, people[1][staff])).email  # type: ignore[union-attr]
    assert kept == "desk@qc.example.edu.cn"
