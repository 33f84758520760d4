"""What pages on group robots cost: SQL statements per look, and the channel sender's pace.

No Bot API. The storm district of 100 schools (`support.build_district`); every school has a
robot of its own (`[[channels]] units = [its code]`) and the county one.
- `look`: 100 serious reports, then one engine step handling their first looks (each pages the
  school's duty leader and principal), once without channels and once with them: statements
  per look, and how many more the robots cost (one message per school, both phones in it);
  then once more with each robot message carrying the paged people's signed links.
- `send`: the channel sender drains those 200 robot messages through robots that answer at
  once (budget 1,000 a minute, so only the sender's own work counts): milliseconds per message
  (claim, re-read, send, settle).
Writes bench/results/channels.json (one entry per backend).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlmodel import col, select
from support import Options, Result, bench_settings, build_district, temporary_database

from bot.channels import ChannelMessage
from bot.channels.sender import ChannelSender
from bot.clock import MovableClock
from bot.config import WebSettings
from bot.db import create_engine
from bot.migrate import upgrade
from bot.models import OutboxMessage, Person, Unit
from bot.services.ack_links import link_for
from bot.services.engine import run_due
from bot.services.escalation import STEP_KIND, ChannelRoutes, PagingContext, step_handler
from bot.services.incidents.reporting import ReportDraft, report
from bot.uow import Database

SCHOOLS = 100
LINK_SECRET = "bench-link-secret-0123456789abcdef0123"
# Budgets: a school's robot message costs a few statements on top of a look (its insert and
# the unit's code), not one per person paged.
EXTRA_BUDGET = 6
SEND_BUDGET_MS = 25.0
RESULTS = Path(__file__).resolve().parent / "results" / "channels.json"


@dataclass
class InstantRobot:
    """A robot that accepts every message at once."""

    name: str
    kind: str = "wecom"
    per_minute: int = 1000
    sent: list[ChannelMessage] = field(default_factory=list)

    async def send(self, message: ChannelMessage) -> None:
        """Keep the message."""
        self.sent.append(message)


class Counter:
    """Counts the SQL statements an engine sends."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, *args: Any) -> None:
        """SQLAlchemy's before_cursor_execute: one more statement."""
        self.total += 1

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Start from zero for the block."""
        self.total = 0
        yield


async def run(options: Options) -> Result:
    async with temporary_database(options) as url:
        settings = bench_settings(url)
        db = Database(create_engine(settings.database))
        try:
            await upgrade(db.engine)
            return await _measure(db, settings.bot.tz, settings.escalation, options)
        finally:
            await db.dispose()


async def _measure(db: Database, tz: Any, policies: Any, options: Options) -> Result:
    await build_district(db, schools=SCHOOLS, townships=10)
    async with db.read() as uow:
        statement = select(Person.id).where(col(Person.staff_no).startswith("SR"))
        reporters = list((await uow.session.exec(statement.order_by(col(Person.staff_no)))).all())
        codes = list((await uow.session.exec(select(Unit.code))).all())
    plain = PagingContext(tz=tz, default_language="zh")
    routed = PagingContext(
        tz=tz,
        default_language="zh",
        channels=ChannelRoutes({code: (f"robot-{code}",) for code in codes}),
    )
    web = WebSettings(public_url="https://duty.example.edu.cn")

    def make_link(page_id: int, person_id: int, made_at: datetime) -> str | None:
        return link_for(web, LINK_SECRET, page_id, person_id, made_at)

    # The same robots, each message carrying the paged people's signed links.
    linked = PagingContext(tz=tz, default_language="zh", channels=routed.channels, link=make_link)
    counter = Counter()
    event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
    now = datetime.now(UTC)
    per_look: dict[str, float] = {}
    for round_index, (label, ctx) in enumerate(
        (("plain", plain), ("channels", routed), ("links", linked))
    ):
        at = now + timedelta(seconds=10 * round_index)
        for index, person_id in enumerate(reporters):
            draft = ReportDraft(
                category="fire",
                severity="serious",
                description=f"Smoke from the kitchen of school {index}.",
                occurred_at=at,
            )
            await report(db, person_id=person_id, draft=draft, now=at, policies=policies, ctx=ctx)
        with counter.measuring():
            step = await run_due(
                db,
                now=at + timedelta(seconds=1),
                handlers={STEP_KIND: step_handler(ctx)},
                worker="b",
            )
            assert step.handled == SCHOOLS, step
            per_look[label] = counter.total / SCHOOLS
    event.remove(db.engine.sync_engine, "before_cursor_execute", counter)
    async with db.read() as uow:
        rows = (
            await uow.session.exec(
                select(OutboxMessage).where(col(OutboxMessage.channel).is_not(None))
            )
        ).all()
    messages = len(rows)
    robots = {name: InstantRobot(name) for name in {row.channel or "" for row in rows}}
    sender = ChannelSender(
        db=db, clock=MovableClock(now + timedelta(seconds=30)), channels=robots, worker="b"
    )
    started = time.perf_counter()
    while await sender.step():
        pass
    send_ms = (time.perf_counter() - started) * 1000 / max(messages, 1)
    delivered = sum(len(robot.sent) for robot in robots.values())
    extra = per_look["channels"] - per_look["plain"]
    links_extra = per_look["links"] - per_look["channels"]
    with_links = sum("https://duty.example.edu.cn/a/" in str(row.body["text"]) for row in rows)
    passed = messages == 2 * SCHOOLS and delivered == messages and extra <= EXTRA_BUDGET
    passed = passed and with_links == SCHOOLS and links_extra <= 0
    passed = passed and send_ms <= SEND_BUDGET_MS
    figures = (
        f"look: {per_look['plain']:.1f} statements, with robots {per_look['channels']:.1f}"
        f" (+{extra:.1f}), with robots and links {per_look['links']:.1f} (+{links_extra:.1f});"
        f" robot messages={messages} (one per school and round, {with_links} with links);"
        f" send: {send_ms:.1f}ms per message, delivered={delivered}/{messages}"
        f" (target: <= +{EXTRA_BUDGET} statements, <= {SEND_BUDGET_MS:.0f}ms) [{options.backend}]"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    kept[options.backend] = {
        "benchmark": "channels",
        "passed": passed,
        "line": figures,
        "schools": SCHOOLS,
        "statements_per_look": per_look,
        "robot_messages": messages,
        "send_ms_per_message": send_ms,
    }
    RESULTS.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n")
    return Result("channels", passed, figures)
