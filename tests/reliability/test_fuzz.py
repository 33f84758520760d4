"""Thousands of generated updates through the real bot: nothing breaks, nobody gains a power.

Hypothesis draws sequences of updates from linked people, strangers and groups: text (NUL,
control and right-to-left characters, far over Telegram's limits), commands with junk and deep
links (/summary with its periods and units, /board, /report, /followup, /final, /heard, /drill,
/incidents…), real button data harvested from the bot's messages and mutations of it (other
ids, huge and non-ASCII digits, unknown prefixes), forged `bd:<unit>:<page>` board presses,
locations (NaN, infinities, out of range, negative accuracy), media, and jumps of the clock.
Between them the district lives on: incidents are reported through the real service (their
pages carry acknowledge, pass up, direct report, resolve and phone buttons), shifts are added
ahead of the clock (clock-in, check-in and swap buttons keep coming), and the daily report and
digest fall due as the clock moves. Acknowledge links (`/a/<token>` on the ops port) are opened
and posted over HTTP: signed for the paged person, for someone else, for nobody on the roster,
expired, replayed, forged with another secret, mutated, truncated, junk. Everything goes
through the local Bot API emulator (or the ops port) into the real Application, on SQLite
(1,500 updates a run) and PostgreSQL (500).

After every sequence the invariants hold:
- no ERROR log line, and no traceback text in any chat;
- every button press was answered exactly once;
- the roster (people, roles) is as imported, every account came from an invite, every shift has
  its owner or one an approved swap gave it (approved by a leader who was neither party);
- every acknowledgement and resolution of a page was made by someone allowed: never by a person
  the matter is about, always by the paged person or a role covering the unit;
- every check-in was answered by the person who owed it; every daily report was submitted by a
  leader of the school itself; every incident was reported by someone allowed to report (or to
  start a drill) at its unit;
- a board press for a unit the presser does not cover showed nothing of that unit's board;
- every refused link answered 4xx with one sentence (in each language when the token cannot be
  read) and changed nothing; no link answered 5xx.

Under CI (`CI=true`) the examples are derandomised, so a run is repeatable; locally each run
explores new ones. `ZHIBAN_FUZZ_UPDATES=N` sends N updates instead (the long run: 100,000, in
examples of 50, the emulator's logs trimmed after each so memory stays flat).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import resource
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from factories import District, build_district
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from bot.authz import Action, allowed, may_press_page, may_submit_daily_report
from bot.clock import MovableClock
from bot.config import DatabaseSettings, Severity, settings_from_mapping
from bot.db import create_engine
from bot.errors import ZhibanError
from bot.models import (
    Account,
    AuditEntry,
    Checkin,
    DailyReport,
    Escalation,
    EscalationLevel,
    Incident,
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
from bot.services import ack_links, contacts
from bot.services.incidents.kinds import Category
from bot.services.incidents.reporting import ReportDraft, report
from bot.uow import Database

START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
PER_EXAMPLE = 50
# CI's sizes: the whole of tests/reliability stays within 5 minutes on two cores.
SQLITE_UPDATES = 1_500
POSTGRESQL_UPDATES = 500
UPDATES = int(os.environ.get("ZHIBAN_FUZZ_UPDATES", "0")) or None
# Real seconds the bot may take to send what is due after a step. A long run shares the machine
# for hours (a first one, niced, timed out at 10 s while other work held both cores); a
# genuinely stuck message still fails it.
SETTLE_WITHIN = 120.0 if UPDATES else 10.0
SECRET = "fuzz-link-secret-0123456789abcdef0123456789"


def _examples(default_updates: int) -> int:
    return max(1, (UPDATES or default_updates) // PER_EXAMPLE)


COMMANDS = [
    "start", "help", "me", "lang", "unit", "invite", "bindgroup", "shifts", "calendar", "in", "out",
    "swap", "report", "board", "nonsense", "followup", "final", "heard", "incidents", "incident",
    "drill", "drills", "summary", "cancel",
]  # fmt: skip
ARGUMENTS = [
    "S", "T", "C", "S2", "unit S", "T007", "unit", "week", "month", "term", "week S", "term T",
    "month C", "week S2", "term nonsense", "20261201-001", "fire", "serious",
]  # fmt: skip
# How a link's token is made: signed for the paged person or someone else, or spoiled.
LINK_FORMS = [
    "paged", "paged", "other", "nobody", "gone", "expired", "forged", "mutated", "truncated",
    "replayed", "junk",
]  # fmt: skip
# Who reports incidents through the service, and who is put on added shifts.
REPORTERS = ["staff", "leader", "leader2", "safety", "principal", "nolink"]
ON_SHIFT = ["staff", "nolink", "leader", "leader2"]
JUNK = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40
)
# Far over Telegram's 4,096 characters, drawn small: a long example would outgrow hypothesis's
# buffer, and an overrun example is dropped (not counted, not checked) after sending its steps.
LONG = st.builds(
    lambda piece, size: (piece * size)[:size],
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8
    ),
    st.integers(4000, 5000),
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
    # forged board presses: (presser, query, unit code, transcript length before the press)
    board_presses: list[tuple[SimUser, Any, str, int]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # tokens that acted once (for replays)
    link_answers: Counter[int] = field(default_factory=Counter)
    # what the checks have seen: who decided each matter, the last audit entry and incident
    decided: dict[int, list[int | None]] = field(default_factory=dict)
    seen_audit: int = 0
    seen_incident: int = 0
    started: float = 0.0
    spent: Counter[str] = field(default_factory=Counter)  # seconds by kind of step
    errors: list[logging.LogRecord] = field(default_factory=list)  # ERROR lines logged so far
    pressed: Counter[str] = field(default_factory=Counter)  # real buttons pressed, by prefix
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
    # The link secret puts the acknowledge link's page on the ops port.
    settings = settings_from_mapping(
        {"database": {"url": database_url}, "telegram": {"messages_per_second": 100_000}},
        environ={"ZHIBAN_LINK_SECRET": SECRET},
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
                errors=errors.records,
            )
            shared.roster = await _roster(stack.db)
            shared.started = time.monotonic()
            yield shared
            await _idle(stack)
            if UPDATES:  # the long run says what it did
                print(f"\nfuzz: done, {_progress(shared)}", file=sys.stderr)
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
    """The bot's newest messages in a user's chat, raw (a view of every message costs too much).

    Message ids only grow and the chat keeps them in the order sent, so the newest are read
    from the end: a long run's chats hold tens of thousands of messages.
    """
    messages = user._chat.messages
    newest = []
    for message_id in reversed(messages):
        if messages[message_id].from_bot:
            newest.append(messages[message_id])
            if len(newest) == count:
                break
    return [message for message in reversed(newest) if not message.deleted]


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
                "incident",
                "shift",
                "link",
                "link",
                "board",
            ]
        )
    )
    everyone = [*world.people.values(), *world.strangers]
    who = draw(st.sampled_from(everyone))
    if kind == "text":
        body = draw(st.one_of(JUNK, NASTY, LONG))
        return kind, (who, body or " ")
    if kind == "command":
        name = draw(st.sampled_from(COMMANDS))
        tail = draw(st.one_of(st.just(""), JUNK, NASTY, st.sampled_from(ARGUMENTS)))
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
    if kind == "incident":
        return kind, (
            draw(st.sampled_from(REPORTERS)),
            draw(st.sampled_from(list(Category))),
            draw(st.sampled_from(list(Severity))),
            draw(st.booleans()),  # a direct report to the county (serious and above only)
            draw(st.integers(0, 120)),  # minutes since it happened
            draw(st.booleans()),  # a drill
        )
    if kind == "shift":
        return kind, (
            draw(st.sampled_from(ON_SHIFT)),
            draw(st.integers(0, 36)),  # starts this many five minutes from now
            draw(st.integers(1, 12)),  # hours long
        )
    if kind == "link":
        return kind, (
            draw(st.integers(0, 10_000)),  # which page
            draw(st.sampled_from(LINK_FORMS)),
            draw(st.sampled_from(["GET", "POST", "POST"])),
            draw(st.sampled_from(["ack", "up", "", "resolve", "ack\x00", "x" * 300])),
            draw(JUNK),
            draw(st.integers(0, 10_000)),
        )
    if kind == "board":
        return kind, (
            who,
            draw(st.integers(0, 10_000)),  # which unit
            draw(st.sampled_from(["0", "1", "999", "1000", "-1", "²", "00", ""])),
        )
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
        world.pressed[data.split(":")[0] if kind == "press" else "forged"] += 1
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
        await world.stack.settle(within=SETTLE_WITHIN)
    elif kind == "incident":
        await _report(world, *args)
    elif kind == "shift":
        await _add_shift(world, *args)
    elif kind == "link":
        await _link(world, *args)
    elif kind == "board":
        await _press_board(world, *args)
    await _idle(world.stack)


async def _report(
    world: World,
    key: str,
    category: Category,
    severity: Severity,
    direct: bool,
    minutes: int,
    drill: bool,
) -> None:
    """An incident reported through the service, as the /report conversation stores it."""
    runtime = world.stack.runtime
    assert runtime is not None
    now = world.clock.now()
    draft = ReportDraft(
        category=category,
        severity=severity,
        place="操场 <b>&amp;",
        # (as the conversation hands it over: handlers/edge.py has removed NULs by then)
        description=f"第{world.steps}步：\u202e 烟雾 <i>",
        occurred_at=now - timedelta(minutes=minutes),
        direct=direct,
    )
    with contextlib.suppress(ZhibanError):  # a drill by staff, a general matter sent direct
        await report(
            world.db,
            person_id=world.district.people[key],
            draft=draft,
            now=now,
            policies=runtime.settings.escalation,
            ctx=runtime.paging,
            drill=drill,
        )
    runtime.wake()
    await world.stack.settle(within=SETTLE_WITHIN)


async def _add_shift(world: World, key: str, fives: int, hours: int) -> None:
    """A shift added ahead of the clock, as a roster import would add it."""
    start = world.clock.now().replace(second=0, microsecond=0) + timedelta(minutes=5 * fives)
    leader = key.startswith("leader")
    async with world.db.uow() as uow:
        shift = Shift(
            unit_id=world.district.units["S"],
            post=f"{'带班' if leader else '值班室'}{len(world.owners)}",
            start=start,
            end=start + timedelta(hours=hours),
            person_id=world.district.people[key],
            kind=ShiftKind.LEADER if leader else ShiftKind.STAFF,
        )
        uow.session.add(shift)
        await uow.session.flush()
        assert shift.id is not None
        world.owners[shift.id] = shift.person_id
        await uow.commit()
    assert world.stack.runtime is not None
    world.stack.runtime.wake()


def _token(
    world: World, form: str, page: tuple[int, int], someone: int, pick: int, junk: str
) -> str:
    page_id, person_id = page
    now = world.clock.now()

    def signed(page_id: int, person_id: int, *, expires: timedelta = timedelta(hours=24)) -> str:
        return ack_links.make_token(
            SECRET,
            page_id=page_id,
            person_id=person_id,
            expires_at=now + expires,
            nonce=os.urandom(ack_links.NONCE_BYTES),
        )

    good = signed(page_id, person_id)
    if form == "other":
        return signed(page_id, someone)
    if form == "nobody":
        return signed(page_id, 2**31 - 1)
    if form == "gone":
        return signed(2**31 - 1, person_id)
    if form == "expired":
        return signed(page_id, person_id, expires=-timedelta(seconds=1 + pick))
    if form == "forged":
        return ack_links.make_token(
            "another-secret-" + SECRET,
            page_id=page_id,
            person_id=person_id,
            expires_at=now + timedelta(hours=1),
            nonce=os.urandom(ack_links.NONCE_BYTES),
        )
    if form == "mutated":
        at = pick % len(good)
        return good[:at] + ("A" if good[at] != "A" else "B") + good[at + 1 :]
    if form == "truncated":
        return good[: 1 + pick % (len(good) - 1)]
    if form == "replayed" and world.links:
        return world.links[pick % len(world.links)]
    if form == "junk":
        # (a slash or a dot segment would be another address, not a token)
        return "x" + junk.replace("/", "_")
    return good


async def _decisions(db: Database) -> tuple[set[tuple[Any, ...]], int]:
    """What a press on a link decides: who acknowledged or resolved what, and links used.

    Only decisions, not the pages and matters themselves: the engine's poll may page and start
    matters meanwhile, while the clock stands where the last step left it.
    """
    async with db.read() as uow:
        session = uow.session
        matters = (
            await session.exec(
                select(
                    Escalation.id, Escalation.acknowledged_by_id, Escalation.resolved_by_id
                ).where(
                    sa.or_(
                        col(Escalation.acknowledged_by_id).is_not(None),
                        col(Escalation.resolved_by_id).is_not(None),
                    )
                )
            )
        ).all()
        levels = (
            await session.exec(
                select(
                    EscalationLevel.escalation_id,
                    EscalationLevel.level,
                    EscalationLevel.acknowledged_by_id,
                ).where(col(EscalationLevel.acknowledged_by_id).is_not(None))
            )
        ).all()
        used = (
            await session.exec(
                select(sa.func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == ack_links.USED)
            )
        ).one()
    return {("matter", *row) for row in matters} | {("level", *row) for row in levels}, used


async def _link(
    world: World, pick: int, form: str, method: str, action: str, junk: str, other: int
) -> None:
    """Open or post an acknowledge link: a refusal is 4xx, one sentence, and changes nothing."""
    async with world.db.read() as uow:
        # every other link is for a page still active: most pages of a long run are closed
        statement = select(Page.id, Page.person_id).order_by(col(Page.id))
        if pick % 2:
            statement = statement.where(Page.status == "active")
        pages = (await uow.session.exec(statement)).all()
        people = (await uow.session.exec(select(Person.id).order_by(col(Person.id)))).all()
    page = pages[pick % len(pages)] if pages else (1, people[0])
    replay = form == "replayed" and bool(world.links)
    token = _token(
        world, form, (page[0] or 0, page[1]), people[other % len(people)] or 0, other, junk
    )
    url = f"{world.stack.ops_url}{ack_links.PATH}{urllib.parse.quote(token, safe='')}"
    before = await _decisions(world.db)
    async with aiohttp.ClientSession() as http:
        if method == "GET":
            async with http.get(url) as response:
                status, body = response.status, await response.text()
        else:
            async with http.post(url, data={"action": action}) as response:
                status, body = response.status, await response.text()
    world.link_answers[status] += 1
    assert status in (200, 400, 403, 404, 409, 410), (form, method, action, status, body)
    assert not TRACEBACK.search(body), body
    if replay and method == "POST" and action in ("ack", "up"):
        # a link acts once, whatever the action (unless it has expired since)
        assert status in (409, 410), (status, body)
    if status == 200:
        if method == "POST":
            assert body.count('id="result"') == 1, body
            after = await _decisions(world.db)
            if after[1] != before[1]:  # it acted, and marked the link used
                world.links.append(token)
        return
    sentences = body.count('class="refused"')
    unreadable = form in ("forged", "mutated", "truncated", "junk")
    assert sentences == (2 if unreadable else 1), (form, status, body)
    assert "<form" not in body, body
    assert await _decisions(world.db) == before, (form, method, action, status)


async def _press_board(world: World, who: SimUser, pick: int, page: str) -> None:
    """A `bd:<unit>:<page>` press forged for any unit of the district, on the presser's message."""
    mine = _recent(who, 1)
    if not mine:
        return
    units = sorted(world.district.units.items())
    code, unit_id = units[pick % len(units)]
    mark = len(world.stack.emulator.world.entries)
    query = await who.press_data(mine[-1].message_id, f"bd:{unit_id}:{page}"[:64])
    world.presses.append(query)
    world.board_presses.append((who, unit_id, code, mark))


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
    await _check_board_presses(world, transcript)
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
        # (one row a shift; only a shift whose owner changed is looked at closely)
        for shift_id, owner, unit_id in (
            await session.exec(select(Shift.id, Shift.person_id, Shift.unit_id))
        ).all():
            assert shift_id is not None
            if owner == world.owners.get(shift_id):
                continue
            swap = approved.get(shift_id)
            assert swap is not None and swap.to_person_id == owner, (shift_id, owner)
            assert swap.decided_by_id not in (swap.from_person_id, swap.to_person_id)
            grants = await contacts.grants_of(session, swap.decided_by_id or 0)
            unit = await contacts.unit(session, unit_id)
            assert any(
                g.role in ("duty_leader", "principal", "safety_officer", "officer", "desk")
                and unit.path.startswith(g.unit_path)
                for g in grants
            )
        # Who decided each matter, read in bulk; a matter is looked at closely when that changed
        # (a long run holds thousands of matters).
        decided: dict[int, list[int | None]] = {}
        for escalation_id, resolved_by in (
            await session.exec(select(Escalation.id, Escalation.resolved_by_id))
        ).all():
            decided[escalation_id or 0] = [resolved_by]
        for escalation_id, acknowledged_by in (
            await session.exec(
                select(EscalationLevel.escalation_id, EscalationLevel.acknowledged_by_id)
                .where(col(EscalationLevel.acknowledged_by_id).is_not(None))
                .order_by(col(EscalationLevel.id))
            )
        ).all():
            decided[escalation_id].append(acknowledged_by)
        changed = [e for e, who in decided.items() if world.decided.get(e) != who]
        world.decided = decided
        for escalation_id in changed:
            escalation = await session.get(Escalation, escalation_id)
            assert escalation is not None
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

        for answered, checkin in (
            await session.exec(
                select(AuditEntry, Checkin)
                .join(Checkin, col(Checkin.id) == AuditEntry.subject_id)
                .where(
                    AuditEntry.action == "checkin.answer",
                    col(AuditEntry.allowed).is_(True),  # refused presses are audited too
                    col(AuditEntry.id) > world.seen_audit,
                )
            )
        ).all():
            assert answered.actor_person_id == checkin.person_id, (answered, checkin)
            world.seen_audit = max(world.seen_audit, answered.id or 0)
        for daily in (
            await session.exec(select(DailyReport).where(col(DailyReport.submitted_by_id) > 0))
        ).all():
            grants = await contacts.grants_of(session, daily.submitted_by_id or 0)
            unit = await contacts.unit(session, daily.unit_id)
            assert may_submit_daily_report(grants, unit.path), daily
        for incident in (
            await session.exec(select(Incident).where(col(Incident.id) > world.seen_incident))
        ).all():
            world.seen_incident = max(world.seen_incident, incident.id or 0)
            if incident.reporter_id is None:
                continue
            grants = await contacts.grants_of(session, incident.reporter_id)
            unit = await contacts.unit(session, incident.unit_id)
            needed = Action.DRILL_START if incident.is_drill else Action.INCIDENT_REPORT
            assert allowed(grants, needed, unit.path), incident
    # The emulator's logs were read: drop them, so a long run's memory stays flat.
    world.stack.emulator.calls.clear()
    world.calls_seen = 0
    world.stack.emulator.world.entries.clear()
    world.transcript_seen = 0


