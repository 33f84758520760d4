"""Check-ins: a round for 500 schools × 3 on duty, prompted at Telegram's rate, every answer kept.

The real bot (`LocalStack`, system clock, the emulator enforcing Telegram's limits) and 500
schools, each with a leader of the day and two staff on shift, all linked and started: 1,500
people on duty. A round falls due two seconds after it is scheduled, as the planner schedules
it; the engine writes 1,500 check-ins and prompts, and the outbox sender sends them. Then all
1,500 press ✅ All normal in one burst (well within one minute), and the database must hold
every answer, each once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from support import (
    FIRST_CHAT,
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

from bot.callbacks import CheckinNormal
from bot.clock import SystemClock
from bot.models import Account, Checkin, Person, RoleGrant, Shift, ShiftKind
from bot.sandbox import BotApiEmulator
from bot.sandbox.stack import LocalStack
from bot.services import checkins, deadlines
from bot.services.checkins.rounds import ROUND_SUBJECT, round_key
from bot.uow import Database

SCHOOLS = 500
PER_SCHOOL = 3
PEOPLE = SCHOOLS * PER_SCHOOL
TELEGRAM_RATE = 30.0
TARGET_RATE = 0.95 * TELEGRAM_RATE
LEAD = timedelta(seconds=2)
ANSWER_WINDOW = 60.0  # seconds in which every answer must arrive
SPREAD = 50.0  # the answers arrive evenly over this many seconds, within that minute


async def _staff(db: Database, leaders: list[Leader], now: datetime) -> list[Leader]:
    """Two linked staff per school, and everyone's shift covering the round."""
    linked_at = now - timedelta(days=1)
    staff: list[Leader] = []
    async with db.uow() as uow:
        session = uow.session
        people = []
        for index, leader in enumerate(leaders):
            for n in range(PER_SCHOOL - 1):
                number = SCHOOLS + index * (PER_SCHOOL - 1) + n
                people.append(
                    (
                        leader.unit_id,
                        Person(
                            staff_no=f"B{number:05d}",
                            name=f"值班{number}",
                            unit_id=leader.unit_id,
                            phone=f"1390000{number:04d}",
                        ),
                    )
                )
        session.add_all([person for _unit, person in people])
        await session.flush()
        for offset, (unit_id, person) in enumerate(people):
            assert person.id is not None
            chat = FIRST_CHAT + SCHOOLS + offset
            staff.append(Leader(unit_id=unit_id, person_id=person.id, chat_id=chat))
            session.add(RoleGrant(person_id=person.id, role="staff", unit_id=unit_id))
            session.add(
                Account(person_id=person.id, external_id=chat, chat_id=chat, linked_at=linked_at)
            )
        for index, someone in enumerate([*leaders, *staff]):
            session.add(
                Shift(
                    unit_id=someone.unit_id,
                    post="带班" if index < len(leaders) else f"值班室{index}",
                    start=now - timedelta(hours=1),
                    end=now + timedelta(hours=11),
                    person_id=someone.person_id,
                    kind=ShiftKind.LEADER if index < len(leaders) else ShiftKind.STAFF,
                    planned_at=now,  # no shift reminders: this is about the round
                )
            )
        await uow.commit()
    return staff


async def _press_all(
    emulator: BotApiEmulator, everyone: list[Leader], ids: dict[int, int]
) -> float:
    """Every person presses ✅ All normal on their prompt; return how long the burst took."""
    started = time.monotonic()
    gap = SPREAD / len(everyone)
    for index, someone in enumerate(everyone):
        user = emulator.user(someone.chat_id, f"值班{someone.chat_id - FIRST_CHAT}")
        prompt = user.last()
        await user.press_data(prompt.message_id, CheckinNormal(ids[someone.person_id]).data)
        await asyncio.sleep(max(0.0, started + (index + 1) * gap - time.monotonic()))
    return time.monotonic() - started


async def _recorded(db: Database, due: datetime) -> tuple[int, int]:
    async with db.read() as uow:
        answered = (
            await uow.session.exec(
                select(func.count())
                .select_from(Checkin)
                .where(Checkin.due_at == due, col(Checkin.answered_at).is_not(None))
            )
        ).one()
        total = (
            await uow.session.exec(
                select(func.count()).select_from(Checkin).where(Checkin.due_at == due)
            )
        ).one()
    return int(answered), int(total)


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
            everyone = [*leaders, *await _staff(stack.db, leaders, clock.now())]
            press_start(emulator, everyone)
            wall = WallClock()
            due = clock.now() + LEAD
            async with stack.db.uow() as uow:
                await deadlines.schedule(
                    uow.session,
                    key=round_key(due, "round"),
                    kind=checkins.KIND_ROUND,
                    subject_type=ROUND_SUBJECT,
                    subject_id=int(due.timestamp()) // 60,
                    due_at=due,
                    now=clock.now(),
                )
                await uow.commit()
            stack.runtime.wake()
            chats = {someone.chat_id for someone in everyone}
            sent = await wait_for_sends(emulator, chats, within=90)
            refused = emulator.count_status(429)
            async with stack.db.read() as uow:
                rows = (
                    await uow.session.exec(
                        select(Checkin.person_id, Checkin.id).where(Checkin.due_at == due)
                    )
                ).all()
            ids = {person_id: checkin_id or 0 for person_id, checkin_id in rows}
            answers_started = time.monotonic()
            burst = await _press_all(emulator, everyone, ids)
            deadline = answers_started + 120
            answered, total = await _recorded(stack.db, due)
            while answered < PEOPLE and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                answered, total = await _recorded(stack.db, due)
            recorded_after = time.monotonic() - answers_started
            await asyncio.sleep(1.0)  # a second press would show up as a refusal, not a row
            answered, total = await _recorded(stack.db, due)
            refused_after = emulator.count_status(429)
            by_method: dict[str, int] = {}
            for call in emulator.calls:
                if call.status == 429:
                    by_method[call.method] = by_method.get(call.method, 0) + 1
            toasts = sum(
                1 for call in emulator.calls_of("answerCallbackQuery") if call.status == 200
            )
    if len(sent) < 2:
        return Result("checkins", False, f"only {len(sent)}/{PEOPLE} prompts arrived")
    times = [call.at for call in sent]
    span = times[-1] - times[0]
    rate = (len(sent) - 1) / span if span > 0 else float("inf")
    start_delay = (wall.utc(times[0]) - due.astimezone(UTC)).total_seconds()
    delivered = len({int(call.params["chat_id"]) for call in sent})
    passed = (
        rate >= TARGET_RATE
        and refused == 0
        and delivered == PEOPLE
        and total == PEOPLE
        and answered == PEOPLE
        and burst <= ANSWER_WINDOW
    )
    figures = (
        f"rate={rate:.2f} msg/s 429s={refused} prompts={delivered}/{PEOPLE} span={span:.2f}s"
        f" peak_1s={peak_in_window(times)} first_after_due={start_delay:.2f}s"
        f" checkins={total} answers_pressed_in={burst:.1f}s recorded={answered}/{PEOPLE}"
        f" all_recorded_after={recorded_after:.1f}s 429s_after_answers={refused_after}"
        f" {by_method} answered_presses={toasts}"
        f" (target >= {TARGET_RATE:.1f} msg/s, 0 x 429, every answer kept) [{options.backend}]"
    )
    return Result("checkins", passed, figures)
