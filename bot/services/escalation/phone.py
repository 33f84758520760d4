"""Phone reports (先电话后文字): a leader records a call made outside the bot; the callee confirms.

A leader at one level says whom at the level above they phoned, and when. That acknowledges the
leader's own level at once (they passed the matter up, by phone). The person phoned is asked to
confirm with one button; a confirmed phone report counts as the matter reaching their level at
the recorded time (so a call within the report deadline is not late, even if the bot forwarded
the matter later) and as their acknowledgement. A denied one changes nothing above and tells
the caller, and the levels above keep being paged as the policy says.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Action
from bot.callbacks import PhoneConfirm
from bot.config import Level
from bot.errors import NotAllowed, NotFound
from bot.i18n import N_, translator
from bot.models import Escalation, EscalationEvent, EscalationLevel, Person, RoleGrant
from bot.services import contacts, outbox
from bot.services.escalation import matter
from bot.services.escalation.actions import acknowledge_level, level_row, on_behalf, presser
from bot.services.escalation.paging import advance
from bot.services.escalation.policy import PASS_UP_ROLES, ReachHow
from bot.services.escalation.views import PagingContext, by_note, drill_lines, language
from bot.services.outbox import Button
from bot.uow import Database

# How long ago the call was, as offered on buttons (minutes).
AGO_CHOICES = (0, 5, 10, 15, 30, 60)

PHONED_BY = N_("📞 Passed up by phone by {name} at {time}.")
CONFIRM_ASK = N_(
    "📞 {caller} says they reported this to you by phone at {time}. "
    "Please confirm that you received the call."
)
CONFIRMED_BY = N_("📞 Phone report confirmed by {name} at {time}.")
DENIED = N_("📞 {name} says they did not receive your phone report of {time}. Please call again.")


@dataclass(frozen=True)
class Callee:
    """Someone at the level above whom a leader may have phoned."""

    person_id: int
    name: str
    role: str
    phone: str | None


@dataclass(frozen=True)
class PhoneOutcome:
    """What a record or a confirmation did."""

    escalation_id: int
    done_now: bool
    callee: str
    at: datetime
    kind: str  # "recorded", "confirmed", "denied", "already"


async def _above(
    session: AsyncSession, escalation: Escalation, level: Level
) -> tuple[Level, int] | None:
    policy = matter.policy_of(escalation)
    above = policy.above(level) if level in policy.levels else None
    if above is None:
        return None
    units = await matter.levels_of(session, await contacts.unit(session, escalation.unit_id))
    unit = units.get(above)
    return (above, unit.id) if unit is not None and unit.id is not None else None


async def _callees(
    session: AsyncSession, escalation: Escalation, level: Level, unit_id: int
) -> list[Callee]:
    policy = matter.policy_of(escalation)
    roles = list(PASS_UP_ROLES)
    for step in policy.steps:
        if step.level == level:
            roles.extend(r for r in step.roles if r not in roles)
    rows = await session.exec(
        select(Person, RoleGrant.role)
        .join(RoleGrant, col(RoleGrant.person_id) == Person.id)
        .where(
            RoleGrant.unit_id == unit_id,
            col(RoleGrant.role).in_(roles),
            col(Person.active),
        )
        .order_by(col(Person.staff_no))
    )
    found: dict[int, Callee] = {}
    for person, role in rows.all():
        if person.id is not None and person.id not in found:
            found[person.id] = Callee(person.id, person.name, role, person.phone)
    return list(found.values())


async def callees(db: Database, *, external_id: int, page_id: int) -> list[Callee]:
    """Whom the presser of a page may have phoned at the level above."""
    async with db.read() as uow:
        person = await contacts.person_by_account(uow.session, external_id=external_id)
        if person is None or person.id is None:
            raise NotAllowed("This button is not for you.")
        page, escalation, _ = await presser(
            uow.session, page_id=page_id, person_id=person.id, action=Action.PAGE_PASS_UP
        )
        if escalation.status == matter.RESOLVED:
            raise NotFound("This matter is closed already.")
        above = await _above(uow.session, escalation, Level(page.level))
        if above is None:
            raise NotAllowed("There is no level above this one to pass the matter up to.")
        return await _callees(uow.session, escalation, *above)


async def record(
    session: AsyncSession,
    *,
    page_id: int,
    person_id: int,
    callee_id: int,
    minutes_ago: int,
    now: datetime,
    ctx: PagingContext,
) -> PhoneOutcome:
    """Record a phone call to the level above and ask the callee to confirm it."""
    if minutes_ago not in AGO_CHOICES:
        raise NotFound("This button is no longer valid.")
    page, escalation, person = await presser(
        session, page_id=page_id, person_id=person_id, action=Action.PAGE_PASS_UP
    )
    assert escalation.id is not None
    if escalation.status == matter.RESOLVED:
        raise NotFound("This matter is closed already.")
    above = await _above(session, escalation, Level(page.level))
    if above is None:
        raise NotAllowed("There is no level above this one to pass the matter up to.")
    level, unit_id = above
    callee = next(
        (
            c
            for c in await _callees(session, escalation, level, unit_id)
            if c.person_id == callee_id
        ),
        None,
    )
    if callee is None:
        raise NotFound("This button is no longer valid.")
    called_at = now - timedelta(minutes=minutes_ago)
    row = await level_row(session, escalation, Level(page.level))
    if row.acknowledged_at is None:
        await acknowledge_level(
            session,
            escalation,
            row,
            person=person,
            kind="phoned_up",
            note=by_note(PHONED_BY, person, now, ctx),
            now=now,
            ctx=ctx,
        )
    event = await matter.record(
        session,
        escalation,
        kind="phone_report",
        at=now,
        level=level,
        person_id=person_id,
        to=callee_id,
        called_at=called_at.isoformat(),
    )
    reader = await contacts.person(session, callee_id)
    tr = translator(language(reader, ctx))
    subject = matter.subject_of(escalation)
    params = {
        k: tr._(v["msg"]) if isinstance(v, dict) else v for k, v in subject.what_params.items()
    }
    place = await contacts.unit(session, matter.place_unit_id(escalation))
    text = "\n".join(
        [
            *drill_lines(tr, escalation),
            "🚨 <b>" + html.escape(tr._(subject.what, **params), quote=False) + "</b>",
            tr._("📍 Where: {unit}", unit=html.escape(place.name, quote=False)),
            tr._(
                CONFIRM_ASK,
                caller=html.escape(person.name, quote=False),
                time=tr.time_text(called_at, ctx.tz),
            ),
        ]
    )
    await outbox.enqueue(
        session,
        now=now,
        text=text,
        person_id=callee_id,
        buttons=[
            [
                Button(tr._("✅ Yes, I was called"), PhoneConfirm(event.id or 0, True).data),
                Button(tr._("✖ No call"), PhoneConfirm(event.id or 0, False).data),
            ]
        ],
    )
    await advance(session, escalation.id, now=now, ctx=ctx)
    return PhoneOutcome(escalation.id, True, callee.name, called_at, "recorded")


async def confirm(
    session: AsyncSession,
    *,
    event_id: int,
    person_id: int,
    received: bool,
    now: datetime,
    ctx: PagingContext,
) -> PhoneOutcome:
    """The person phoned confirms (or denies) the call; only they may answer, once."""
    found = await session.get(EscalationEvent, event_id)
    if found is None or found.kind != "phone_report" or not found.detail:
        raise NotFound("This button is no longer valid.")
    escalation = await matter.lock(session, found.escalation_id)
    if escalation is None or escalation.id is None:
        raise NotFound("This button is no longer valid.")
    if int(found.detail.get("to", 0)) != person_id:
        raise NotAllowed("This button is not for you.")
    called_at = datetime.fromisoformat(found.detail["called_at"])
    callee = await contacts.person(session, person_id)
    answered = (
        await session.exec(
            select(EscalationEvent).where(
                EscalationEvent.escalation_id == escalation.id,
                EscalationEvent.key == f"phone:{event_id}",
            )
        )
    ).first()
    if answered is not None:
        return PhoneOutcome(escalation.id, False, callee.name, answered.at, "already")
    level = Level(found.level or Level.PARENT.value)
    kind = "phone_confirmed" if received else "phone_denied"
    await matter.record(
        session,
        escalation,
        kind=kind,
        at=now,
        level=level,
        person_id=person_id,
        key=f"phone:{event_id}",
        report=event_id,
    )
    if not received:
        caller = await contacts.person(session, found.person_id or 0)
        tr = translator(language(caller, ctx))
        await outbox.enqueue(
            session,
            now=now,
            text="\n".join(
                [
                    *drill_lines(tr, escalation),
                    tr._(
                        DENIED,
                        name=html.escape(callee.name, quote=False),
                        time=tr.time_text(called_at, ctx.tz),
                    ),
                ]
            ),
            person_id=caller.id,
        )
        return PhoneOutcome(escalation.id, True, callee.name, now, "denied")
    if escalation.status != matter.RESOLVED:
        row = await _reached_by_phone(session, escalation, level, called_at, found, now=now)
        if row is not None and row.acknowledged_at is None:
            await acknowledge_level(
                session,
                escalation,
                row,
                person=callee,
                kind="acknowledged",
                note=by_note(CONFIRMED_BY, callee, now, ctx),
                now=now,
                ctx=ctx,
            )
        await advance(session, escalation.id, now=now, ctx=ctx)
    return PhoneOutcome(escalation.id, True, callee.name, now, "confirmed")


async def _reached_by_phone(
    session: AsyncSession,
    escalation: Escalation,
    level: Level,
    called_at: datetime,
    report: EscalationEvent,
    *,
    now: datetime,
) -> EscalationLevel | None:
    """Reach the level at the time of the call; an earlier call moves an existing reach back."""
    rows = await matter.level_rows(session, escalation.id or 0)
    row = rows.get(level)
    if row is None:
        return await matter.reach(
            session,
            escalation,
            level=level,
            how=ReachHow.PHONE,
            now=now,
            by=report.person_id,
            at=called_at,
            late=_late(escalation, called_at),
        )
    if called_at < row.reached_at:
        row.reached_at = called_at
        row.reached_how = ReachHow.PHONE.value
        row.reached_by_id = report.person_id
        row.late = _late(escalation, called_at)
        await session.flush()
        await matter.reach_changed(session, escalation)
    return row


def _late(escalation: Escalation, called_at: datetime) -> bool:
    """A call after occurrence + report deadline is a late report all the same."""
    policy = matter.policy_of(escalation)
    if policy.report_deadline is None:
        return False
    return called_at > (escalation.occurred_at or escalation.started_at) + policy.report_deadline


async def press_record(
    db: Database,
    *,
    external_id: int,
    page_id: int,
    callee_id: int,
    minutes_ago: int,
    now: datetime,
    ctx: PagingContext,
) -> PhoneOutcome:
    """A leader's last tap in "reported by phone": record it in one transaction."""

    async def act(session: AsyncSession, person_id: int) -> PhoneOutcome:
        return await record(
            session,
            page_id=page_id,
            person_id=person_id,
            callee_id=callee_id,
            minutes_ago=minutes_ago,
            now=now,
            ctx=ctx,
        )

    return await on_behalf(
        db, external_id=external_id, use_case=act, action="page.phone", subject_id=page_id, now=now
    )


async def press_confirm(
    db: Database,
    *,
    external_id: int,
    event_id: int,
    received: bool,
    now: datetime,
    ctx: PagingContext,
) -> PhoneOutcome:
    """The callee's answer to "were you called?", in one transaction."""

    async def act(session: AsyncSession, person_id: int) -> PhoneOutcome:
        return await confirm(
            session, event_id=event_id, person_id=person_id, received=received, now=now, ctx=ctx
        )

    return await on_behalf(
        db,
        external_id=external_id,
        use_case=act,
        action="page.phone_confirm",
        subject_type="escalation_event",
        subject_id=event_id,
        now=now,
    )
