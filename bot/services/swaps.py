"""Shift swaps (/swap): a colleague of the same unit accepts, the duty leader approves.

All three are told and the shift changes hands. The shift's deadlines (reminders, missed-shift
paging) read the shift as it is when they fire, so once approved they follow the new person
without being rescheduled.

The rules, checked here at every step rather than trusted from the buttons:
- a shift goes to an active colleague of its unit who is free then, never back to its owner;
- one open offer per shift and colleague: pressing the colleague again returns that offer;
- a leader-on-duty (带班) shift goes only to someone holding a leader role at that very unit
  (`[rota] leader_roles`, or principal), so a swap never makes plain staff the leader of the day.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Action, allowed
from bot.callbacks import SwapAnswer, SwapDecision
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, Translator, translator
from bot.models import ClockEvent, Person, RoleGrant, Shift, ShiftKind, ShiftSwap, Unit
from bot.services import audit, contacts, outbox
from bot.services.escalation import PagingContext
from bot.services.outbox import Button
from bot.services.sql import lock_for_update
from bot.uow import Database, UnitOfWork

DEFAULT_LEADER_ROLES = ("duty_leader",)
# Whoever heads the unit may always lead its duty, whatever the rota's pool says.
_ALWAYS_LEADS = "principal"
OPEN = ("offered", "accepted")


@dataclass(frozen=True)
class Choice:
    """Something to pick from a button: an id and what the button says."""

    id: int
    label: str


def _span(tr: Translator, shift: Shift, ctx: PagingContext) -> str:
    start = tr.datetime_text(shift.start, ctx.tz, "MM-dd HH:mm")
    return f"{start}–{tr.time_text(shift.end, ctx.tz)} {shift.post}"


async def _free(session: AsyncSession, shift: Shift, now: datetime) -> None:
    """Refuse a shift that has begun or been clocked in to."""
    clocked = (
        await session.exec(select(ClockEvent.id).where(ClockEvent.shift_id == shift.id).limit(1))
    ).first()
    if shift.start <= now or clocked is not None:
        raise InvalidInput("That shift has already begun; it can no longer be swapped.")


async def _on_duty_then(session: AsyncSession, person_id: int, shift: Shift) -> bool:
    overlapping = await session.exec(
        select(Shift.id).where(
            Shift.person_id == person_id,
            col(Shift.start) < shift.end,
            col(Shift.end) > shift.start,
            Shift.id != shift.id,
        )
    )
    return overlapping.first() is not None


async def _may_lead(
    session: AsyncSession, person_id: int, shift: Shift, leader_roles: Sequence[str]
) -> bool:
    """Tell whether the person may take this shift: anyone for staff, leaders for 带班."""
    if shift.kind != ShiftKind.LEADER:
        return True
    roles = {*leader_roles, _ALWAYS_LEADS}
    held = await session.exec(
        select(RoleGrant.id).where(
            RoleGrant.person_id == person_id,
            RoleGrant.unit_id == shift.unit_id,
            col(RoleGrant.role).in_(sorted(roles)),
        )
    )
    return held.first() is not None


@dataclass(frozen=True)
class Offered:
    """The open offer of a shift to a colleague; `already` when an earlier press made it."""

    swap_id: int
    to_name: str
    already: bool


async def my_swappable(
    db: Database, *, person_id: int, now: datetime, ctx: PagingContext, tr: Translator
) -> list[Choice]:
    """The person's shifts that have not begun (the next 14 days)."""
    async with db.uow() as uow:
        rows = await uow.session.exec(
            select(Shift)
            .where(Shift.person_id == person_id, col(Shift.start) > now)
            .order_by(col(Shift.start))
            .limit(10)
        )
        return [Choice(shift.id or 0, _span(tr, shift, ctx)) for shift in rows.all()]


