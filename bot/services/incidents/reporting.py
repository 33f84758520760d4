"""Incident use cases: report, follow-up (续报), final report (终报), one heard elsewhere (漏报).

Each is one transaction: the incident, its timeline entry, its escalation and the messages it
causes are written together or not at all. Input is checked before anything is written, so bad
input raises `InvalidInput` with one sentence and leaves the tables as they were.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Action, Grant, allowed, covers
from bot.config import EscalationPolicy, EscalationStep, Level, Severity
from bot.errors import DraftGone, InvalidInput, NotAllowed
from bot.i18n import N_, translator
from bot.models import (
    Escalation,
    EscalationLevel,
    Incident,
    IncidentEntry,
    Page,
    Person,
    Role,
    Unit,
    UnitKind,
)
from bot.services import audit, contacts, drafts, escalation, outbox
from bot.services.drafts import DraftKey
from bot.services.escalation import PagingContext
from bot.services.escalation.views import by_note, language
from bot.services.incidents.attachments import SEND_METHOD, parse
from bot.services.incidents.kinds import (
    CATEGORY_NAMES,
    SEVERITY_NAMES,
    Category,
    EntryKind,
    IncidentStatus,
)
from bot.services.incidents.lookup import visible
from bot.services.incidents.numbering import next_number
from bot.services.page_text import PageSubject
from bot.uow import Database

SUBJECT_TYPE = "incident"
# One escalation per incident, whatever its severity (the steps are stored with it).
POLICY = "incident"
MAX_TEXT = 3000
MAX_SHORT = 200
MAX_ATTACHMENTS = 10
MAX_FILE_ID = 200
# A phone's clock may run a little ahead of ours.
FUTURE_SLACK = timedelta(minutes=1)

REPORTED_WHAT = N_(
    "{severity} incident No. {number}: {category}\n{description}\n"
    "Place: {place} · Happened: {occurred} · Casualties: {casualties}"
)
REPORTED_ASK = N_("Acknowledge it, and pass it up in time when the level above must have it.")
NOT_REPORTED_WHAT = N_(
    "Not reported by the school (漏报); recorded by {recorder}. "
    "{severity} incident No. {number}: {category}\n{description}\n"
    "Place: {place} · Happened: {occurred} · Casualties: {casualties}"
)
NOT_REPORTED_ASK = N_(
    "Report this incident now: acknowledge it and send a follow-up (续报) with what you know."
)
NOT_GIVEN = N_("not given")
NONE_REPORTED = N_("none reported")
FOLLOW_UP_TEXT = N_("📝 Follow-up (续报) to incident {number} from {name}:\n{text}")
FINAL_TEXT = N_(
    "🏁 Final report (终报) on incident {number} from {name}; the incident is closed.\n"
    "Cause: {cause}\nMeasures: {measures}\nOutcome: {outcome}"
)
ATTACHMENTS_LINE = N_("📎 Attachments: {count}")
DRILL_LINE = N_("【DRILL 演练】 This is an exercise.")
REPORT_GONE = N_(
    "This report is no longer open: it was sent, cancelled or timed out. Send /report."
)
CLOSED_BY = N_("🏁 Closed with the final report by {name} at {time}.")
# Who a school is paged as when an officer above records an incident it did not report.
NOT_REPORTED_STEP = EscalationStep(
    after=timedelta(0), roles=["duty_leader", "principal"], repeat=2, every=timedelta(minutes=5)
)


@dataclass(frozen=True, kw_only=True)
class ReportDraft:
    """What the reporter said, as the report conversation collected it."""

    category: Category | str
    severity: Severity | str
    place: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    description: str
    attachments: tuple[str, ...] = ()
    occurred_at: datetime
    casualties: str | None = None
    # Skip-level direct report (越级直报): reach the county at once (serious and above).
    direct: bool = False


@dataclass(frozen=True)
class Reported:
    """A stored incident: its number for the reporter, and whether the report came late."""

    incident_id: int
    number: str
    late: bool
    escalation_id: int


@dataclass(frozen=True)
class FollowedUp:
    """A stored follow-up and how many people it was forwarded to."""

    incident_id: int
    number: str
    entry_id: int
    forwarded: int


@dataclass(frozen=True)
class Closed:
    """An incident closed by its final report."""

    incident_id: int
    number: str
    closed_at: datetime
    escalations_closed: int


@dataclass(frozen=True)
class IncidentRef:
    """An open incident a person may write about: its id and number."""

    incident_id: int
    number: str


@dataclass(frozen=True)
class UnitChoice:
    """A unit an officer above may record an incident at (漏报)."""

    unit_id: int
    code: str
    name: str


@dataclass(frozen=True)
class _Checked:
    category: Category
    severity: Severity
    place: str | None
    latitude: float | None
    longitude: float | None
    description: str
    attachments: list[str] | None
    occurred_at: datetime
    casualties: str | None


def _short(value: str | None, problem: str) -> str | None:
    text = (value or "").strip()
    if len(text) > MAX_SHORT:
        raise InvalidInput(problem, limit=MAX_SHORT)
    return text or None


def _attachments(files: Sequence[str]) -> list[str] | None:
    if len(files) > MAX_ATTACHMENTS:
        raise InvalidInput("Send at most {limit} photos or files at a time.", limit=MAX_ATTACHMENTS)
    for file_id in files:
        if not isinstance(file_id, str) or not file_id.strip() or len(file_id) > MAX_FILE_ID:
            raise InvalidInput("An attachment could not be read; please send it again.")
    return list(files) or None


def _text(value: str, *, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput("Please say in a few words what happened.")
    if len(text) > MAX_TEXT:
        raise InvalidInput(
            "That text is too long: keep it under {limit} characters.", limit=MAX_TEXT
        )
    return text


def _coordinates(
    latitude: float | None, longitude: float | None
) -> tuple[float | None, float | None]:
    if latitude is None and longitude is None:
        return None, None
    if (
        latitude is None
        or longitude is None
        or not math.isfinite(latitude)
        or not math.isfinite(longitude)
        or not -90 <= latitude <= 90
        or not -180 <= longitude <= 180
    ):
        raise InvalidInput("That location is not valid; please send it again from the map.")
    return float(latitude), float(longitude)


def check_draft(draft: ReportDraft, *, now: datetime) -> _Checked:
    """Check a draft before anything is written; one sentence for the first problem."""
    try:
        category = Category(draft.category)
    except ValueError:
        raise InvalidInput("Please choose one of the listed categories.") from None
    try:
        severity = Severity(draft.severity)
    except ValueError:
        raise InvalidInput("Please choose one of the listed severities.") from None
    if draft.occurred_at.tzinfo is None:
        raise ValueError("naive occurred_at: pass aware times only")
    if draft.occurred_at > now + FUTURE_SLACK:
        raise InvalidInput("The time it happened cannot be in the future.")
    latitude, longitude = _coordinates(draft.latitude, draft.longitude)
    return _Checked(
        category=category,
        severity=severity,
        place=_short(draft.place, "The place is too long: keep it under {limit} characters."),
        latitude=latitude,
        longitude=longitude,
        description=_text(draft.description),
        attachments=_attachments(draft.attachments),
        occurred_at=draft.occurred_at,
        casualties=_short(
            draft.casualties, "The casualties are too long: keep them under {limit} characters."
        ),
    )


def subject_of(
    incident: Incident, ctx: PagingContext, *, recorder: str | None = None
) -> PageSubject:
    """What the incident's pages say: category, severity, place, time, casualties, number."""
    params: dict[str, Any] = {
        "severity": {"msg": SEVERITY_NAMES[Severity(incident.severity)]},
        "category": {"msg": CATEGORY_NAMES[Category(incident.category)]},
        "number": incident.number,
        "description": incident.description,
        "place": incident.place or {"msg": NOT_GIVEN},
        "occurred": incident.occurred_at.astimezone(ctx.tz).strftime("%m-%d %H:%M"),
        "casualties": incident.casualties or {"msg": NONE_REPORTED},
    }
    if recorder is not None:
        return PageSubject(
            what=NOT_REPORTED_WHAT,
            ask=NOT_REPORTED_ASK,
            what_params={**params, "recorder": recorder},
            since=incident.occurred_at,
        )
    return PageSubject(
        what=REPORTED_WHAT, ask=REPORTED_ASK, what_params=params, since=incident.occurred_at
    )


