"""Escalation policies: page roles level by level until someone acknowledges.

`start` stores the policy's steps with the escalation and schedules each step as a durable
deadline; `fire_step` (the engine's handler) pages the step's roles at its level and chains the
step's repeats. Acknowledging cancels every remaining step and repeat in the same transaction,
resolving ends the escalation, passing up starts a new escalation one level higher. A page that
cannot be delivered (no linked account, bot blocked) goes to the next contact in
`FALLBACK_CHAIN`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Action, allowed
from bot.config import EscalationStep, Level
from bot.errors import NotAllowed, NotFound
from bot.i18n import Translator, translator
from bot.models import Deadline, Escalation, OutboxMessage, Page, Person, Role, Unit
from bot.services import audit, contacts, deadlines, outbox
from bot.services.engine import DeadlineHandler
from bot.services.page_text import (
    ACKNOWLEDGED_BY,
    PASSED_UP_BY,
    RESOLVED_BY,
    PageSubject,
    page_buttons,
    page_text,
)
from bot.uow import Database

STEP_KIND = "escalation.step"

# The line added to a page when it closes, in each reader's language.
Note = Callable[[Translator], str]

# Who stands in when a page cannot be delivered: the next role at the same unit, then upwards.
FALLBACK_CHAIN: tuple[tuple[Level, str], ...] = (
    (Level.UNIT, Role.DUTY_LEADER),
    (Level.UNIT, Role.SAFETY_OFFICER),
    (Level.UNIT, Role.PRINCIPAL),
    (Level.PARENT, Role.OFFICER),
    (Level.PARENT, Role.PRINCIPAL),
    (Level.COUNTY, Role.DESK),
    (Level.COUNTY, Role.OFFICER),
)

# Pass-up escalations page these roles at the unit above, repeating until acknowledged.
PASS_UP_ROLES = (Role.OFFICER, Role.DESK, Role.PRINCIPAL)


@dataclass(frozen=True)
class PagingContext:
    """What rendering needs beyond the database: the zone and the default language."""

    tz: ZoneInfo
    default_language: str


@dataclass(frozen=True)
class Outcome:
    """The result of a button press on a page."""

    escalation_id: int
    done_now: bool
    by_name: str
    at: datetime
    kind: str  # "acknowledged", "resolved", "passed_up"


def step_key(escalation_id: int, step: int, repeat: int) -> str:
    """The deadline key of one firing of one step."""
    return f"esc:{escalation_id}:s{step}:r{repeat}"


def _steps_json(steps: list[EscalationStep]) -> list[dict[str, Any]]:
    return [
        {
            "after": step.after.total_seconds(),
            "roles": list(step.roles),
            "level": step.level.value,
            "repeat": step.repeat,
            "every": step.every.total_seconds(),
        }
        for step in steps
    ]


async def start(
    session: AsyncSession,
    *,
    policy: str,
    steps: list[EscalationStep],
    subject_type: str,
    subject_id: int,
    unit_id: int,
    subject: PageSubject,
    now: datetime,
    drill: bool = False,
    place_unit_id: int | None = None,
    exclude: tuple[int, ...] = (),
    late_since: datetime | None = None,
) -> Escalation:
    """Start a policy for a subject at a unit; starting it twice returns the first one.

    `place_unit_id` is where the matter is, when that differs from the unit being paged
    (a matter passed up is still about the school). People in `exclude` are never paged for it
    (the absent person about their own missed shift).
    """
    existing = (
        await session.exec(
            select(Escalation).where(
                Escalation.subject_type == subject_type,
                Escalation.subject_id == subject_id,
                Escalation.policy == policy,
            )
        )
    ).first()
    if existing is not None:
        return existing
    escalation = Escalation(
        policy=policy,
        subject_type=subject_type,
        subject_id=subject_id,
        unit_id=unit_id,
        started_at=now,
        details={
            "subject": subject.to_json(),
            "steps": _steps_json(steps),
            "place_unit_id": place_unit_id or unit_id,
            "exclude": list(exclude),
            "late_since": late_since.isoformat() if late_since else None,
        },
        is_drill=drill,
    )
    session.add(escalation)
    await session.flush()
    assert escalation.id is not None
    for index, step in enumerate(steps):
        await deadlines.schedule(
            session,
            key=step_key(escalation.id, index, 0),
            kind=STEP_KIND,
            subject_type="escalation",
            subject_id=escalation.id,
            due_at=now + step.after,
            now=now,
            payload={"step": index, "repeat": 0},
        )
    await audit.record(
        session,
        at=now,
        action="escalation.start",
        actor_account="system",
        subject_type=subject_type,
        subject_id=subject_id,
        unit_id=unit_id,
        detail={"policy": policy, "escalation": escalation.id},
    )
    return escalation


async def _lock_escalation(session: AsyncSession, escalation_id: int) -> Escalation | None:
    statement = select(Escalation).where(Escalation.id == escalation_id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    return (await session.exec(statement)).first()


def _language(person: Person, ctx: PagingContext) -> str:
    return person.language or ctx.default_language


async def _render(
    session: AsyncSession,
    escalation: Escalation,
    page: Page,
    person: Person,
    ctx: PagingContext,
    *,
    now: datetime,
    reminder: int = 0,
    late_since: datetime | None = None,
) -> tuple[str, Any]:
    tr = translator(_language(person, ctx))
    details = escalation.details or {}
    unit = await contacts.unit(session, escalation.unit_id)
    place = await contacts.unit(session, int(details.get("place_unit_id") or escalation.unit_id))
    subject = PageSubject.from_json((escalation.details or {})["subject"])
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
    )
    assert page.id is not None
    buttons = page_buttons(
        tr, page.id, can_pass_up=unit.parent_id is not None, resolve_label=subject.resolve_label
    )
    return text, buttons


async def _send_page(
    session: AsyncSession,
    escalation: Escalation,
    page: Page,
    ctx: PagingContext,
    *,
    now: datetime,
    late_since: datetime | None,
) -> OutboxMessage | None:
    """Queue the page's first message, or pass it on at once when nobody can receive it."""
    person = await contacts.person(session, page.person_id)
    account = await contacts.account_of(session, page.person_id)
    if account is None or account.unreachable_since is not None:
        reason = (
            "no linked account"
            if account is None
            else (account.unreachable_reason or "unreachable")
        )
        await mark_undeliverable(session, page_id=page.id or 0, reason=reason, now=now, ctx=ctx)
        return None
    text, buttons = await _render(
        session, escalation, page, person, ctx, now=now, late_since=late_since
    )
    page.sent_count = 1
    return await outbox.enqueue(
        session,
        now=now,
        text=text,
        person_id=page.person_id,
        buttons=buttons,
        kind="page",
        page_id=page.id,
        late=late_since is not None,
    )


