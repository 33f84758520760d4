"""Thousands of generated updates through the real bot: nothing breaks, nobody gains a power.

Hypothesis draws sequences of updates from linked people, strangers and groups: text (NUL,
control and right-to-left characters, far over Telegram's limits), commands with junk and deep
links, real button data harvested from the bot's messages and mutations of it (other ids, huge
and non-ASCII digits, unknown prefixes), locations (NaN, infinities, out of range, negative
accuracy), media, and jumps of the clock. They go through the local Bot API emulator into the
real Application, on SQLite (5,000 updates a run) and PostgreSQL (1,000).

After every sequence the invariants hold:
- no ERROR log line, and no traceback text in any chat;
- every button press was answered exactly once;
- the roster (people, roles) is as imported, every account came from an invite, every shift has
  its owner or one an approved swap gave it (approved by a leader who was neither party);
- every acknowledgement and resolution of a page was made by someone allowed: never by a person
  the matter is about, always by the paged person or a role covering the unit.

Under CI (`CI=true`) the examples are derandomised, so a run is repeatable; locally each run
explores new ones (`ZHIBAN_FUZZ_UPDATES` scales the count).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import District, build_district
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot.authz import Action, may_press_page
from bot.clock import MovableClock
from bot.config import DatabaseSettings, settings_from_mapping
from bot.db import create_engine
from bot.models import (
    Account,
    Escalation,
    EscalationLevel,
    Page,
    Person,
    RoleGrant,
    Shift,
    ShiftKind,
    ShiftSwap,
    Unit,
)
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.services import contacts
from bot.uow import Database

START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
PER_EXAMPLE = 50
UPDATES = int(os.environ.get("ZHIBAN_FUZZ_UPDATES", "0")) or None


def _examples(default_updates: int) -> int:
    return max(1, (UPDATES or default_updates) // PER_EXAMPLE)


COMMANDS = [
    "start", "help", "me", "lang", "unit", "invite", "bindgroup", "shifts", "calendar", "in", "out",
    "swap", "report", "board", "nonsense",
]  # fmt: skip
JUNK = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40
)
NASTY = st.sampled_from(
    [
        "\x00", "\x00\x00abc", "a\u202eb", "\u200b", "<b>", "</i>", "&amp;", "&#0;", "<a href='x'>",
        "1" * 40, "²", "٣", "-1", "9" * 13, "' OR 1=1 --", "@other_bot", "\n" * 50, "🚨" * 100,
    ]
)  # fmt: skip


@dataclass
class World:
    """The running bot, its people as the emulator sees them, and what a run must not break."""

    stack: LocalStack
    clock: MovableClock
    db: Database
    district: District
    people: dict[str, SimUser]
    strangers: list[SimUser]
    groups: list[Any]
    roster: tuple[Any, ...] = ()
    owners: dict[int, int | None] = field(default_factory=dict)
    presses: list[Any] = field(default_factory=list)
    calls_seen: int = 0
    transcript_seen: int = 0
    steps: int = 0
    target: int = 0


class ErrorLog(logging.Handler):
    """Collects every ERROR record from any logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _roster(db: Database) -> tuple[Any, ...]:
    async with db.read() as uow:
        people = (
            await uow.session.exec(
                select(Person.id, Person.staff_no, Person.name, Person.unit_id, Person.active)
            )
        ).all()
        grants = (
            await uow.session.exec(select(RoleGrant.person_id, RoleGrant.role, RoleGrant.unit_id))
        ).all()
        units = (await uow.session.exec(select(Unit.id, Unit.code, Unit.parent_id))).all()
    return (sorted(people), sorted(grants), sorted(units))


