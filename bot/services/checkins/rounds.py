"""Check-in rounds (平安报告): plan them, prompt everyone on duty, remind, page the silent.

Rules:
- A round is due at each of `[checkins] times`, local time in `[bot] timezone`. The planner
  schedules one engine deadline per round a few hours ahead (PLAN_AHEAD), idempotent by key,
  and moves its high-water mark in the same transaction, as the shift planner does: rounds
  before the installation's first start are never planned, and a round that fell due while
  the bot was down is planned when it comes back (its key is new) and handled late.
- Who owes a check-in: everyone on duty at the round's moment — clocked in (to a shift that
  has not ended, and not clocked out), or scheduled on a shift covering that moment and not
  clocked out. One Checkin per person and round (unique person and due time), for the
  earliest such shift. Inactive people owe nothing.
- A round found late (more than the engine's two minutes after its time): its prompts go out
  at once and the answer window is counted from then, so nobody is paged for a silence they
  had no time to break. A round found after its whole answer window (due + `answer_within`)
  has passed is skipped and audited (`checkin.round_skipped`): asking "is all well?" about a
  moment hours ago means nothing, and the silence pages would be false.
- At window start + `remind_after` whoever has not answered gets a reminder; at the end of the
  window (the Checkin's `deadline`) each one still silent becomes a matter of their own,
  paged through the escalation engine to the unit's duty leader with Acknowledge (and to the
  principal `answer_within` later unless acknowledged). One matter per silent person, as for
  missed shifts: each can be acknowledged and closed by itself, and a late answer closes
  exactly the page about that person. The silent person is excluded from their own matter,
  so a silent duty leader is never paged about themselves; the fallback chain finds the
  next contact.
- A check-in whose person is no longer on duty for it (deactivated, or the shift handed to
  someone else) is void: no reminder, no page, and an answer is refused.
- Someone on duty without a linked account owes a check-in all the same (compliance counts it
  missing), but the bot could not ask them, so they are neither reminded nor paged about:
  twice a day a page saying "could not be asked" would teach leaders to ignore pages, and the
  roster already shows who has not opened their invite.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import callbacks
from bot.config import CheckinSettings, EscalationStep, ShiftSettings
from bot.i18n import N_, Translator, translator
from bot.models import Account, Checkin, ClockEvent, Deadline, Person, Shift, Unit
from bot.services import audit, deadlines, escalation, marks, outbox
from bot.services.engine import DeadlineHandler
from bot.services.escalation import PagingContext
from bot.services.outbox import Button
from bot.services.page_text import PageSubject
from bot.uow import Database

SUBJECT = "checkin"
ROUND_SUBJECT = "checkin_round"
POLICY = "checkin.silent"
PLAN_AHEAD = timedelta(hours=3)
PLAN_MARK = "plan:checkins"  # the planning high-water mark in `engine_marks`

KIND_ROUND = "checkin.round"
KIND_REMIND = "checkin.remind"
KIND_SILENT = "checkin.silent"

NORMAL_LABEL = N_("✅ All normal")
PROBLEM_LABEL = N_("🚨 Report a problem")
PROMPT = N_(
    "🛡 Safety check-in (平安报告) for {time} at {unit}. Is everything normal? "
    "Please answer by {deadline}."
)
REMINDER = N_(
    "⏰ You have not answered the {time} safety check-in yet. Please answer by {deadline}."
)
SILENT_WHAT = N_("Check-in unanswered: {name} (☎ {phone}) did not answer the {time} check-in")
SILENT_ASK = N_(
    "Contact them and make sure all is well. Acknowledge that you are on it; "
    "press All well once you know."
)
SILENT_RESOLVE = N_("✔️ All well")


@dataclass(frozen=True)
class OnDuty:
    """Someone who owes a check-in at a round: who, where, and for which shift."""

    person_id: int
    unit_id: int
    shift_id: int


def round_times(
    times: Sequence[time], tz: ZoneInfo, *, start: datetime, end: datetime
) -> list[datetime]:
    """Every round moment (UTC) from `start` to `end`, both included, in order (pure)."""
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    found = set()
    day = first
    while day <= last:
        for clock in times:
            moment = datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)
            if start <= moment <= end:
                found.add(moment)
        day += timedelta(days=1)
    return sorted(found)


def closes_at(due: datetime, times: Sequence[time], tz: ZoneInfo) -> datetime:
    """When a round's check-ins stop taking answers: the next round's moment (pure).

    Until then a late answer is recorded and marked late; after it, the next round asks again.
    """
    later = round_times(times, tz, start=due + timedelta(seconds=1), end=due + timedelta(days=2))
    return later[0] if later else due + timedelta(days=1)


def _minutes(due: datetime) -> int:
    """A round's id for its deadlines' subject: minutes since the epoch (fits an INTEGER).

    Only an id: the reminder and silence deadlines name their round's exact moment in their
    payload.
    """
    return int(due.timestamp()) // 60


def _due_of(deadline: Deadline) -> datetime:
    """The round a reminder or silence deadline belongs to (its payload names it)."""
    return datetime.fromisoformat(str((deadline.payload or {})["due"]))


def asked_key(checkin_id: int, name: str) -> str:
    """The outbox key of a check-in's prompt or reminder: an answer edits them both."""
    return f"checkin:{checkin_id}:{name}"