async def _paged_people(session: AsyncSession, escalation_id: int) -> set[int]:
    rows = await session.exec(select(Page.person_id).where(Page.escalation_id == escalation_id))
    return set(rows.all())


async def _new_page(
    session: AsyncSession,
    escalation: Escalation,
    *,
    step: int,
    person: Person,
    unit: Unit,
    role: str,
    now: datetime,
    replaces: int | None = None,
) -> Page:
    assert escalation.id is not None and person.id is not None and unit.id is not None
    page = Page(
        escalation_id=escalation.id,
        step=step,
        person_id=person.id,
        unit_id=unit.id,
        role=role,
        created_at=now,
        replaces_page_id=replaces,
    )
    session.add(page)
    await session.flush()
    return page


async def fire_step(
    session: AsyncSession, deadline: Deadline, *, now: datetime, late: bool, ctx: PagingContext
) -> None:
    """Page the roles of one step (or repeat its pages) and schedule the next repeat."""
    escalation = await _lock_escalation(session, deadline.subject_id)
    if escalation is None or escalation.status != "active" or escalation.id is None:
        return
    payload = deadline.payload or {}
    index, repeat = int(payload["step"]), int(payload.get("repeat", 0))
    step = (escalation.details or {})["steps"][index]
    late_since = deadline.due_at if late else None
    if late_since is None and repeat == 0 and (escalation.details or {}).get("late_since"):
        # the matter itself fell due while the bot was down (a missed shift found on restart)
        late_since = datetime.fromisoformat((escalation.details or {})["late_since"])
    if repeat == 0:
        await _first_pages(
            session, escalation, index, step, now=now, late_since=late_since, ctx=ctx
        )
    else:
        await _repeat_pages(session, escalation, index, repeat, now=now, ctx=ctx)
    if repeat < int(step["repeat"]):
        every = timedelta(seconds=step["every"])
        next_at = deadline.due_at + every
        if next_at <= now:  # after downtime, repeat from now rather than in a burst
            next_at = now + every
        await deadlines.schedule(
            session,
            key=step_key(escalation.id, index, repeat + 1),
            kind=STEP_KIND,
            subject_type="escalation",
            subject_id=escalation.id,
            due_at=next_at,
            now=now,
            payload={"step": index, "repeat": repeat + 1},
        )