async def _seed(db: Database, district: District) -> dict[int, int | None]:
    """Shifts at the school over the next days, so clock-ins, swaps and missed shifts happen."""
    owners: dict[int, int | None] = {}
    async with db.uow() as uow:
        session = uow.session
        session.add(
            RoleGrant(
                person_id=district.people["principal"], role="admin", unit_id=district.units["S"]
            )
        )
        school = district.units["S"]
        for day in range(3):
            base = START + timedelta(days=day)
            for post, kind, who, hours in (
                ("值班室", ShiftKind.STAFF, "staff", 0),
                ("值班室", ShiftKind.STAFF, "nolink", 12),
                ("带班", ShiftKind.LEADER, "leader2" if day % 2 else "leader", 0),
            ):
                shift = Shift(
                    unit_id=school,
                    post=post,
                    start=base + timedelta(hours=hours),
                    end=base + timedelta(hours=hours + (24 if kind == ShiftKind.LEADER else 12)),
                    person_id=district.people[who],
                    kind=kind,
                )
                session.add(shift)
                await session.flush()
                assert shift.id is not None
                owners[shift.id] = shift.person_id
        await uow.commit()
    return owners


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    clock = MovableClock(START - timedelta(hours=2))
    # Telegram's 30 messages a second would make this a test of patience: the emulator does not
    # enforce it here, and the limiter is lifted so that thousands of updates fit in CI's time.
    settings = settings_from_mapping(
        {"database": {"url": database_url}, "telegram": {"messages_per_second": 100_000}},
        environ={},
    )
    seed_db = Database(create_engine(DatabaseSettings(url=database_url)))
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        async with LocalStack(settings, clock) as stack:
            assert stack.db is not None
            district = await build_district(stack.db)
            owners = await _seed(stack.db, district)
            people = {}
            for key, chat in district.chats.items():
                user = stack.emulator.user(chat, key, language_code="zh" if key != "desk" else "en")
                await user.start()
                people[key] = user
            strangers = [stack.emulator.user(90_000 + i, f"stranger{i}") for i in range(2)]
            bound = stack.emulator.group(-100_001, "石坝小学值班群")
            unbound = stack.emulator.group(-100_002, "闲聊群")
            await _idle(stack)
            await bound.send(people["principal"], "/bindgroup S")
            await _idle(stack)
            shared = World(
                stack=stack,
                clock=clock,
                db=stack.db,
                district=district,
                people=people,
                strangers=strangers,
                groups=[bound, unbound],
                owners=owners,
            )
            shared.roster = await _roster(stack.db)
            yield shared
            await _idle(stack)
            assert [r.getMessage() for r in errors.records] == []
            # hypothesis may stop early; the promise is a number of updates, so hold it
            assert shared.steps >= shared.target, f"only {shared.steps} updates were sent"
    finally:
        logging.getLogger().removeHandler(errors)
        await seed_db.dispose()


async def _idle(stack: LocalStack) -> None:
    """Wait until the bot has taken and handled every update sent so far."""
    assert stack.app is not None
    for _ in range(3):
        for _ in range(500):
            if stack.emulator.updates_pending() == 0:
                break
            await asyncio.sleep(0.002)
        await stack.app.update_queue.join()
        await asyncio.sleep(0)


def _recent(user: SimUser, count: int = 6) -> list[Any]:
    """The bot's newest messages in a user's chat, raw (a view of every message costs too much)."""
    chat = user._chat
    newest = sorted(m for m in chat.messages if chat.messages[m].from_bot)[-count:]
    return [chat.messages[m] for m in newest if not chat.messages[m].deleted]


def _harvest(world: World) -> list[tuple[SimUser, int, str]]:
    """Every button the bot shows anyone now: (who holds it, message id, callback data)."""
    found = []
    for user in [*world.people.values(), *world.strangers]:
        for message in _recent(user):
            markup = message.reply_markup or {}
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if "callback_data" in button:
                        found.append((user, message.message_id, button["callback_data"]))
    return found


