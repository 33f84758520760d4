"""Updates per second through the real bot, three workloads, against a bare echo bot.

The honest method of bench/clockin.py, for the three updates that come in bursts: the real
Application (`LocalStack`, system clock) and a bare python-telegram-bot echo bot on its own
emulator in the same run, rounds in turn (Zhiban, echo, Zhiban, echo), each round with its own
people acting at once; rate = people / (last expected answer − first action); the median of the
rounds per bot; ratio = Zhiban / echo.

- clock-ins: `/in` from linked people whose planned shift starts in 20 minutes (an on-time
  clock-in that cancels real pending deadlines); done when the ✅ answer arrived. Echo: a fixed
  text.
- check-in answers: people whose check-in prompt the bot sent (a real round, untimed) press
  ✅ All normal, with the callback data harvested from that prompt; done when the press is
  answered and the prompt edited (Zhiban edits it through its outbox). Echo: a
  CallbackQueryHandler that answers the query and edits the message.
- report confirmations: `/report` drafts brought to their summary first (untimed, through the
  chat: category, severity, a sentence), then the final press that stores the incident; done
  when the press is answered and the summary shows the confirmation. Echo: the same callback
  shape as for check-ins.

Both with Telegram's limits (the product's 30 messages a second, the emulators enforcing them)
and without (`messages_per_second` 100000, nothing enforced): the first says whether Zhiban
keeps up with what Telegram lets any bot send, the second compares the bots' own work. SQL
statements are counted at the driver for Zhiban's timed rounds, from the first action until
the bot has settled (the outbox edits and pages the updates caused included), per update.
The database must hold every clock-in, answer and incident. Writes bench/results/throughput.json
(one entry per backend).
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from clockin import Round, add_shifts, count_clock_ins, echo_bot
from look_cost import StatementCounter
from sqlalchemy import event
from sqlmodel import col
from support import (
    FIRST_CHAT,
    Leader,
    Options,
    Result,
    bench_settings,
    build_schools,
    press_start,
    temporary_database,
    wait_for_sends,
)
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bot.callbacks import ReportChoice
from bot.clock import SystemClock
from bot.models import Checkin, Incident, Shift, ShiftKind
from bot.sandbox import BotApiEmulator, SimUser
from bot.sandbox.markup import inline_rows
from bot.sandbox.stack import LocalStack
from bot.services import checkins, deadlines
from bot.services.checkins.rounds import ROUND_SUBJECT, round_key
from bot.uow import Database

log = logging.getLogger("bench.throughput")
ROUNDS = 2
WARM_UP = 5  # untimed actions first on each bot, so neither pays its first-call costs in a round
ROUND_LIMIT = 30.0  # seconds a round may take before the missing answers count as lost
RESULTS = Path(__file__).resolve().parent / "results" / "throughput.json"
ECHO_PROMPT = "echo prompt"
ECHO_DATA = "echo:ok"
ECHO_EDITED = "✅ echo"


@dataclass(frozen=True)
class Mode:
    """With Telegram's limits or without them."""

    name: str
    messages_per_second: float | None  # None: the product default (30)
    enforce: bool
    people: int  # per round
    target: float


MODES = (
    Mode("limits", None, True, 40, 0.8),
    Mode("no_limits", 100_000.0, False, 120, 0.25),
)
WORKLOADS = ("clock_in", "checkin", "report")


@dataclass(frozen=True)
class Figures:
    """One workload in one mode: both bots' rounds, statements per update, rows stored."""

    zhiban: tuple[Round, ...]
    echo: tuple[Round, ...]
    statements: float
    calls: float  # Bot API calls Zhiban made per update (answers, edits, pages)
    echo_calls: float
    stored: int
    expected: int
    people: int
    unanswered: int = 0  # Zhiban's presses Telegram no longer let it answer (older than 15 s)
    kinds: tuple[tuple[str, float], ...] = ()  # statements per update by their first words

    @property
    def zhiban_rate(self) -> float:
        """Zhiban's median rate."""
        return statistics.median(r.rate for r in self.zhiban)

    @property
    def echo_rate(self) -> float:
        """The echo bot's median rate."""
        return statistics.median(r.rate for r in self.echo)

    @property
    def ratio(self) -> float:
        """Zhiban's rate over the echo bot's."""
        return self.zhiban_rate / self.echo_rate if self.echo_rate > 0 else 0.0

    @property
    def complete(self) -> bool:
        """Every action answered on both bots, and every row stored."""
        answered = all(r.answered == self.people for r in (*self.zhiban, *self.echo))
        return answered and self.stored == self.expected


# An action of one person on one bot: what they do, and when it is done.
Act = Callable[[SimUser], Awaitable[Any]]
Done = Callable[[], bool]