async def _store(
    session: AsyncSession,
    checked: _Checked,
    *,
    unit_id: int,
    reporter_id: int,
    kind: EntryKind,
    late: bool,
    drill: bool,
    now: datetime,
    ctx: PagingContext,
) -> Incident:
    # The number is taken last, just before the insert, so its row lock is held no longer
    # than the rest of the report needs.
    incident = Incident(
        number=await next_number(session, now=now, tz=ctx.tz),
        unit_id=unit_id,
        reporter_id=reporter_id,
        category=checked.category.value,
        severity=checked.severity.value,
        status=IncidentStatus.OPEN.value,
        place=checked.place,
        latitude=checked.latitude,
        longitude=checked.longitude,
        description=checked.description,
        casualties=checked.casualties,
        occurred_at=checked.occurred_at,
        reported_at=now,
        reached_unit_id=unit_id,
        reported_late=late,
        is_drill=drill,
        attachments=checked.attachments,
    )
    session.add(incident)
    await session.flush()
    assert incident.id is not None
    session.add(
        IncidentEntry(
            incident_id=incident.id,
            at=now,
            kind=kind.value,
            person_id=reporter_id,
            unit_id=unit_id,
            text=checked.description,
            attachments=checked.attachments,
        )
    )
    await session.flush()
    return incident


