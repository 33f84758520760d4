"""Head-of-line: a page to B goes out at once while 60 pages to A wait for A's pace."""

from __future__ import annotations

from datetime import timedelta

from support import (
    SUBJECT,
    Options,
    Result,
    WallClock,
    bench_settings,
    build_schools,
    press_start,
    sends_to,
    temporary_database,
    wait_for_sends,
)

from bot.clock import SystemClock
from bot.config import EscalationStep, Level
from bot.sandbox.stack import LocalStack
from bot.services import escalation

BURST = 60
# A's pages fall due this long after they are written, B's page this much later still.
LEAD = timedelta(seconds=2)
B_AFTER = timedelta(seconds=0.3)
TARGET = 2.0


async def run(options: Options) -> Result:
    clock = SystemClock()
    async with (
        temporary_database(options) as url,
        LocalStack(bench_settings(url), clock) as stack,
    ):
        assert stack.db is not None and stack.runtime is not None
        emulator = stack.emulator
        emulator.enforce_flood_limits = True
        a, b = await build_schools(stack.db, 2)
        press_start(emulator, [a, b])
        wall = WallClock()
        async with stack.db.uow() as uow:
            now = clock.now()
            a_due, b_due = now + LEAD, now + LEAD + B_AFTER
            for index, (leader, after) in enumerate([(a, LEAD)] * BURST + [(b, LEAD + B_AFTER)]):
                await escalation.start(
                    uow.session,
                    policy="bench",
                    steps=[EscalationStep(after=after, roles=["duty_leader"], level=Level.UNIT)],
                    subject_type="bench",
                    subject_id=index,
                    unit_id=leader.unit_id,
                    subject=SUBJECT,
                    now=now,
                )
            await uow.commit()
        stack.runtime.wake()
        to_b = await wait_for_sends(emulator, {b.chat_id}, within=LEAD.total_seconds() + 70)
        to_a = sends_to(emulator, {a.chat_id})
        refused = emulator.count_status(429)
    if not to_b:
        return Result("busy_chat", False, f"the page to B never arrived [{options.backend}]")
    b_late = (wall.utc(to_b[0].at) - b_due).total_seconds()
    a_first = (wall.utc(to_a[0].at) - a_due).total_seconds() if to_a else float("nan")
    a_before_b = sum(1 for call in to_a if call.at < to_b[0].at)
    passed = b_late <= TARGET and refused == 0
    figures = (
        f"b_after_due={b_late:.2f}s a_sent_before_b={a_before_b}/{BURST}"
        f" a_first_after_due={a_first:.2f}s 429s={refused}"
        f" (target: B within {TARGET:.0f}s of due while {BURST} pages to A wait, 0 x 429)"
        f" [{options.backend}]"
    )
    return Result("busy_chat", passed, figures)
