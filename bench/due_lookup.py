"""Due lookup: next_due and claim_due cost the same with 100,000 pending deadlines as with 1,000."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from support import Options, Result, median, temporary_database

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.migrate import upgrade
from bot.models import Deadline, DeadlineStatus
from bot.services import deadlines
from bot.uow import Database

SMALL, BIG = 1_000, 100_000
DUE_NOW = 50
ROUNDS = 300
TARGET_RATIO = 2.0
INDEX = "ix_deadlines_due"
_PLAN_DETAIL = re.compile(r"^[A-Z][A-Za-z ]*: ")
_TABLE: sa.Table = Deadline.__table__  # type: ignore[attr-defined]

Probe = Callable[[Database, datetime], Awaitable[float]]


async def run(options: Options) -> Result:
    now = datetime.now(UTC)
    async with AsyncExitStack() as stack:
        small = await stack.enter_async_context(_filled(options, SMALL, now))
        big = await stack.enter_async_context(_filled(options, BIG, now))
        plans = {name: await _plan(big, probe, now) for name, probe in PROBES.items()}
        for probe in PROBES.values():  # warm caches and statement compilation on both
            for db in (small, big):
                for _ in range(10):
                    await probe(db, now)
        timings: dict[tuple[str, int], list[float]] = {}
        for _ in range(ROUNDS):  # interleaved, so machine noise hits both sizes alike
            for name, probe in PROBES.items():
                for size, db in ((SMALL, small), (BIG, big)):
                    timings.setdefault((name, size), []).append(await probe(db, now))
    parts, details, passed = [], [], True
    for name in PROBES:
        fast, slow = median(timings[(name, SMALL)]), median(timings[(name, BIG)])
        ratio = slow / fast
        passed &= ratio <= TARGET_RATIO
        parts.append(f"{name} 1k={fast:.3f}ms 100k={slow:.3f}ms x{ratio:.2f}")
    uses_index = all(_uses_index(plan) for plan in plans.values())
    passed &= uses_index
    summary = ", ".join(f"{name}: {_plan_summary(plan)}" for name, plan in plans.items())
    for name, plan in plans.items():
        details.append(f"plan of {name} on {BIG:,} rows:")
        details.extend(f"    {line}" for line in plan)
    figures = (
        f"{'; '.join(parts)} (median of {ROUNDS}; target ratio <= {TARGET_RATIO:g}"
        f" and {INDEX} used) plan[{'index' if uses_index else 'NO INDEX'}: {summary}]"
        f" [{options.backend}]"
    )
    return Result("due_lookup", passed, figures, tuple(details))


@asynccontextmanager
async def _filled(options: Options, size: int, now: datetime) -> AsyncIterator[Database]:
    """A migrated database holding `size` pending deadlines, DUE_NOW of them already due."""
    async with temporary_database(options) as url:
        db = Database(create_engine(DatabaseSettings(url=url)))
        try:
            await upgrade(db.engine)
            await _insert(db, size, now)
            yield db
        finally:
            await db.dispose()


async def _insert(db: Database, size: int, now: datetime) -> None:
    rows: list[dict[str, Any]] = []
    for i in range(size):
        if i < DUE_NOW:
            due_at = now - timedelta(seconds=i + 1)
        else:  # spread over the next 30 days, like shifts, check-ins and repeats ahead
            due_at = now + timedelta(seconds=60 + (i * 7919) % (30 * 86400))
        rows.append(
            {
                "key": f"bench:{i}",
                "kind": "escalation.step",
                "subject_type": "escalation",
                "subject_id": i,
                "due_at": due_at,
                "status": DeadlineStatus.PENDING.value,
                "payload": {"step": 0, "repeat": 0},
                "created_at": now,
                "late": False,
                "attempts": 0,
            }
        )
    async with db.engine.begin() as connection:
        for start in range(0, size, 10_000):
            await connection.execute(sa.insert(_TABLE), rows[start : start + 10_000])
        if connection.dialect.name == "postgresql":
            await connection.execute(sa.text("ANALYZE deadlines"))
        else:
            await connection.execute(sa.text("ANALYZE"))


async def _time_next_due(db: Database, now: datetime) -> float:
    async with db.uow() as uow:
        await uow.session.execute(sa.text("SELECT 1"))  # open the transaction outside the timing
        started = time.perf_counter()
        found = await deadlines.next_due(uow.session)
        elapsed = time.perf_counter() - started
    if found is None or found > now:
        raise AssertionError(f"next_due returned {found}, expected a time already due")
    return elapsed * 1000


async def _time_claim_due(db: Database, now: datetime) -> float:
    async with db.uow() as uow:  # left without commit: rolls back, so every round claims anew
        await uow.session.execute(sa.text("SELECT 1"))
        started = time.perf_counter()
        claimed = await deadlines.claim_due(uow.session, now=now, limit=DUE_NOW)
        elapsed = time.perf_counter() - started
    if len(claimed) != DUE_NOW:
        raise AssertionError(f"claim_due claimed {len(claimed)}, expected {DUE_NOW}")
    return elapsed * 1000


PROBES: dict[str, Probe] = {"next_due": _time_next_due, "claim_due": _time_claim_due}


async def _plan(db: Database, probe: Probe, now: datetime) -> list[str]:
    """Run the probe once, catch the SQL it sends, and ask the database how it runs it."""
    caught: list[tuple[str, Any]] = []

    def catch(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "deadlines" in statement and statement.lstrip().upper().startswith("SELECT"):
            caught.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", catch)
    try:
        await probe(db, now)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", catch)
    statement, parameters = caught[-1]
    async with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            result = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            return [str(row[0]) for row in result]
        result = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return [str(row[-1]) for row in result]


def _uses_index(plan: list[str]) -> bool:
    text = " ".join(plan)
    scans_table = any(
        line.strip().startswith("SCAN deadlines") and INDEX not in line for line in plan
    )
    return INDEX in text and "Seq Scan" not in text and not scans_table


def _plan_summary(plan: list[str]) -> str:
    steps = []
    for line in plan:
        step = line.strip().lstrip("->").strip().split("  (cost=")[0]
        if _PLAN_DETAIL.match(step):  # PostgreSQL's "Index Cond: ..." lines: --verbose shows them
            continue
        steps.append(
            step.replace(" on deadlines", "")
            .replace("USING COVERING INDEX ", "covering ")
            .replace("USING INDEX ", "")
        )
    return " > ".join(steps)
