"""What pages and the details view show: a page's words and buttons for each reader."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import FollowUpOpen
from bot.config import ChannelSettings, Level
from bot.i18n import N_, Translator, translator
from bot.models import Escalation, EscalationLevel, Page, Person
from bot.services import contacts
from bot.services.escalation import matter
from bot.services.matter_clock import Reached, clock_of
from bot.services.outbox import Button
from bot.services.page_text import FOLLOW_UP_LABEL, PageSubject, page_buttons, page_text

DRILL_LINE = N_("【DRILL 演练】 This is an exercise.")
# The subject type of an incident's escalation (bot.services.incidents.SUBJECT_TYPE, which
# cannot be imported from here; tests/services/test_incidents.py holds them equal).
INCIDENT_SUBJECT = "incident"
# The line added to a page when it closes, in each reader's language.
Note = Callable[[Translator], str]


@dataclass(frozen=True)
class ChannelRoutes:
    """Which one-way channels (`[[channels]]` names) take the pages at a unit, by unit code."""

    by_unit: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def at(self, unit_code: str) -> tuple[str, ...]:
        """The channels of pages at this unit (not at the units below it)."""
        return self.by_unit.get(unit_code, ())


def channel_routes(channels: Iterable[ChannelSettings]) -> ChannelRoutes:
    """The routes of the configured `[[channels]]`: unit code → the channels of its pages."""
    by_unit: dict[str, tuple[str, ...]] = {}
    for channel in channels:
        for code in channel.units:
            by_unit[code] = (*by_unit.get(code, ()), channel.name)
    return ChannelRoutes(by_unit)


@dataclass(frozen=True)
class PagingContext:
    """What paging needs beyond the database: zone, default language, channels and links."""

    tz: ZoneInfo
    default_language: str
    # Where pages go besides Telegram (SPEC §4); none unless `[[channels]]` are configured.
    channels: ChannelRoutes = field(default_factory=ChannelRoutes)
    # The signed acknowledge link of (page id, person id) made at `now`, for one-way messages;
    # None unless `[web] public_url` and the link secret are set (bot/services/ack_links.py).
    link: Callable[[int, int, datetime], str | None] | None = None
    # Whether `[email]` is configured: a paged person with an address is also mailed.
    email: bool = False


def language(person: Person, ctx: PagingContext) -> str:
    """The reader's language: their own choice, else the configured default."""
    return person.language or ctx.default_language


def drill_lines(tr: Translator, escalation: Escalation) -> list[str]:
    """The DRILL marker that heads every message about a drill; nothing for a real matter."""
    return [tr._(DRILL_LINE)] if escalation.is_drill else []


def by_note(outcome: str, person: Person, now: datetime, ctx: PagingContext) -> Note:
    """A closing note such as "✅ Acknowledged by {name} at {time}." for each reader."""

    def note(tr: Translator) -> str:
        return tr._(
            outcome, name=html.escape(person.name, quote=False), time=tr.time_text(now, ctx.tz)
        )

    return note


def buttons_for(
    tr: Translator, escalation: Escalation, page: Page, subject: PageSubject
) -> list[list[Button]]:
    """A page's buttons: pass up while a level above exists; direct report under a deadline.

    A page about an incident also offers a follow-up (续报) to it.
    """
    policy = matter.policy_of(escalation)
    level = Level(page.level)
    position = policy.levels.index(level) if level in policy.levels else 0
    assert page.id is not None
    return page_buttons(
        tr,
        page.id,
        can_pass_up=position + 1 < len(policy.levels),
        can_report_direct=policy.report_deadline is not None and position + 2 < len(policy.levels),
        under_deadline=policy.report_deadline is not None,
        resolve_label=subject.resolve_label,
        follow_up_incident=(
            escalation.subject_id if escalation.subject_type == INCIDENT_SUBJECT else None
        ),
    )


def follow_up_buttons(tr: Translator, escalation: Escalation) -> list[list[Button]]:
    """The follow-up button an incident's page keeps once acknowledged, until it is resolved."""
    if escalation.subject_type != INCIDENT_SUBJECT or escalation.status == matter.RESOLVED:
        return []
    return [[Button(tr._(FOLLOW_UP_LABEL), FollowUpOpen(escalation.subject_id).data)]]


