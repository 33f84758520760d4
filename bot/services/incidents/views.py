"""What /incidents and /incident N show: open incidents with their clocks, and whole timelines.

Read-only use cases returning small frozen values; handlers render them. How far an incident got
is read from its escalation's levels, which the engine keeps up to date; the clock is the one
its pages show (`bot/services/matter_clock.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Level, Severity
from bot.models import Escalation, Incident, IncidentEntry, Unit
from bot.services import contacts
from bot.services.escalation import matter, pages_of
from bot.services.escalation.policy import ReachHow
from bot.services.escalation.views import reached_levels
from bot.services.incidents.kinds import Category, EntryKind, IncidentStatus
from bot.services.incidents.lookup import visible
from bot.services.incidents.reporting import escalations_of, final_parts
from bot.services.matter_clock import Holder, MatterClock, clock_of
from bot.uow import Database

# How a level reached by the system (not by a person) is recorded.
_BY_SYSTEM = {ReachHow.SILENCE.value, ReachHow.DEADLINE.value}


@dataclass(frozen=True)
class IncidentLine:
    """One incident with its clocks, for lists and the head of a timeline."""

    id: int
    number: str
    category: Category
    severity: Severity
    status: str
    unit: str
    place: str | None
    occurred_at: datetime
    reported_at: datetime
    since: timedelta
    # occurrence + the severity's report deadline; None when the severity has none.
    deadline_at: datetime | None
    # Time left before the deadline while a level above is still missing.
    time_left: timedelta | None
    # How late: the deadline passed with a level above missing, or it was reached after it.
    late_by: timedelta | None
    reported_late: bool
    # The system passed it up at deadline − margin: the unit's report was late (迟报).
    forwarded_late: bool
    not_reported_by_unit: bool
    holder: Holder | None
    drill: bool
    # The same clock its pages show (`matter_clock.clock_text`).
    clock: MatterClock

    @property
    def late(self) -> bool:
        """Any late flag on the record."""
        return self.reported_late or self.forwarded_late or self.late_by is not None


@dataclass(frozen=True)
class TimelineItem:
    """One line of an incident's timeline; `person` None means the system did it."""

    at: datetime
    kind: str
    person: str | None = None
    level: Level | None = None
    unit: str | None = None
    text: str | None = None
    attachments: tuple[str, ...] = ()
    how: str | None = None
    late: bool = False
    repeat: int | None = None


@dataclass(frozen=True)
class FinalReport:
    """The final report (终报) that closed an incident."""

    cause: str
    measures: str
    outcome: str
    by: str | None
    at: datetime


@dataclass(frozen=True)
class IncidentTimeline:
    """An incident as /incident N shows it."""

    incident: IncidentLine
    description: str
    casualties: str | None
    reporter: str | None
    final: FinalReport | None
    items: list[TimelineItem]


async def _line(
    session: AsyncSession, incident: Incident, unit: Unit, now: datetime
) -> IncidentLine:
    assert incident.id is not None
    matters = await escalations_of(session, incident.id)
    policies = [matter.policy_of(escalation) for escalation in matters]
    deadlines = [p.report_deadline for p in policies if p.report_deadline is not None]
    reached = [row for escalation in matters for row in await reached_levels(session, escalation)]
    clock = clock_of(
        occurred_at=incident.occurred_at,
        reported_at=incident.reported_at,
        report_deadline=min(deadlines) if deadlines else None,
        needed={level for p in policies for level in p.levels[1:]},
        reached=reached,
        now=now,
        stopped_at=incident.closed_at,
    )
    entry_kinds = (
        await session.exec(
            select(IncidentEntry.kind).where(IncidentEntry.incident_id == incident.id)
        )
    ).all()
    return IncidentLine(
        id=incident.id,
        number=incident.number,
        category=Category(incident.category),
        severity=Severity(incident.severity),
        status=incident.status,
        unit=unit.name,
        place=incident.place,
        occurred_at=incident.occurred_at,
        reported_at=incident.reported_at,
        since=clock.since,
        deadline_at=clock.deadline_at,
        time_left=clock.time_left,
        late_by=clock.late_by,
        reported_late=incident.reported_late,
        forwarded_late=incident.forwarded_late or clock.forwarded_late,
        not_reported_by_unit=EntryKind.NOT_REPORTED_BY_UNIT.value in entry_kinds,
        holder=clock.holder,
        drill=incident.is_drill,
        clock=clock,
    )