async def _first_pages(
    session: AsyncSession,
    escalation: Escalation,
    index: int,
    step: dict[str, Any],
    *,
    now: datetime,
    late_since: datetime | None,
    ctx: PagingContext,
) -> None:
    base = await contacts.unit(session, escalation.unit_id)
    target = await contacts.unit_at_level(session, base, Level(step["level"]))
    if target is None:
        return
    already = await _paged_people(session, escalation.id or 0)
    excluded = set((escalation.details or {}).get("exclude") or [])
    recipients: list[tuple[Person, str]] = []
    holders_found = False
    for role in step["roles"]:
        for person in await contacts.holders(session, role=role, unit_id=target.id or 0, now=now):
            if person.id in excluded:
                continue
            holders_found = True
            if person.id not in already and all(person.id != p.id for p, _ in recipients):
                recipients.append((person, role))
    if holders_found and not recipients:
        return  # everyone this step names has the page already (a principal on leader duty)
    if not recipients:
        await audit.record(
            session,
            at=now,
            action="page.nobody",
            actor_account="system",
            subject_type="escalation",
            subject_id=escalation.id,
            unit_id=target.id,
            detail={"step": index, "roles": step["roles"]},
        )
        await _page_next_contact(
            session,
            escalation,
            after=(Level.UNIT, step["roles"][-1]),
            target=target,
            step=index,
            now=now,
            replaces=None,
            ctx=ctx,
        )
        return
    for person, role in recipients:
        # A stand-in for an undeliverable page earlier in this loop may be this very person.
        if person.id in await _paged_people(session, escalation.id or 0):
            continue
        page = await _new_page(
            session, escalation, step=index, person=person, unit=target, role=role, now=now
        )
        await _send_page(session, escalation, page, ctx, now=now, late_since=late_since)


async def _repeat_pages(
    session: AsyncSession,
    escalation: Escalation,
    index: int,
    repeat: int,
    *,
    now: datetime,
    ctx: PagingContext,
) -> None:
    pages = await session.exec(
        select(Page).where(
            Page.escalation_id == escalation.id, Page.step == index, Page.status == "active"
        )
    )
    for page in pages.all():
        first = await outbox.first_sent_for_page(session, page.id or 0)
        person = await contacts.person(session, page.person_id)
        text, buttons = await _render(
            session, escalation, page, person, ctx, now=now, reminder=repeat
        )
        page.sent_count += 1
        await outbox.enqueue(
            session,
            now=now,
            text=text,
            person_id=page.person_id,
            buttons=buttons,
            kind="page",
            page_id=page.id,
            reply_to=first,
        )


def _chain_after(position: tuple[Level, str] | None) -> list[tuple[Level, str]]:
    if position is None or position not in FALLBACK_CHAIN:
        return list(FALLBACK_CHAIN)
    return list(FALLBACK_CHAIN[FALLBACK_CHAIN.index(position) + 1 :])


async def _page_next_contact(
    session: AsyncSession,
    escalation: Escalation,
    *,
    after: tuple[Level, str] | None,
    target: Unit,
    step: int,
    now: datetime,
    replaces: int | None,
    ctx: PagingContext,
) -> Page | None:
    """Page the first reachable person further down the fallback chain."""
    already = await _paged_people(session, escalation.id or 0)
    already |= set((escalation.details or {}).get("exclude") or [])
    for level, role in _chain_after(after):
        unit = await contacts.unit_at_level(session, target, level)
        if unit is None:
            continue
        for person in await contacts.holders(session, role=role, unit_id=unit.id or 0, now=now):
            if person.id in already:
                continue
            account = await contacts.account_of(session, person.id or 0)
            if account is None or account.unreachable_since is not None:
                continue
            page = await _new_page(
                session,
                escalation,
                step=step,
                person=person,
                unit=unit,
                role=role,
                now=now,
                replaces=replaces,
            )
            await _send_page(session, escalation, page, ctx, now=now, late_since=None)
            return page
    await audit.record(
        session,
        at=now,
        action="page.no_contact",
        actor_account="system",
        subject_type="escalation",
        subject_id=escalation.id,
        unit_id=target.id,
    )
    return None


