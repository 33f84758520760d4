"""What people (and the matter itself) do to an escalation: acknowledge, pass up, resolve.

Each action locks the matter, changes the level it concerns, closes that level's pages with a
line saying who did what, writes the timeline and plans the matter's next look, in the caller's
transaction. `press` is the use case behind a page button: check who it is, then act, in one go.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Action, may_press_page
from bot.config import EscalationStep, Level
from bot.errors import NotAllowed, NotFound
from bot.models import Escalation, EscalationLevel, Page, Person
from bot.services import audit, contacts
from bot.services.escalation import matter
from bot.services.escalation.matter import Start
from bot.services.escalation.paging import advance, close_pages, note_lower_levels
from bot.services.escalation.policy import ReachHow
from bot.services.escalation.views import EscalationView, Note, PagingContext, by_note
from bot.services.escalation.views import escalation_view as _escalation_view
from bot.services.page_text import (
    ACKNOWLEDGED_BY,
    PASSED_UP_BY,
    REPORTED_DIRECT_BY,
    RESOLVED_BY,
    PageSubject,
)
from bot.uow import Database

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """The result of a button press on a page."""

    escalation_id: int
    done_now: bool
    by_name: str
    at: datetime
    kind: str  # "acknowledged", "resolved", "passed_up", "reported_direct"
    others_told: int = 0  # other people whose page now shows the outcome


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
    occurred_at: datetime | None = None,
    report_deadline: timedelta | None = None,
    forward_margin: timedelta = timedelta(minutes=10),
    reporter_id: int | None = None,
    new_subject: bool = False,
) -> Escalation:
    """Start paging a matter at its unit; starting it twice returns the first one.

    `place_unit_id` is where the matter is, when that differs from the unit it starts at.
    People in `exclude` are never paged about it (the absent person about their own missed
    shift). With a `report_deadline`, the matter reaches every level above by `occurred_at` +
    deadline (SPEC §4 rule 3); the first look is planned at once. Pages to the levels above
    list the phones of `reporter_id` and the unit's leaders. `new_subject`: the subject was
    stored in the caller's transaction, so there is no earlier matter to look for.
    """
    spec = Start(
        policy=policy,
        steps=steps,
        subject_type=subject_type,
        subject_id=subject_id,
        unit_id=unit_id,
        subject=subject,
        drill=drill,
        place_unit_id=place_unit_id,
        exclude=exclude,
        late_since=late_since,
        occurred_at=occurred_at,
        report_deadline=report_deadline,
        forward_margin=forward_margin,
        reporter_id=reporter_id,
        new_subject=new_subject,
    )
    escalation, _created = await matter.create(session, spec, now=now)
    return escalation


async def presser(
    session: AsyncSession, *, page_id: int, person_id: int, action: Action
) -> tuple[Page, Escalation, Person]:
    """Lock the matter behind a page and check that the person may do `action` on it."""
    found = (await session.exec(select(Page.escalation_id).where(Page.id == page_id))).first()
    if found is None:
        raise NotFound("This button is no longer valid.")
    escalation = await matter.lock(session, found)
    page = await session.get(Page, page_id, populate_existing=True)
    if escalation is None or page is None:
        raise NotFound("This button is no longer valid.")
    person = await contacts.person(session, person_id)
    await check_press(session, escalation, page, person_id=person_id, action=action)
    return page, escalation, person


async def check_press(
    session: AsyncSession, escalation: Escalation, page: Page, *, person_id: int, action: Action
) -> None:
    """Refuse a press by someone `may_press_page` does not allow, with one sentence."""
    if person_id in matter.excluded(escalation):
        raise NotAllowed("You cannot act on a page about yourself.")
    unit = await contacts.unit(session, escalation.unit_id)
    grants = await contacts.grants_of(session, person_id)
    if not may_press_page(
        grants,
        action,
        unit.path,
        person_id=person_id,
        paged_person_id=page.person_id,
        subject_ids=matter.excluded(escalation),
    ):
        raise NotAllowed("This page is outside your area of responsibility.")


async def _earlier(
    session: AsyncSession, escalation: Escalation, level: EscalationLevel | None
) -> Outcome:
    """Who was first: the resolver of the matter, else whoever acknowledged this level."""
    assert escalation.id is not None
    if escalation.resolved_at is not None and escalation.resolved_by_id is not None:
        by = await contacts.person(session, escalation.resolved_by_id)
        return Outcome(escalation.id, False, by.name, escalation.resolved_at, "resolved")
    if escalation.resolved_at is not None:
        return Outcome(escalation.id, False, "", escalation.resolved_at, "resolved")
    if level is not None and level.acknowledged_at is not None and level.acknowledged_by_id:
        by = await contacts.person(session, level.acknowledged_by_id)
        return Outcome(escalation.id, False, by.name, level.acknowledged_at, "acknowledged")
    return Outcome(escalation.id, False, "", escalation.started_at, escalation.status)


async def level_row(session: AsyncSession, escalation: Escalation, level: Level) -> EscalationLevel:
    """The stored state of one level the matter has reached."""
    rows = await matter.level_rows(session, escalation.id or 0)
    row = rows.get(level)
    if row is None:  # a matter stored before levels existed has reached its own unit
        assert escalation.id is not None
        row = EscalationLevel(
            escalation_id=escalation.id,
            level=level.value,
            unit_id=escalation.unit_id,
            reached_at=escalation.started_at,
            reached_how=ReachHow.START.value,
        )
        session.add(row)
        await session.flush()
    return row


async def acknowledge_level(
    session: AsyncSession,
    escalation: Escalation,
    row: EscalationLevel,
    *,
    person: Person,
    kind: str,
    note: Note,
    now: datetime,
    ctx: PagingContext,
) -> set[int]:
    """Acknowledge one level: close its pages with `note` and write the timeline.

    Returns the people whose pages at that level now show who acknowledged.
    """
    row.acknowledged_at = now
    row.acknowledged_by_id = person.id
    if escalation.acknowledged_at is None:
        escalation.acknowledged_at = now
        escalation.acknowledged_by_id = person.id
    level = Level(row.level)
    told = await close_pages(session, escalation, note=note, now=now, ctx=ctx, level=level)
    unit = await contacts.unit(session, row.unit_id)
    await note_lower_levels(
        session, escalation, level=level, person=person, unit_name=unit.name, now=now, ctx=ctx
    )
    await matter.record(session, escalation, kind=kind, at=now, level=level, person_id=person.id)
    escalation.status = matter.status_after(
        await matter.level_rows(session, escalation.id or 0), resolved=False
    )
    return told


async def acknowledge(
    session: AsyncSession, *, page_id: int, person_id: int, now: datetime, ctx: PagingContext
) -> Outcome:
    """Acknowledge (接报) at the page's level: that level's paging stops, nothing else."""
    page, escalation, person = await presser(
        session, page_id=page_id, person_id=person_id, action=Action.PAGE_ACKNOWLEDGE
    )
    assert escalation.id is not None
    row = await level_row(session, escalation, Level(page.level))
    if escalation.status == matter.RESOLVED or row.acknowledged_at is not None:
        return await _earlier(session, escalation, row)
    told = await acknowledge_level(
        session,
        escalation,
        row,
        person=person,
        kind="acknowledged",
        note=by_note(ACKNOWLEDGED_BY, person, now, ctx),
        now=now,
        ctx=ctx,
    )
    await advance(session, escalation.id, now=now, ctx=ctx)
    await _record_press(session, escalation, page, person_id, "page.acknowledge", now)
    return Outcome(
        escalation.id, True, person.name, now, "acknowledged", others_told=len(told - {person_id})
    )


async def _pass_to(
    session: AsyncSession,
    *,
    page_id: int,
    person_id: int,
    now: datetime,
    ctx: PagingContext,
    direct: bool,
) -> Outcome:
    page, escalation, person = await presser(
        session, page_id=page_id, person_id=person_id, action=Action.PAGE_PASS_UP
    )
    assert escalation.id is not None
    policy = matter.policy_of(escalation)
    level = Level(page.level)
    above = policy.above(level) if level in policy.levels else None
    if above is None:
        raise NotAllowed("There is no level above this one to pass the matter up to.")
    if direct:
        if policy.report_deadline is None:
            raise NotAllowed("Only serious matters may be reported straight to the county.")
        above = policy.levels[-1]
    row = await level_row(session, escalation, level)
    if escalation.status == matter.RESOLVED:
        return await _earlier(session, escalation, row)  # dealt with: nothing to pass up
    note = by_note(REPORTED_DIRECT_BY if direct else PASSED_UP_BY, person, now, ctx)
    kind = "reported_direct" if direct else "passed_up"
    if row.acknowledged_at is None:
        await acknowledge_level(
            session, escalation, row, person=person, kind=kind, note=note, now=now, ctx=ctx
        )
    await matter.reach(
        session,
        escalation,
        level=above,
        how=ReachHow.DIRECT if direct else ReachHow.PASSED_UP,
        now=now,
        by=person_id,
    )
    await advance(session, escalation.id, now=now, ctx=ctx)
    await _record_press(
        session, escalation, page, person_id, f"page.{kind}", now, to_level=above.value
    )
    return Outcome(escalation.id, True, person.name, now, kind)


async def pass_up(
    session: AsyncSession, *, page_id: int, person_id: int, now: datetime, ctx: PagingContext
) -> Outcome:
    """Pass up (上报): acknowledge at the page's level and make the matter reach the next."""
    return await _pass_to(
        session, page_id=page_id, person_id=person_id, now=now, ctx=ctx, direct=False
    )