async def open_in_scope(db: Database, *, person_id: int, now: datetime) -> list[IncidentLine]:
    """Open incidents at the person's units and below (and those they reported), newest first.

    Drills are left out: they are exercises, not incidents, and have their own log (drills.py).
    """
    async with db.read() as uow:
        session = uow.session
        grants = await contacts.grants_of(session, person_id)
        scope = [col(Unit.path).startswith(g.unit_path) for g in grants if g.unit_path]
        statement = (
            select(Incident, Unit)
            .join(Unit, col(Unit.id) == Incident.unit_id)
            .where(
                Incident.status == IncidentStatus.OPEN,
                sa.not_(col(Incident.is_drill)),
                sa.or_(col(Incident.reporter_id) == person_id, *scope),
            )
            .order_by(col(Incident.reported_at).desc(), col(Incident.id).desc())
        )
        rows = (await session.exec(statement)).all()
        return [await _line(session, incident, unit, now) for incident, unit in rows]


_EVENT_KINDS = {
    "reached": "reached",
    "acknowledged": "acknowledged",
    "passed_up": "passed_up",
    "reported_direct": "reported_direct",
    "phone_report": "phoned",
    "phone_confirmed": "phone_confirmed",
    "phone_denied": "phone_denied",
    "undeliverable": "undeliverable",
    "resolved": "resolved",
}


async def _name(session: AsyncSession, person_id: int | None) -> str | None:
    return (await contacts.person(session, person_id)).name if person_id else None


async def _escalation_items(session: AsyncSession, escalation: Escalation) -> list[TimelineItem]:
    assert escalation.id is not None
    levels = await matter.level_rows(session, escalation.id)
    items = []
    for event in await matter.timeline(session, escalation.id):
        level = Level(event.level) if event.level else None
        detail = event.detail or {}
        if event.kind == "fired" and event.repeat:
            items.append(TimelineItem(event.at, "reminded", level=level, repeat=event.repeat))
            continue
        kind = _EVENT_KINDS.get(event.kind)
        if kind is None:  # started, first firings (their pages follow), phoned_up (a duplicate)
            continue
        how = detail.get("how")
        row = levels.get(level) if level is not None else None
        items.append(
            TimelineItem(
                at=event.at,
                kind=kind,
                person=None if how in _BY_SYSTEM else await _name(session, event.person_id),
                level=level,
                unit=(await contacts.unit(session, row.unit_id)).name if row else None,
                how=how,
                late=bool(kind == "reached" and row is not None and row.late),
            )
        )
    for page in await pages_of(session, escalation.id):
        items.append(
            TimelineItem(
                at=page.created_at,
                kind="paged",
                person=await _name(session, page.person_id),
                level=Level(page.level),
                unit=(await contacts.unit(session, page.unit_id)).name,
                how=page.role,
                late=page.status == "undeliverable",
            )
        )
    return items


async def timeline(
    db: Database, *, person_id: int, number_or_id: int | str, now: datetime
) -> IncidentTimeline:
    """The incident's whole timeline: reported, pages, acknowledgements, pass-ups, follow-ups."""
    async with db.read() as uow:
        session = uow.session
        incident, unit = await visible(session, number_or_id, person_id=person_id)
        assert incident.id is not None
        head = await _line(session, incident, unit, now)
        entries = (
            await session.exec(
                select(IncidentEntry)
                .where(IncidentEntry.incident_id == incident.id)
                .order_by(col(IncidentEntry.at), col(IncidentEntry.id))
            )
        ).all()
        items: list[TimelineItem] = []
        final = None
        for entry in entries:
            who = await _name(session, entry.person_id)
            if entry.kind == EntryKind.FINAL_REPORT:
                parts = final_parts(entry)
                final = FinalReport(by=who, at=entry.at, **parts)
                items.append(TimelineItem(entry.at, entry.kind, person=who))
                continue
            items.append(
                TimelineItem(
                    at=entry.at,
                    kind=entry.kind,
                    person=who,
                    text=entry.text,
                    attachments=tuple(entry.attachments or ()),
                    late=entry.kind == EntryKind.REPORT and incident.reported_late,
                )
            )
        if incident.reported_late and entries and entries[0].kind == EntryKind.REPORT:
            items.append(TimelineItem(incident.reported_at, "reported_late", late=True))
        for escalation in await escalations_of(session, incident.id):
            for item in await _escalation_items(session, escalation):
                # The final report stopped the paging: its own line says who, not "the system".
                closing = final is not None and item.at == final.at
                if not (item.kind == "resolved" and item.person is None and closing):
                    items.append(item)
        if incident.closed_at is not None:
            items.append(
                TimelineItem(incident.closed_at, "closed", person=final.by if final else None)
            )
        items.sort(key=lambda item: item.at)  # stable: the report stays ahead of its pages
        return IncidentTimeline(
            incident=head,
            description=incident.description,
            casualties=incident.casualties,
            reporter=await _name(session, incident.reporter_id),
            final=final,
            items=items,
        )