async def timed_round(
    emulator: BotApiEmulator, chats: Sequence[int], prepare: Callable[[int], tuple[Act, Done]]
) -> Round:
    """Every chat acts at once; wait until each one's action is done; count them."""
    users = [emulator.user(chat, f"值班{chat - FIRST_CHAT}") for chat in chats]
    steps = [prepare(chat) for chat in chats]
    waiting = list(range(len(chats)))

    def all_done() -> bool:
        waiting[:] = [i for i in waiting if not steps[i][1]()]
        return not waiting

    started = time.monotonic()
    await asyncio.gather(*(act(user) for user, (act, _done) in zip(users, steps, strict=True)))
    with suppress(TimeoutError):  # the unanswered ones are counted below
        await asyncio.wait_for(emulator.world.wait_until(all_done), ROUND_LIMIT)
    elapsed = time.monotonic() - started
    return Round(answered=sum(1 for _act, done in steps if done()), elapsed=elapsed)


def clock_in(emulator: BotApiEmulator, reply: str) -> Callable[[int], tuple[Act, Done]]:
    """/in; done when the chat's next message from the bot starts with `reply`."""
    world = emulator.world

    def prepare(chat_id: int) -> tuple[Act, Done]:
        chat = world.chats[chat_id]
        seen = len(chat.outputs)

        def done() -> bool:
            fresh = chat.outputs[seen:]
            return bool(fresh) and world.view(chat.messages[fresh[0]]).text.startswith(reply)

        return (lambda user: user.send("/in")), done

    return prepare


def press(
    emulator: BotApiEmulator, buttons: dict[int, tuple[int, str]], queries: list[Any]
) -> Callable[[int], tuple[Act, Done]]:
    """Press each chat's button (message id, callback data), keeping the presses in `queries`.

    Done when that message was edited. A press that waited in line longer than Telegram keeps
    a query open (15 s) can no longer be answered; the bot still does what it asked, so it
    counts as done when its message shows it, and `queries` tells how many went unanswered.
    """
    world = emulator.world

    def prepare(chat_id: int) -> tuple[Act, Done]:
        message_id, data = buttons[chat_id]
        stored = world.chats[chat_id].messages[message_id]
        before = (stored.plain, stored.reply_markup)
        pressed: list[Any] = []

        async def act(user: SimUser) -> None:
            pressed.append(await user.press_data(message_id, data))
            queries.append(pressed[0])

        def done() -> bool:
            return bool(pressed) and (stored.plain, stored.reply_markup) != before

        return act, done

    return prepare


def button(
    emulator: BotApiEmulator, chat_id: int, accept: Callable[[str], bool]
) -> tuple[int, str]:
    """The newest bot message in the chat with a button whose data `accept` takes."""
    chat = emulator.world.chats[chat_id]
    for stored in sorted(chat.messages.values(), key=lambda m: -m.message_id):
        if not stored.from_bot or stored.deleted:
            continue
        for row in inline_rows(stored.reply_markup):
            for found in row:
                data = str(found.get("callback_data", ""))
                if accept(data):
                    return stored.message_id, data
    texts = [emulator.world.view(chat.messages[i]).text[:60] for i in chat.outputs[-3:]]
    raise AssertionError(f"chat {chat_id}: no bot message with the expected button: {texts}")


