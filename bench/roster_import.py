"""Roster import: a county's sheets in GBK import in seconds, and 1,000 bad rows are all found."""

from __future__ import annotations

import csv
import io
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from support import Options, Result, temporary_database

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.errors import RosterRejected
from bot.i18n import translator
from bot.migrate import upgrade
from bot.services.roster import import_roster
from bot.uow import Database

TOWNSHIPS = 20
SCHOOLS = 300
PEOPLE_PER_SCHOOL = 10
DAYS = 14
FIRST = date(2026, 3, 2)
BAD_ROWS = 1_000
TARGET_SECONDS = 60.0
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 2, 1, tzinfo=UTC)


async def run(options: Options) -> Result:
    """Import the county's three GBK sheets, again unchanged, then a copy with bad rows."""
    with tempfile.TemporaryDirectory(prefix="zhiban-roster-") as folder:
        files = _write_sheets(Path(folder))
        spoiled = _spoil(files[2], Path(folder) / "排班（有误）.csv")
        async with temporary_database(options) as url:
            db = Database(create_engine(DatabaseSettings(url=url)))
            try:
                await upgrade(db.engine)
                started = time.perf_counter()
                first = await import_roster(db, files, tz=TZ, default_language="zh", now=NOW)
                took = time.perf_counter() - started
                started = time.perf_counter()
                again = await import_roster(db, files, tz=TZ, default_language="zh", now=NOW)
                rerun = time.perf_counter() - started
                started = time.perf_counter()
                try:
                    await import_roster(db, [spoiled], tz=TZ, default_language="zh", now=NOW)
                    found, lines = 0, 0
                except RosterRejected as refused:
                    found = len(refused.problems)
                    lines = len(refused.render(translator("zh")).splitlines())
                refusal = time.perf_counter() - started
            finally:
                await db.dispose()
    shifts = SCHOOLS * DAYS * 3
    people = SCHOOLS * PEOPLE_PER_SCHOOL
    passed = (
        took <= TARGET_SECONDS
        and (first.people.created, first.shifts.created) == (people, shifts)
        and not again.changed
        and found == BAD_ROWS
        and lines == 1 + 50 + 1
    )
    figures = (
        f"import={took:.1f}s people={first.people.created:,} shifts={first.shifts.created:,} "
        f"rerun={rerun:.1f}s refusal={refusal:.1f}s bad_rows_found={found:,}/{BAD_ROWS:,} "
        f"lines={lines} (import ≤{TARGET_SECONDS:.0f}s, every bad row found, 50 shown) "
        f"[{options.backend}]"
    )
    return Result("roster_import", passed, figures)


def _write_sheets(folder: Path) -> list[Path]:
    """Units, people and two weeks of shifts, with Chinese headers, as Chinese Excel saves CSV."""
    units = [
        ["代码", "名称", "上级", "类型", "纬度", "经度", "半径"],
        ["BC", "基准县教育局", "", "县"],
    ]
    units[1] += ["", "", ""]
    people = [["工号", "姓名", "单位", "角色", "电话", "语言"]]
    shifts = [["单位", "岗位", "开始", "结束", "工号", "类型"]]
    for t in range(TOWNSHIPS):
        units.append([f"BT{t:02d}", f"基准乡{t}中心校", "BC", "乡镇", "", "", ""])
    for s in range(SCHOOLS):
        code = f"BS{s:04d}"
        units.append([code, f"基准小学{s}", f"BT{s % TOWNSHIPS:02d}", "学校", "", "", ""])
        staff = [f"{code}-{n:02d}" for n in range(PEOPLE_PER_SCHOOL)]
        for n, staff_no in enumerate(staff):
            role = "duty_leader" if n < 2 else "staff"
            phone = f"139{s:04d}{n:04d}"
            people.append([staff_no, f"教师{s}-{n}", code, role, phone, ""])
        for d in range(DAYS):
            day = FIRST + timedelta(days=d)
            nxt = day + timedelta(days=1)
            shifts.append(
                [code, "值班室", f"{day} 08:00", f"{day} 20:00", staff[2 + d % 8], "值班"]
            )
            shifts.append(
                [code, "值班室", f"{day} 20:00", f"{nxt} 08:00", staff[2 + (d + 4) % 8], "值班"]
            )
            shifts.append([code, "带班", f"{day} 08:00", f"{nxt} 08:00", staff[d % 2], "带班"])
    written = []
    for name, rows in (("单位.csv", units), ("教职工.csv", people), ("排班.csv", shifts)):
        path = folder / name
        path.write_bytes(_csv_text(rows).encode("gbk"))
        written.append(path)
    return written


def _spoil(shifts: Path, target: Path) -> Path:
    """The shifts sheet with an impossible end on 1,000 rows spread through it."""
    rows = list(csv.reader(io.StringIO(shifts.read_bytes().decode("gbk"), newline="")))
    step = (len(rows) - 1) // BAD_ROWS
    for index in range(1, 1 + BAD_ROWS * step, step):
        rows[index][3] = "明天早上"
    target.write_bytes(_csv_text(rows).encode("gbk"))
    return target


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
