"""What the reliability drills share: `zhiban run` processes, a planted county, counts of pages.

The drills run the product as an operator does (`python -m bot run`, its own system clock)
against the Bot API emulator in the test process, kill it with SIGKILL, and then read what the
database holds and what the emulator received.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import processes
import sqlalchemy as sa
from sqlmodel import col, select

from bot.models import (
    Account,
    Escalation,
    Incident,
    OutboxMessage,
    OutboxStatus,
    Page,
    Person,
    RoleGrant,
    Shift,
    Unit,
)
from bot.sandbox import BotApiEmulator
from bot.uow import Database

TOKEN = "765432:RELIABILITY-drill-token"
# Escalations planted by the drills page with this text; the number makes each one findable.
CHECK = "Reliability check {n}."


def process_env(config: Path) -> dict[str, str]:
    """The environment of a drill's `zhiban run` process with this configuration."""
    return processes.process_env(config, TOKEN)


def write_config(path: Path, url: str, emu: BotApiEmulator, extra: str = "") -> Path:
    """A config file: the database, the emulator as Telegram, no ops port, no daily digest."""
    path.write_text(
        f'[database]\nurl = "{url}"\n'
        # Other tests run bots on this machine at the same time.
        "[ops]\nport = 0\n"
        # The digest's hour must not bring 20 leaders a digest in the middle of a drill.
        "[digest]\nenabled = false\n"
        f'[telegram]\napi_base_url = "{emu.base_url}"\napi_file_url = "{emu.base_file_url}"\n'
        f"{extra}",
        encoding="utf-8",
    )
    return path


# The log lines a drill accepts: none yet. A line at ERROR, or a traceback, is a finding.
def log_problems(lines: list[str], expected: tuple[str, ...] = ()) -> list[str]:
    """Lines at ERROR or CRITICAL, and tracebacks, that are not among the expected ones."""
    found = []
    for line in lines:
        bad = " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        if bad and not any(text in line for text in expected):
            found.append(line)
    return found


@dataclass
class County:
    """A planted county: its schools' people and the chats they talk to the bot from."""

    schools: list[int] = field(default_factory=list)
    leaders: dict[int, int] = field(default_factory=dict)  # school → duty leader's chat
    reporters: list[int] = field(default_factory=list)  # chats, English
    clockers: list[int] = field(default_factory=list)  # chats, English, one shift each
    chat_of_person: dict[int, int] = field(default_factory=dict)
    shifts: dict[int, int] = field(default_factory=dict)  # clocker's chat → shift id


async def plant_county(
    db: Database,
    *,
    schools: int,
    reporters_per_school: int = 0,
    shifts_at: list[list[datetime]] | None = None,
    first_chat: int = 9_100_000,
) -> County:
    """County → township → `schools` schools, each with a linked duty leader and principal.

    Each school also gets linked reporters (staff writing English) and, per start time in
    `shifts_at[school]`, a member of staff with a 4-hour shift at a post of its own.
    """
    county = County()
    linked_at = datetime.now(UTC) - timedelta(days=30)
    chat = first_chat
    async with db.uow() as uow:
        session = uow.session
        top = Unit(code="RC", name="演练县教育局", kind="county")
        session.add(top)
        await session.flush()
        top.path = f"/{top.id}/"
        town = Unit(code="RT", name="演练乡中心校", kind="township", parent_id=top.id)
        session.add(town)
        await session.flush()
        town.path = f"{top.path}{town.id}/"

        async def person(unit: Unit, role: str, language: str | None) -> tuple[int, int]:
            nonlocal chat
            chat += 1
            someone = Person(
                staff_no=f"R{chat}",
                name=f"演练{chat % 1000:03d}",
                unit_id=unit.id or 0,
                phone=f"139{chat:08d}",
                language=language,
            )
            session.add(someone)
            await session.flush()
            assert someone.id is not None
            session.add(RoleGrant(person_id=someone.id, role=role, unit_id=unit.id or 0))
            session.add(
                Account(person_id=someone.id, external_id=chat, chat_id=chat, linked_at=linked_at)
            )
            county.chat_of_person[someone.id] = chat
            return someone.id, chat

        for s in range(schools):
            school = Unit(code=f"RS{s:04d}", name=f"演练小学{s}", kind="school", parent_id=town.id)
            session.add(school)
            await session.flush()
            assert school.id is not None
            school.path = f"{town.path}{school.id}/"
            county.schools.append(school.id)
            _, county.leaders[school.id] = await person(school, "duty_leader", None)
            await person(school, "principal", None)
            for _ in range(reporters_per_school):
                county.reporters.append((await person(school, "staff", "en"))[1])
            for k, start in enumerate(shifts_at[s] if shifts_at else []):
                staff, staff_chat = await person(school, "staff", "en")
                shift = Shift(
                    unit_id=school.id,
                    post=f"Gate {s:02d}{k:02d}",
                    start=start,
                    end=start + timedelta(hours=4),
                    person_id=staff,
                )
                session.add(shift)
                await session.flush()
                assert shift.id is not None
                county.clockers.append(staff_chat)
                county.shifts[staff_chat] = shift.id
        await uow.commit()
    return county