async def _echo_prompt(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/prompt: a message with one button, which the rounds press."""
    chat = update.effective_chat
    if chat is not None:
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("✅", callback_data=ECHO_DATA)]])
        await context.bot.send_message(chat.id, ECHO_PROMPT, reply_markup=markup)


async def _echo_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press: answer it and edit its message, as Zhiban answers a check-in or a report."""
    query = update.callback_query
    if query is not None:
        await query.answer(ECHO_EDITED)
        await query.edit_message_text(ECHO_EDITED)


ECHO_HANDLERS = (CommandHandler("prompt", _echo_prompt), CallbackQueryHandler(_echo_press))


async def _echo_buttons(
    emulator: BotApiEmulator, chats: Sequence[int]
) -> dict[int, tuple[int, str]]:
    """Each chat asks the echo bot for its prompt (untimed); the button each will press."""
    users = [emulator.user(chat, f"值班{chat - FIRST_CHAT}") for chat in chats]
    await asyncio.gather(*(user.send("/prompt") for user in users))
    await asyncio.gather(*(user.wait_for(timeout=60) for user in users))
    return {chat: button(emulator, chat, lambda d: d == ECHO_DATA) for chat in chats}


async def _checkin_prompts(stack: LocalStack, people: Sequence[Leader]) -> None:
    """A shift covering now for each person, and a check-in round that prompts them all."""
    assert stack.db is not None and stack.runtime is not None
    now = stack.clock.now()
    async with stack.db.uow() as uow:
        uow.session.add_all(
            Shift(
                unit_id=someone.unit_id,
                post="值班室",
                start=now - timedelta(hours=1),
                end=now + timedelta(hours=11),
                person_id=someone.person_id,
                kind=ShiftKind.STAFF,
                planned_at=now,  # no shift reminders: this is about the round
            )
            for someone in people
        )
        due = now + timedelta(seconds=1)
        await deadlines.schedule(
            uow.session,
            key=round_key(due, "round"),
            kind=checkins.KIND_ROUND,
            subject_type=ROUND_SUBJECT,
            subject_id=int(due.timestamp()) // 60,
            due_at=due,
            now=now,
        )
        await uow.commit()
    stack.runtime.wake()
    chats = {someone.chat_id for someone in people}
    sent = await wait_for_sends(stack.emulator, chats, within=120)
    if len({int(call.params["chat_id"]) for call in sent}) < len(chats):
        raise AssertionError("not every check-in prompt was sent")


async def _report_drafts(emulator: BotApiEmulator, chats: Sequence[int]) -> None:
    """/report, a category, a severity, a sentence: each draft shows its summary."""

    async def draft(chat_id: int) -> None:
        user = emulator.user(chat_id, f"值班{chat_id - FIRST_CHAT}")
        await user.send("/report")
        await user.wait_for(timeout=60)
        for choice in (ReportChoice("cat", "fire"), ReportChoice("sev", "general")):
            message_id, _data = button(emulator, chat_id, lambda d: d.startswith("rp:"))
            await user.press_data(message_id, choice.data)
            await user.wait_for(timeout=60)
        await user.send(f"厨房冒烟 {chat_id}，已疏散。")
        await user.wait_for(timeout=60)

    await asyncio.gather(*(draft(chat) for chat in chats))


async def _count(db: Database, statement: sa.Select[Any]) -> int:
    async with db.read() as uow:
        return int((await uow.session.execute(statement)).scalar_one())


def _groups(people: Sequence[Leader], per: int) -> dict[str, list[Leader]]:
    return {name: list(people[i * per : (i + 1) * per]) for i, name in enumerate(WORKLOADS)}


async def run_mode(options: Options, mode: Mode) -> dict[str, Figures]:
    """Both bots, one database, the three workloads in turn, in one mode."""
    clock = SystemClock()
    per = WARM_UP + ROUNDS * mode.people
    found: dict[str, Figures] = {}
    async with temporary_database(options) as url:
        settings = bench_settings(url, messages_per_second=mode.messages_per_second)
        async with (
            LocalStack(settings, clock) as stack,
            echo_bot(settings.telegram, ECHO_HANDLERS) as echoes,
        ):
            db = stack.db
            assert db is not None
            zhiban_api = stack.emulator
            zhiban_api.enforce_flood_limits = echoes.enforce_flood_limits = mode.enforce
            groups = _groups(await build_schools(db, len(WORKLOADS) * per), per)
            everyone = [someone for group in groups.values() for someone in group]
            press_start(zhiban_api, everyone)
            press_start(echoes, everyone)
            # Untimed: the check-in prompts first (so that no clock-in shift is in the round),
            # then the clock-in shifts and the report drafts.
            began = time.monotonic()
            await _checkin_prompts(stack, groups["checkin"])
            log.info("%s: check-in prompts sent in %.1fs", mode.name, time.monotonic() - began)
            await add_shifts(db, groups["clock_in"], now=clock.now(), settings=settings.shifts)
            began = time.monotonic()
            await _report_drafts(zhiban_api, [p.chat_id for p in groups["report"]])
            log.info("%s: report drafts ready in %.1fs", mode.name, time.monotonic() - began)
            await stack.settle()
            counter = StatementCounter()
            event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
            for workload in WORKLOADS:
                chats = [someone.chat_id for someone in groups[workload]]
                queries: list[Any] = []
                if workload == "clock_in":
                    zhiban_act = clock_in(zhiban_api, "✅")
                    echo_act = clock_in(echoes, ECHO_EDITED)
                else:
                    accept: Callable[[str], bool] = (
                        (lambda d: d.startswith("ck:n:"))
                        if workload == "checkin"
                        else (lambda d: d == ReportChoice("send").data)
                    )
                    zhiban_act = press(
                        zhiban_api,
                        {chat: button(zhiban_api, chat, accept) for chat in chats},
                        queries,
                    )
                    echo_act = press(echoes, await _echo_buttons(echoes, chats), [])
                warm_up = chats[:WARM_UP]
                await timed_round(zhiban_api, warm_up, zhiban_act)
                await timed_round(echoes, warm_up, echo_act)
                await stack.settle()
                zhiban: list[Round] = []
                echo: list[Round] = []
                statements = calls = echo_calls = 0
                kinds: Counter[str] = Counter()
                for index in range(ROUNDS):
                    first = WARM_UP + index * mode.people
                    wave = chats[first : first + mode.people]
                    before = _sent(zhiban_api)
                    with counter.measuring():
                        zhiban.append(await timed_round(zhiban_api, wave, zhiban_act))
                        await stack.settle()  # what the updates set going is counted too
                        statements += counter.total
                        kinds.update(counter.kinds)
                    calls += _sent(zhiban_api) - before
                    before = _sent(echoes)
                    echo.append(await timed_round(echoes, wave, echo_act))
                    echo_calls += _sent(echoes) - before
                found[workload] = Figures(
                    zhiban=tuple(zhiban),
                    echo=tuple(echo),
                    statements=statements / (ROUNDS * mode.people),
                    calls=calls / (ROUNDS * mode.people),
                    echo_calls=echo_calls / (ROUNDS * mode.people),
                    stored=await _stored(db, workload, groups[workload]),
                    expected=per,
                    people=mode.people,
                    unanswered=sum(1 for query in queries if query.answer is None),
                    kinds=tuple(
                        (kind, n / (ROUNDS * mode.people)) for kind, n in kinds.most_common(15)
                    ),
                )
            event.remove(db.engine.sync_engine, "before_cursor_execute", counter)
    return found


def _sent(emulator: BotApiEmulator) -> int:
    """Bot API calls the bot has made so far, its polling left out."""
    return sum(1 for call in emulator.calls if call.method.lower() != "getupdates")


async def _stored(db: Database, workload: str, people: Sequence[Leader]) -> int:
    """Clock-ins, answered check-ins or incidents of these people in the database."""
    ids = [someone.person_id for someone in people]
    if workload == "clock_in":
        return await count_clock_ins(db)
    if workload == "checkin":
        return await _count(
            db,
            sa.select(sa.func.count())
            .select_from(Checkin)
            .where(col(Checkin.person_id).in_(ids), col(Checkin.answered_at).is_not(None)),
        )
    return await _count(
        db,
        sa.select(sa.func.count()).select_from(Incident).where(col(Incident.reporter_id).in_(ids)),
    )


async def run(options: Options) -> Result:
    """Every workload in both modes; one line, and bench/results/throughput.json."""
    by_mode = {mode.name: await run_mode(options, mode) for mode in MODES}
    passed = all(
        figures.ratio >= mode.target and figures.complete
        for mode in MODES
        for figures in by_mode[mode.name].values()
    )
    parts = []
    for mode in MODES:
        shown = " ".join(
            f"{workload}={f.zhiban_rate:.0f}/{f.echo_rate:.0f}/s x{f.ratio:.2f}"
            f" sql={f.statements:.1f} api={f.calls:.1f}/{f.echo_calls:.1f}"
            f"{f' unanswered={f.unanswered}' if f.unanswered else ''}"
            f"{'' if f.complete else ' INCOMPLETE'}"
            for workload, f in by_mode[mode.name].items()
        )
        parts.append(f"{mode.name}(>={mode.target:g}): {shown}")
    stored = " ".join(
        f"{workload}={f.stored}/{f.expected}"
        for mode in MODES
        for workload, f in by_mode[mode.name].items()
    )
    figures = (
        f"{'; '.join(parts)}; zhiban/echo per s, ratio,"
        " SQL statements and Bot API calls (zhiban/echo) per update;"
        f" in_db {stored} N={'/'.join(str(m.people) for m in MODES)} [{options.backend}]"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    kept[options.backend] = {
        "benchmark": "throughput",
        "passed": passed,
        "modes": {
            mode.name: {
                "messages_per_second": mode.messages_per_second or 30.0,
                "telegram_limits_enforced": mode.enforce,
                "people_per_round": mode.people,
                "rounds": ROUNDS,
                "target_ratio": mode.target,
                "workloads": {
                    workload: {
                        "zhiban_per_s": round(f.zhiban_rate, 1),
                        "echo_per_s": round(f.echo_rate, 1),
                        "ratio": round(f.ratio, 3),
                        "zhiban_rounds": [round(r.rate, 1) for r in f.zhiban],
                        "echo_rounds": [round(r.rate, 1) for r in f.echo],
                        "answered": [r.answered for r in (*f.zhiban, *f.echo)],
                        "statements_per_update": round(f.statements, 2),
                        "bot_api_calls_per_update": round(f.calls, 2),
                        "echo_bot_api_calls_per_update": round(f.echo_calls, 2),
                        "unanswered_presses": f.unanswered,
                        "stored": f.stored,
                        "expected": f.expected,
                    }
                    for workload, f in by_mode[mode.name].items()
                },
            }
            for mode in MODES
        },
    }
    RESULTS.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n")
    details = tuple(
        f"{mode.name} {workload}: {n:5.2f} {kind}"
        for mode in MODES
        for workload, f in by_mode[mode.name].items()
        for kind, n in f.kinds
    )
    return Result("throughput", passed, figures, details)