async def report_direct(
    session: AsyncSession, *, page_id: int, person_id: int, now: datetime, ctx: PagingContext
) -> Outcome:
    """Skip-level direct report (越级直报): acknowledge here and reach the county at once."""
    return await _pass_to(
        session, page_id=page_id, person_id=person_id, now=now, ctx=ctx, direct=True
    )


async def reach_county_directly(
    session: AsyncSession, *, escalation_id: int, person_id: int, now: datetime, ctx: PagingContext
) -> bool:
    """Skip-level direct report (越级直报) made with the report itself: reach the county now.

    Unlike the page button, nothing is acknowledged below: the unit's own levels keep being
    paged as the policy says. Returns whether the county was reached just now.
    """
    escalation = await matter.lock(session, escalation_id)
    if escalation is None or escalation.id is None:
        raise NotFound("This button is no longer valid.")
    policy = matter.policy_of(escalation)
    if policy.report_deadline is None:
        raise NotAllowed("Only serious matters may be reported straight to the county.")
    top = policy.levels[-1]
    if escalation.status == matter.RESOLVED or top == Level.UNIT:
        return False
    row = await matter.reach(
        session, escalation, level=top, how=ReachHow.DIRECT, now=now, by=person_id
    )
    await advance(session, escalation.id, now=now, ctx=ctx)
    await audit.record(
        session,
        at=now,
        action="escalation.reported_direct",
        actor_person_id=person_id,
        subject_type=escalation.subject_type,
        subject_id=escalation.subject_id,
        unit_id=escalation.unit_id,
        detail={"escalation": escalation.id, "to_level": top.value},
    )
    return row is not None