async def report(
    db: Database,
    *,
    person_id: int,
    draft: ReportDraft,
    now: datetime,
    policies: Mapping[Severity, EscalationPolicy],
    ctx: PagingContext,
    drill: bool = False,
    finishing: DraftKey | None = None,
    account: str | None = None,
) -> Reported:
    """Store an incident at the reporter's unit, number it and start its escalation.

    Late (迟报) when made after occurrence + the severity's report deadline; the escalation then
    reaches every level above at once. With `draft.direct` (serious and above) the matter also
    reaches the county at once. A drill needs the right to start drills instead of reporting.
    `finishing` names the /report draft this report ends: it is dropped in the same commit, and
    a draft gone already (reported, cancelled, timed out) stores nothing and raises DraftGone.
    `account` ("telegram:<id>") is the account the report came from, for the audit entries.
    """
    async with db.uow() as uow:
        if account is not None:
            audit.acting_as(uow.session, person_id=person_id, account=account)
        if finishing is not None and not await drafts.finish(uow.session, finishing, now=now):
            raise DraftGone(REPORT_GONE)
        reported = await store_report(
            uow.session,
            person_id=person_id,
            draft=draft,
            now=now,
            policies=policies,
            ctx=ctx,
            drill=drill,
        )
        await uow.commit()
    return reported


async def store_report(
    session: AsyncSession,
    *,
    person_id: int,
    draft: ReportDraft,
    now: datetime,
    policies: Mapping[Severity, EscalationPolicy],
    ctx: PagingContext,
    drill: bool = False,
    unit_id: int | None = None,
) -> Reported:
    """`report` in the caller's transaction; a drill may be placed at `unit_id` in scope."""
    checked = check_draft(draft, now=now)
    policy = policies[checked.severity]
    if draft.direct and policy.report_deadline is None:
        raise InvalidInput(
            "Only serious and especially serious incidents may be reported straight to the county."
        )
    if unit_id is None:
        person, unit, grants = await contacts.person_at_unit(session, person_id)
    else:
        person = await contacts.person(session, person_id)
        unit = await contacts.unit(session, unit_id)
        grants = await contacts.grants_of(session, person_id)
    action = Action.DRILL_START if drill else Action.INCIDENT_REPORT
    if not person.active or not allowed(grants, action, unit.path):
        raise NotAllowed("You may not report incidents for {unit}.", unit=unit.name)
    deadline = policy.report_deadline
    late = deadline is not None and now > checked.occurred_at + deadline
    assert unit.id is not None
    incident = await _store(
        session,
        checked,
        unit_id=unit.id,
        reporter_id=person_id,
        kind=EntryKind.REPORT,
        late=late,
        drill=drill,
        now=now,
        ctx=ctx,
    )
    assert incident.id is not None
    matter = await escalation.start(
        session,
        policy=POLICY,
        steps=policy.steps,
        subject_type=SUBJECT_TYPE,
        subject_id=incident.id,
        unit_id=unit.id,
        subject=subject_of(incident, ctx),
        now=now,
        drill=drill,
        occurred_at=checked.occurred_at,
        report_deadline=deadline,
        forward_margin=policy.forward_margin,
        reporter_id=person_id,
        new_subject=True,
    )
    assert matter.id is not None
    if draft.direct:
        await escalation.reach_county_directly(
            session, escalation_id=matter.id, person_id=person_id, now=now, ctx=ctx
        )
    await audit.record(
        session,
        at=now,
        action="incident.report",
        actor_person_id=person_id,
        subject_type=SUBJECT_TYPE,
        subject_id=incident.id,
        unit_id=unit.id,
        detail={"number": incident.number, "late": late, "direct": draft.direct, "drill": drill},
    )
    return Reported(incident.id, incident.number, late, matter.id)


