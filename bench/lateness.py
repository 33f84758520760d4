"""Page lateness: from a deadline's due time to Telegram receiving the page, on the real wiring."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

from support import (
    SUBJECT,
    Leader,
    Options,
    Result,
    WallClock,
    bench_settings,
    build_schools,
    percentile,
    press_start,
    temporary_database,
    wait_for_sends,
)

from bot.clock import SystemClock
from bot.config import EscalationStep, Level
from bot.sandbox.stack import LocalStack
from bot.services import escalation

PAGES = 200
# First steps fall due between these many seconds after scheduling starts.
EARLIEST, LATEST = 3.0, 25.0
# Escalations are started in this many transactions, WAVE_GAP apart, in shuffled order, so a
# later wave often brings a deadline earlier than the one the engine is armed for.
WAVES, WAVE_GAP = 10, 0.3
TARGET_P99 = 1.0


async def run(options: Options) -> Result:
    clock = SystemClock()
    async with (
        temporary_database(options) as url,
        LocalStack(bench_settings(url), clock) as stack,
    ):
        assert stack.db is not None and stack.runtime is not None
        leaders = await build_schools(stack.db, PAGES)
        press_start(stack.emulator, leaders)
        wall = WallClock()
        due = await _schedule(stack, leaders, clock)
        chats = {leader.chat_id for leader in leaders}
        last_due = max(due.values())
        sent = await wait_for_sends(
            stack.emulator, chats, within=(last_due - clock.now()).total_seconds() + 15
        )
    first_send: dict[int, datetime] = {}
    for call in sent:
        first_send.setdefault(int(call.params["chat_id"]), wall.utc(call.at))
    lateness = [(first_send[chat] - due[chat]).total_seconds() for chat in first_send]
    missing = PAGES - len(lateness)
    if not lateness:
        return Result("lateness", False, f"no page arrived (0/{PAGES}) [{options.backend}]")
    p50, p99, worst = (percentile(lateness, 0.5), percentile(lateness, 0.99), max(lateness))
    early = sum(1 for value in lateness if value < 0)
    passed = p99 <= TARGET_P99 and missing == 0 and early == 0
    figures = (
        f"p50={p50:.3f}s p99={p99:.3f}s max={worst:.3f}s n={len(lateness)}/{PAGES}"
        f" early={early} (target p99 <= {TARGET_P99:.1f}s, all sent, none early)"
        f" [{options.backend}]"
    )
    return Result("lateness", passed, figures)


async def _schedule(
    stack: LocalStack, leaders: list[Leader], clock: SystemClock
) -> dict[int, datetime]:
    """Start one single-step escalation per leader while the bot runs; return chat → due_at."""
    assert stack.db is not None and stack.runtime is not None
    rng = random.Random(20261201)
    origin = clock.now()
    targets = [
        (leader, origin + timedelta(seconds=rng.uniform(EARLIEST, LATEST))) for leader in leaders
    ]
    rng.shuffle(targets)
    due_by_chat: dict[int, datetime] = {}
    size = -(-len(targets) // WAVES)
    for wave in range(WAVES):
        async with stack.db.uow() as uow:
            now = clock.now()
            for index, (leader, due_at) in enumerate(targets[wave * size : (wave + 1) * size]):
                step = EscalationStep(
                    after=max(due_at - now, timedelta(0)),
                    roles=["duty_leader"],
                    level=Level.UNIT,
                    repeat=0,
                )
                started = await escalation.start(
                    uow.session,
                    policy="bench",
                    steps=[step],
                    subject_type="bench",
                    subject_id=wave * size + index,
                    unit_id=leader.unit_id,
                    subject=SUBJECT,
                    now=now,
                )
                assert started.id is not None
                # The step falls due `after` its start; the engine's own deadlines for the
                # matter (a first look at once, then one at the step's time) are its business.
                due_by_chat[leader.chat_id] = now + step.after
            await uow.commit()
        stack.runtime.wake()  # as a handler does after a use case that scheduled something
        await asyncio.sleep(WAVE_GAP)
    return due_by_chat