async def mark_undeliverable(
    session: AsyncSession, *, page_id: int, reason: str, now: datetime, ctx: PagingContext
) -> Page | None:
    """Record that a page could not be delivered and page the next contact instead."""
    page = (await session.exec(select(Page).where(Page.id == page_id))).first()
    if page is None or page.status != "active":
        return None
    page.status = "undeliverable"
    page.error = reason[:200]
    escalation = await _lock_escalation(session, page.escalation_id)
    await audit.record(
        session,
        at=now,
        action="page.undeliverable",
        actor_account="system",
        subject_type="page",
        subject_id=page.id,
        unit_id=page.unit_id,
        detail={"reason": reason, "person": page.person_id},
    )
    if escalation is None or escalation.status != "active":
        return None
    base = await contacts.unit(session, escalation.unit_id)
    unit = await contacts.unit(session, page.unit_id)
    level = _level_of(base, unit)
    return await _page_next_contact(
        session,
        escalation,
        after=(level, page.role),
        target=base,
        step=page.step,
        now=now,
        replaces=page.id,
        ctx=ctx,
    )


def _level_of(base: Unit, unit: Unit) -> Level:
    if unit.id == base.id:
        return Level.UNIT
    if unit.id == base.parent_id:
        return Level.PARENT
    return Level.COUNTY


async def _presser(
    session: AsyncSession, *, page_id: int, person_id: int, action: Action
) -> tuple[Page, Escalation, Person]:
    page = (await session.exec(select(Page).where(Page.id == page_id))).first()
    if page is None:
        raise NotFound("This button is no longer valid.")
    escalation = await _lock_escalation(session, page.escalation_id)
    if escalation is None:
        raise NotFound("This button is no longer valid.")
    person = await contacts.person(session, person_id)
    unit = await contacts.unit(session, escalation.unit_id)
    grants = await contacts.grants_of(session, person_id)
    if page.person_id != person_id and not allowed(grants, action, unit.path):
        raise NotAllowed("This page is outside your area of responsibility.")
    return page, escalation, person


def _by(outcome: str, person: Person, now: datetime, ctx: PagingContext) -> Note:
    """A closing note such as "✅ Acknowledged by {name} at {time}." for each reader."""

    def note(tr: Translator) -> str:
        return tr._(
            outcome, name=html.escape(person.name, quote=False), time=tr.time_text(now, ctx.tz)
        )

    return note


async def _close_pages(
    session: AsyncSession,
    escalation: Escalation,
    *,
    note: Note,
    now: datetime,
    ctx: PagingContext,
) -> None:
    """Stop every remaining step, drop unsent pages and show the outcome on sent ones."""
    assert escalation.id is not None
    await deadlines.cancel(session, now=now, prefix=f"esc:{escalation.id}:")
    pages = list(
        (await session.exec(select(Page).where(Page.escalation_id == escalation.id))).all()
    )
    await outbox.cancel_unsent(session, page_ids=[p.id for p in pages if p.id], now=now)
    for page in pages:
        if page.status == "active":
            page.status = "closed"
        messages = await outbox.page_messages(session, page.id or 0)
        if not messages:
            continue
        reader = await contacts.person(session, page.person_id)
        tr = translator(_language(reader, ctx))
        text, _buttons = await _render(session, escalation, page, reader, ctx, now=now)
        await outbox.enqueue_edit(
            session, now=now, target=messages[0], text=text + "\n\n" + note(tr)
        )
        for reminder in messages[1:]:  # same words, no buttons left to press
            await outbox.enqueue_edit(session, now=now, target=reminder, text=reminder.body["text"])


async def acknowledge(
    session: AsyncSession, *, page_id: int, person_id: int, now: datetime, ctx: PagingContext
) -> Outcome:
    """Acknowledge (接报): stop the escalation; a second press learns who was first."""
    page, escalation, person = await _presser(
        session, page_id=page_id, person_id=person_id, action=Action.PAGE_ACKNOWLEDGE
    )
    assert escalation.id is not None
    if escalation.acknowledged_at is not None or escalation.status != "active":
        return await _earlier(session, escalation)
    escalation.acknowledged_at = now
    escalation.acknowledged_by_id = person_id
    escalation.status = "acknowledged"
    await _close_pages(
        session, escalation, note=_by(ACKNOWLEDGED_BY, person, now, ctx), now=now, ctx=ctx
    )
    await _record_press(session, escalation, page, person_id, "page.acknowledge", now)
    return Outcome(escalation.id, True, person.name, now, "acknowledged")


