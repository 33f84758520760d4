"""Startup: a real `zhiban run` from process start to its first getUpdates and first engine step."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import (
    FIRST_CHAT,
    SUBJECT,
    Leader,
    Options,
    Result,
    build_schools,
    median,
    press_start,
    process_config,
    sends_to,
    start_process,
    temporary_database,
)

from bot.config import DatabaseSettings, EscalationStep, Level
from bot.db import create_engine
from bot.migrate import upgrade
from bot.sandbox import BotApiEmulator
from bot.services import escalation
from bot.uow import Database

RUNS = 5
SCHOOLS = 500
TARGET_POLL = 2.0
# One run may take this long before it counts as failed.
RUN_LIMIT = 30.0
TOKEN = "123456:BENCH-startup-token"
RESULTS = Path(__file__).with_name("results")
# The machine's speed at the time, for comparing runs on shared machines: the libraries the bot
# stands on, imported in a fresh interpreter (none of the bot's code).
REFERENCE = "import telegram.ext, sqlalchemy.orm, pydantic"


async def run(options: Options) -> Result:
    emulator = BotApiEmulator(bot_username="zhiban_bench_bot")
    await emulator.start("127.0.0.1", 0)
    polls: list[float] = []
    steps: list[float] = []
    try:
        async with temporary_database(options) as url:
            db = Database(create_engine(DatabaseSettings(url=url)))
            try:
                await upgrade(db.engine)
                leaders = await build_schools(db, SCHOOLS)
            finally:
                await db.dispose()
            press_start(emulator, leaders)
            with tempfile.TemporaryDirectory(prefix="zhiban-startup-") as folder:
                config = Path(folder) / "config.toml"
                config.write_text(process_config(url, emulator), encoding="utf-8")
                for index in range(RUNS):
                    leader = leaders[index]
                    await _plant_due_page(url, leader, index)
                    poll, step = await _one_run(emulator, config, Path(folder), leader)
                    polls.append(poll)
                    steps.append(step)
    finally:
        await emulator.stop()
    reference = median([_reference_run() for _ in range(RUNS)])
    poll_median, step_median = median(polls), median(steps)
    passed = poll_median <= TARGET_POLL and all(s < RUN_LIMIT for s in steps)
    figures = (
        f"first_getUpdates={poll_median:.2f}s first_engine_step={step_median:.2f}s "
        f"(median of {RUNS}; getUpdates runs {', '.join(f'{p:.2f}' for p in polls)}) "
        f"(target getUpdates <= {TARGET_POLL:.0f}s) {SCHOOLS} schools "
        f"reference_imports={reference:.2f}s [{options.backend}]"
    )
    _write(options, polls, steps, reference)
    return Result("startup", passed, figures)


async def _plant_due_page(url: str, leader: Leader, index: int) -> None:
    """Plant one escalation whose first page is due before the process starts.

    The engine's first step sends it, so its arrival at the emulator marks that step.
    """
    db = Database(create_engine(DatabaseSettings(url=url)))
    try:
        async with db.uow() as uow:
            await escalation.start(
                uow.session,
                policy="bench",
                steps=[
                    EscalationStep(
                        after=timedelta(0), roles=["duty_leader"], level=Level.UNIT, repeat=0
                    )
                ],
                subject_type="bench",
                subject_id=index,
                unit_id=leader.unit_id,
                subject=SUBJECT,
                now=datetime.now(UTC) - timedelta(seconds=1),
            )
            await uow.commit()
    finally:
        await db.dispose()


async def _one_run(
    emulator: BotApiEmulator, config: Path, folder: Path, leader: Leader
) -> tuple[float, float]:
    """Start `python -m bot run`; seconds from its start to the first getUpdates and the page."""
    seen = len(emulator.calls)
    started = time.monotonic()
    process = start_process(config, folder, TOKEN)
    poll = step = RUN_LIMIT
    try:
        while time.monotonic() - started < RUN_LIMIT:
            if process.poll() is not None:
                raise RuntimeError(f"zhiban run exited with {process.returncode}")
            calls = emulator.calls[seen:]
            if poll == RUN_LIMIT:
                first = next((c for c in calls if c.method.lower() == "getupdates"), None)
                if first is not None:
                    poll = first.at - started  # when the call came in
            if step == RUN_LIMIT:
                pages = [c for c in sends_to(emulator, {leader.chat_id}) if c.at >= started]
                if pages:
                    step = pages[0].at - started
            if poll < RUN_LIMIT and step < RUN_LIMIT:
                break
            await asyncio.sleep(0.01)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return poll, step


def _reference_run() -> float:
    """Seconds a fresh interpreter takes to import the bot's main libraries (`REFERENCE`)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", REFERENCE], check=True)
    return time.monotonic() - started


def _write(options: Options, polls: list[float], steps: list[float], reference: float) -> None:
    """Keep this backend's figures under "figures" (bench/run.py adds its line under "runs")."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "startup.json"
    kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    figures: dict[str, object] = kept.get("figures") or {}
    figures[options.backend] = {
        "schools": SCHOOLS,
        "first_getupdates_s": polls,
        "first_engine_step_s": steps,
        "median_getupdates_s": median(polls),
        "median_engine_step_s": median(steps),
        "reference_imports_s": reference,
        "first_chat": FIRST_CHAT,
    }
    runs = kept.get("runs")
    kept = {"figures": figures, **({"runs": runs} if isinstance(runs, dict) else {})}
    path.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
