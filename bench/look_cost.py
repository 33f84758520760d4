"""What one look at a matter costs: SQL statements and CPU time, without the Bot API or a sender.

The engine handles a burst of due matters in one write transaction per batch, and on SQLite the
sender waits for that transaction's write lock, so every statement a look sends delays the
first page of a burst. Statement counts do not depend on how busy the machine is, which the
timed benchmarks do; the CPU time per look says what a statement costs here.

Two measurements on a district of 100 schools (`support.build_district`):
- `look`: 100 serious reports made the normal way (their escalation's first look is due at
  once), then one engine step (`run_due` with the real step handler) that handles those 100
  looks, each paging the school's duty leader and principal;
- `direct`: 50 serious reports made straight to the county (越级直报), each of which looks at
  its matter inside the report's own transaction and pages the school and the county desk.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import col, select
from support import Options, Result, bench_settings, build_district, temporary_database

from bot.config import Settings
from bot.db import create_engine
from bot.migrate import upgrade
from bot.models import Person
from bot.services.engine import run_due
from bot.services.escalation import STEP_KIND, PagingContext, step_handler
from bot.services.incidents.reporting import ReportDraft, report
from bot.uow import Database

SCHOOLS = 100
DIRECT = 50
# Budgets that catch a look going back to reading the same rows again (it took 32 and 73).
LOOK_BUDGET = 25
DIRECT_BUDGET = 55


class StatementCounter:
    """Counts the SQL statements an engine sends, by their first words."""

    def __init__(self) -> None:
        self.total = 0
        self.kinds: Counter[str] = Counter()

    def __call__(self, *args: Any) -> None:
        """SQLAlchemy's before_cursor_execute: (connection, cursor, statement, ...)."""
        statement = str(args[2])
        self.total += 1
        self.kinds[" ".join(statement.split()[:4])] += 1

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Start from zero for the block."""
        self.total = 0
        self.kinds.clear()
        yield


async def run(options: Options) -> Result:
    async with temporary_database(options) as url:
        settings = bench_settings(url)
        db = Database(create_engine(settings.database))
        try:
            await upgrade(db.engine)
            return await _measure(db, settings, options)
        finally:
            await db.dispose()


async def _measure(db: Database, settings: Settings, options: Options) -> Result:
    await build_district(db, schools=SCHOOLS, townships=10)
    async with db.read() as uow:
        statement = select(Person.id).where(col(Person.staff_no).startswith("SR"))
        reporters = list((await uow.session.exec(statement.order_by(col(Person.staff_no)))).all())
    ctx = PagingContext(tz=settings.bot.tz, default_language=settings.bot.language)
    policies = settings.escalation
    counter = StatementCounter()
    event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
    now = datetime.now(UTC)

    def draft(index: int, *, direct: bool) -> ReportDraft:
        return ReportDraft(
            category="fire",
            severity="serious",
            description=f"Smoke from the kitchen of school {index}.",
            occurred_at=now,
            direct=direct,
        )

    for index, person_id in enumerate(reporters):
        await report(
            db,
            person_id=person_id,
            draft=draft(index, direct=False),
            now=now,
            policies=policies,
            ctx=ctx,
        )
    with counter.measuring():
        wall, cpu = time.perf_counter(), time.process_time()
        step = await run_due(
            db,
            now=now + timedelta(seconds=1),
            handlers={STEP_KIND: step_handler(ctx)},
            worker="bench",
        )
        look_wall = (time.perf_counter() - wall) / SCHOOLS
        look_cpu = (time.process_time() - cpu) / SCHOOLS
        look_statements = counter.total / SCHOOLS
    later = now + timedelta(seconds=2)
    with counter.measuring():
        wall, cpu = time.perf_counter(), time.process_time()
        for index, person_id in enumerate(reporters[:DIRECT]):
            await report(
                db,
                person_id=person_id,
                draft=draft(SCHOOLS + index, direct=True),
                now=later,
                policies=policies,
                ctx=ctx,
            )
        direct_wall = (time.perf_counter() - wall) / DIRECT
        direct_cpu = (time.process_time() - cpu) / DIRECT
        direct_statements = counter.total / DIRECT
    passed = (
        step.handled == SCHOOLS
        and look_statements <= LOOK_BUDGET
        and direct_statements <= DIRECT_BUDGET
    )
    figures = (
        f"look: {look_statements:.1f} statements {look_wall * 1000:.1f}ms"
        f" (cpu {look_cpu * 1000:.1f}ms) handled={step.handled}/{SCHOOLS};"
        f" direct report: {direct_statements:.1f} statements {direct_wall * 1000:.1f}ms"
        f" (cpu {direct_cpu * 1000:.1f}ms)"
        f" (target: <= {LOOK_BUDGET} and <= {DIRECT_BUDGET} statements) [{options.backend}]"
    )
    details = tuple(f"{n / DIRECT:5.1f} {kind}" for kind, n in counter.kinds.most_common())
    return Result("look_cost", passed, figures, details)