def round_key(due: datetime, name: str) -> str:
    """The key of one of a round's deadlines."""
    return f"checkin:{due.astimezone(UTC):%Y%m%dT%H%MZ}:{name}"


async def plan(
    session: AsyncSession, *, now: datetime, settings: CheckinSettings, tz: ZoneInfo
) -> int:
    """Schedule the rounds due up to PLAN_AHEAD from now; return how many were new."""
    looked_ahead = await marks.hold(session, name=PLAN_MARK, now=now)
    horizon = now + PLAN_AHEAD
    added = 0
    for due in round_times(settings.times, tz, start=looked_ahead, end=horizon):
        added += await deadlines.schedule(
            session,
            key=round_key(due, "round"),
            kind=KIND_ROUND,
            subject_type=ROUND_SUBJECT,
            subject_id=_minutes(due),
            due_at=due,
            now=now,
        )
    await marks.advance(session, name=PLAN_MARK, to=horizon)
    return added


async def plan_upcoming(
    db: Database, *, now: datetime, settings: CheckinSettings, tz: ZoneInfo
) -> int:
    """Plan the coming rounds in one transaction; return how many were new."""
    async with db.uow() as uow:
        added = await plan(uow.session, now=now, settings=settings, tz=tz)
        await uow.commit()  # the high-water mark moves even when no round was found
    return added


async def on_duty(session: AsyncSession, *, at: datetime, early: timedelta) -> list[OnDuty]:
    """Everyone on duty at `at`: clocked in, or scheduled and not clocked out."""
    shifts = (
        await session.exec(
            select(Shift)
            .join(Person, col(Person.id) == Shift.person_id)
            .where(
                col(Shift.person_id).is_not(None),
                col(Person.active).is_(True),
                col(Shift.end) > at,
                col(Shift.start) <= at + early,
            )
            .order_by(col(Shift.start), col(Shift.id))
        )
    ).all()
    if not shifts:
        return []
    ids = [shift.id for shift in shifts]
    events = (
        await session.exec(
            select(ClockEvent.shift_id, ClockEvent.kind).where(
                col(ClockEvent.shift_id).in_(ids), col(ClockEvent.at) <= at
            )
        )
    ).all()
    clocked_in = {shift_id for shift_id, kind in events if kind == "in"}
    clocked_out = {shift_id for shift_id, kind in events if kind == "out"}
    found: dict[int, OnDuty] = {}
    for shift in shifts:
        assert shift.id is not None and shift.person_id is not None
        if shift.person_id in found or shift.id in clocked_out:
            continue
        if shift.id in clocked_in or shift.start <= at:
            found[shift.person_id] = OnDuty(shift.person_id, shift.unit_id, shift.id)
    return list(found.values())