async def resolve(
    session: AsyncSession, *, page_id: int, person_id: int, now: datetime, ctx: PagingContext
) -> Outcome:
    """Resolve: the matter is dealt with; every level's paging stops."""
    page, escalation, person = await presser(
        session, page_id=page_id, person_id=person_id, action=Action.PAGE_RESOLVE
    )
    assert escalation.id is not None
    if escalation.resolved_at is not None or escalation.status == matter.RESOLVED:
        return await _earlier(session, escalation, None)
    await _close(
        session,
        escalation,
        by=person,
        note=by_note(RESOLVED_BY, person, now, ctx),
        now=now,
        ctx=ctx,
    )
    await _record_press(session, escalation, page, person_id, "page.resolve", now)
    return Outcome(escalation.id, True, person.name, now, "resolved")


async def _close(
    session: AsyncSession,
    escalation: Escalation,
    *,
    by: Person | None,
    note: Note,
    now: datetime,
    ctx: PagingContext,
) -> None:
    if escalation.acknowledged_at is None and by is not None:
        escalation.acknowledged_at = now
        escalation.acknowledged_by_id = by.id
    escalation.resolved_at = now
    escalation.resolved_by_id = by.id if by is not None else None
    escalation.status = matter.RESOLVED
    await close_pages(session, escalation, note=note, now=now, ctx=ctx)
    await matter.record(
        session, escalation, kind="resolved", at=now, person_id=by.id if by else None
    )
    await matter.plan_next(session, escalation, next_at=None, now=now)