async def record_heard_elsewhere(
    db: Database,
    *,
    person_id: int,
    unit_id: int,
    draft: ReportDraft,
    now: datetime,
    policies: Mapping[Severity, EscalationPolicy],
    ctx: PagingContext,
) -> Reported:
    """An officer or the desk above records an incident that the unit did not report (漏报).

    The incident is stored with the officer as reporter, marked late and with a timeline entry
    "not_reported_by_unit"; its escalation starts at the unit by paging the duty leader and the
    principal to report it, then climbs as the severity's policy says. `draft.direct` is not
    used: the officer already has it above the unit.
    """
    checked = check_draft(draft, now=now)
    policy = policies[checked.severity]
    async with db.uow() as uow:
        session = uow.session
        unit = await contacts.unit(session, unit_id)
        grants = await contacts.grants_of(session, person_id)
        if not _above(grants, unit):
            raise NotAllowed(HEARD_NOT_ALLOWED)
        recorder = await contacts.person(session, person_id)
        incident = await _store(
            session,
            checked,
            unit_id=unit_id,
            reporter_id=person_id,
            kind=EntryKind.NOT_REPORTED_BY_UNIT,
            late=True,
            drill=False,
            now=now,
            ctx=ctx,
        )
        assert incident.id is not None
        steps = [NOT_REPORTED_STEP, *(s for s in policy.steps if s.level != Level.UNIT)]
        matter = await escalation.start(
            session,
            policy=POLICY,
            steps=steps,
            subject_type=SUBJECT_TYPE,
            subject_id=incident.id,
            unit_id=unit_id,
            subject=subject_of(incident, ctx, recorder=recorder.name),
            now=now,
            occurred_at=checked.occurred_at,
            report_deadline=policy.report_deadline,
            forward_margin=policy.forward_margin,
            reporter_id=person_id,
            new_subject=True,
        )
        assert matter.id is not None
        await audit.record(
            session,
            at=now,
            action="incident.not_reported_by_unit",
            actor_person_id=person_id,
            subject_type=SUBJECT_TYPE,
            subject_id=incident.id,
            unit_id=unit_id,
            detail={"number": incident.number},
        )
        await uow.commit()
    return Reported(incident.id, incident.number, True, matter.id)


async def escalations_of(session: AsyncSession, incident_id: int) -> list[Escalation]:
    """The incident's escalations (one, unless a future policy adds more)."""
    rows = await session.exec(
        select(Escalation)
        .where(Escalation.subject_type == SUBJECT_TYPE, Escalation.subject_id == incident_id)
        .order_by(col(Escalation.id))
    )
    return list(rows.all())


async def keep_reach(session: AsyncSession, matter: Escalation) -> None:
    """Keep the incident's facts true as its escalation changes level (see `matter.on_reach`).

    Registered by the package for every incident escalation, so the incident row says how far
    it got the moment it gets there: passed up by a person or by the system at deadline −
    margin, reported straight to the county, or reached by a confirmed phone call.
    """
    incident = await session.get(Incident, matter.subject_id)
    if incident is not None:
        await _sync_reach(session, incident)