async def colleagues(
    db: Database,
    *,
    person_id: int,
    shift_id: int,
    now: datetime,
    leader_roles: Sequence[str] = DEFAULT_LEADER_ROLES,
) -> list[Choice]:
    """Colleagues of the same unit who are free during the shift and may take it."""
    async with db.uow() as uow:
        session = uow.session
        shift = await _own_shift(session, person_id=person_id, shift_id=shift_id)
        await _free(session, shift, now)
        people = await session.exec(
            select(Person)
            .where(Person.unit_id == shift.unit_id, col(Person.active), Person.id != person_id)
            .order_by(col(Person.staff_no))
        )
        return [
            Choice(person.id or 0, person.name)
            for person in people.all()
            if not await _on_duty_then(session, person.id or 0, shift)
            and await _may_lead(session, person.id or 0, shift, leader_roles)
        ]


async def _own_shift(session: AsyncSession, *, person_id: int, shift_id: int) -> Shift:
    shift = (await session.exec(select(Shift).where(Shift.id == shift_id))).first()
    if shift is None or shift.person_id != person_id:
        raise NotFound("That shift is not yours (any more).")
    return shift


def _language(person: Person, ctx: PagingContext) -> Translator:
    return translator(person.language or ctx.default_language)


async def _tell(
    session: AsyncSession,
    person: Person,
    message: str,
    ctx: PagingContext,
    now: datetime,
    *,
    shift: Shift,
    buttons: list[tuple[str, str]] | None = None,
    **params: str,
) -> None:
    tr = _language(person, ctx)
    text = tr._(
        message,
        span=html.escape(_span(tr, shift, ctx), quote=False),
        **{k: html.escape(v, quote=False) for k, v in params.items()},
    )
    keyboard = [[Button(tr._(label), data) for label, data in buttons]] if buttons else None
    await outbox.enqueue(session, now=now, text=text, person_id=person.id, buttons=keyboard)


async def _vetted(
    uow: UnitOfWork,
    person_id: int,
    shift: Shift,
    to_person_id: int,
    now: datetime,
    leader_roles: Sequence[str],
) -> Person:
    """The colleague a shift may go to; a refusal is audited (and committed) before it is raised."""
    session = uow.session
    await _free(session, shift, now)
    if to_person_id == person_id:
        await _refused(uow, person_id=person_id, shift=shift, action="swap.offer", now=now)
        raise InvalidInput("You cannot hand a shift to yourself; choose a colleague.")
    other = (await session.exec(select(Person).where(Person.id == to_person_id))).first()
    if other is None or other.unit_id != shift.unit_id or not other.active:
        await _refused(uow, person_id=person_id, shift=shift, action="swap.offer", now=now)
        raise InvalidInput("You can only swap with a colleague of your own unit.")
    if not await _may_lead(session, to_person_id, shift, leader_roles):
        await _refused(uow, person_id=person_id, shift=shift, action="swap.offer", now=now)
        raise InvalidInput(
            "{name} holds no leader role at this unit and cannot lead the duty.",
            name=other.name,
        )
    return other


async def vet_offer(
    db: Database,
    *,
    person_id: int,
    shift_id: int,
    to_person_id: int,
    now: datetime,
    leader_roles: Sequence[str] = DEFAULT_LEADER_ROLES,
) -> str:
    """Check, before asking, that a colleague may be asked for this shift; return their name.

    The same rules as `offer`, which checks them again when the asker confirms; nothing is
    written but the audit of a refusal.
    """
    async with db.uow() as uow:
        session = uow.session
        shift = await _own_shift(session, person_id=person_id, shift_id=shift_id)
        other = await _vetted(uow, person_id, shift, to_person_id, now, leader_roles)
        if await _on_duty_then(session, to_person_id, shift):
            raise InvalidInput("{name} is already on duty at that time.", name=other.name)
        return other.name