def open_chats(emu: BotApiEmulator, chats: list[int] | dict[int, int]) -> None:
    """Everyone has pressed Start (their invite link did that) before the bot starts."""
    for chat in chats.values() if isinstance(chats, dict) else chats:
        emu.user(chat, f"用户{chat}", language_code="en")
        emu.world.chats[chat].started = True


def bot_texts(emu: BotApiEmulator, chat: int) -> list[str]:
    """Every message the bot put in a chat (as it reads now, edits applied), oldest first."""
    state = emu.world.chats.get(chat)
    if state is None:
        return []
    messages = sorted(state.messages.values(), key=lambda m: m.message_id)
    return [emu.world.view(m).text for m in messages if m.from_bot and not m.deleted]


async def stand_in_for_the_lease(db: Database, pid: int | None = None) -> int:
    """Let rows claimed by a killed sender be claimed again now, as their lease running out would.

    A sender's claim lasts 2 minutes (renewed while it lives); a drill does not wait that long.
    `pid`: only the rows of the sender of that process (others may be alive); without it, all
    rows being sent (no sender runs). Returns how many rows it moved back.
    """
    table: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
    dead = table.c.status == OutboxStatus.SENDING
    if pid is not None:
        dead = sa.and_(dead, table.c.claimed_by.like(f"%:{pid}:%"))
    async with db.uow() as uow:
        result = await uow.session.execute(
            sa.update(table)
            .where(dead)
            .values(claimed_at=datetime.now(UTC) - timedelta(minutes=10))
        )
        await uow.commit()
    return int(getattr(result, "rowcount", 0))


async def unsettled(db: Database) -> int:
    """Telegram outbox rows not settled yet (pending or being sent)."""
    async with db.read() as uow:
        return int(
            (
                await uow.session.exec(
                    select(sa.func.count())
                    .select_from(OutboxMessage)
                    .where(
                        col(OutboxMessage.channel).is_(None),
                        col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
                    )
                )
            ).one()
        )


@dataclass(frozen=True)
class PageCount:
    """What was sent for one person and one matter: rows the outbox holds, messages that arrived."""

    escalation_id: int
    chat: int
    marker: str
    rows_sent: int
    attempts: int
    arrived: int


async def page_counts(
    db: Database, emu: BotApiEmulator, chat_of_person: dict[int, int]
) -> list[PageCount]:
    """For each matter and paged person: page rows sent and page messages that reached the chat.

    A matter's pages are told apart by the incident's number, the shift's post or the planted
    check's text; a message counts once however often it was edited. Matters of other kinds (a
    daily report owed, when the drill runs near its deadline) are left out.
    """
    async with db.read() as uow:
        session = uow.session
        escalations = (
            await session.exec(
                select(Escalation).where(
                    col(Escalation.subject_type).in_(["incident", "shift", "check"])
                )
            )
        ).all()
        numbers = dict(
            (await session.exec(select(Incident.id, Incident.number))).all()  # type: ignore[arg-type]
        )
        shifts = dict((await session.exec(select(Shift.id, Shift.post))).all())  # type: ignore[arg-type]
        rows = (
            await session.exec(
                select(OutboxMessage, Page)
                .join(Page, col(Page.id) == OutboxMessage.page_id)
                .where(OutboxMessage.kind == "page")
            )
        ).all()
    markers: dict[int, str] = {}
    for matter in escalations:
        assert matter.id is not None
        if matter.subject_type == "incident":
            markers[matter.id] = numbers[matter.subject_id]
        elif matter.subject_type == "shift":
            markers[matter.id] = shifts[matter.subject_id]
        else:
            markers[matter.id] = CHECK.format(n=f"{matter.subject_id:05d}")
    sent: Counter[tuple[int, int]] = Counter()
    attempts: Counter[tuple[int, int]] = Counter()
    for message, page in rows:
        if page.escalation_id not in markers:
            continue
        key = (page.escalation_id, chat_of_person[page.person_id])
        attempts[key] += message.attempts
        if message.status == OutboxStatus.SENT:
            sent[key] += 1
    counts = []
    texts: dict[int, list[str]] = {}
    for escalation_id, chat in sorted(set(sent) | set(attempts)):
        if chat not in texts:
            texts[chat] = bot_texts(emu, chat)
        marker = markers[escalation_id]
        counts.append(
            PageCount(
                escalation_id=escalation_id,
                chat=chat,
                marker=marker,
                rows_sent=sent[(escalation_id, chat)],
                attempts=attempts[(escalation_id, chat)],
                arrived=sum(is_page(text) and marker in text for text in texts[chat]),
            )
        )
    return counts


