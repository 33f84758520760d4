"""What a Prometheus scrape of /metrics costs on a year of a 500-school county's data.

No Bot API. A county of 500 schools (`support.build_schools`), then a year's worth of rows
bulk loaded: 50,000 escalations with 100,000 pages (0.5 % active, 1.5 % undeliverable, the rest
closed), 500,000 outbox rows sent plus 1,000 due and not sent (the oldest 300 s old) and 500
not due yet, 300,000 deadlines handled plus 200 due and unhandled (the oldest 45 s overdue) and
3,000 in the future. PostgreSQL is then analysed. The ops server of bot/ops.py runs on a free
loopback port; after 3 untimed scrapes, `ROUNDS` scrapes of /metrics over HTTP are timed
(median, max) and /healthz likewise; the figures it shows are checked against what was loaded.
Writes bench/results/ops_scrape.json (one entry per backend).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from support import Options, Result, build_schools, median, temporary_database

from bot.clock import MovableClock
from bot.config import DatabaseSettings, OpsSettings
from bot.db import create_engine
from bot.leadership import Leadership
from bot.metrics import Metrics
from bot.migrate import upgrade
from bot.models import Deadline, Escalation, OutboxMessage, Page
from bot.ops import OpsServer
from bot.sandbox.stack import free_port
from bot.uow import Database

SCHOOLS = 500
ESCALATIONS = 50_000
SENT = 500_000
DUE_UNSENT = 1_000
HANDLED = 300_000
OVERDUE = 200
ROUNDS = 30
TARGET = 0.25  # seconds for a scrape, median; the ops server gives the database 2 s
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
START = NOW - timedelta(days=365)
CHUNK = 10_000
RESULTS = Path(__file__).resolve().parent / "results" / "ops_scrape.json"


def _table(model: Any) -> sa.Table:
    table: sa.Table = model.__table__
    return table


async def _insert(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    for first in range(0, len(rows), CHUNK):
        async with db.uow() as uow:
            await uow.session.execute(sa.insert(_table(model)), rows[first : first + CHUNK])
            await uow.commit()


async def _load(db: Database) -> dict[str, int]:
    """A year of rows; return the page counts by status loaded."""
    leaders = await build_schools(db, SCHOOLS)
    step = (NOW - START) / ESCALATIONS
    escalations = [
        {
            "policy": "bench",
            "subject_type": "bench",
            "subject_id": n,
            "unit_id": leaders[n % SCHOOLS].unit_id,
            "started_at": START + step * n,
            "status": "resolved",
            "is_drill": False,
            "ticks": 0,
        }
        for n in range(ESCALATIONS)
    ]
    await _insert(db, Escalation, escalations)
    async with db.read() as uow:
        first_id = (
            await uow.session.execute(sa.select(sa.func.min(_table(Escalation).c.id)))
        ).one()[0]
    pages: list[dict[str, Any]] = []
    counts = {"active": 0, "closed": 0, "undeliverable": 0}
    for n in range(ESCALATIONS * 2):
        status = "active" if n % 200 == 0 else "undeliverable" if n % 200 < 4 else "closed"
        counts[status] += 1
        leader = leaders[(n // 2) % SCHOOLS]
        pages.append(
            {
                "escalation_id": first_id + n // 2,
                "step": n % 2,
                "person_id": leader.person_id,
                "unit_id": leader.unit_id,
                "role": "duty_leader",
                "level": "unit",
                "created_at": START + step * (n // 2),
                "sent_count": 1,
                "status": status,
            }
        )
    await _insert(db, Page, pages)
    sent_step = (NOW - START) / SENT

    def message(n: int, at: datetime, status: str) -> dict[str, Any]:
        return {
            "created_at": at,
            "not_before": at,
            "chat_id": leaders[n % SCHOOLS].chat_id,
            "kind": "notice",
            "method": "sendMessage",
            "body": {"text": "bench", "buttons": []},
            "status": status,
            "attempts": 0,
            "late": False,
        }

    outbox = [message(n, START + sent_step * n, "sent") for n in range(SENT)]
    outbox += [
        message(n, NOW - timedelta(seconds=300 - n * 0.25), "pending") for n in range(DUE_UNSENT)
    ]
    outbox += [message(n, NOW + timedelta(minutes=5 + n), "pending") for n in range(500)]
    await _insert(db, OutboxMessage, outbox)
    handled_step = (NOW - START) / HANDLED

    def deadline(key: str, due: datetime, status: str) -> dict[str, Any]:
        return {
            "key": key,
            "kind": "bench",
            "subject_type": "bench",
            "subject_id": 1,
            "due_at": due,
            "status": status,
            "created_at": START,
            "attempts": 0,
            "late": False,
        }

    deadlines = [deadline(f"h:{n}", START + handled_step * n, "done") for n in range(HANDLED)]
    deadlines += [
        deadline(f"o:{n}", NOW - timedelta(seconds=45 - n * 0.2), "pending") for n in range(OVERDUE)
    ]
    deadlines += [
        deadline(f"f:{n}", NOW + timedelta(minutes=1 + n), "pending") for n in range(3_000)
    ]
    await _insert(db, Deadline, deadlines)
    return counts


async def _timed_get(session: aiohttp.ClientSession, url: str) -> tuple[float, str]:
    started = time.perf_counter()
    async with session.get(url) as response:
        text = await response.text()
        assert response.status == 200, text
    return time.perf_counter() - started, text


def _samples(text: str) -> dict[str, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{v}" for _k, v in sorted(sample.labels.items()))
            found[f"{sample.name}[{labels}]" if labels else sample.name] = sample.value
    return found


async def run(options: Options) -> Result:
    """Load a year of a county, then time scrapes of /metrics and /healthz over HTTP."""
    async with temporary_database(options) as url:
        db = Database(create_engine(DatabaseSettings(url=url)))
        try:
            await upgrade(db.engine)
            loading = time.perf_counter()
            counts = await _load(db)
            if url.startswith("postgresql"):
                async with db.engine.connect() as connection:
                    await connection.execute(sa.text("ANALYZE"))
            loaded_in = time.perf_counter() - loading
            port = free_port()
            server = OpsServer(
                OpsSettings(port=port),
                db=db,
                clock=MovableClock(NOW),
                leadership=Leadership(),
                metrics=Metrics(),
            )
            await server.start()
            base = f"http://127.0.0.1:{port}"
            try:
                async with aiohttp.ClientSession() as session:
                    for _ in range(3):
                        await _timed_get(session, f"{base}/metrics")
                    scrapes = [await _timed_get(session, f"{base}/metrics") for _ in range(ROUNDS)]
                    health = [await _timed_get(session, f"{base}/healthz") for _ in range(ROUNDS)]
            finally:
                await server.stop()
        finally:
            await db.dispose()
    shown = _samples(scrapes[-1][1])
    times = [t for t, _text in scrapes]
    health_times = [t for t, _text in health]
    right = (
        all(shown[f"zhiban_pages[{status}]"] == n for status, n in counts.items())
        and shown["zhiban_outbox_pending"] == DUE_UNSENT
        and shown["zhiban_outbox_oldest_pending_seconds"] == 300
        and shown["zhiban_engine_lag_seconds"] == 45
        and shown["zhiban_database_up"] == 1
    )
    figures = {
        "scrape_median_ms": round(median(times) * 1000, 1),
        "scrape_max_ms": round(max(times) * 1000, 1),
        "healthz_median_ms": round(median(health_times) * 1000, 1),
        "rows": ESCALATIONS * 2 + SENT + DUE_UNSENT + 500 + HANDLED + OVERDUE + 3_000,
        "loaded_in_s": round(loaded_in, 1),
        "figures_right": right,
    }
    _write(options.backend, figures)
    passed = right and median(times) <= TARGET
    line = (
        f"scrape={figures['scrape_median_ms']}ms (max {figures['scrape_max_ms']}ms) "
        f"healthz={figures['healthz_median_ms']}ms rows={figures['rows']:,} "
        f"figures_right={right} (median ≤ {TARGET * 1000:.0f} ms) [{options.backend}]"
    )
    return Result("ops_scrape", passed, line)


def _write(backend: str, figures: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    existing = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    existing[backend] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")