async def offer(
    db: Database,
    *,
    person_id: int,
    shift_id: int,
    to_person_id: int,
    now: datetime,
    ctx: PagingContext,
    leader_roles: Sequence[str] = DEFAULT_LEADER_ROLES,
) -> Offered:
    """Offer one of my shifts to a colleague; they are asked to accept (once per open offer)."""
    async with db.uow() as uow:
        session = uow.session
        # Locked first so that two presses at once queue here and the second finds the offer.
        shift = (
            await session.exec(lock_for_update(select(Shift).where(Shift.id == shift_id), session))
        ).first()
        if shift is None or shift.person_id != person_id:
            raise NotFound("That shift is not yours (any more).")
        other = await _vetted(uow, person_id, shift, to_person_id, now, leader_roles)
        me = await contacts.person(session, person_id)
        existing = (
            await session.exec(
                select(ShiftSwap).where(
                    ShiftSwap.shift_id == shift_id,
                    ShiftSwap.from_person_id == person_id,
                    ShiftSwap.to_person_id == to_person_id,
                    col(ShiftSwap.status).in_(OPEN),
                )
            )
        ).first()
        if existing is not None:
            return Offered(existing.id or 0, other.name, already=True)
        if await _on_duty_then(session, to_person_id, shift):
            raise InvalidInput("{name} is already on duty at that time.", name=other.name)
        swap = ShiftSwap(
            shift_id=shift_id, from_person_id=person_id, to_person_id=to_person_id, requested_at=now
        )
        session.add(swap)
        await session.flush()
        await _tell(
            session,
            other,
            N_("🔁 {name} asks you to take their shift {span}. Will you take it?"),
            ctx,
            now,
            shift=shift,
            name=me.name,
            buttons=[
                (N_("✅ Accept"), SwapAnswer(swap.id or 0, accept=True).data),
                (N_("✖ Decline"), SwapAnswer(swap.id or 0, accept=False).data),
            ],
        )
        await _record(session, "swap.offer", person_id, shift, now, to=to_person_id, swap=swap.id)
        await uow.commit()
    return Offered(swap.id or 0, other.name, already=False)


async def _record(
    session: AsyncSession,
    action: str,
    person_id: int,
    shift: Shift,
    now: datetime,
    *,
    allowed: bool = True,
    **detail: Any,
) -> None:
    """Audit one step of a swap of this shift."""
    await audit.record(
        session,
        at=now,
        action=action,
        actor_person_id=person_id,
        subject_type="shift",
        subject_id=shift.id,
        unit_id=shift.unit_id,
        allowed=allowed,
        detail=detail or None,
    )


async def _refused(
    uow: UnitOfWork, *, person_id: int, shift: Shift, action: str, now: datetime
) -> None:
    """Record a refused press; nothing else of the use case was written."""
    await _record(uow.session, action, person_id, shift, now, allowed=False)
    await uow.commit()


async def _swap(session: AsyncSession, swap_id: int) -> tuple[ShiftSwap, Shift, Person, Person]:
    swap = (
        await session.exec(
            lock_for_update(select(ShiftSwap).where(ShiftSwap.id == swap_id), session)
        )
    ).first()
    if swap is None:
        raise NotFound("This button is no longer valid.")
    shift = (
        await session.exec(lock_for_update(select(Shift).where(Shift.id == swap.shift_id), session))
    ).one()
    changed_hands = shift.person_id != swap.from_person_id
    if swap.status == "superseded" or (swap.status in ("offered", "accepted") and changed_hands):
        # the shift changed hands meanwhile (another swap was approved)
        raise InvalidInput("This swap is out of date: the shift has changed hands.")
    giver = await contacts.person(session, swap.from_person_id)
    taker = await contacts.person(session, swap.to_person_id)
    return swap, shift, giver, taker


