"""Clock-ins per second through the real bot, against a bare python-telegram-bot echo bot."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from support import (
    Leader,
    Options,
    Result,
    bench_settings,
    build_schools,
    press_start,
    temporary_database,
)
from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    BaseHandler,
    BaseUpdateProcessor,
    CommandHandler,
    ContextTypes,
)

from bot.clock import SystemClock
from bot.config import ShiftSettings, TelegramSettings
from bot.models import ClockEvent, Shift, ShiftKind
from bot.sandbox import BotApiEmulator
from bot.sandbox.stack import SANDBOX_TOKEN, LocalStack
from bot.services import attendance
from bot.uow import Database

PEOPLE = 300  # clock-ins per round
ROUNDS = 2  # Zhiban and the echo bot take turns, each round with its own people
WARM_UP = 5  # untimed clock-ins first, so neither bot pays its first-call costs in a round
TARGET_RATIO = 0.8
# The shifts start this long after the run begins: inside the 30-minute clock-in window, so
# every /in is an on-time clock-in, and their planned deadlines all fall due after the run.
SHIFT_LEAD = timedelta(minutes=20)
SHIFT_LENGTH = timedelta(hours=12)
ROUND_LIMIT = 30.0  # seconds a round may take before the missing replies count as lost
ZHIBAN_REPLY = "✅"  # how the bot's answer to a clock-in starts
ECHO_REPLY = "✅ echo"


@dataclass(frozen=True)
class Round:
    """One timed wave of /in: how many answered as expected, and how long it took."""

    answered: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Answered clock-ins per second."""
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0


async def run(options: Options) -> Result:
    """Time waves of /in on Zhiban and on the echo bot in turn; compare the median rates."""
    clock = SystemClock()
    zhiban: list[Round] = []
    echo: list[Round] = []
    async with temporary_database(options) as url:
        settings = bench_settings(url, messages_per_second=options.messages_per_second)
        async with LocalStack(settings, clock) as stack, echo_bot(settings.telegram) as echoes:
            assert stack.db is not None
            leaders = await build_schools(stack.db, WARM_UP + ROUNDS * PEOPLE)
            await add_shifts(stack.db, leaders, now=clock.now(), settings=settings.shifts)
            await stack.settle()
            press_start(stack.emulator, leaders)
            press_start(echoes, leaders)
            chats = [leader.chat_id for leader in leaders]
            warm_up, waves = chats[:WARM_UP], _waves(chats[WARM_UP:])
            await clock_in_wave(stack.emulator, warm_up, reply=ZHIBAN_REPLY)
            await clock_in_wave(echoes, warm_up, reply=ECHO_REPLY)
            for wave in waves:
                zhiban.append(await clock_in_wave(stack.emulator, wave, reply=ZHIBAN_REPLY))
                await stack.settle()  # the engine and sender woken by the clock-ins go idle
                echo.append(await clock_in_wave(echoes, wave, reply=ECHO_REPLY))
            stored = await count_clock_ins(stack.db)
    zhiban_rate = statistics.median(r.rate for r in zhiban)
    echo_rate = statistics.median(r.rate for r in echo)
    ratio = zhiban_rate / echo_rate if echo_rate > 0 else 0.0
    expected = WARM_UP + ROUNDS * PEOPLE
    all_answered = all(r.answered == PEOPLE for r in (*zhiban, *echo))
    passed = ratio >= TARGET_RATIO and all_answered and stored == expected
    figures = (
        f"zhiban={zhiban_rate:.1f}/s echo={echo_rate:.1f}/s ratio={ratio:.2f}"
        f" rounds zhiban={_rates(zhiban)} echo={_rates(echo)}"
        f" answered={sum(r.answered for r in zhiban)}+{sum(r.answered for r in echo)}"
        f"/{ROUNDS * PEOPLE}+{ROUNDS * PEOPLE} clock_ins_in_db={stored}/{expected}"
        f" N={PEOPLE} (target ratio >= {TARGET_RATIO:g},"
        f" messages_per_second={settings.telegram.messages_per_second:g}) [{options.backend}]"
    )
    return Result("clockin", passed, figures)


def _waves(chats: Sequence[int]) -> list[list[int]]:
    return [list(chats[i * PEOPLE : (i + 1) * PEOPLE]) for i in range(ROUNDS)]


def _rates(rounds: Sequence[Round]) -> str:
    return "/".join(f"{r.rate:.1f}" for r in rounds)