async def _check_board_presses(world: World, transcript: list[Any]) -> None:
    """A board press for a unit outside the presser's area showed nothing of its board."""
    async with world.db.read() as uow:
        session = uow.session
        for who, unit_id, code, mark in world.board_presses:
            account = (
                await session.exec(select(Account).where(Account.external_id == who.user_id))
            ).first()
            unit = await contacts.unit(session, unit_id)
            if account is not None:
                grants = await contacts.grants_of(session, account.person_id)
                if allowed(grants, Action.BOARD_VIEW, unit.path):
                    continue
            for entry in transcript[mark:]:
                if entry.chat_id == who.user_id and entry.from_bot and "📋" in entry.text:
                    assert f"({code})" not in entry.text and f"（{code}）" not in entry.text, (
                        f"{who.name} saw the board of {code}: {entry.text}"
                    )
    world.board_presses.clear()


async def _run(world: World, data: st.DataObject, target: int) -> None:
    world.target = _examples(target) * PER_EXAMPLE
    for _ in range(PER_EXAMPLE):
        step = data.draw(_step(world))
        began = time.monotonic()
        await _apply(world, step)
        world.spent[step[0]] += time.monotonic() - began
        world.steps += 1
    began = time.monotonic()
    await _check(world)
    world.spent["check"] += time.monotonic() - began
    if UPDATES and world.steps % 2_000 < PER_EXAMPLE:
        print(f"fuzz: {_progress(world)}", file=sys.stderr, flush=True)


def _progress(world: World) -> str:
    """Updates sent, time, memory now and at peak, where the clock stands: the long run's log."""
    with open("/proc/self/status") as status:
        rss = next((line.split()[1] for line in status if line.startswith("VmRSS")), "0")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return (
        f"{world.steps} updates in {time.monotonic() - world.started:.0f} s, "
        f"RSS {int(rss) // 1024} MB (peak {peak} MB), "
        f"clock at {world.clock.now():%Y-%m-%d %H:%M} UTC, "
        f"ERROR lines {len(world.errors)}, "
        f"link answers {dict(sorted(world.link_answers.items()))}, "
        f"buttons pressed {dict(world.pressed.most_common())}, "
        f"seconds by step {', '.join(f'{k} {v:.0f}' for k, v in world.spent.most_common())}"
    )


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
@_settings(SQLITE_UPDATES)
async def test_hostile_updates_on_sqlite(world: World, data: st.DataObject) -> None:
    await _run(world, data, SQLITE_UPDATES)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@given(data=st.data())
@_settings(POSTGRESQL_UPDATES)
async def test_hostile_updates_on_postgresql(world: World, data: st.DataObject) -> None:
    await _run(world, data, POSTGRESQL_UPDATES)