def is_page(text: str) -> bool:
    """Whether a message is a page (or a page's reminder), not another naming the incident.

    A daily report's prompt lists the day's incidents by number, for one; a reminder opens with
    a line of its own ("⏰ …") above the page.
    """
    return any(line.startswith("🚨") for line in text.splitlines()[:2])


async def half_done(db: Database, *, before: datetime) -> list[str]:
    """What the database holds that a finished use case never leaves behind.

    Page messages written after `before` may still wait for their turn.
    """
    problems: list[str] = []
    async with db.read() as uow:
        session = uow.session
        matters = {m.id: m for m in (await session.exec(select(Escalation))).all()}
        incidents = (await session.exec(select(Incident))).all()
        pages = (await session.exec(select(Page))).all()
        messages = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "page"))
        ).all()
    by_subject = {(m.subject_type, m.subject_id) for m in matters.values()}
    for incident in incidents:
        if ("incident", incident.id) not in by_subject:
            problems.append(f"incident {incident.number} without its escalation")
    paged = {m.page_id for m in messages}
    for page in pages:
        if page.escalation_id not in matters:
            problems.append(f"page {page.id} without its escalation")
        if page.id not in paged and page.status == "active" and page.created_at <= before:
            problems.append(f"active page {page.id} without a message")
    for message in messages:
        unsent = message.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)
        if unsent and message.created_at <= before:
            problems.append(f"page message {message.id} still {message.status}")
        if message.status == OutboxStatus.SENT and message.sent_at is None:
            problems.append(f"page message {message.id} sent without a time")
    return problems


def summary(values: dict[str, Any]) -> str:
    """One line of figures, as the drills print them."""
    return " ".join(f"{key}={value}" for key, value in values.items())


async def plant_schools(db: Database, count: int, first_chat: int = 9_300_000) -> dict[int, int]:
    """County → township → `count` schools with a linked duty leader each, in a few inserts.

    Returns each school's id → its leader's chat.
    """
    units: sa.Table = Unit.__table__  # type: ignore[attr-defined]
    people: sa.Table = Person.__table__  # type: ignore[attr-defined]
    grants: sa.Table = RoleGrant.__table__  # type: ignore[attr-defined]
    accounts: sa.Table = Account.__table__  # type: ignore[attr-defined]
    linked_at = datetime.now(UTC) - timedelta(days=30)
    base = 500_000  # ids clear of anything else in the database
    rows = [
        {"id": base, "code": "PC", "name": "双机县教育局", "kind": "county", "path": f"/{base}/"},
        {
            "id": base + 1,
            "code": "PT",
            "name": "双机乡中心校",
            "kind": "township",
            "parent_id": base,
            "path": f"/{base}/{base + 1}/",
        },
    ]
    leaders: dict[int, int] = {}
    staff, roles, links = [], [], []
    for s in range(count):
        unit, person, chat = base + 2 + s, base + s, first_chat + s
        rows.append(
            {
                "id": unit,
                "code": f"PS{s:04d}",
                "name": f"双机小学{s}",
                "kind": "school",
                "parent_id": base + 1,
                "path": f"/{base}/{base + 1}/{unit}/",
            }
        )
        staff.append({"id": person, "staff_no": f"P{s:05d}", "name": f"带班{s}", "unit_id": unit})
        roles.append({"person_id": person, "role": "duty_leader", "unit_id": unit})
        links.append(
            {
                "person_id": person,
                "channel": "telegram",
                "external_id": chat,
                "chat_id": chat,
                "linked_at": linked_at,
            }
        )
        leaders[unit] = chat
    async with db.engine.begin() as connection:
        await connection.execute(sa.insert(units), rows[:1])
        await connection.execute(sa.insert(units), rows[1:])
        await connection.execute(sa.insert(people), staff)
        await connection.execute(sa.insert(grants), roles)
        await connection.execute(sa.insert(accounts), links)
        if connection.dialect.name == "postgresql":
            for table in (units, people):
                await connection.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT max(id) FROM {table.name}))"
                    )
                )
    return leaders
