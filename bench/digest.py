"""The daily digest for 500 principals: computed once, fanned out at Telegram's rate.

The real bot (`LocalStack`, system clock, the emulator enforcing Telegram's limits) and 500
schools under one township and county, each school's linked duty leader also its principal.
Yesterday's window holds, per school, a day and a night shift (the night one missed, its
missed-shift deadline on record), two check-ins (one unanswered) and a daily report (every
third missing), plus 50 incidents (every fifth reported late). A digest deadline falls due two
seconds after it is written, as the planner writes it; the engine computes the digest and
queues 500 messages, the outbox sender sends them.

Figures: `last_after_due` = the last digest's arrival at the emulator minus the deadline's due
time (the goal: within the fan-out limit, 500 at 30/s ≈ 17 s, plus the computation);
`compute` = `digest.compute` for the whole district, timed apart on the same data (median of
3); `render_500` = rendering the 500 texts; `rate`, `429s`, `peak_1s` as in `fanout`.
Writes bench/results/digest.json.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import (
    Leader,
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
from bot.config import Settings
from bot.i18n import translator
from bot.models import (
    Checkin,
    ClockEvent,
    DailyReport,
    Deadline,
    DeadlineStatus,
    Incident,
    RoleGrant,
    Shift,
    ShiftKind,
)
from bot.sandbox.stack import LocalStack
from bot.services import deadlines, digest
from bot.uow import Database

SCHOOLS = 500
INCIDENTS = 50
TELEGRAM_RATE = 30.0
# 500 messages at 30 a second take 500 / 30 ≈ 16.7 s; the goal allows the computation on top.
FANOUT_LIMIT = SCHOOLS / TELEGRAM_RATE
COMPUTE_ALLOWANCE = 3.0
LEAD = timedelta(seconds=2)
RESULTS = Path(__file__).resolve().parent / "results"


def _window_end(now: datetime, settings: Settings) -> datetime:
    """The latest local digest time at or before `now`: yesterday's window ends there."""
    tz = settings.bot.tz
    local = now.astimezone(tz)
    end = datetime.combine(local.date(), settings.digest.time, tzinfo=tz)
    return end if end <= local else end - timedelta(days=1)