async def _record_press(
    session: AsyncSession,
    escalation: Escalation,
    page: Page,
    person_id: int,
    action: str,
    now: datetime,
    **detail: Any,
) -> None:
    await audit.record(
        session,
        at=now,
        action=action,
        actor_person_id=person_id,
        subject_type=escalation.subject_type,
        subject_id=escalation.subject_id,
        unit_id=escalation.unit_id,
        detail={"escalation": escalation.id, "page": page.id, **detail},
    )


async def _earlier(session: AsyncSession, escalation: Escalation) -> Outcome:
    assert escalation.id is not None
    if escalation.resolved_at is not None and escalation.resolved_by_id is not None:
        by = await contacts.person(session, escalation.resolved_by_id)
        return Outcome(escalation.id, False, by.name, escalation.resolved_at, "resolved")
    if escalation.acknowledged_at is not None and escalation.acknowledged_by_id is not None:
        by = await contacts.person(session, escalation.acknowledged_by_id)
        return Outcome(escalation.id, False, by.name, escalation.acknowledged_at, "acknowledged")
    return Outcome(escalation.id, False, "", escalation.started_at, escalation.status)


async def resolve(
    session: AsyncSession, *, page_id: int, person_id: int, now: datetime, ctx: PagingContext
) -> Outcome:
    """Resolve: the matter is dealt with; every remaining page stops."""
    page, escalation, person = await _presser(
        session, page_id=page_id, person_id=person_id, action=Action.PAGE_RESOLVE
    )
    assert escalation.id is not None
    if escalation.resolved_at is not None:
        return await _earlier(session, escalation)
    if escalation.acknowledged_at is None:
        escalation.acknowledged_at = now
        escalation.acknowledged_by_id = person_id
    escalation.resolved_at = now
    escalation.resolved_by_id = person_id
    escalation.status = "resolved"
    await _close_pages(
        session, escalation, note=_by(RESOLVED_BY, person, now, ctx), now=now, ctx=ctx
    )
    await _record_press(session, escalation, page, person_id, "page.resolve", now)
    return Outcome(escalation.id, True, person.name, now, "resolved")


async def pass_up(
    session: AsyncSession, *, page_id: int, person_id: int, now: datetime, ctx: PagingContext
) -> Outcome:
    """Pass up (上报): acknowledge here and page the unit above until it acknowledges."""
    page, escalation, person = await _presser(
        session, page_id=page_id, person_id=person_id, action=Action.PAGE_PASS_UP
    )
    assert escalation.id is not None
    unit = await contacts.unit(session, escalation.unit_id)
    if unit.parent_id is None:
        raise NotAllowed("There is no level above this one to pass the matter up to.")
    if escalation.resolved_at is not None or escalation.status == "resolved":
        return await _earlier(session, escalation)  # dealt with: nothing to pass up
    if escalation.status == "active":
        escalation.acknowledged_at = now
        escalation.acknowledged_by_id = person_id
        escalation.status = "acknowledged"
        await _close_pages(
            session, escalation, note=_by(PASSED_UP_BY, person, now, ctx), now=now, ctx=ctx
        )
    parent = await contacts.unit(session, unit.parent_id)
    upper = await start(
        session,
        policy=f"{escalation.policy}/up",
        steps=[
            EscalationStep(
                after=timedelta(0), roles=list(PASS_UP_ROLES), level=Level.UNIT, repeat=3
            )
        ],
        subject_type=escalation.subject_type,
        subject_id=escalation.subject_id,
        unit_id=parent.id or 0,
        subject=PageSubject.from_json((escalation.details or {})["subject"]),
        now=now,
        drill=escalation.is_drill,
        place_unit_id=int((escalation.details or {}).get("place_unit_id") or unit.id or 0),
    )
    await _record_press(
        session, escalation, page, person_id, "page.pass_up", now, to_escalation=upper.id
    )
    return Outcome(escalation.id, True, person.name, now, "passed_up")