async def _sync_reach(session: AsyncSession, incident: Incident) -> None:
    """Copy how far the escalation got onto the incident (its highest unit, late forwarding).

    A late reach, once recorded, stays on the incident's record (迟报 is kept, not undone).
    """
    for matter in await escalations_of(session, incident.id or 0):
        rows = await session.exec(
            select(EscalationLevel).where(EscalationLevel.escalation_id == matter.id)
        )
        levels = {Level(row.level): row for row in rows.all()}
        for level in (Level.COUNTY, Level.PARENT, Level.UNIT):
            if level in levels:
                incident.reached_unit_id = levels[level].unit_id
                break
        if any(row.late for row in levels.values()):
            incident.forwarded_late = True


async def _recipients(session: AsyncSession, incident: Incident) -> list[int]:
    """Everyone paged about the incident so far, and its reporter, in the order they came."""
    matters = [m.id for m in await escalations_of(session, incident.id or 0)]
    rows = await session.exec(
        select(Page.person_id).where(col(Page.escalation_id).in_(matters)).order_by(col(Page.id))
    )
    found: list[int] = []
    for person_id in [*rows.all(), incident.reporter_id]:
        if person_id is not None and person_id not in found:
            found.append(person_id)
    return found


async def _forward(
    session: AsyncSession,
    incident: Incident,
    *,
    author: Person,
    message: str,
    attachments: Sequence[str] = (),
    now: datetime,
    ctx: PagingContext,
    **params: str,
) -> int:
    """Send a follow-up or final report to everyone concerned but its author; count them.

    The text goes first, then each photo and voice note by its file id, as rows of the same
    person's queue, which the sender keeps in order.
    """
    sent = 0
    for person_id in await _recipients(session, incident):
        if person_id == author.id or await contacts.account_of(session, person_id) is None:
            continue
        reader = await contacts.person(session, person_id)
        tr = translator(language(reader, ctx))
        lines = [tr._(DRILL_LINE)] if incident.is_drill else []
        lines.append(
            tr._(
                message,
                number=incident.number,
                name=html.escape(author.name, quote=False),
                **{key: html.escape(value, quote=False) for key, value in params.items()},
            )
        )
        if attachments:
            lines.append(tr._(ATTACHMENTS_LINE, count=len(attachments)))
        await outbox.enqueue(session, now=now, text="\n".join(lines), person_id=person_id)
        # Each file says which incident it belongs to, as a leader may follow several.
        caption = incident.number
        if incident.is_drill:
            caption = tr._(DRILL_LINE) + "\n" + caption
        for stored in attachments:
            attachment = parse(stored)
            if attachment.kind is not None:
                await outbox.enqueue_media(
                    session,
                    now=now,
                    method=SEND_METHOD[attachment.kind],
                    file_id=attachment.file_id,
                    caption=caption,
                    person_id=person_id,
                )
        sent += 1
    return sent


async def _refused(
    db: Database, *, person_id: int, action: str, ref: int | str, now: datetime
) -> None:
    """Audit a refused attempt on an incident outside the person's area."""
    async with db.uow() as uow:
        await audit.record(
            uow.session,
            at=now,
            action=action,
            actor_person_id=person_id,
            subject_type=SUBJECT_TYPE,
            allowed=False,
            detail={"ref": str(ref)[:40]},
        )
        await uow.commit()


async def follow_up_target(
    db: Database, *, person_id: int, incident_id: int | str, now: datetime
) -> IncidentRef:
    """The open incident a follow-up would go to, refused as `follow_up` would refuse it.

    Checked before a follow-up conversation opens, so that nobody writes one for nothing; a
    refusal for scope is audited (a button of ours only reaches people in scope).
    """
    async with db.read() as uow:
        try:
            incident, _unit = await visible(uow.session, incident_id, person_id=person_id)
        except NotAllowed:
            refused = True
        else:
            refused = False
    if refused:
        await _refused(
            db, person_id=person_id, action="incident.follow_up", ref=incident_id, now=now
        )
        raise NotAllowed("This incident is outside your area of responsibility.")
    assert incident.id is not None
    if incident.status == IncidentStatus.CLOSED:
        raise InvalidInput(
            "Incident {number} is closed; it takes no more follow-ups.", number=incident.number
        )
    return IncidentRef(incident.id, incident.number)