async def _record_press(
    session: AsyncSession,
    escalation: Escalation,
    page: Page,
    person_id: int,
    action: str,
    now: datetime,
    **detail: object,
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


# Built once: every clock-in asks it, and building it cost more CPU than running it.
_OPEN_FOR_SUBJECT = select(Escalation.id).where(
    Escalation.subject_type == sa.bindparam("subject_type"),
    Escalation.subject_id == sa.bindparam("subject_id"),
    col(Escalation.status).in_([matter.ACTIVE, matter.ACKNOWLEDGED]),
)


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
    found = await session.exec(
        _OPEN_FOR_SUBJECT, params={"subject_type": subject_type, "subject_id": subject_id}
    )
    closed = 0
    for escalation_id in found.all():
        locked = await matter.lock(session, escalation_id or 0)
        if locked is None or locked.status == matter.RESOLVED:
            continue
        await _close(session, locked, by=None, note=note, now=now, ctx=ctx)
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


_ACTIONS = {"a": acknowledge, "u": pass_up, "x": report_direct, "r": resolve}


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

    async def act(session: AsyncSession, person_id: int) -> Outcome:
        return await use_case(session, page_id=page_id, person_id=person_id, now=now, ctx=ctx)

    return await on_behalf(
        db,
        external_id=external_id,
        use_case=act,
        action=f"page.{action}",
        subject_id=page_id,
        now=now,
    )


async def on_behalf(
    db: Database,
    *,
    external_id: int,
    use_case: Callable[[AsyncSession, int], Awaitable[T]],
    action: str,
    subject_id: int,
    now: datetime,
    subject_type: str = "page",
) -> T:
    """Run a use case for the person behind a messaging account, in one transaction.

    A refusal rolls the use case back and is audited in a transaction of its own.
    """
    async with db.uow() as uow:
        person = await contacts.person_by_account(uow.session, external_id=external_id)
        if person is None or person.id is None:
            raise NotAllowed("This button is not for you.")
        audit.acting_as(uow.session, person_id=person.id, account=f"telegram:{external_id}")
        try:
            outcome = await use_case(uow.session, person.id)
        except NotAllowed as error:
            refusal = error
        else:
            await uow.commit()
            return outcome
    await refused(
        db,
        person_id=person.id,
        action=action,
        now=now,
        subject_type=subject_type,
        subject_id=subject_id,
    )
    raise refusal


async def refused(
    db: Database,
    *,
    person_id: int,
    action: str,
    now: datetime,
    subject_type: str = "page",
    subject_id: int,
) -> None:
    """Audit a refused press in a transaction of its own (the use case rolled back)."""
    async with db.uow() as uow:
        await audit.record(
            uow.session,
            at=now,
            action=action,
            actor_person_id=person_id,
            subject_type=subject_type,
            subject_id=subject_id,
            allowed=False,
        )
        await uow.commit()


async def view(db: Database, *, external_id: int, page_id: int) -> EscalationView:
    """The matter behind a page with its levels and every page sent, for someone allowed."""
    async with db.read() as uow:
        session = uow.session
        person = await contacts.person_by_account(session, external_id=external_id)
        if person is None or person.id is None:
            raise NotAllowed("This button is not for you.")
        page = await session.get(Page, page_id)
        if page is None:
            raise NotFound("This button is no longer valid.")
        escalation = await session.get(Escalation, page.escalation_id)
        if escalation is None:
            raise NotFound("This button is no longer valid.")
        await check_press(
            session, escalation, page, person_id=person.id, action=Action.PAGE_DETAILS
        )
        return await _escalation_view(session, escalation)