def _mutate(data: str, choice: int, junk: str) -> str:
    """A forged variant of real button data."""
    digits = re.compile(r"[0-9]+")
    variants = [
        digits.sub("1", data),
        digits.sub("9" * 40, data),
        digits.sub("2147483648", data),
        digits.sub("²", data),
        digits.sub("٣", data),
        data + ":" + junk,
        junk + data,
        data.split(":")[0] + ":" + junk,
        data[: max(1, len(data) // 2)],
        digits.sub("0", data),
        digits.sub("-1", data),
    ]
    return variants[choice % len(variants)][:64] or "x"


def _float() -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=32.0, max_value=33.0),
        st.sampled_from([math.nan, math.inf, -math.inf, 91.0, -181.0, 1e308, -0.0]),
    )


@st.composite
def _step(draw: st.DrawFn, world: World) -> tuple[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "text",
                "command",
                "command",
                "press",
                "press",
                "forge",
                "location",
                "media",
                "group",
                "clock",
                "start",
            ]
        )
    )
    everyone = [*world.people.values(), *world.strangers]
    who = draw(st.sampled_from(everyone))
    if kind == "text":
        body = draw(st.one_of(JUNK, NASTY, st.text(min_size=4000, max_size=5000)))
        return kind, (who, body or " ")
    if kind == "command":
        name = draw(st.sampled_from(COMMANDS))
        tail = draw(
            st.one_of(
                st.just(""), JUNK, NASTY, st.sampled_from(["S", "T", "unit S", "T007", "unit"])
            )
        )
        at = draw(st.sampled_from(["", "", "@other_bot", "@zhiban_sandbox_bot"]))
        return kind, (who, f"/{name}{at} {tail}".rstrip() or "/")
    if kind == "start":
        return kind, (who, draw(st.one_of(JUNK, NASTY)))
    if kind in ("press", "forge"):
        # indices, resolved against the buttons on screen when the step runs
        return kind, (draw(st.integers(0, 10_000)), draw(st.integers(0, 50)), draw(JUNK))
    if kind == "location":
        return kind, (who, draw(_float()), draw(_float()), draw(st.one_of(st.none(), _float())))
    if kind == "media":
        return kind, (who, draw(st.sampled_from(["photo", "voice", "sticker", "document"])))
    if kind == "group":
        group = draw(st.sampled_from(world.groups))
        body = draw(st.one_of(st.sampled_from([f"/{c}" for c in COMMANDS]), JUNK, NASTY))
        return kind, (group, who, body or "/help")
    return kind, draw(st.integers(1, 240))


async def _apply(world: World, step: tuple[str, Any]) -> None:
    kind, args = step
    if kind in ("text", "command"):
        who, body = args
        await who.send(body[:5000])
    elif kind == "start":
        who, payload = args
        await who.start(payload or None)
    elif kind in ("press", "forge"):
        pick, variant, junk = args
        buttons = _harvest(world)
        if not buttons:
            return
        holder, message_id, data = buttons[pick % len(buttons)]
        if kind == "forge":
            data = _mutate(data, variant, junk)
            # a forged press may come from anyone who has a bot message to press on
            everyone = [u for u in [*world.people.values(), *world.strangers] if _recent(u, 1)]
            holder = everyone[pick % len(everyone)]
            message_id = _recent(holder, 1)[-1].message_id
        world.presses.append(await holder.press_data(message_id, data))
    elif kind == "location":
        who, lat, lon, accuracy = args
        await who.send_location(lat, lon, horizontal_accuracy=accuracy)
    elif kind == "media":
        who, media = args
        if media == "photo":
            await who.send_photo(caption="\x00 caption")
        elif media == "voice":
            await who.send_voice()
        elif media == "sticker":
            await who.send_sticker()
        else:
            await who.send_document("a.txt", b"\x00\x01")
    elif kind == "group":
        group, who, body = args
        await group.send(who, body)
    elif kind == "clock":
        world.clock.advance(timedelta(minutes=args))
        await world.stack.settle()
    await _idle(world.stack)


TRACEBACK = re.compile(r"Traceback|File \"|Exception|Error:|sqlalchemy|asyncpg")