FINAL_NOT_ALLOWED = N_(
    "Only a leader of the unit or above may close an incident with its final report."
)


async def final_report_target(
    db: Database, *, person_id: int, incident_id: int | str, now: datetime
) -> IncidentRef:
    """The open incident a final report would close, refused as `final_report` would refuse it.

    Who may: whoever may resolve the incident's pages at its unit (authz: duty leaders, safety
    officers and principals of the unit or above, township and county officers, the county
    desk); staff and admins may not. Refusals for scope or role are audited.
    """
    async with db.read() as uow:
        session = uow.session
        refusal: str | None = None
        try:
            incident, unit = await visible(session, incident_id, person_id=person_id)
        except NotAllowed:
            refusal = "This incident is outside your area of responsibility."
        else:
            grants = await contacts.grants_of(session, person_id)
            if not allowed(grants, Action.PAGE_RESOLVE, unit.path):
                refusal = FINAL_NOT_ALLOWED
    if refusal is not None:
        await _refused(
            db, person_id=person_id, action="incident.final_report", ref=incident_id, now=now
        )
        raise NotAllowed(refusal)
    assert incident.id is not None
    if incident.status == IncidentStatus.CLOSED:
        raise InvalidInput("Incident {number} is already closed.", number=incident.number)
    return IncidentRef(incident.id, incident.number)


def _above(grants: Sequence[Grant], unit: Unit) -> bool:
    """Whether an officer or desk role covers the unit from a unit above it."""
    return any(
        g.role in (Role.OFFICER, Role.DESK)
        and g.unit_id != unit.id
        and covers(g.unit_path, unit.path)
        for g in grants
    )


HEARD_NOT_ALLOWED = N_(
    "Only an officer or the duty desk above a unit may record an incident it did not report."
)


async def heard_elsewhere_schools(db: Database, *, person_id: int) -> list[UnitChoice]:
    """The schools an officer or the desk above may record a 漏报 at, by code.

    NotAllowed for anyone without such a role; an empty list when no school lies below.
    """
    async with db.read() as uow:
        session = uow.session
        grants = await contacts.grants_of(session, person_id)
        tops = [g for g in grants if g.role in (Role.OFFICER, Role.DESK)]
        if not tops:
            raise NotAllowed(HEARD_NOT_ALLOWED)
        statement = (
            select(Unit)
            .where(
                Unit.kind == UnitKind.SCHOOL,
                sa.or_(*(col(Unit.path).startswith(g.unit_path) for g in tops if g.unit_path)),
            )
            .order_by(col(Unit.code))
        )
        found = [unit for unit in (await session.exec(statement)).all() if _above(grants, unit)]
        return [UnitChoice(unit.id or 0, unit.code, unit.name) for unit in found]


async def heard_elsewhere_unit(
    db: Database, *, person_id: int, code_or_id: int | str
) -> UnitChoice:
    """The unit named by its code (or id) if the person may record a 漏报 there."""
    async with db.read() as uow:
        session = uow.session
        if isinstance(code_or_id, int):
            unit = await session.get(Unit, code_or_id)
        else:
            code = code_or_id.strip()
            unit = (await session.exec(select(Unit).where(Unit.code == code))).first()
        grants = await contacts.grants_of(session, person_id)
        if unit is None or unit.id is None or not _above(grants, unit):
            raise NotAllowed(
                "{ref} is no unit below you where you may record an incident.",
                ref=str(code_or_id)[:40],
            )
        return UnitChoice(unit.id, unit.code, unit.name)


