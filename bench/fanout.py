"""Fan-out: 500 pages due at once, sent at Telegram's overall rate without a single 429."""

from __future__ import annotations

from datetime import timedelta

from support import (
    SUBJECT,
    Options,
    Result,
    WallClock,
    bench_settings,
    build_schools,
    peak_in_window,
    press_start,
    temporary_database,
    wait_for_sends,
)

from bot.clock import SystemClock
from bot.config import EscalationStep, Level
from bot.sandbox.stack import LocalStack
from bot.services import escalation

PAGES = 500
TELEGRAM_RATE = 30.0
TARGET_RATE = 0.95 * TELEGRAM_RATE
# All first steps fall due together, this long after they are scheduled.
LEAD = timedelta(seconds=2)


async def run(options: Options) -> Result:
    clock = SystemClock()
    settings_rate = options.messages_per_second
    async with temporary_database(options) as url:
        settings = bench_settings(url, messages_per_second=settings_rate)
        async with LocalStack(settings, clock) as stack:
            assert stack.db is not None and stack.runtime is not None
            emulator = stack.emulator
            emulator.enforce_flood_limits = True
            emulator.latency = options.api_latency
            leaders = await build_schools(stack.db, PAGES)
            press_start(emulator, leaders)
            wall = WallClock()
            async with stack.db.uow() as uow:
                now = clock.now()
                due_at = now + LEAD
                step = EscalationStep(after=LEAD, roles=["duty_leader"], level=Level.UNIT)
                for index, leader in enumerate(leaders):
                    await escalation.start(
                        uow.session,
                        policy="bench",
                        steps=[step],
                        subject_type="bench",
                        subject_id=index,
                        unit_id=leader.unit_id,
                        subject=SUBJECT,
                        now=now,
                    )
                await uow.commit()
            stack.runtime.wake()
            chats = {leader.chat_id for leader in leaders}
            sent = await wait_for_sends(emulator, chats, within=90)
            refused = emulator.count_status(429)
            calls = len(emulator.calls_of("sendMessage"))
    rate_note = f" messages_per_second={settings.telegram.messages_per_second:g}"
    if options.api_latency:
        rate_note += f" api_latency={options.api_latency:g}s"
    if len(sent) < 2:
        return Result("fanout", False, f"only {len(sent)}/{PAGES} pages arrived{rate_note}")
    times = [call.at for call in sent]
    span = times[-1] - times[0]
    rate = (len(sent) - 1) / span if span > 0 else float("inf")
    # Sends come in bursts of up to 30, which flatters (pages - 1) / span; counting the sends
    # in the whole seconds from the first one gives the plain average as well.
    seconds = max(1, int(span))
    average = sum(1 for moment in times if moment < times[0] + seconds) / seconds
    start_delay = (wall.utc(times[0]) - due_at).total_seconds()
    delivered = len({int(call.params["chat_id"]) for call in sent})
    passed = rate >= TARGET_RATE and refused == 0 and delivered == PAGES
    figures = (
        f"rate={rate:.2f} msg/s 429s={refused} pages={delivered}/{PAGES} span={span:.2f}s"
        f" per_whole_second={average:.2f}"
        f" peak_1s={peak_in_window(times)} sendMessage_calls={calls}"
        f" first_after_due={start_delay:.2f}s (target >= {TARGET_RATE:.1f} msg/s, 0 x 429)"
        f"{rate_note} [{options.backend}]"
    )
    return Result("fanout", passed, figures)
