"""The engine's side of escalation: look at a matter, page what is due, plan the next look.

`advance` is the one place that carries out `policy.decide`: it is the engine's handler for a
matter's tick and runs again after every press, so a matter always has at most one pending
tick, at the time its policy next needs attention. A page that cannot be delivered (no linked
account, bot blocked) goes to the next contact in `FALLBACK_CHAIN`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Level
from bot.i18n import N_, translator
from bot.models import (
    Deadline,
    Escalation,
    EscalationLevel,
    Page,
    Person,
    Role,
    Unit,
)
from bot.services import audit, contacts, outbox
from bot.services.engine import DeadlineHandler
from bot.services.escalation import channels, matter
from bot.services.escalation.policy import Fire, PolicyStep, Reach, StepProgress, decide
from bot.services.escalation.views import (
    Note,
    PagingContext,
    follow_up_buttons,
    language,
    render,
)
from bot.services.sql import lock_for_update

# Edited into a lower level's open pages when a level above acknowledges the matter.
ACKNOWLEDGED_ABOVE = N_("✅ {unit} acknowledged: {name} at {time}.")

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

# A page is "late" when it goes out this long after it fell due (the bot was down).
LATE_AFTER = timedelta(minutes=2)
# More rounds than any policy needs: each round either acts or stops.
_MAX_ROUNDS = 8


@dataclass
class _Look:
    """One look at a matter: its levels, its steps' progress and who has a page, read once.

    `advance` keeps these up to date as it acts (a level reached, a step fired, a page written)
    instead of reading them again for every round and every page: each read is a round trip
    inside the engine's write transaction, which on SQLite holds the one write lock. Who has a
    page is read only when a step pages someone: most looks at a matter page nobody.
    """

    escalation: Escalation
    levels: dict[Level, EscalationLevel]
    progress: dict[int, StepProgress]
    _paged: set[int] | None = None

    @classmethod
    async def load(cls, session: AsyncSession, escalation: Escalation) -> _Look:
        """Read the matter's levels and the progress of its steps."""
        assert escalation.id is not None
        return cls(
            escalation=escalation,
            levels=await matter.level_rows(session, escalation.id),
            progress=await matter.progress_of(session, escalation.id),
        )

    async def paged(self, session: AsyncSession) -> set[int]:
        """Who has a page about the matter (read once; the look adds the pages it writes)."""
        if self._paged is None:
            self._paged = await _paged_people(session, self.escalation.id or 0)
        return self._paged

    async def reread_paged(self, session: AsyncSession) -> None:
        """Read who has a page again, after pages were written outside this look."""
        self._paged = await _paged_people(session, self.escalation.id or 0)

    def fired(self, step: int, at: datetime) -> None:
        """Count one firing of `step` at `at`, as its timeline line says."""
        before = self.progress.get(step, StepProgress())
        last = at if before.last_at is None else max(before.last_at, at)
        self.progress[step] = StepProgress(before.fired + 1, last)


async def advance(
    session: AsyncSession,
    escalation_id: int,
    *,
    now: datetime,
    ctx: PagingContext,
    handling: str | None = None,
) -> None:
    """Carry out whatever the matter's policy says is due now, then plan the next look.

    `handling` is the key of the engine deadline this look handles: the engine closes it
    itself, so it is not cancelled as well.
    """
    escalation = await matter.lock(session, escalation_id)
    if escalation is None or escalation.status == matter.RESOLVED:
        return
    policy = matter.policy_of(escalation)
    look = await _Look.load(session, escalation)
    next_at = None
    with contacts.remembering_holders(session):
        for _round in range(_MAX_ROUNDS):
            state = matter.state_from(escalation, look.levels, look.progress)
            decision = decide(state, policy, now)
            next_at = decision.next_at
            if not decision.actions:
                break
            for action in decision.actions:
                if isinstance(action, Reach):
                    await matter.reach(
                        session,
                        escalation,
                        level=action.level,
                        how=action.how,
                        now=now,
                        at=action.due_at,
                        levels=look.levels,
                    )
                elif isinstance(action, Fire):
                    await _fire(session, look, policy.steps[action.step], action, now=now, ctx=ctx)
    await matter.plan_next(session, escalation, next_at=next_at, now=now, handling=handling)


