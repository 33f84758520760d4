"""Drills (演练): an incident marked DRILL, run through the real escalation, then reviewed.

A drill is a real incident row with `is_drill` set, reported by its starter at a unit in their
scope, so its pages, pass-ups and deadlines go exactly where a real one's would; every message
about it carries the DRILL marker. An engine deadline at start + length ends it (or its starter
ends it early): its paging stops and the starter gets a review of how each level answered.
Drills stay out of the incident lists (`views.open_in_scope`) and have their own log here.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Action, Grant, allowed
from bot.config import EscalationPolicy, Level, Severity
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_, Translator, translator
from bot.models import Deadline, Incident, Page, Unit
from bot.services import audit, contacts, deadlines, escalation, outbox
from bot.services.engine import DeadlineHandler
from bot.services.escalation import PagingContext, matter
from bot.services.escalation.policy import LEVEL_ORDER, ReachHow
from bot.services.escalation.views import DRILL_LINE, Note, language
from bot.services.incidents.kinds import SEVERITY_NAMES, Category, IncidentStatus
from bot.services.incidents.lookup import find
from bot.services.incidents.reporting import (
    SUBJECT_TYPE,
    ReportDraft,
    escalations_of,
    store_report,
)
from bot.uow import Database

END_KIND = "incident.drill_end"
DEFAULT_LENGTH = timedelta(minutes=30)
MAX_LENGTH = timedelta(hours=24)
LOG_LIMIT = 50
# The lines under a level of the review.
INDENT = "   "

DESCRIPTION = N_("Drill (演练) started by {name}. This is an exercise, not a real incident.")
ENDED = N_("🏁 The drill ended at {time}.")
REVIEW_HEAD = N_("📋 Drill review: No. {number}, {severity} at {unit}")
REVIEW_TIMES = N_("Started {start} by {name}; ended {end}.")
REVIEW_ENDED_EARLY = N_("Ended early by {name}.")
REVIEW_LEVEL = N_("• {unit}: reached after {reached} ({how})")
REVIEW_PAGED = N_("first page after {after}")
REVIEW_NOT_PAGED = N_("nobody was paged there")
REVIEW_ACK = N_("first acknowledgement after {after}, by {name}")
REVIEW_NO_ACK = N_("never acknowledged")
REVIEW_SILENT = N_("paged and never answered: {people}")
REVIEW_FORWARDED = N_("Pass-up by the system at the report deadline: happened.")
REVIEW_NOT_FORWARDED = N_("Pass-up by the system at the report deadline: did not happen.")
REVIEW_NO_DEADLINE = N_("This severity has no report deadline.")
NO_UNIT = N_("There is no unit {ref} in your area of responsibility.")

REACHED_HOW = {
    ReachHow.START: N_("started here"),
    ReachHow.SILENCE: N_("passed up by the system: nobody below answered"),
    ReachHow.DEADLINE: N_("passed up by the system at the report deadline"),
    ReachHow.PASSED_UP: N_("passed up by a person"),
    ReachHow.DIRECT: N_("reported straight to the county"),
    ReachHow.PHONE: N_("reported by phone"),
}


@dataclass(frozen=True)
class DrillStarted:
    """A drill under way: its incident, where, how serious, and when it ends by itself."""

    incident_id: int
    number: str
    escalation_id: int
    unit: str
    severity: Severity
    ends_at: datetime


@dataclass(frozen=True)
class LevelReview:
    """How one level answered a drill; times count from the drill's start."""

    level: Level
    unit: str
    reached_how: ReachHow
    reached_after: timedelta
    first_page_after: timedelta | None
    acknowledged_after: timedelta | None
    acknowledged_by: str | None
    # Paged at this level, which nobody there acknowledged.
    silent: tuple[str, ...]


@dataclass(frozen=True)
class DrillReview:
    """What the starter reads when a drill ends."""

    incident_id: int
    number: str
    unit: str
    severity: Severity
    started_by: str
    started_at: datetime
    ended_at: datetime
    ended_by: str | None
    levels: tuple[LevelReview, ...]
    # None when the severity has no report deadline.
    forwarded_at_deadline: bool | None


@dataclass(frozen=True)
class DrillLogLine:
    """One drill in the log: when, where, how serious, who started it, first acknowledgement."""

    incident_id: int
    number: str
    started_at: datetime
    unit: str
    severity: Severity
    started_by: str
    first_acknowledged_after: timedelta | None
    ended_at: datetime | None


def end_key(incident_id: int) -> str:
    """The deadline key of a drill's end."""
    return f"drill:{incident_id}:end"