async def answer(
    db: Database,
    *,
    person_id: int,
    swap_id: int,
    accept: bool,
    now: datetime,
    ctx: PagingContext,
) -> str:
    """The colleague accepts or declines; on acceptance the duty leader is asked to approve."""
    async with db.uow() as uow:
        session = uow.session
        swap, shift, giver, taker = await _swap(session, swap_id)
        if swap.to_person_id != person_id:
            await _refused(uow, person_id=person_id, shift=shift, action="swap.accept", now=now)
            raise NotAllowed("This button is not for you.")
        if swap.status != "offered":
            raise InvalidInput("This swap was already answered.")
        await _free(session, shift, now)
        if not accept:
            swap.status, swap.decided_at = "declined", now
            await _tell(
                session,
                giver,
                N_("✖ {name} declined to take your shift {span}."),
                ctx,
                now,
                shift=shift,
                name=taker.name,
            )
        else:
            swap.status, swap.accepted_at = "accepted", now
            leaders = await contacts.holders(
                session, role="duty_leader", unit_id=shift.unit_id, now=shift.start
            )
            for leader in leaders or await contacts.people_with_role(
                session, role="principal", unit_id=shift.unit_id
            ):
                await _tell(
                    session,
                    leader,
                    N_(
                        "🔁 {giver} wants to hand the shift {span} to {taker}, who agreed. Approve?"
                    ),
                    ctx,
                    now,
                    shift=shift,
                    giver=giver.name,
                    taker=taker.name,
                    buttons=[
                        (N_("✅ Approve"), SwapDecision(swap.id or 0, approve=True).data),
                        (N_("✖ Refuse"), SwapDecision(swap.id or 0, approve=False).data),
                    ],
                )
            await _tell(
                session,
                giver,
                N_(
                    "{name} agreed to take your shift {span}; waiting for the duty "
                    "leader's approval."
                ),
                ctx,
                now,
                shift=shift,
                name=taker.name,
            )
        action = "swap.accept" if accept else "swap.decline"
        await _record(session, action, person_id, shift, now, swap=swap.id)
        await uow.commit()
    return swap.status


async def decide(
    db: Database,
    *,
    person_id: int,
    swap_id: int,
    approve: bool,
    now: datetime,
    ctx: PagingContext,
    leader_roles: Sequence[str] = DEFAULT_LEADER_ROLES,
) -> str:
    """The duty leader approves (the shift changes hands) or refuses; all three are told."""
    async with db.uow() as uow:
        session = uow.session
        swap, shift, giver, taker = await _swap(session, swap_id)
        unit = (await session.exec(select(Unit).where(Unit.id == shift.unit_id))).one()
        grants = await contacts.grants_of(session, person_id)
        if person_id in (swap.from_person_id, swap.to_person_id):
            raise InvalidInput("Another leader has to decide a swap of your own shift.")
        if not allowed(grants, Action.SWAP_APPROVE, unit.path):
            await _refused(uow, person_id=person_id, shift=shift, action="swap.approve", now=now)
            raise NotAllowed("This button is not for you.")
        if swap.status != "accepted":
            raise InvalidInput("This swap was already decided.")
        await _free(session, shift, now)
        leader = await contacts.person(session, person_id)
        if approve:
            if await _on_duty_then(session, taker.id or 0, shift):
                raise InvalidInput("{name} is already on duty at that time.", name=taker.name)
            # Checked again: the taker's leader role may have been withdrawn since the offer.
            if not await _may_lead(session, taker.id or 0, shift, leader_roles):
                await _refused(
                    uow, person_id=person_id, shift=shift, action="swap.approve", now=now
                )
                raise InvalidInput(
                    "{name} holds no leader role at this unit and cannot lead the duty.",
                    name=taker.name,
                )
            shift.person_id = taker.id
            swap.status = "approved"
            others = await session.exec(
                select(ShiftSwap).where(
                    ShiftSwap.shift_id == shift.id,
                    ShiftSwap.id != swap.id,
                    col(ShiftSwap.status).in_(OPEN),
                )
            )
            for other in others.all():
                other.status = "superseded"
            message = N_(
                "✅ {leader} approved: the shift {span} now belongs to {taker} "
                "(instead of {giver})."
            )
        else:
            swap.status = "refused"
            message = N_("✖ {leader} refused to hand the shift {span} from {giver} to {taker}.")
        swap.decided_at, swap.decided_by_id = now, person_id
        for person in (giver, taker, leader):
            await _tell(
                session,
                person,
                message,
                ctx,
                now,
                shift=shift,
                leader=leader.name,
                giver=giver.name,
                taker=taker.name,
            )
        action = "swap.approve" if approve else "swap.refuse"
        await _record(session, action, person_id, shift, now, swap=swap.id)
        await uow.commit()
    return swap.status