async def _fire(
    session: AsyncSession,
    look: _Look,
    step: PolicyStep,
    action: Fire,
    *,
    now: datetime,
    ctx: PagingContext,
) -> None:
    escalation = look.escalation
    late = now - action.due_at > LATE_AFTER
    await matter.record(
        session,
        escalation,
        kind="fired",
        at=now,
        level=action.level,
        step=action.step,
        repeat=action.repeat,
        key=matter.fire_key(action.step, action.repeat),
        late=late,
    )
    look.fired(action.step, now)
    if action.repeat:
        await _repeat_pages(session, look, action.step, action.repeat, now=now, ctx=ctx)
        return
    late_since = action.due_at if late else matter.late_since(escalation)
    await _first_pages(session, look, action.step, step, now=now, late_since=late_since, ctx=ctx)


async def _unit_of_level(session: AsyncSession, look: _Look, level: Level) -> Unit:
    row = look.levels.get(level)
    return await contacts.unit(session, row.unit_id if row else look.escalation.unit_id)


async def _paged_people(session: AsyncSession, escalation_id: int) -> set[int]:
    rows = await session.exec(select(Page.person_id).where(Page.escalation_id == escalation_id))
    return set(rows.all())


async def _page(
    session: AsyncSession,
    escalation: Escalation,
    *,
    step: int,
    level: Level,
    person: Person,
    unit: Unit,
    role: str,
    now: datetime,
    ctx: PagingContext,
    late_since: datetime | None,
    replaces: int | None = None,
    paged: set[int] | None = None,
    levels: dict[Level, EscalationLevel] | None = None,
) -> Page:
    """Write a page and queue its first message, or pass it on at once when nobody can read it.

    Whether the person can be reached is known before the page is written, so the page is
    stored with its send count in one insert. A page passed on is left undeliverable.
    `levels` is the matter's levels as the caller's look holds them (read again otherwise).
    """
    assert escalation.id is not None and person.id is not None and unit.id is not None
    if paged is not None:
        paged.add(person.id)
    account = await contacts.account_of(session, person.id)
    reachable = account is not None and account.unreachable_since is None
    page = Page(
        escalation_id=escalation.id,
        step=step,
        level=level.value,
        person_id=person.id,
        unit_id=unit.id,
        role=role,
        created_at=now,
        replaces_page_id=replaces,
        sent_count=1 if reachable else 0,
    )
    session.add(page)
    await session.flush()
    # Its channels first: when Telegram cannot deliver it, they hear before the next contact.
    await channels.note_page(
        session,
        escalation,
        page,
        person,
        unit,
        ctx=ctx,
        now=now,
        late_since=late_since,
        reachable=reachable,
    )
    if not reachable:
        reason = (
            "no linked account"
            if account is None
            else (account.unreachable_reason or "unreachable")
        )
        await mark_undeliverable(session, page_id=page.id or 0, reason=reason, now=now, ctx=ctx)
        return page
    text, buttons = await render(
        session, escalation, page, person, ctx, now=now, late_since=late_since, levels=levels
    )
    await outbox.enqueue(
        session,
        now=now,
        text=text,
        person_id=person.id,
        buttons=buttons,
        kind="page",
        page_id=page.id,
        late=late_since is not None,
    )
    return page