async def _unit(session: AsyncSession, ref: int | str) -> Unit | None:
    if isinstance(ref, int):
        return await session.get(Unit, ref)
    code = ref.strip()
    if not code:
        return None
    return (await session.exec(select(Unit).where(Unit.code == code))).first()


@dataclass(frozen=True)
class DrillTarget:
    """A unit where the person may start a drill."""

    unit_id: int
    unit: str


async def _may_start(session: AsyncSession, person_id: int) -> list[Grant]:
    starter = await contacts.person(session, person_id)
    grants = await contacts.grants_of(session, person_id)
    if not starter.active or not any(allowed([g], Action.DRILL_START, g.unit_path) for g in grants):
        raise NotAllowed("Only admins and leaders may start drills.")
    return grants


async def drill_target(
    db: Database, *, person_id: int, unit_code_or_id: int | str | None
) -> DrillTarget:
    """The unit a drill would start at (the person's own when none is named), if in scope."""
    async with db.read() as uow:
        session = uow.session
        grants = await _may_start(session, person_id)
        if unit_code_or_id is None:
            unit_code_or_id = (await contacts.person(session, person_id)).unit_id
        unit = await _unit(session, unit_code_or_id)
        if unit is None or unit.id is None or not allowed(grants, Action.DRILL_START, unit.path):
            raise NotAllowed(NO_UNIT, ref=str(unit_code_or_id)[:40])
        return DrillTarget(unit.id, unit.name)


async def start_drill(
    db: Database,
    *,
    person_id: int,
    unit_code_or_id: int | str,
    severity: Severity | str,
    now: datetime,
    policies: Mapping[Severity, EscalationPolicy],
    ctx: PagingContext,
    length: timedelta = DEFAULT_LENGTH,
    category: Category = Category.OTHER,
) -> DrillStarted:
    """Start a drill at a unit in the starter's scope; it ends by itself at `now + length`.

    Admins and leaders may (Action.DRILL_START). An unknown unit and one outside the starter's
    scope get the same sentence, so the refusal tells nothing about units elsewhere.
    """
    try:
        chosen = Severity(severity)
    except ValueError:
        raise InvalidInput("Please choose one of the listed severities.") from None
    if not timedelta(0) < length <= MAX_LENGTH:
        raise InvalidInput("A drill lasts between a minute and a day.")
    async with db.uow() as uow:
        session = uow.session
        grants = await _may_start(session, person_id)
        starter = await contacts.person(session, person_id)
        unit = await _unit(session, unit_code_or_id)
        if unit is None or not allowed(grants, Action.DRILL_START, unit.path):
            await audit.record(
                session,
                at=now,
                action="drill.start",
                actor_person_id=person_id,
                subject_type="unit",
                subject_id=unit.id if unit is not None else None,
                allowed=False,
                detail={"ref": str(unit_code_or_id)[:40]},
            )
            await uow.commit()
            raise NotAllowed(NO_UNIT, ref=str(unit_code_or_id)[:40])
        assert unit.id is not None
        tr = translator(ctx.default_language)
        draft = ReportDraft(
            category=category,
            severity=chosen,
            description=tr._(DESCRIPTION, name=starter.name),
            occurred_at=now,
        )
        reported = await store_report(
            session,
            person_id=person_id,
            draft=draft,
            now=now,
            policies=policies,
            ctx=ctx,
            drill=True,
            unit_id=unit.id,
        )
        ends_at = now + length
        await deadlines.schedule(
            session,
            key=end_key(reported.incident_id),
            kind=END_KIND,
            subject_type=SUBJECT_TYPE,
            subject_id=reported.incident_id,
            due_at=ends_at,
            now=now,
        )
        await audit.record(
            session,
            at=now,
            action="drill.start",
            actor_person_id=person_id,
            subject_type=SUBJECT_TYPE,
            subject_id=reported.incident_id,
            unit_id=unit.id,
            detail={"severity": chosen.value, "ends_at": ends_at.isoformat()},
        )
        await uow.commit()
    return DrillStarted(
        reported.incident_id, reported.number, reported.escalation_id, unit.name, chosen, ends_at
    )


