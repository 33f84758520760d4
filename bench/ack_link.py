"""What opening and pressing an acknowledge link costs, over HTTP, with a year of audit log behind.

No Bot API. The storm district (`support.build_district`: 100 schools in 10 townships, a duty
leader, a principal and a reporter each) reports 100 serious fires, and one engine step pages
every school's leader and principal. The audit log is loaded with a year of a county's entries
(300,000, of them 25,000 in the last 30 days, a tenth of those `link.used` marks), since every
press looks up its token's nonce there. The ops server of bot/ops.py serves /a/ on a free
loopback port; for each of the 100 leaders' pages a link is made, opened (GET, timed) and its
Acknowledge pressed (POST, timed); then each link is pressed again (the replay, refused, timed).
Median and max of each; every level must be acknowledged by its leader. Writes
bench/results/ack_link.json (one entry per backend).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlmodel import col, select
from support import Options, Result, bench_settings, build_district, median, temporary_database

from bot.ack_page import AckPages
from bot.clock import MovableClock
from bot.config import OpsSettings, WebSettings
from bot.db import create_engine
from bot.leadership import Leadership
from bot.metrics import Metrics
from bot.migrate import upgrade
from bot.models import AuditEntry, EscalationLevel, Page, Person
from bot.ops import OpsServer
from bot.sandbox.stack import free_port
from bot.services import ack_links
from bot.services.engine import run_due
from bot.services.escalation import STEP_KIND, PagingContext, step_handler
from bot.services.incidents.reporting import ReportDraft, report
from bot.uow import Database

SCHOOLS = 100
AUDIT_YEAR = 300_000
AUDIT_MONTH = 25_000
SECRET = "bench-link-secret-0123456789abcdef0123456789"
TARGET_GET = 0.1  # seconds, median
TARGET_POST = 0.2
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CHUNK = 10_000
RESULTS = Path(__file__).resolve().parent / "results" / "ack_link.json"


async def _load_audit(db: Database) -> None:
    table: sa.Table = AuditEntry.__table__  # type: ignore[attr-defined]
    older = NOW - timedelta(days=365)
    month = NOW - timedelta(days=30)
    rows: list[dict[str, Any]] = []
    for n in range(AUDIT_YEAR):
        recent = n >= AUDIT_YEAR - AUDIT_MONTH
        at = (
            month + (NOW - month) * ((n - AUDIT_YEAR + AUDIT_MONTH) / AUDIT_MONTH)
            if recent
            else older + (month - older) * (n / (AUDIT_YEAR - AUDIT_MONTH))
        )
        used = n % 10 == 0
        rows.append(
            {
                "at": at - timedelta(minutes=1),
                "action": ack_links.USED if used else "page.acknowledge",
                "actor_account": f"link:{n:016x}" if used else f"telegram:{n}",
                "subject_type": "page",
                "subject_id": n,
                "allowed": True,
            }
        )
    for first in range(0, len(rows), CHUNK):
        async with db.uow() as uow:
            await uow.session.execute(sa.insert(table), rows[first : first + CHUNK])
            await uow.commit()


async def _timed(
    session: aiohttp.ClientSession, url: str, action: str | None
) -> tuple[float, int, str]:
    started = time.perf_counter()
    if action is None:
        async with session.get(url) as response:
            text = await response.text()
    else:
        async with session.post(url, data={"action": action}) as response:
            text = await response.text()
    return time.perf_counter() - started, response.status, text


async def run(options: Options) -> Result:
    """Page 100 schools, then open and press each leader's link over HTTP, and replay it."""
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
    ctx = PagingContext(tz=tz, default_language="zh")
    async with db.read() as uow:
        statement = select(Person.id).where(col(Person.staff_no).startswith("SR"))
        reporters = list((await uow.session.exec(statement.order_by(col(Person.staff_no)))).all())
    for index, person_id in enumerate(reporters):
        draft = ReportDraft(
            category="fire",
            severity="serious",
            description=f"Smoke from the kitchen of school {index}.",
            occurred_at=NOW,
            direct=False,
        )
        await report(db, person_id=person_id, draft=draft, now=NOW, policies=policies, ctx=ctx)
    await run_due(
        db, now=NOW + timedelta(seconds=1), handlers={STEP_KIND: step_handler(ctx)}, worker="b"
    )
    await _load_audit(db)
    if options.database_url is not None:
        async with db.engine.connect() as connection:
            await connection.execute(sa.text("ANALYZE"))
    async with db.read() as uow:
        pages = (
            await uow.session.exec(
                select(Page.id, Page.person_id)
                .where(Page.role == "duty_leader", Page.status == "active")
                .order_by(col(Page.id))
            )
        ).all()
    clock = MovableClock(NOW + timedelta(minutes=2))
    port = free_port()
    server = OpsServer(
        OpsSettings(port=port),
        db=db,
        clock=clock,
        leadership=Leadership(),
        metrics=Metrics(),
        ack_pages=AckPages(db=db, clock=clock, secret=SECRET, paging=ctx, wake=lambda: None),
    )
    web = WebSettings(public_url=f"http://127.0.0.1:{port}")
    links = [
        (ack_links.link_for(web, SECRET, page_id or 0, person_id, clock.now()) or "", person_id)
        for page_id, person_id in pages
    ]
    await server.start()
    gets, posts, replays, wrong = [], [], [], 0
    try:
        async with aiohttp.ClientSession() as session:
            for link, _person in links:
                took, status, text = await _timed(session, link, None)
                gets.append(took)
                wrong += status != 200 or "接报" not in text
                took, status, text = await _timed(session, link, "ack")
                posts.append(took)
                wrong += status != 200 or "呼叫已停止" not in text
            for link, _person in links:
                took, status, _text = await _timed(session, link, "ack")
                replays.append(took)
                wrong += status != 409
    finally:
        await server.stop()
    async with db.read() as uow:
        acknowledged = (
            await uow.session.exec(
                select(sa.func.count())
                .select_from(EscalationLevel)
                .where(col(EscalationLevel.acknowledged_by_id).is_not(None))
            )
        ).one()
    figures = {
        "links": len(links),
        "get_median_ms": round(median(gets) * 1000, 1),
        "get_max_ms": round(max(gets) * 1000, 1),
        "post_median_ms": round(median(posts) * 1000, 1),
        "post_max_ms": round(max(posts) * 1000, 1),
        "replay_median_ms": round(median(replays) * 1000, 1),
        "acknowledged": acknowledged,
        "wrong_answers": wrong,
        "audit_rows": AUDIT_YEAR,
    }
    _write(options.backend, figures)
    passed = (
        len(links) == SCHOOLS
        and acknowledged == SCHOOLS
        and wrong == 0
        and median(gets) <= TARGET_GET
        and median(posts) <= TARGET_POST
    )
    line = (
        f"get={figures['get_median_ms']}ms (max {figures['get_max_ms']}ms) "
        f"post={figures['post_median_ms']}ms (max {figures['post_max_ms']}ms) "
        f"replay={figures['replay_median_ms']}ms acknowledged={acknowledged}/{SCHOOLS} "
        f"wrong={wrong} audit_rows={AUDIT_YEAR:,} "
        f"(median get ≤ {TARGET_GET * 1000:.0f} ms, post ≤ {TARGET_POST * 1000:.0f} ms) "
        f"[{options.backend}]"
    )
    return Result("ack_link", passed, line)


def _write(backend: str, figures: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    existing = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    existing[backend] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")