async def _check(world: World) -> None:
    """The invariants of the module docstring."""
    await _idle(world.stack)
    # every press answered exactly once (only this example's presses and calls are counted)
    calls = world.stack.emulator.calls_of("answerCallbackQuery")
    answers = Counter(call.params.get("callback_query_id") for call in calls[world.calls_seen :])
    world.calls_seen = len(calls)
    for query in world.presses:
        assert answers[query.query_id] == 1, (
            f"press {query.data!r} answered {answers[query.query_id]}×"
        )
    world.presses.clear()
    # no traceback reached a chat
    transcript = world.stack.emulator.transcript()
    for entry in transcript[world.transcript_seen :]:
        if entry.from_bot:
            assert not TRACEBACK.search(entry.text), entry.text
    world.transcript_seen = len(transcript)
    db = world.db
    assert await _roster(db) == world.roster
    async with db.read() as uow:
        session = uow.session
        strangers = {u.user_id for u in world.strangers}
        accounts = (await session.exec(select(Account))).all()
        assert not [a for a in accounts if a.external_id in strangers]
        approved = {
            s.shift_id: s
            for s in (
                await session.exec(select(ShiftSwap).where(ShiftSwap.status == "approved"))
            ).all()
        }
        for shift in (await session.exec(select(Shift))).all():
            assert shift.id is not None
            if shift.person_id == world.owners.get(shift.id):
                continue
            swap = approved.get(shift.id)
            assert swap is not None and swap.to_person_id == shift.person_id, shift
            assert swap.decided_by_id not in (swap.from_person_id, swap.to_person_id)
            grants = await contacts.grants_of(session, swap.decided_by_id or 0)
            unit = await contacts.unit(session, shift.unit_id)
            assert any(
                g.role in ("duty_leader", "principal", "safety_officer", "officer", "desk")
                and unit.path.startswith(g.unit_path)
                for g in grants
            )
        for escalation in (await session.exec(select(Escalation))).all():
            subjects = {int(p) for p in (escalation.details or {}).get("exclude") or []}
            unit = await contacts.unit(session, escalation.unit_id)
            pages = (
                await session.exec(select(Page).where(Page.escalation_id == escalation.id))
            ).all()
            paged = {p.person_id for p in pages}
            levels = (
                await session.exec(
                    select(EscalationLevel).where(EscalationLevel.escalation_id == escalation.id)
                )
            ).all()
            deciders = [(escalation.resolved_by_id, Action.PAGE_RESOLVE)] + [
                (level.acknowledged_by_id, Action.PAGE_ACKNOWLEDGE) for level in levels
            ]
            for person_id, action in deciders:
                if person_id is None:
                    continue
                assert person_id not in subjects, escalation
                grants = await contacts.grants_of(session, person_id)
                assert person_id in paged or may_press_page(
                    grants,
                    action,
                    unit.path,
                    person_id=person_id,
                    paged_person_id=-1,
                    subject_ids=subjects,
                ), escalation


async def _run(world: World, data: st.DataObject, target: int) -> None:
    world.target = _examples(target) * PER_EXAMPLE
    for _ in range(PER_EXAMPLE):
        await _apply(world, data.draw(_step(world)))
        world.steps += 1
    await _check(world)


def _settings(updates: int) -> Any:
    return settings(
        max_examples=_examples(updates),
        deadline=None,
        derandomize=os.environ.get("CI") == "true",
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
        database=None,
        # The bot's state carries over from example to example, so an example cannot be
        # replayed or shrunk: a failure reports the steps drawn, as generated.
        phases=[Phase.explicit, Phase.generate],
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@given(data=st.data())
@_settings(5_000)
async def test_five_thousand_hostile_updates_on_sqlite(world: World, data: st.DataObject) -> None:
    await _run(world, data, 5_000)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@given(data=st.data())
@_settings(1_000)
async def test_a_thousand_hostile_updates_on_postgresql(world: World, data: st.DataObject) -> None:
    await _run(world, data, 1_000)