async def _first_pages(
    session: AsyncSession,
    look: _Look,
    index: int,
    step: PolicyStep,
    *,
    now: datetime,
    late_since: datetime | None,
    ctx: PagingContext,
) -> None:
    escalation = look.escalation
    target = await _unit_of_level(session, look, step.level)
    paged = await look.paged(session)
    excluded = matter.excluded(escalation)
    recipients: list[tuple[Person, str]] = []
    holders_found = False
    for role in step.roles:
        for person in await contacts.holders(session, role=role, unit_id=target.id or 0, now=now):
            if person.id in excluded:
                continue
            holders_found = True
            if person.id not in paged and all(person.id != p.id for p, _ in recipients):
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
            detail={"step": index, "roles": list(step.roles)},
        )
        await _page_next_contact(
            session,
            escalation,
            after=(Level.UNIT, step.roles[-1]),
            target=target,
            step=index,
            level=step.level,
            now=now,
            replaces=None,
            ctx=ctx,
            paged=paged,
        )
        return
    for person, role in recipients:
        # A stand-in for an undeliverable page earlier in this loop may be this very person.
        if person.id in paged:
            continue
        page = await _page(
            session,
            escalation,
            step=index,
            level=step.level,
            person=person,
            unit=target,
            role=role,
            now=now,
            ctx=ctx,
            late_since=late_since,
            paged=paged,
            levels=look.levels,
        )
        if page.status != "active":  # passed on to a stand-in, written outside this look
            await look.reread_paged(session)
            paged = await look.paged(session)


