"""Roster files as offices keep them: any name, a title row, GBK, and every bad row named."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlmodel import func, select

from bot.errors import InvalidInput, RosterError, RosterRejected
from bot.i18n import translator
from bot.models import Person, Shift, Unit
from bot.services.roster import (
    ImportSummary,
    import_roster,
    sample_district_files,
    write_templates,
)
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
PEOPLE = ["工号", "姓名", "单位", "角色", "电话", "语言"]


async def run_import(db: Database, paths: list[Path], **options: bool) -> ImportSummary:
    return await import_roster(db, paths, tz=TZ, default_language="zh", now=NOW, **options)


def write_rows(path: Path, rows: list[list[str]], *, encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def sample_rows(name: str) -> list[list[str]]:
    path = next(p for p in sample_district_files() if p.stem == name)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


async def counts(db: Database) -> tuple[int, int, int]:
    async with db.uow() as uow:
        session = uow.session
        return (
            (await session.exec(select(func.count()).select_from(Unit))).one(),
            (await session.exec(select(func.count()).select_from(Person))).one(),
            (await session.exec(select(func.count()).select_from(Shift))).one(),
        )


async def test_a_gbk_roster_with_three_bad_rows_names_all_three(
    db: Database, tmp_path: Path
) -> None:
    await run_import(db, sample_district_files())
    before = await counts(db)
    # Saved by Chinese Excel as plain "CSV": GBK, no BOM, named as the office likes.
    people = write_rows(
        tmp_path / "2027春季值班人员.csv",
        [
            PEOPLE,
            ["N001", "新人甲", "SB01", "staff", "13900000001", ""],
            ["N002", "新人乙", "无此单位", "staff", "13900000002", ""],
            ["N003", "新人丙", "SB01", "校长", "13900000003", ""],
            ["N004", "新人丁", "SB01", "staff", "13900000004", ""],
            ["N005", "新人戊", "SB01", "staff", "电话号码", ""],
        ],
        encoding="gbk",
    )

    with pytest.raises(RosterRejected) as raised:
        await run_import(db, [people])

    assert [(e.row, e.column) for e in raised.value.problems] == [
        (3, "单位"),
        (4, "角色"),
        (6, "电话"),
    ]
    assert raised.value.render(translator("zh")).splitlines() == [
        "名册未导入，未作任何更改；共3处问题：",
        "  2027春季值班人员.csv 第3行，单位列：未知单位无此单位",
        "  2027春季值班人员.csv 第4行，角色列：未知角色校长",
        "  2027春季值班人员.csv 第6行，电话列：电话号码不是电话号码",
    ]
    assert await counts(db) == before


async def test_more_than_fifty_bad_rows_lists_fifty_and_counts_the_rest(
    db: Database, tmp_path: Path
) -> None:
    rows = [["unit", "post", "start", "end", "staff_no", "kind"]]
    rows += [["NOPE", "值班室", f"2027-01-{d:02d} 08:00", "later", "", ""] for d in range(1, 29)]
    rows += [["NOPE", "门卫", f"2027-01-{d:02d} 08:00", "later", "", ""] for d in range(1, 29)]
    shifts = write_rows(tmp_path / "排班.csv", rows)

    with pytest.raises(RosterRejected) as raised:
        await run_import(db, [shifts])

    lines = raised.value.render(translator("en")).splitlines()
    assert lines[0] == "The roster was not imported and nothing changed; 56 problems:"
    assert len(lines) == 1 + 50 + 1
    assert lines[1] == (
        "  排班.csv row 2, column end: later is not a local time; write it like 2026-11-30 08:00"
    )
    assert lines[-1] == "  and 6 more"
    assert await counts(db) == (0, 0, 0)


async def test_sheets_are_recognised_by_their_header_row_whatever_their_names(
    db: Database, tmp_path: Path
) -> None:
    # A workbook with sheets named by the office and a title line above the headers...
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "Sheet1"
    first.append(["青川县教育系统单位表"])
    for row in sample_rows("units"):
        first.append(row)
    people = book.create_sheet("教职工")
    for row in sample_rows("people"):
        people.append(row)
    book.create_sheet("备注").append(["说明", "本表仅供参考"])
    workbook = tmp_path / "名册.xlsx"
    book.save(workbook)
    # ...and the shifts as tab-separated UTF-16, Excel's "Unicode text", named .txt.
    shifts = tmp_path / "排班表.txt"
    shifts.write_text("\n".join("\t".join(r) for r in sample_rows("shifts")), encoding="utf-16")

    summary = await run_import(db, [workbook, shifts])

    assert (summary.units.created, summary.people.created, summary.shifts.created) == (10, 39, 168)
    assert not (await run_import(db, sample_district_files())).changed


async def test_files_that_are_not_rosters_are_named_in_one_sentence_each(
    db: Database, tmp_path: Path
) -> None:
    text_named_xlsx = tmp_path / "roster.xlsx"
    text_named_xlsx.write_text("工号,姓名\n")
    notes = write_rows(tmp_path / "notes.csv", [["日期", "事项"], ["2027-01-01", "元旦"]])
    tr = translator("en")

    with pytest.raises(RosterRejected) as raised:
        await run_import(db, [text_named_xlsx, notes])

    assert [e.render(tr) for e in raised.value.problems] == [
        "notes.csv: no roster sheet found: a CSV file or workbook sheet whose first row holds "
        "the columns of units, people or shifts (see zhiban roster template)",
        "roster.xlsx: not an XLSX workbook (damaged, or another file renamed); save it again "
        "from Excel",
    ]
    with pytest.raises(InvalidInput) as missing:
        await run_import(db, [tmp_path / "nosuch.csv"])
    assert missing.value.render(tr) == f"no such file: {tmp_path / 'nosuch.csv'}"
    assert await counts(db) == (0, 0, 0)


async def test_an_untouched_template_imports_nothing_and_is_not_overwritten(
    db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    written = write_templates(folder)
    assert not (await run_import(db, written[:3])).changed
    assert not (await run_import(db, written[3:])).changed
    write_rows(written[0], [["代码", "名称", "上级", "类型", "纬度", "经度", "半径"]])
    filled = written[0].read_bytes()

    with pytest.raises(InvalidInput) as refused:
        write_templates(folder)

    assert refused.value.render(translator("en")) == (
        f"{folder / 'units.csv'} already exists; add --force to overwrite it"
    )
    assert written[0].read_bytes() == filled
    write_templates(folder, force=True)
    assert written[0].read_bytes() != filled


async def test_a_file_level_problem_and_a_bad_row_are_both_named(
    db: Database, tmp_path: Path
) -> None:
    people = write_rows(tmp_path / "a.csv", [PEOPLE, ["N1", "甲", "QC", "staff", "", "fr"]])
    units = write_rows(tmp_path / "b.csv", [["代码", "名称", "上级", "类型"]])  # no geofence

    with pytest.raises(RosterError) as raised:
        await run_import(db, [people, units])

    assert isinstance(raised.value, RosterRejected)
    assert [(e.file, e.row, e.column) for e in raised.value.problems] == [
        ("a.csv", 2, "语言"),
        ("b.csv", 1, None),
    ]