def answer_buttons(tr: Translator, checkin_id: int) -> list[list[Button]]:
    """The two buttons of a check-in prompt and its reminder."""
    return [
        [
            Button(tr._(NORMAL_LABEL), callbacks.CheckinNormal(checkin_id).data),
            Button(tr._(PROBLEM_LABEL), callbacks.CheckinProblem(checkin_id).data),
        ]
    ]


def _reader(person: Person, ctx: PagingContext) -> Translator:
    return translator(person.language or ctx.default_language)


async def _people(session: AsyncSession, ids: set[int]) -> dict[int, Person]:
    rows = await session.exec(select(Person).where(col(Person.id).in_(ids)))
    return {row.id or 0: row for row in rows.all()}


async def _units(session: AsyncSession, ids: set[int]) -> dict[int, Unit]:
    rows = await session.exec(select(Unit).where(col(Unit.id).in_(ids)))
    return {row.id or 0: row for row in rows.all()}


async def _shifts(session: AsyncSession, ids: set[int]) -> dict[int, Shift]:
    rows = await session.exec(select(Shift).where(col(Shift.id).in_(ids)))
    return {row.id or 0: row for row in rows.all()}


async def _open_round(
    session: AsyncSession,
    deadline: Deadline,
    now: datetime,
    *,
    late: bool,
    settings: CheckinSettings,
    early: timedelta,
    ctx: PagingContext,
) -> None:
    due = deadline.due_at
    if now > due + settings.answer_within:
        await audit.record(
            session,
            at=now,
            action="checkin.round_skipped",
            actor_account="system",
            subject_type=ROUND_SUBJECT,
            subject_id=deadline.subject_id,
            detail={"due": due.isoformat(), "reason": "found after its answer window"},
        )
        return
    opened = now if late else due
    window_end = opened + settings.answer_within
    owing = await on_duty(session, at=due, early=early)
    existing = set(
        (await session.exec(select(Checkin.person_id).where(Checkin.due_at == due))).all()
    )
    new = [
        Checkin(
            person_id=duty.person_id,
            unit_id=duty.unit_id,
            shift_id=duty.shift_id,
            due_at=due,
            deadline=window_end,
        )
        for duty in owing
        if duty.person_id not in existing
    ]
    session.add_all(new)
    await session.flush()
    people = await _people(session, {c.person_id for c in new})
    units = await _units(session, {c.unit_id for c in new})
    for checkin in new:
        assert checkin.id is not None
        person = people[checkin.person_id]
        tr = _reader(person, ctx)
        text = tr._(
            PROMPT,
            time=tr.time_text(due, ctx.tz),
            unit=html.escape(units[checkin.unit_id].name, quote=False),
            deadline=tr.time_text(window_end, ctx.tz),
        )
        await outbox.enqueue(
            session,
            now=now,
            text=text,
            person_id=person.id,
            buttons=answer_buttons(tr, checkin.id),
            late=late,
            dedupe_key=asked_key(checkin.id, "prompt"),
        )
    for kind, name, at in (
        (KIND_REMIND, "remind", opened + settings.remind_after),
        (KIND_SILENT, "silent", window_end),
    ):
        await deadlines.schedule(
            session,
            key=round_key(due, name),
            kind=kind,
            subject_type=ROUND_SUBJECT,
            subject_id=deadline.subject_id,
            due_at=at,
            now=now,
            payload={"due": due.isoformat()},
        )
    await audit.record(
        session,
        at=now,
        action="checkin.round",
        actor_account="system",
        subject_type=ROUND_SUBJECT,
        subject_id=deadline.subject_id,
        detail={"due": due.isoformat(), "prompted": len(new), "late": late},
    )