async def _review(
    session: AsyncSession, incident: Incident, *, now: datetime, ended_by: str | None
) -> DrillReview:
    assert incident.id is not None
    start = incident.reported_at
    reviews: list[LevelReview] = []
    forwarded: bool | None = None
    for found in await escalations_of(session, incident.id):
        assert found.id is not None
        if matter.policy_of(found).report_deadline is not None:
            forwarded = bool(forwarded)
        rows = await matter.level_rows(session, found.id)
        pages = (
            await session.exec(
                select(Page).where(Page.escalation_id == found.id).order_by(col(Page.id))
            )
        ).all()
        for level in LEVEL_ORDER:
            row = rows.get(level)
            if row is None:
                continue
            how = ReachHow(row.reached_how)
            if how == ReachHow.DEADLINE:
                forwarded = True
            here = [p for p in pages if p.level == level.value]
            silent: list[str] = []
            if row.acknowledged_at is None:
                for page in here:
                    name = (await contacts.person(session, page.person_id)).name
                    if name not in silent:
                        silent.append(name)
            by = row.acknowledged_by_id
            reviews.append(
                LevelReview(
                    level=level,
                    unit=(await contacts.unit(session, row.unit_id)).name,
                    reached_how=how,
                    reached_after=row.reached_at - start,
                    first_page_after=(min(p.created_at for p in here) - start if here else None),
                    acknowledged_after=(
                        row.acknowledged_at - start if row.acknowledged_at is not None else None
                    ),
                    acknowledged_by=(await contacts.person(session, by)).name if by else None,
                    silent=tuple(silent),
                )
            )
    return DrillReview(
        incident_id=incident.id,
        number=incident.number,
        unit=(await contacts.unit(session, incident.unit_id)).name,
        severity=Severity(incident.severity),
        started_by=(await contacts.person(session, incident.reporter_id or 0)).name,
        started_at=start,
        ended_at=now,
        ended_by=ended_by,
        levels=tuple(reviews),
        forwarded_at_deadline=forwarded,
    )


def review_text(tr: Translator, review: DrillReview, ctx: PagingContext) -> str:
    """The review in the reader's language (HTML), headed by the DRILL marker."""

    def esc(text: str) -> str:
        return html.escape(text, quote=False)

    lines = [
        tr._(DRILL_LINE),
        "<b>"
        + tr._(
            REVIEW_HEAD,
            number=review.number,
            severity=tr._(SEVERITY_NAMES[review.severity]),
            unit=esc(review.unit),
        )
        + "</b>",
        tr._(
            REVIEW_TIMES,
            start=tr.datetime_text(review.started_at, ctx.tz, "MM-dd HH:mm"),
            name=esc(review.started_by),
            end=tr.datetime_text(review.ended_at, ctx.tz, "MM-dd HH:mm"),
        ),
    ]
    if review.ended_by is not None:
        lines.append(tr._(REVIEW_ENDED_EARLY, name=esc(review.ended_by)))
    for level in review.levels:
        lines.append(
            tr._(
                REVIEW_LEVEL,
                unit=esc(level.unit),
                reached=tr.duration_text(level.reached_after),
                how=tr._(REACHED_HOW[level.reached_how]),
            )
        )
        if level.first_page_after is None:
            lines.append(INDENT + tr._(REVIEW_NOT_PAGED))
        else:
            lines.append(
                INDENT + tr._(REVIEW_PAGED, after=tr.duration_text(level.first_page_after))
            )
        if level.acknowledged_after is None:
            lines.append(INDENT + tr._(REVIEW_NO_ACK))
        else:
            lines.append(
                INDENT
                + tr._(
                    REVIEW_ACK,
                    after=tr.duration_text(level.acknowledged_after),
                    name=esc(level.acknowledged_by or "-"),
                )
            )
        if level.silent:
            names = tr.list_text([esc(name) for name in level.silent])
            lines.append(INDENT + tr._(REVIEW_SILENT, people=names))
    if review.forwarded_at_deadline is None:
        lines.append(tr._(REVIEW_NO_DEADLINE))
    elif review.forwarded_at_deadline:
        lines.append(tr._(REVIEW_FORWARDED))
    else:
        lines.append(tr._(REVIEW_NOT_FORWARDED))
    return "\n".join(lines)


def _ended_note(now: datetime, ctx: PagingContext) -> Note:
    def note(tr: Translator) -> str:
        return tr._(ENDED, time=tr.time_text(now, ctx.tz))

    return note