async def render(
    session: AsyncSession,
    escalation: Escalation,
    page: Page,
    person: Person,
    ctx: PagingContext,
    *,
    now: datetime,
    reminder: int = 0,
    late_since: datetime | None = None,
    reader_language: str | None = None,
    levels: Mapping[Level, EscalationLevel] | None = None,
) -> tuple[str, list[list[Button]]]:
    """A page's text and buttons in the reader's language (or `reader_language`: a group's).

    `levels` is the matter's levels as the caller's look holds them (read otherwise).
    """
    tr = translator(reader_language or language(person, ctx))
    place = await contacts.unit(session, matter.place_unit_id(escalation))
    subject = matter.subject_of(escalation)
    phones = None
    if page.level != Level.UNIT.value:
        phones = await _leaders_phones(session, escalation, now=now)
    clock = None
    if escalation.occurred_at is not None:  # a matter that happened (an incident, a drill)
        policy = matter.policy_of(escalation)
        clock = clock_of(
            occurred_at=escalation.occurred_at,
            reported_at=escalation.started_at,
            report_deadline=policy.report_deadline,
            needed=policy.levels[1:],
            reached=await reached_levels(session, escalation, levels=levels),
            now=now,
        )
    text = page_text(
        tr,
        ctx.tz,
        subject=subject,
        unit_name=place.name,
        started_at=escalation.started_at,
        now=now,
        drill=escalation.is_drill,
        reminder=reminder,
        late_since=late_since,
        phones=phones,
        clock=clock,
    )
    return text, buttons_for(tr, escalation, page, subject)


async def reached_levels(
    session: AsyncSession,
    escalation: Escalation,
    *,
    levels: Mapping[Level, EscalationLevel] | None = None,
) -> list[Reached]:
    """The levels a matter reached, with their units and who acknowledged, for its clock.

    `levels`: the matter's levels as the caller holds them, up to date; read when not given.
    """
    assert escalation.id is not None
    if levels is None:
        levels = await matter.level_rows(session, escalation.id)
    found = []
    for level, row in levels.items():
        by = row.acknowledged_by_id
        found.append(
            Reached(
                level=level,
                unit=(await contacts.unit(session, row.unit_id)).name,
                reached_at=row.reached_at,
                late=row.late,
                acknowledged_by=(await contacts.person(session, by)).name if by else None,
                acknowledged_at=row.acknowledged_at,
            )
        )
    return found


async def _leaders_phones(
    session: AsyncSession, escalation: Escalation, *, now: datetime
) -> list[tuple[str, str]]:
    """Who to call at the matter's unit: its reporter, the leader on duty, the principal."""
    found: list[Person] = []
    reporter = (escalation.details or {}).get("reporter_id")
    if reporter:
        found.append(await contacts.person(session, int(reporter)))
    for role in ("duty_leader", "principal"):
        found.extend(
            await contacts.holders(session, role=role, unit_id=escalation.unit_id, now=now)
        )
    excluded = matter.excluded(escalation)
    phones: list[tuple[str, str]] = []
    for person in found:
        if person.phone and person.id not in excluded and (person.name, person.phone) not in phones:
            phones.append((person.name, person.phone))
    return phones


@dataclass(frozen=True)
class PageLine:
    """One page of an escalation, for the details view."""

    person: str
    role: str
    unit: str
    at: datetime
    status: str
    sent_count: int


@dataclass(frozen=True)
class LevelLine:
    """One level a matter reached, for the details view."""

    level: str
    unit: str
    reached_at: datetime
    how: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    late: bool


@dataclass(frozen=True)
class EscalationView:
    """An escalation, the levels it reached and its pages, for the details view."""

    subject: PageSubject
    place: str
    started_at: datetime
    status: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    drill: bool
    levels: list[LevelLine]
    pages: list[PageLine]


async def escalation_view(session: AsyncSession, escalation: Escalation) -> EscalationView:
    """Everything the details button shows about a matter."""
    assert escalation.id is not None
    place = await contacts.unit(session, matter.place_unit_id(escalation))
    levels = []
    for level, row in (await matter.level_rows(session, escalation.id)).items():
        unit = await contacts.unit(session, row.unit_id)
        by = row.acknowledged_by_id
        levels.append(
            LevelLine(
                level=level.value,
                unit=unit.name,
                reached_at=row.reached_at,
                how=row.reached_how,
                acknowledged_by=(await contacts.person(session, by)).name if by else None,
                acknowledged_at=row.acknowledged_at,
                late=row.late,
            )
        )
    lines = []
    for item in await pages_of(session, escalation.id):
        who = await contacts.person(session, item.person_id)
        unit = await contacts.unit(session, item.unit_id)
        lines.append(
            PageLine(who.name, item.role, unit.name, item.created_at, item.status, item.sent_count)
        )
    acknowledged_by = None
    if escalation.acknowledged_by_id is not None:
        acknowledged_by = (await contacts.person(session, escalation.acknowledged_by_id)).name
    return EscalationView(
        subject=matter.subject_of(escalation),
        place=place.name,
        started_at=escalation.started_at,
        status=escalation.status,
        acknowledged_by=acknowledged_by,
        acknowledged_at=escalation.acknowledged_at,
        drill=escalation.is_drill,
        levels=levels,
        pages=lines,
    )


async def pages_of(session: AsyncSession, escalation_id: int) -> list[Page]:
    """Every page of an escalation, oldest first."""
    statement = select(Page).where(Page.escalation_id == escalation_id).order_by(col(Page.id))
    return list((await session.exec(statement)).all())