async def add_shifts(
    db: Database, leaders: Sequence[Leader], *, now: datetime, settings: ShiftSettings
) -> None:
    """Give every leader a shift at their school that opens for clock-in now, and plan it.

    Planning schedules each shift's reminder and missed-shift deadlines as production does,
    so a clock-in cancels real pending deadlines; none of them falls due during the run.
    """
    start = now + SHIFT_LEAD
    async with db.uow() as uow:
        uow.session.add_all(
            Shift(
                unit_id=leader.unit_id,
                post="值班室",
                start=start,
                end=start + SHIFT_LENGTH,
                person_id=leader.person_id,
                kind=ShiftKind.STAFF,
            )
            for leader in leaders
        )
        await uow.session.flush()
        await attendance.plan(uow.session, now=now, settings=settings)
        await uow.commit()


async def clock_in_wave(emulator: BotApiEmulator, chats: Sequence[int], *, reply: str) -> Round:
    """Every chat sends /in at once; wait until each got an answer; count the expected ones."""
    world = emulator.world
    seen = {chat_id: len(world.chats[chat_id].outputs) for chat_id in chats}
    waiting = set(chats)

    def all_answered() -> bool:
        waiting.difference_update(
            [chat_id for chat_id in waiting if len(world.chats[chat_id].outputs) > seen[chat_id]]
        )
        return not waiting

    users = [emulator.user(chat_id, f"值班{chat_id}") for chat_id in chats]
    started = time.monotonic()
    await asyncio.gather(*(user.send("/in") for user in users))
    with suppress(TimeoutError):  # the unanswered ones are counted below
        await asyncio.wait_for(world.wait_until(all_answered), ROUND_LIMIT)
    elapsed = time.monotonic() - started
    answered = 0
    for chat_id in chats:
        chat = world.chats[chat_id]
        fresh = chat.outputs[seen[chat_id] :]
        if fresh and world.view(chat.messages[fresh[0]]).text.startswith(reply):
            answered += 1
    return Round(answered=answered, elapsed=elapsed)


async def count_clock_ins(db: Database) -> int:
    """How many clock-ins the database holds."""
    async with db.uow() as uow:
        result = await uow.session.execute(
            sa.select(sa.func.count()).select_from(ClockEvent).where(col(ClockEvent.kind) == "in")
        )
        return int(result.scalar_one())


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer /in with a fixed text, sent as Zhiban sends its clock-in answer."""
    chat = update.effective_chat
    if chat is not None:
        await context.bot.send_message(chat.id, ECHO_REPLY)


@asynccontextmanager
async def echo_bot(
    telegram: TelegramSettings,
    handlers: Sequence[BaseHandler[Any, Any, Any]] = (),
    *,
    on_in: Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]] | None = None,
    updates: BaseUpdateProcessor | None = None,
) -> AsyncIterator[BotApiEmulator]:
    """A bare python-telegram-bot echo bot, built and polling as Zhiban is, on its own emulator.

    Only the handlers differ from `bot.app.build_application`: the same rate limiter with the
    same settings, the same polling, and by default python-telegram-bot's one update at a time
    (`updates` gives it another processor, bench/floor.py Zhiban's). Besides the /in answer
    (`on_in`, a fixed text by default) it has `handlers` (bench/throughput.py's other workloads).
    """
    emulator = BotApiEmulator()
    await emulator.start()
    try:
        builder = ApplicationBuilder()
        if updates is not None:
            builder = builder.concurrent_updates(updates)
        application = (
            builder.token(SANDBOX_TOKEN)
            .base_url(emulator.base_url)
            .base_file_url(emulator.base_file_url)
            .rate_limiter(
                AIORateLimiter(
                    overall_max_rate=telegram.messages_per_second,
                    group_max_rate=telegram.group_messages_per_minute,
                    max_retries=telegram.max_retries,
                )
            )
            .build()
        )
        application.add_handler(CommandHandler("in", on_in or _echo))
        for handler in handlers:
            application.add_handler(handler)
        updater = application.updater
        assert updater is not None
        async with application:
            await application.start()
            await updater.start_polling(
                poll_interval=0.0, timeout=10, allowed_updates=Update.ALL_TYPES
            )
            try:
                polling = emulator.world.wait_until(lambda: emulator.feed.polls_received > 0)
                await asyncio.wait_for(polling, 10)
                yield emulator
            finally:
                await updater.stop()
                await application.stop()
    finally:
        await emulator.stop()