async def _finish(
    session: AsyncSession,
    incident: Incident,
    *,
    now: datetime,
    ctx: PagingContext,
    ended_by: int | None,
) -> DrillReview | None:
    """Review the drill, stop its paging and send the review to its starter; once only."""
    if incident.status == IncidentStatus.CLOSED or incident.id is None:
        return None
    name = (await contacts.person(session, ended_by)).name if ended_by else None
    review = await _review(session, incident, now=now, ended_by=name)
    incident.status = IncidentStatus.CLOSED.value
    incident.closed_at = now
    await escalation.close_for_subject(
        session,
        subject_type=SUBJECT_TYPE,
        subject_id=incident.id,
        note=_ended_note(now, ctx),
        now=now,
        ctx=ctx,
    )
    if incident.reporter_id is not None:
        starter = await contacts.person(session, incident.reporter_id)
        tr = translator(language(starter, ctx))
        await outbox.enqueue(
            session,
            now=now,
            text=review_text(tr, review, ctx),
            person_id=incident.reporter_id,
            dedupe_key=f"drill:{incident.id}:review",
        )
    await audit.record(
        session,
        at=now,
        action="drill.end",
        actor_person_id=ended_by,
        actor_account=None if ended_by else "system",
        subject_type=SUBJECT_TYPE,
        subject_id=incident.id,
        unit_id=incident.unit_id,
    )
    return review


def end_handler(ctx: PagingContext) -> DeadlineHandler:
    """The engine handler of a drill's end."""

    async def handle(session: AsyncSession, deadline: Deadline, now: datetime, late: bool) -> None:
        incident = await find(session, deadline.subject_id, lock=True)
        if incident.is_drill:
            await _finish(session, incident, now=now, ctx=ctx, ended_by=None)

    return handle


def deadline_handlers(ctx: PagingContext) -> dict[str, DeadlineHandler]:
    """The engine handlers of drill deadlines."""
    return {END_KIND: end_handler(ctx)}


async def end_drill(
    db: Database, *, person_id: int, incident_id: int | str, now: datetime, ctx: PagingContext
) -> DrillReview:
    """End a drill early: its starter, or anyone who may start drills at its unit."""
    async with db.uow() as uow:
        session = uow.session
        incident = await find(session, incident_id, lock=True)
        unit = await contacts.unit(session, incident.unit_id)
        grants = await contacts.grants_of(session, person_id)
        if not incident.is_drill or not (
            incident.reporter_id == person_id or allowed(grants, Action.DRILL_START, unit.path)
        ):
            raise NotAllowed("This drill is outside your area of responsibility.")
        assert incident.id is not None
        await deadlines.cancel(session, now=now, key=end_key(incident.id))
        review = await _finish(session, incident, now=now, ctx=ctx, ended_by=person_id)
        if review is None:
            raise InvalidInput("Drill {number} has already ended.", number=incident.number)
        await uow.commit()
    return review


async def drill_log(db: Database, *, person_id: int) -> list[DrillLogLine]:
    """Drills at units where the person may start drills, and those they started; newest first."""
    async with db.read() as uow:
        session = uow.session
        grants = await contacts.grants_of(session, person_id)
        scopes = [g.unit_path for g in grants if allowed([g], Action.DRILL_START, g.unit_path)]
        if not scopes:
            raise NotAllowed("Only admins and leaders may start drills.")
        statement = (
            select(Incident, Unit)
            .join(Unit, col(Unit.id) == Incident.unit_id)
            .where(
                col(Incident.is_drill),
                sa.or_(
                    col(Incident.reporter_id) == person_id,
                    *(col(Unit.path).startswith(path) for path in scopes),
                ),
            )
            .order_by(col(Incident.reported_at).desc(), col(Incident.id).desc())
            .limit(LOG_LIMIT)
        )
        lines = []
        for incident, unit in (await session.exec(statement)).all():
            assert incident.id is not None
            acknowledged = [
                row.acknowledged_at
                for found in await escalations_of(session, incident.id)
                for row in (await matter.level_rows(session, found.id or 0)).values()
                if row.acknowledged_at is not None
            ]
            lines.append(
                DrillLogLine(
                    incident_id=incident.id,
                    number=incident.number,
                    started_at=incident.reported_at,
                    unit=unit.name,
                    severity=Severity(incident.severity),
                    started_by=(await contacts.person(session, incident.reporter_id or 0)).name,
                    first_acknowledged_after=(
                        min(acknowledged) - incident.reported_at if acknowledged else None
                    ),
                    ended_at=incident.closed_at,
                )
            )
        return lines


__all__ = [
    "DEFAULT_LENGTH",
    "END_KIND",
    "DrillLogLine",
    "DrillReview",
    "DrillStarted",
    "DrillTarget",
    "LevelReview",
    "deadline_handlers",
    "drill_log",
    "drill_target",
    "end_drill",
    "end_handler",
    "review_text",
    "start_drill",
]