async def follow_up(
    db: Database,
    *,
    person_id: int,
    incident_id: int | str,
    text: str,
    attachments: Sequence[str] = (),
    now: datetime,
    ctx: PagingContext,
) -> FollowedUp:
    """Add a follow-up (续报) and forward it to everyone already paged, and the reporter.

    Anyone whose roles cover the incident's unit may add one, and its reporter; a photo or a
    voice note alone is a follow-up too. A closed incident takes none.
    """
    body = _text(text, required=False)
    files = _attachments(attachments)
    if not body and not files:
        raise InvalidInput("Write what is new, or send a photo or a voice note.")
    async with db.uow() as uow:
        session = uow.session
        incident, unit = await visible(session, incident_id, person_id=person_id, lock=True)
        assert incident.id is not None
        if incident.status == IncidentStatus.CLOSED:
            raise InvalidInput(
                "Incident {number} is closed; it takes no more follow-ups.",
                number=incident.number,
            )
        author = await contacts.person(session, person_id)
        entry = IncidentEntry(
            incident_id=incident.id,
            at=now,
            kind=EntryKind.FOLLOW_UP.value,
            person_id=person_id,
            unit_id=author.unit_id,
            text=body or None,
            attachments=files,
        )
        session.add(entry)
        await session.flush()
        assert entry.id is not None
        await _sync_reach(session, incident)
        forwarded = await _forward(
            session,
            incident,
            author=author,
            message=FOLLOW_UP_TEXT,
            attachments=files or [],
            now=now,
            ctx=ctx,
            text=body,
        )
        await audit.record(
            session,
            at=now,
            action="incident.follow_up",
            actor_person_id=person_id,
            subject_type=SUBJECT_TYPE,
            subject_id=incident.id,
            unit_id=unit.id,
        )
        await uow.commit()
    return FollowedUp(incident.id, incident.number, entry.id, forwarded)


def final_parts(entry: IncidentEntry) -> dict[str, str]:
    """The cause, measures and outcome of a final-report entry."""
    data = json.loads(entry.text or "{}")
    return {key: str(data.get(key, "")) for key in ("cause", "measures", "outcome")}


async def final_report(
    db: Database,
    *,
    person_id: int,
    incident_id: int | str,
    cause: str,
    measures: str,
    outcome: str,
    now: datetime,
    ctx: PagingContext,
) -> Closed:
    """Close an incident with its final report (终报) and stop its paging.

    Only a leader of the incident's unit or above (whoever may resolve its pages) may. The
    report goes to everyone paged about it and to its reporter.
    """
    parts = {"cause": cause, "measures": measures, "outcome": outcome}
    parts = {key: _text(value, required=False) for key, value in parts.items()}
    if not all(parts.values()):
        raise InvalidInput("Please give the cause, the measures taken and the outcome.")
    async with db.uow() as uow:
        session = uow.session
        incident, unit = await visible(session, incident_id, person_id=person_id, lock=True)
        assert incident.id is not None
        grants = await contacts.grants_of(session, person_id)
        if not allowed(grants, Action.PAGE_RESOLVE, unit.path):
            raise NotAllowed(FINAL_NOT_ALLOWED)
        if incident.status == IncidentStatus.CLOSED:
            raise InvalidInput("Incident {number} is already closed.", number=incident.number)
        author = await contacts.person(session, person_id)
        session.add(
            IncidentEntry(
                incident_id=incident.id,
                at=now,
                kind=EntryKind.FINAL_REPORT.value,
                person_id=person_id,
                unit_id=author.unit_id,
                text=json.dumps(parts, ensure_ascii=False),
            )
        )
        incident.status = IncidentStatus.CLOSED.value
        incident.closed_at = now
        await _sync_reach(session, incident)
        await _forward(
            session,
            incident,
            author=author,
            message=FINAL_TEXT,
            now=now,
            ctx=ctx,
            **parts,
        )
        closed = await escalation.close_for_subject(
            session,
            subject_type=SUBJECT_TYPE,
            subject_id=incident.id,
            note=by_note(CLOSED_BY, author, now, ctx),
            now=now,
            ctx=ctx,
        )
        await audit.record(
            session,
            at=now,
            action="incident.final_report",
            actor_person_id=person_id,
            subject_type=SUBJECT_TYPE,
            subject_id=incident.id,
            unit_id=unit.id,
        )
        await uow.commit()
    return Closed(incident.id, incident.number, now, closed)