async def _repeat_pages(
    session: AsyncSession,
    look: _Look,
    index: int,
    repeat: int,
    *,
    now: datetime,
    ctx: PagingContext,
) -> None:
    escalation = look.escalation
    pages = await session.exec(
        select(Page).where(
            Page.escalation_id == escalation.id, Page.step == index, Page.status == "active"
        )
    )
    for page in pages.all():
        first = await outbox.first_sent_for_page(session, page.id or 0)
        person = await contacts.person(session, page.person_id)
        text, buttons = await render(
            session, escalation, page, person, ctx, now=now, reminder=repeat, levels=look.levels
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
    level: Level,
    now: datetime,
    replaces: int | None,
    ctx: PagingContext,
    paged: set[int] | None = None,
) -> Page | None:
    """Page the first reachable person further down the fallback chain from `target`.

    `paged` is who has a page about the matter as the caller's look knows it (kept up to date
    here); without it they are read from the database.
    """
    if paged is None:
        paged = await _paged_people(session, escalation.id or 0)
    already = paged | matter.excluded(escalation)
    for chain_level, role in _chain_after(after):
        unit = await contacts.unit_at_level(session, target, chain_level)
        if unit is None:
            continue
        for person in await contacts.holders(session, role=role, unit_id=unit.id or 0, now=now):
            if person.id in already:
                continue
            account = await contacts.account_of(session, person.id or 0)
            if account is None or account.unreachable_since is not None:
                continue
            return await _page(
                session,
                escalation,
                step=step,
                level=level,
                person=person,
                unit=unit,
                role=role,
                now=now,
                ctx=ctx,
                late_since=None,
                replaces=replaces,
                paged=paged,
            )
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
    """Record that a page could not be delivered and page the next contact instead.

    The matter is locked before the page is read, as every press does, so a page that an
    acknowledgement closed meanwhile stays closed and nobody is paged in its place.
    """
    found = (await session.exec(select(Page.escalation_id).where(Page.id == page_id))).first()
    if found is None:
        return None
    escalation = await matter.lock(session, found)
    statement = lock_for_update(select(Page).where(Page.id == page_id), session)
    page = (await session.exec(statement.execution_options(populate_existing=True))).first()
    if page is None or page.status != "active":
        return None
    page.status = "undeliverable"
    page.error = reason[:200]
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
    if escalation is None or escalation.status == matter.RESOLVED:
        return None
    levels = await matter.level_rows(session, escalation.id or 0)
    level = Level(page.level)
    if level in levels and levels[level].acknowledged_at is not None:
        return None
    await channels.note_undeliverable(session, escalation, page, ctx=ctx, now=now)
    await matter.record(
        session,
        escalation,
        kind="undeliverable",
        at=now,
        level=level,
        person_id=page.person_id,
        reason=reason[:200],
    )
    base = await contacts.unit(session, escalation.unit_id)
    unit = await contacts.unit(session, page.unit_id)
    return await _page_next_contact(
        session,
        escalation,
        after=(_level_of(base, unit), page.role),
        target=base,
        step=page.step,
        level=level,
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


async def close_pages(
    session: AsyncSession,
    escalation: Escalation,
    *,
    note: Note,
    now: datetime,
    ctx: PagingContext,
    level: Level | None = None,
) -> set[int]:
    """Close the pages of one level (or all), drop their unsent messages, show the outcome.

    Returns the people whose delivered pages now show the outcome.
    """
    assert escalation.id is not None
    statement = select(Page).where(Page.escalation_id == escalation.id)
    if level is not None:
        statement = statement.where(Page.level == level.value)
    pages = list((await session.exec(statement.order_by(col(Page.id)))).all())
    await outbox.cancel_unsent(session, page_ids=[p.id for p in pages if p.id], now=now)
    told: set[int] = set()
    for page in pages:
        if page.status == "active":
            page.status = "closed"
        messages = await outbox.page_messages(session, page.id or 0)
        if not messages:
            continue
        reader = await contacts.person(session, page.person_id)
        tr = translator(language(reader, ctx))
        text, _buttons = await render(session, escalation, page, reader, ctx, now=now)
        await outbox.enqueue_edit(
            session,
            now=now,
            target=messages[0],
            text=text + "\n\n" + note(tr),
            buttons=follow_up_buttons(tr, escalation),
        )
        for reminder in messages[1:]:  # same words, no buttons left to press
            await outbox.enqueue_edit(session, now=now, target=reminder, text=reminder.body["text"])
        told.add(page.person_id)
    return told


async def note_lower_levels(
    session: AsyncSession,
    escalation: Escalation,
    *,
    level: Level,
    person: Person,
    unit_name: str,
    now: datetime,
    ctx: PagingContext,
) -> None:
    """Show on the still-open pages below `level` that it was acknowledged there, by whom, when.

    Their own level's paging goes on (acknowledging stops only its level): the page is
    re-rendered with its buttons and one line added, e.g. "✅ 青山县教育局 acknowledged: 李秀英
    at 10:05." A later edit of the page (its own outcome) shows who has it in its clock line.
    """
    assert escalation.id is not None
    levels = matter.policy_of(escalation).levels
    below = [lower.value for lower in levels[: levels.index(level)]] if level in levels else []
    if not below:
        return
    pages = (
        await session.exec(
            select(Page)
            .where(
                Page.escalation_id == escalation.id,
                col(Page.level).in_(below),
                Page.status == "active",
            )
            .order_by(col(Page.id))
        )
    ).all()
    for page in pages:
        messages = await outbox.page_messages(session, page.id or 0)
        if not messages:
            continue
        reader = await contacts.person(session, page.person_id)
        tr = translator(language(reader, ctx))
        text, buttons = await render(session, escalation, page, reader, ctx, now=now)
        line = tr._(
            ACKNOWLEDGED_ABOVE,
            unit=html.escape(unit_name, quote=False),
            name=html.escape(person.name, quote=False),
            time=tr.time_text(now, ctx.tz),
        )
        await outbox.enqueue_edit(
            session, now=now, target=messages[0], text=text + "\n\n" + line, buttons=buttons
        )


def step_handler(ctx: PagingContext) -> DeadlineHandler:
    """The engine handler for a matter's tick."""

    async def handle(session: AsyncSession, deadline: Deadline, now: datetime, late: bool) -> None:
        await advance(session, deadline.subject_id, now=now, ctx=ctx, handling=deadline.key)

    return handle
