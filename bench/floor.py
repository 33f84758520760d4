"""What the stack itself allows: clock-ins per second of a bot that does only their floor.

bench/throughput.py compares Zhiban with a bare python-telegram-bot echo bot, which touches no
database. This puts a third bot beside them, in the same run, without Telegram's limits: the
"floor" bot is the echo bot with Zhiban's update processor (`PerPersonUpdates`, the configured
workers), whose /in does the least a clock-in can do on Zhiban's own `Database`: the gate's
`accounts.identify`, then one unit of work (the same write queue on SQLite) with four Core
statements built once (the shift, the clock-in row, the two deadlines cancelled, the audit
entry), then the fixed answer. No ORM, no existing clock-in check, no geofence, no page closed,
no handover, no catalog.

Rounds in turn (Zhiban, echo, floor), each bot with its own people; rate = people / (last
answer − first /in), the median of the rounds; ratios over the echo bot's rate. The database
must hold every clock-in of both Zhiban and the floor bot. It passes when everything was
answered and stored: the figures tell how far Zhiban's clock-in is from its floor, and how far
the floor is from throughput's goal (0.25). Writes bench/results/floor.json (one entry per
backend).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from clockin import (
    ECHO_REPLY,
    ZHIBAN_REPLY,
    Round,
    add_shifts,
    clock_in_wave,
    count_clock_ins,
    echo_bot,
)
from sqlmodel import col
from support import Options, Result, bench_settings, build_schools, press_start, temporary_database
from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes
from throughput import ECHO_EDITED, ECHO_HANDLERS, _echo_buttons, _echo_prompt, press, timed_round

from bot.clock import SystemClock
from bot.models import AuditEntry, ClockEvent, Deadline, DeadlineStatus, Shift
from bot.sandbox.stack import LocalStack
from bot.services import accounts
from bot.uow import Database
from bot.updates import PerPersonUpdates

PEOPLE = 120  # per round, as throughput's rounds without limits
ROUNDS = 3
WARM_UP = 5
FLOOR_REPLY = "✅ floor"
DESK = 10  # the chat the floor bot's report-shaped press pages (no person of the run has it)
RESULTS = Path(__file__).resolve().parent / "results" / "floor.json"

_SHIFT = (
    sa.select(col(Shift.id), col(Shift.unit_id))
    .where(
        col(Shift.person_id) == sa.bindparam("person"),
        col(Shift.start) <= sa.bindparam("opens"),
        col(Shift.end) > sa.bindparam("now"),
    )
    .order_by(col(Shift.start))
    .limit(1)
)
_CLOCK_IN = sa.insert(ClockEvent).values(
    shift_id=sa.bindparam("shift"),
    person_id=sa.bindparam("person"),
    kind="in",
    at=sa.bindparam("now"),
    late_minutes=0,
    live_location=False,
)
_CANCEL = (
    sa.update(Deadline)
    .where(
        col(Deadline.key).in_(sa.bindparam("keys", expanding=True)),
        col(Deadline.status) == DeadlineStatus.PENDING.value,
    )
    .values(status=DeadlineStatus.CANCELLED.value, handled_at=sa.bindparam("now"))
)
_AUDIT = sa.insert(AuditEntry).values(
    at=sa.bindparam("now"),
    actor_person_id=sa.bindparam("person"),
    action="shift.clock_in",
    subject_type="shift",
    subject_id=sa.bindparam("shift"),
    unit_id=sa.bindparam("unit"),
    allowed=True,
)


async def _write_clock_in(
    db: Database, clock: SystemClock, opens: timedelta, person_id: int, *, times: int = 1
) -> bool:
    """One unit of work: the four statements of a clock-in, `times` over; False without a shift."""
    now = clock.now()
    async with db.uow() as uow:
        connection = await uow.session.connection()
        for _ in range(times):
            found = (
                await connection.execute(
                    _SHIFT, {"person": person_id, "opens": now + opens, "now": now}
                )
            ).first()
            if found is None:
                return False
            shift, unit = found
            keys = [f"shift:{shift}:remind", f"shift:{shift}:missed"]
            await connection.execute(_CLOCK_IN, {"shift": shift, "person": person_id, "now": now})
            await connection.execute(_CANCEL, {"keys": keys, "now": now})
            await connection.execute(
                _AUDIT, {"now": now, "person": person_id, "shift": shift, "unit": unit}
            )
        await uow.commit()
    return True


def floor_clock_in(
    db: Database, clock: SystemClock, opens: timedelta
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
    """The floor bot's /in: who is writing, one write transaction of four statements, a text."""

    async def on_in(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None:
            return
        me = await accounts.identify(db, external_id=user.id)
        if me is not None and await _write_clock_in(db, clock, opens, me.person_id):
            await context.bot.send_message(chat.id, FLOOR_REPLY)

    return on_in


def floor_report(
    db: Database, clock: SystemClock, opens: timedelta, desk: int
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
    """The floor bot's report-shaped press: a report's three Bot API calls and a dozen rows.

    Who is writing, then one unit of work of twelve Core statements (the clock-in's four, three
    times over, standing in for the dozen rows a report writes: the incident, its entry, its
    number, the escalation, its level and event, the deadline, the page, the outbox row, two
    audit entries, the draft dropped), then the answer, the edit of the pressed message (as the
    echo bot's press does) and a message to the desk's chat (the leader's page).
    """

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, user = update.callback_query, update.effective_user
        if query is None or user is None:
            return
        me = await accounts.identify(db, external_id=user.id)
        if me is None or not await _write_clock_in(db, clock, opens, me.person_id, times=3):
            return
        await query.answer(ECHO_EDITED)
        await query.edit_message_text(ECHO_EDITED)
        await context.bot.send_message(desk, f"🚨 {me.name}")

    return on_press


async def run(options: Options) -> Result:
    """Zhiban, the echo bot and the floor bot in turn; the median rates and their ratios."""
    clock = SystemClock()
    rounds: dict[str, list[Round]] = {"zhiban": [], "echo": [], "floor": []}
    presses: dict[str, list[Round]] = {"echo": [], "floor": []}
    per = WARM_UP + ROUNDS * PEOPLE
    async with temporary_database(options) as url:
        settings = bench_settings(url, messages_per_second=100_000.0)
        async with LocalStack(settings, clock) as stack:
            db = stack.db
            assert db is not None
            opens = settings.shifts.clock_in_early
            handlers = (
                CommandHandler("prompt", _echo_prompt),
                CallbackQueryHandler(floor_report(db, clock, opens, DESK)),
            )
            async with (
                echo_bot(settings.telegram, ECHO_HANDLERS) as echoes,
                echo_bot(
                    settings.telegram,
                    handlers,
                    on_in=floor_clock_in(db, clock, opens),
                    updates=PerPersonUpdates(settings.telegram.update_workers),
                ) as floors,
            ):
                people = await build_schools(db, 2 * per)
                await add_shifts(db, people, now=clock.now(), settings=settings.shifts)
                await stack.settle()
                for emulator in (stack.emulator, echoes, floors):
                    emulator.enforce_flood_limits = False
                    press_start(emulator, people)
                floors.user(DESK, "县值班室")
                floors.world.chats[DESK].started = True
                chats = [someone.chat_id for someone in people]
                mine, theirs = chats[:per], chats[per:]
                bots = (
                    ("zhiban", stack.emulator, mine, ZHIBAN_REPLY),
                    ("echo", echoes, mine, ECHO_REPLY),
                    ("floor", floors, theirs, FLOOR_REPLY),
                )
                for _name, emulator, group, reply in bots:
                    await clock_in_wave(emulator, group[:WARM_UP], reply=reply)
                await stack.settle()
                for index in range(ROUNDS):
                    first = WARM_UP + index * PEOPLE
                    for name, emulator, group, reply in bots:
                        wave = group[first : first + PEOPLE]
                        rounds[name].append(await clock_in_wave(emulator, wave, reply=reply))
                        await stack.settle()
                stored = await count_clock_ins(db)
                # Report-shaped presses: each bot's people press the button of its prompt.
                for name, emulator, group in (("echo", echoes, mine), ("floor", floors, theirs)):
                    buttons = await _echo_buttons(emulator, group)
                    act = press(emulator, buttons, [])
                    await timed_round(emulator, group[:WARM_UP], act)
                    for index in range(ROUNDS):
                        first = WARM_UP + index * PEOPLE
                        wave = group[first : first + PEOPLE]
                        presses[name].append(await timed_round(emulator, wave, act))
    return _result(options, rounds, presses, stored, expected=2 * per)


def _result(
    options: Options,
    rounds: dict[str, list[Round]],
    presses: dict[str, list[Round]],
    stored: int,
    *,
    expected: int,
) -> Result:
    rates = {name: statistics.median(r.rate for r in found) for name, found in rounds.items()}
    echo = rates["echo"]
    press_rates = {
        name: statistics.median(r.rate for r in found) for name, found in presses.items()
    }

    def ratio(name: str) -> float:
        return rates[name] / echo if echo > 0 else 0.0

    report_ratio = press_rates["floor"] / press_rates["echo"] if press_rates["echo"] > 0 else 0.0
    answered = all(
        r.answered == PEOPLE for found in (*rounds.values(), *presses.values()) for r in found
    )
    passed = answered and stored == expected
    figures = (
        f"clock_in: zhiban={rates['zhiban']:.0f}/s x{ratio('zhiban'):.2f}"
        f" floor={rates['floor']:.0f}/s x{ratio('floor'):.2f} echo={echo:.0f}/s"
        f" rounds {' '.join(f'{name}={_rates(found)}' for name, found in rounds.items())};"
        f" report-shaped press: floor={press_rates['floor']:.0f}/s x{report_ratio:.2f}"
        f" echo={press_rates['echo']:.0f}/s"
        f" rounds {' '.join(f'{name}={_rates(found)}' for name, found in presses.items())};"
        f" clock_ins_in_db={stored}/{expected} N={PEOPLE} (no limits; throughput's goal"
        f" x0.25) [{options.backend}]"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    kept[options.backend] = {
        "benchmark": "floor",
        "passed": passed,
        "people_per_round": PEOPLE,
        "rounds": ROUNDS,
        "clock_in": {
            "per_s": {name: round(rate, 1) for name, rate in rates.items()},
            "ratio_to_echo": {name: round(ratio(name), 3) for name in ("zhiban", "floor")},
            "round_rates": {
                name: [round(r.rate, 1) for r in found] for name, found in rounds.items()
            },
        },
        "report_shaped_press": {
            "per_s": {name: round(rate, 1) for name, rate in press_rates.items()},
            "floor_ratio_to_echo": round(report_ratio, 3),
            "round_rates": {
                name: [round(r.rate, 1) for r in found] for name, found in presses.items()
            },
        },
        "clock_ins_stored": stored,
        "expected": expected,
    }
    RESULTS.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n")
    return Result("floor", passed, figures)


def _rates(found: Sequence[Round]) -> str:
    return "/".join(f"{r.rate:.0f}" for r in found)
