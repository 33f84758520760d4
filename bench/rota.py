"""Rota generation: a term of shifts for 500 schools takes seconds, not minutes."""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from support import Options, Result, temporary_database

from bot.config import DatabaseSettings, RotaSettings
from bot.db import create_engine
from bot.migrate import upgrade
from bot.models import Person, RoleGrant, Unit
from bot.services import rota
from bot.uow import Database

SCHOOLS = 500
TOWNSHIPS = 10
STAFF_PER_SCHOOL = 8
LEADERS_PER_SCHOOL = 2
# The spring term of 2026 (20 weeks and 2 days); chinesecalendar knows holidays up to 2026 only.
FIRST, LAST = date(2026, 3, 2), date(2026, 7, 21)
TARGET_SECONDS = 60.0
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 2, 1, tzinfo=UTC)

_UNITS: sa.Table = Unit.__table__  # type: ignore[attr-defined]
_PEOPLE: sa.Table = Person.__table__  # type: ignore[attr-defined]
_GRANTS: sa.Table = RoleGrant.__table__  # type: ignore[attr-defined]


async def run(options: Options) -> Result:
    """Build the district, generate the term for the county twice, and judge the first run."""
    async with temporary_database(options) as url:
        db = Database(create_engine(DatabaseSettings(url=url)))
        try:
            await upgrade(db.engine)
            await build_district(db)
            rss_before = _peak_rss_mb()
            started = time.perf_counter()
            summary = await _generate(db)
            took = time.perf_counter() - started
            rss_first = _peak_rss_mb()
            started = time.perf_counter()
            again = await _generate(db)
            rerun = time.perf_counter() - started
            rss_rerun = _peak_rss_mb()
        finally:
            await db.dispose()
    expected = _expected_shifts()
    passed = (
        took <= TARGET_SECONDS
        and summary.created == expected
        and (again.created, again.updated, again.unchanged) == (0, 0, expected)
    )
    figures = (
        f"{took:.1f}s shifts={summary.created:,}/{expected:,} "
        f"rate={summary.created / took:,.0f}/s rerun={rerun:.1f}s unchanged={again.unchanged:,} "
        f"peak_rss={rss_before:.0f}MB→{rss_first:.0f}MB→{rss_rerun:.0f}MB "
        f"(≤{TARGET_SECONDS:.0f}s for {SCHOOLS} schools × {(LAST - FIRST).days + 1} days) "
        f"[{options.backend}]"
    )
    return Result("rota", passed, figures)


async def _generate(db: Database) -> rota.GenerateSummary:
    return await rota.generate(
        db, unit_code="RC", first=FIRST, last=LAST, rota=RotaSettings(), tz=TZ, now=NOW
    )


def _expected_shifts() -> int:
    kinds = rota.day_kinds(FIRST, LAST)
    settings = RotaSettings()
    per_school = len(rota.day_slots(kinds, rota=settings, tz=TZ))
    return per_school * SCHOOLS


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


async def build_district(db: Database) -> None:
    """County → townships → schools, each school with its staff and duty leaders, in bulk."""
    units: list[dict[str, Any]] = [
        {"id": 1, "code": "RC", "name": "基准县教育局", "kind": "county", "path": "/1/"}
    ]
    for t in range(TOWNSHIPS):
        unit_id = 2 + t
        units.append(
            {
                "id": unit_id,
                "code": f"RT{t:02d}",
                "name": f"基准乡{t}中心校",
                "kind": "township",
                "parent_id": 1,
                "path": f"/1/{unit_id}/",
            }
        )
    people: list[dict[str, Any]] = []
    grants: list[dict[str, Any]] = []
    for s in range(SCHOOLS):
        township = 2 + s % TOWNSHIPS
        unit_id = 2 + TOWNSHIPS + s
        units.append(
            {
                "id": unit_id,
                "code": f"RS{s:04d}",
                "name": f"基准小学{s}",
                "kind": "school",
                "parent_id": township,
                "path": f"/1/{township}/{unit_id}/",
            }
        )
        for n in range(STAFF_PER_SCHOOL + LEADERS_PER_SCHOOL):
            person_id = len(people) + 1
            role = "staff" if n < STAFF_PER_SCHOOL else "duty_leader"
            people.append(
                {
                    "id": person_id,
                    "staff_no": f"RS{s:04d}-{n:02d}",
                    "name": f"教师{person_id}",
                    "unit_id": unit_id,
                    "active": True,
                }
            )
            grants.append({"person_id": person_id, "role": role, "unit_id": unit_id})
    async with db.engine.begin() as connection:
        for table, rows in ((_UNITS, units), (_PEOPLE, people), (_GRANTS, grants)):
            # One shape per statement; the county (no parent_id key) first.
            for shape in sorted({tuple(sorted(row)) for row in rows}, key=len):
                same = [row for row in rows if tuple(sorted(row)) == shape]
                await connection.execute(sa.insert(table), same)
    if db.engine.dialect.name == "postgresql":
        async with db.engine.begin() as connection:
            for table in (_UNITS, _PEOPLE):
                await connection.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT max(id) FROM {table.name}))"
                    )
                )


async def main(database_url: str | None = None) -> str:
    """Run the benchmark and return its one line."""
    result = await run(Options(database_url=database_url, verbose=False))
    return result.line()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python bench/rota.py", description=__doc__)
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server (postgresql+asyncpg://user@host/db); default: a SQLite file",
    )
    arguments = parser.parse_args()
    line = asyncio.run(main(arguments.database_url))
    print(line)
    sys.exit(0 if " PASS " in line else 1)