async def _yesterday(db: Database, leaders: list[Leader], end: datetime, now: datetime) -> None:
    """A day of duty in the window [end − 24 h, end) at every school."""
    start = end - timedelta(hours=24)
    async with db.uow() as uow:
        session = uow.session
        for leader in leaders:
            session.add(
                RoleGrant(person_id=leader.person_id, role="principal", unit_id=leader.unit_id)
            )
        shifts = []
        for leader in leaders:
            for post, begin in (
                ("值班室", start + timedelta(hours=1)),
                ("夜班", start + timedelta(hours=13)),
            ):
                shifts.append(
                    Shift(
                        unit_id=leader.unit_id,
                        post=post,
                        start=begin,
                        end=begin + timedelta(hours=10),
                        person_id=leader.person_id,
                        kind=ShiftKind.STAFF,
                        planned_at=now,
                    )
                )
        session.add_all(shifts)
        await session.flush()
        for index, shift in enumerate(shifts):
            assert shift.id is not None
            if index % 2 == 0:
                session.add(
                    ClockEvent(
                        shift_id=shift.id,
                        person_id=shift.person_id or 0,
                        kind="in",
                        at=shift.start + timedelta(minutes=5 * (index % 3)),
                        late_minutes=5 * (index % 3),
                    )
                )
            else:  # the night shift: missed, and chased (its page is on record)
                session.add(
                    Deadline(
                        key=f"shift:{shift.id}:missed",
                        kind="shift.missed",
                        subject_type="shift",
                        subject_id=shift.id,
                        due_at=shift.start + timedelta(minutes=15),
                        status=DeadlineStatus.DONE,
                        created_at=now,
                    )
                )
            session.add(
                Checkin(
                    person_id=shift.person_id or 0,
                    unit_id=shift.unit_id,
                    shift_id=shift.id,
                    due_at=shift.start + timedelta(hours=1),
                    deadline=shift.start + timedelta(hours=1, minutes=30),
                    answered_at=shift.start + timedelta(hours=1) if index % 2 == 0 else None,
                    answer="normal" if index % 2 == 0 else None,
                )
            )
        for index, leader in enumerate(leaders):
            deadline = start + timedelta(hours=9)
            session.add(
                DailyReport(
                    unit_id=leader.unit_id,
                    day=deadline.astimezone(UTC).date(),
                    deadline=deadline,
                    submitted_at=None if index % 3 == 0 else deadline - timedelta(hours=1),
                    nothing_to_report=index % 3 != 0,
                )
            )
        for index in range(INCIDENTS):
            leader = leaders[index * (SCHOOLS // INCIDENTS)]
            session.add(
                Incident(
                    number=f"BENCH-{index:03d}",
                    unit_id=leader.unit_id,
                    reporter_id=leader.person_id,
                    category="fire",
                    severity="general",
                    status="open",
                    occurred_at=start + timedelta(hours=2),
                    reported_at=start + timedelta(hours=2, minutes=10),
                    reported_late=index % 5 == 0,
                )
            )
        await uow.commit()


async def _compute_alone(
    db: Database, settings: Settings, end: datetime, now: datetime
) -> tuple[float, float, int]:
    """Median seconds of `digest.compute` for the district, and of rendering 500 digests."""
    computes, renders, longest = [], [], 0
    tr = translator("zh")
    for _ in range(3):
        async with db.read() as uow:
            started = time.perf_counter()
            figures = await digest.compute(
                uow.session,
                start=end - timedelta(hours=24),
                end=end,
                now=now,
                shifts=settings.shifts,
            )
            computes.append(time.perf_counter() - started)
        started = time.perf_counter()
        for unit_id, row in figures.units.items():
            if row.kind == "school":
                text = digest.render(
                    tr, digest.scope_view(figures, unit_id=unit_id), settings.bot.tz
                )
                longest = max(longest, len(text))
        renders.append(time.perf_counter() - started)
    return statistics.median(computes), statistics.median(renders), longest


async def run(options: Options) -> Result:
    clock = SystemClock()
    async with temporary_database(options) as url:
        settings = bench_settings(url, messages_per_second=options.messages_per_second)
        async with LocalStack(settings, clock) as stack:
            assert stack.db is not None and stack.runtime is not None
            emulator = stack.emulator
            emulator.enforce_flood_limits = True
            emulator.latency = options.api_latency
            leaders = await build_schools(stack.db, SCHOOLS)
            now = clock.now()
            end = _window_end(now, settings)
            await _yesterday(stack.db, leaders, end, now)
            press_start(emulator, leaders)
            compute_s, render_s, longest = await _compute_alone(stack.db, settings, end, now)
            wall = WallClock()
            due = clock.now() + LEAD
            day = end.astimezone(settings.bot.tz).date()
            async with stack.db.uow() as uow:
                await deadlines.schedule(
                    uow.session,
                    key=f"digest:bench:{day.isoformat()}",
                    kind=digest.KIND,
                    subject_type=digest.SUBJECT,
                    subject_id=day.toordinal(),
                    due_at=due,
                    now=clock.now(),
                )
                await uow.commit()
            stack.runtime.wake()
            chats = {leader.chat_id for leader in leaders}
            sent = await wait_for_sends(emulator, chats, within=90)
            refused = emulator.count_status(429)
    digests = [call for call in sent if str(call.params.get("text", "")).startswith("📰")]
    if len(digests) < 2:
        return Result("digest", False, f"only {len(digests)}/{SCHOOLS} digests arrived")
    times = [call.at for call in digests]
    span = times[-1] - times[0]
    rate = (len(digests) - 1) / span if span > 0 else float("inf")
    due_utc = due.astimezone(UTC)
    first_after = (wall.utc(times[0]) - due_utc).total_seconds()
    last_after = (wall.utc(times[-1]) - due_utc).total_seconds()
    delivered = len({int(call.params["chat_id"]) for call in digests})
    goal = FANOUT_LIMIT + COMPUTE_ALLOWANCE
    passed = delivered == SCHOOLS and refused == 0 and last_after <= goal
    figures = {
        "last_after_due_s": round(last_after, 2),
        "first_after_due_s": round(first_after, 2),
        "compute_s": round(compute_s, 3),
        "render_500_s": round(render_s, 3),
        "rate_msg_s": round(rate, 2),
        "429s": refused,
        "peak_1s": peak_in_window(times),
        "delivered": delivered,
        "longest_text": longest,
        "backend": options.backend,
        "goal_s": round(goal, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "digest.json").write_text(json.dumps({"passed": passed, **figures}, indent=2) + "\n")
    line = (
        f"last_after_due={last_after:.2f}s first_after_due={first_after:.2f}s"
        f" compute={compute_s * 1000:.0f}ms render_500={render_s * 1000:.0f}ms"
        f" rate={rate:.2f} msg/s 429s={refused} peak_1s={figures['peak_1s']}"
        f" digests={delivered}/{SCHOOLS}"
        f" (target <= {goal:.1f}s: 500 at 30/s + {COMPUTE_ALLOWANCE:.0f}s, 0 x 429)"
        f" [{options.backend}]"
    )
    return Result("digest", passed, line)