async def close_for_subject(
    session: AsyncSession,
    *,
    subject_type: str,
    subject_id: int,
    note: Note,
    now: datetime,
    ctx: PagingContext,
) -> int:
    """The matter resolved itself (the person clocked in): stop its paging and say so."""
    statement = select(Escalation).where(
        Escalation.subject_type == subject_type,
        Escalation.subject_id == subject_id,
        col(Escalation.status).in_(["active", "acknowledged"]),
    )
    closed = 0
    for escalation in (await session.exec(statement)).all():
        locked = await _lock_escalation(session, escalation.id or 0)
        if locked is None or locked.status not in ("active", "acknowledged"):
            continue
        locked.status = "resolved"
        locked.resolved_at = now
        await _close_pages(session, locked, note=note, now=now, ctx=ctx)
        await audit.record(
            session,
            at=now,
            action="escalation.close",
            actor_account="system",
            subject_type=subject_type,
            subject_id=subject_id,
            unit_id=locked.unit_id,
            detail={"escalation": locked.id},
        )
        closed += 1
    return closed


async def pages_of(session: AsyncSession, escalation_id: int) -> list[Page]:
    """Every page of an escalation, oldest first."""
    statement = select(Page).where(Page.escalation_id == escalation_id).order_by(col(Page.id))
    return list((await session.exec(statement)).all())


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
class EscalationView:
    """An escalation and its pages, for the details view."""

    subject: PageSubject
    place: str
    started_at: datetime
    status: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    drill: bool
    pages: list[PageLine]


_ACTIONS = {"a": acknowledge, "u": pass_up, "r": resolve}


async def press(
    db: Database,
    *,
    external_id: int,
    action: str,
    page_id: int,
    now: datetime,
    ctx: PagingContext,
) -> Outcome:
    """A page button pressed by a messaging account: check who it is, then act, in one go."""
    use_case = _ACTIONS.get(action)
    if use_case is None:
        raise NotFound("This button is no longer valid.")
    async with db.uow() as uow:
        person = await contacts.person_by_account(uow.session, external_id=external_id)
        if person is None or person.id is None:
            raise NotAllowed("This button is not for you.")
        try:
            outcome = await use_case(
                uow.session, page_id=page_id, person_id=person.id, now=now, ctx=ctx
            )
        except NotAllowed as error:
            refusal = error
        else:
            await uow.commit()
            return outcome
    # The refused attempt is audited in a transaction of its own; the use case rolled back.
    await _refused(db, person_id=person.id, page_id=page_id, action=action, now=now)
    raise refusal


async def _refused(
    db: Database, *, person_id: int, page_id: int, action: str, now: datetime
) -> None:
    async with db.uow() as uow:
        await audit.record(
            uow.session,
            at=now,
            action=f"page.{action}",
            actor_person_id=person_id,
            subject_type="page",
            subject_id=page_id,
            allowed=False,
        )
        await uow.commit()


async def view(db: Database, *, external_id: int, page_id: int) -> EscalationView:
    """The escalation behind a page with every page sent, for someone allowed to see it."""
    async with db.uow() as uow:
        session = uow.session
        person = await contacts.person_by_account(session, external_id=external_id)
        if person is None or person.id is None:
            raise NotAllowed("This button is not for you.")
        page, escalation, _ = await _presser(
            session, page_id=page_id, person_id=person.id, action=Action.PAGE_DETAILS
        )
        details = escalation.details or {}
        place = await contacts.unit(session, int(details.get("place_unit_id") or page.unit_id))
        lines = []
        for item in await pages_of(session, escalation.id or 0):
            who = await contacts.person(session, item.person_id)
            unit = await contacts.unit(session, item.unit_id)
            lines.append(
                PageLine(
                    who.name, item.role, unit.name, item.created_at, item.status, item.sent_count
                )
            )
        acknowledged_by = None
        if escalation.acknowledged_by_id is not None:
            acknowledged_by = (await contacts.person(session, escalation.acknowledged_by_id)).name
        return EscalationView(
            subject=PageSubject.from_json(details["subject"]),
            place=place.name,
            started_at=escalation.started_at,
            status=escalation.status,
            acknowledged_by=acknowledged_by,
            acknowledged_at=escalation.acknowledged_at,
            drill=escalation.is_drill,
            pages=lines,
        )


def step_handler(ctx: PagingContext) -> DeadlineHandler:
    """The engine handler for escalation steps."""

    async def handle(session: AsyncSession, deadline: Deadline, now: datetime, late: bool) -> None:
        await fire_step(session, deadline, now=now, late=late, ctx=ctx)

    return handle