async def still_owed(
    session: AsyncSession, due: datetime
) -> list[tuple[Checkin, Person, Unit, Shift | None]]:
    """The round's unanswered check-ins of people still on duty for them who can be asked.

    Someone without a linked account could not be asked: they are counted missing, but neither
    reminded nor paged about (the roster already says they have not opened their invite).
    """
    rows = (
        await session.exec(
            select(Checkin, Person, Unit)
            .join(Person, col(Person.id) == Checkin.person_id)
            .join(Unit, col(Unit.id) == Checkin.unit_id)
            .where(Checkin.due_at == due, col(Checkin.answered_at).is_(None))
            .order_by(col(Checkin.id))
        )
    ).all()
    shifts = await _shifts(session, {c.shift_id for c, _p, _u in rows if c.shift_id})
    linked = set(
        (
            await session.exec(
                select(Account.person_id).where(
                    col(Account.person_id).in_({c.person_id for c, _p, _u in rows}),
                    col(Account.unlinked_at).is_(None),
                )
            )
        ).all()
    )
    owed = []
    for checkin, person, unit in rows:
        shift = shifts.get(checkin.shift_id) if checkin.shift_id else None
        if checkin.person_id in linked and not void(checkin, person, shift):
            owed.append((checkin, person, unit, shift))
    return owed


def void(checkin: Checkin, person: Person, shift: Shift | None) -> bool:
    """Whether the person is no longer on duty for this check-in (pure)."""
    return not person.active or (shift is not None and shift.person_id != checkin.person_id)


async def _remind(
    session: AsyncSession, deadline: Deadline, now: datetime, ctx: PagingContext
) -> None:
    due = _due_of(deadline)
    for checkin, person, _unit, _shift in await still_owed(session, due):
        if now >= checkin.deadline:
            continue  # found after the window (downtime): the page says the rest
        assert checkin.id is not None
        tr = _reader(person, ctx)
        text = tr._(
            REMINDER,
            time=tr.time_text(due, ctx.tz),
            deadline=tr.time_text(checkin.deadline, ctx.tz),
        )
        await outbox.enqueue(
            session,
            now=now,
            text=text,
            person_id=person.id,
            buttons=answer_buttons(tr, checkin.id),
            dedupe_key=asked_key(checkin.id, "remind"),
        )


def silent_steps(settings: CheckinSettings) -> list[EscalationStep]:
    """Who is paged about a silent person, and when (relative to the first page)."""
    return [
        EscalationStep(after=timedelta(0), roles=["duty_leader"], repeat=1),
        EscalationStep(after=settings.answer_within, roles=["principal"]),
    ]


async def _page_silent(
    session: AsyncSession,
    deadline: Deadline,
    now: datetime,
    *,
    late: bool,
    settings: CheckinSettings,
    ctx: PagingContext,
) -> None:
    due = _due_of(deadline)
    for checkin, person, unit, _shift in await still_owed(session, due):
        assert checkin.id is not None and person.id is not None
        subject = PageSubject(
            what=SILENT_WHAT,
            what_params={
                "name": person.name,
                "phone": person.phone or "-",
                "time": due.astimezone(ctx.tz).strftime("%H:%M"),
            },
            ask=SILENT_ASK,
            since=checkin.due_at,
            resolve_label=SILENT_RESOLVE,
        )
        await escalation.start(
            session,
            policy=POLICY,
            steps=silent_steps(settings),
            subject_type=SUBJECT,
            subject_id=checkin.id,
            unit_id=unit.id or 0,
            subject=subject,
            now=now,
            exclude=(person.id,),
            late_since=deadline.due_at if late else None,
        )


def deadline_handlers(
    settings: CheckinSettings, shifts: ShiftSettings, ctx: PagingContext
) -> dict[str, DeadlineHandler]:
    """The engine handlers of check-in rounds."""

    async def round_(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _open_round(
            s, d, now, late=late, settings=settings, early=shifts.clock_in_early, ctx=ctx
        )

    async def remind(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _remind(s, d, now, ctx)

    async def silent(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _page_silent(s, d, now, late=late, settings=settings, ctx=ctx)

    return {KIND_ROUND: round_, KIND_REMIND: remind, KIND_SILENT: silent}
