"""Shifts and attendance: clock-in and clock-out, geofences, the duty log, missed shifts.

Rules:
- Clock-in opens `[shifts] clock_in_early` before a shift and closes at its end. After the start
  it is late, by whole minutes. A second clock-in is harmless and changes nothing.
- A unit with a geofence (centre and radius) needs a shared location inside the radius. A
  location that states its accuracy must be within `max_location_accuracy_m`; with
  `require_live_location` only a live location counts. Coordinates, accuracy and whether it was
  live are kept with the clock-in, so an audit can see what was claimed.
- Clock-out takes the duty log (值班记录, text and photos); the next shift at the same post sees
  it when clocking in (交接班).
- Deadlines per shift are planned three hours ahead (`plan`). A shift found unplanned more
  than three hours after its start is chased only if it was there before the bot went down
  (`chase`, with the planning high-water mark); one imported after its start is not, nor one
  that started before the installation's first start. The deadlines: a reminder
  `remind_before` the start; at start + `remind_after` a nudge to the person; at start +
  `page_after` (at the start for a shift with nobody assigned) the missed-shift escalation:
  the unit's duty leader of the day, then at start + `escalate_after` the principal. For a
  leader-on-duty shift: the principal, then the officer of the unit above. At end +
  `clock_out_grace` without a clock-out the person is asked, and after another grace their duty
  leader is told. The handlers read the shift as it is when they fire, so a swap or a late
  clock-in needs no rescheduling.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import callbacks, plausible
from bot.config import EscalationStep, Level, ShiftSettings
from bot.errors import InvalidInput, ZhibanError
from bot.i18n import N_, Translator, translator
from bot.models import ClockEvent, Deadline, Person, Shift, ShiftKind, Unit
from bot.services import audit, contacts, deadlines, escalation, marks, outbox
from bot.services.engine import DeadlineHandler
from bot.services.escalation import PagingContext
from bot.services.outbox import Button
from bot.services.page_text import PageSubject
from bot.services.sql import dialect_name, lock_for_update
from bot.uow import Database

SUBJECT = "shift"
POLICY = "shift.missed"
PLAN_AHEAD = timedelta(hours=3)
PLAN_MARK = "plan:shifts"  # the planning high-water mark in `engine_marks`

CLOCK_IN_LABEL = N_("✅ Clock in")
CLOCK_OUT_LABEL = N_("👋 Clock out")


class NeedLocation(ZhibanError):
    """The unit has a geofence: ask for the person's location."""


class EmptyDutyLog(InvalidInput):
    """A clock-out with nothing written and without choosing "Nothing to report"."""


@dataclass(frozen=True)
class Location:
    """A location shared from the phone."""

    latitude: float
    longitude: float
    accuracy_m: float | None = None
    live: bool = False


@dataclass(frozen=True)
class ShiftLine:
    """A shift as people see it."""

    shift_id: int
    unit_name: str
    post: str
    kind: str
    start: datetime
    end: datetime
    person_name: str | None
    clock_in_at: datetime | None
    late_minutes: int
    clock_out_at: datetime | None


@dataclass(frozen=True)
class HandoverNote:
    """The duty log the previous shift left at this post."""

    by_name: str
    at: datetime
    duty_log: str
    attachments: tuple[str, ...]


@dataclass(frozen=True)
class ClockedIn:
    """The result of a clock-in."""

    shift: ShiftLine
    late_minutes: int
    already: bool
    handover: HandoverNote | None
    closed_pages: bool = False


@dataclass(frozen=True)
class ClockedOut:
    """The result of a clock-out."""

    shift: ShiftLine
    at: datetime


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine); ValueError for a point not on Earth."""
    if not (plausible.location(lat1, lon1) and plausible.location(lat2, lon2)):
        # NaN compares false with every radius, so it would sit "inside" any geofence.
        raise ValueError("coordinates must be finite latitudes and longitudes")
    radius = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    # Rounding can push `a` just past 1 for nearly antipodal points, outside asin's domain.
    return 2 * radius * math.asin(math.sqrt(min(1.0, a)))


IMPLAUSIBLE_LOCATION = N_(
    "That location cannot be right. Share your location again with the 📍 button."
)


def check_location(unit: Unit | Fence, location: Location | None, settings: ShiftSettings) -> None:
    """Refuse a clock-in outside the unit's geofence (pure; raises ZhibanError)."""
    if unit.latitude is None or unit.longitude is None or unit.radius_m is None:
        return
    if location is None:
        raise NeedLocation(
            "Share your location to clock in: you need to be within {radius} m of {unit}.",
            radius=int(unit.radius_m),
            unit=unit.name,
        )
    if not plausible.location(location.latitude, location.longitude, location.accuracy_m):
        raise InvalidInput(IMPLAUSIBLE_LOCATION)
    if settings.require_live_location and not location.live:
        raise InvalidInput("Please share your live location (📎 → Location → Share live location).")
    if location.accuracy_m is not None and location.accuracy_m > settings.max_location_accuracy_m:
        raise InvalidInput(
            "Your location is only accurate to {accuracy} m; "
            "turn on GPS, wait a moment and share it again.",
            accuracy=int(location.accuracy_m),
        )
    away = distance_m(unit.latitude, unit.longitude, location.latitude, location.longitude)
    if away > unit.radius_m:
        raise InvalidInput(
            "You are {distance} m from {unit}; clock in within {radius} m of it.",
            distance=int(away),
            unit=unit.name,
            radius=int(unit.radius_m),
        )


async def _events(
    session: AsyncSession, shift_id: int
) -> tuple[ClockEvent | None, ClockEvent | None]:
    rows = await session.exec(
        select(ClockEvent).where(ClockEvent.shift_id == shift_id).order_by(col(ClockEvent.at))
    )
    clock_in = clock_out = None
    for event in rows.all():
        if event.kind == "in" and clock_in is None:
            clock_in = event
        elif event.kind == "out" and clock_out is None:
            clock_out = event
    return clock_in, clock_out


async def _line(session: AsyncSession, shift: Shift) -> ShiftLine:
    """The shift as a line, with its clock-in and clock-out."""
    unit = await contacts.unit(session, shift.unit_id)
    person = await contacts.person(session, shift.person_id) if shift.person_id else None
    clock_in, clock_out = await _events(session, shift.id or 0)
    return ShiftLine(
        shift_id=shift.id or 0,
        unit_name=unit.name,
        post=shift.post,
        kind=shift.kind,
        start=shift.start,
        end=shift.end,
        person_name=person.name if person else None,
        clock_in_at=clock_in.at if clock_in else None,
        late_minutes=clock_in.late_minutes if clock_in else 0,
        clock_out_at=clock_out.at if clock_out else None,
    )


@dataclass(frozen=True)
class Fence:
    """A unit's name and geofence, as `check_location` reads them."""

    name: str
    latitude: float | None
    longitude: float | None
    radius_m: float | None


@dataclass(frozen=True)
class _Candidate:
    """A shift open for clock-in, with what a clock-in needs of its unit and person."""

    shift_id: int
    unit_id: int
    post: str
    kind: str
    start: datetime
    end: datetime
    unit: Fence
    person_name: str


def _candidates_statement(*, one_shift: bool, lock: bool) -> Any:
    """The person's shifts open for clock-in, earliest first, with their unit and person's name.

    Built once per shape: the ORM statements they replace were three (shift, unit, person) and
    were built anew for each clock-in. Parameters: `person_id`, `opens`, `now` (and `shift_id`).
    """
    statement = (
        sa.select(
            col(Shift.id),
            col(Shift.unit_id),
            col(Shift.post),
            col(Shift.kind),
            col(Shift.start),
            col(Shift.end),
            col(Unit.name),
            col(Unit.latitude),
            col(Unit.longitude),
            col(Unit.radius_m),
            col(Person.name),
        )
        .join(Unit, col(Unit.id) == Shift.unit_id)
        .join(Person, col(Person.id) == Shift.person_id)
        .where(
            col(Shift.person_id) == sa.bindparam("person_id"),
            col(Shift.start) <= sa.bindparam("opens"),
            col(Shift.end) > sa.bindparam("now"),
        )
        .order_by(col(Shift.start))
    )
    if one_shift:
        statement = statement.where(col(Shift.id) == sa.bindparam("shift_id"))
    return statement.with_for_update(of=Shift) if lock else statement


_CANDIDATES = {
    (one_shift, lock): _candidates_statement(one_shift=one_shift, lock=lock)
    for one_shift in (False, True)
    for lock in (False, True)
}
_CLOCK_INS = (
    sa.select(col(ClockEvent.shift_id), col(ClockEvent.late_minutes))
    .where(
        col(ClockEvent.shift_id).in_(sa.bindparam("shift_ids", expanding=True)),
        col(ClockEvent.kind) == "in",
    )
    .order_by(col(ClockEvent.at))
)


# A clock-in row by Core, every column given: the ORM object and its flush cost more CPU than
# the statement, and nothing in the clock-in reads the row back.
_ADD_CLOCK_EVENT = sa.insert(ClockEvent)


async def _candidate(
    session: AsyncSession, *, person_id: int, now: datetime, early: timedelta, shift_id: int | None
) -> tuple[_Candidate | None, int | None]:
    """The shift to clock in to (the earliest not clocked in yet); its clock-in's lateness if any.

    The candidate shifts are locked (on PostgreSQL) before their clock-ins are read, so what is
    read is what the transaction writes against: a clock-in and the engine's deadline for the
    same shift take turns, and two clock-ins of one person do not both count. The clock-ins
    are read by a statement of their own for that reason: it sees what a clock-in that held the
    lock before committed, which a subquery of the locking statement would not.
    """
    statement = _CANDIDATES[(shift_id is not None, dialect_name(session) == "postgresql")]
    connection = await session.connection()
    found = (
        await connection.execute(
            statement,
            {"person_id": person_id, "opens": now + early, "now": now, "shift_id": shift_id},
        )
    ).all()
    if not found:
        return None, None
    shifts = [
        _Candidate(
            shift_id=row[0],
            unit_id=row[1],
            post=row[2],
            kind=row[3],
            start=row[4],
            end=row[5],
            unit=Fence(name=row[6], latitude=row[7], longitude=row[8], radius_m=row[9]),
            person_name=row[10],
        )
        for row in found
    ]
    late_by_shift: dict[int, int] = {}
    rows = await connection.execute(_CLOCK_INS, {"shift_ids": [shift.shift_id for shift in shifts]})
    for clocked_shift, late_minutes in rows.all():
        late_by_shift.setdefault(clocked_shift, late_minutes)
    first_late = None
    for shift in shifts:
        late = late_by_shift.get(shift.shift_id)
        if late is None:
            return shift, None
        first_late = late if first_late is None else first_late
    return shifts[0], first_late


async def _next_shift(session: AsyncSession, *, person_id: int, now: datetime) -> Shift | None:
    statement = (
        select(Shift)
        .where(Shift.person_id == person_id, col(Shift.start) > now)
        .order_by(col(Shift.start))
        .limit(1)
    )
    return (await session.exec(statement)).first()


_HANDOVER = (
    sa.select(
        col(ClockEvent.at), col(ClockEvent.duty_log), col(ClockEvent.attachments), col(Person.name)
    )
    .join(Shift, col(Shift.id) == ClockEvent.shift_id)
    .join(Person, col(Person.id) == ClockEvent.person_id)
    .where(
        col(Shift.unit_id) == sa.bindparam("unit_id"),
        col(Shift.post) == sa.bindparam("post"),
        col(Shift.start) < sa.bindparam("start"),
        col(ClockEvent.kind) == "out",
    )
    .order_by(col(ClockEvent.at).desc())
    .limit(1)
)


async def _handover(
    session: AsyncSession, *, unit_id: int, post: str, start: datetime
) -> HandoverNote | None:
    """The last duty log written at this post before a shift starting at `start`."""
    connection = await session.connection()
    row = (
        await connection.execute(_HANDOVER, {"unit_id": unit_id, "post": post, "start": start})
    ).first()
    if row is None:
        return None
    at, duty_log, attachments, name = row
    if not duty_log and not attachments:
        return None
    return HandoverNote(name, at, duty_log or "", tuple(attachments or ()))


def _clocked_in_note(name: str, late: int, now: datetime, ctx: PagingContext) -> escalation.Note:
    def note(tr: Translator) -> str:
        who, when = html.escape(name, quote=False), tr.time_text(now, ctx.tz)
        if late:
            return tr.n_(
                "✔️ {name} clocked in at {time}, {count} minute late.",
                "✔️ {name} clocked in at {time}, {count} minutes late.",
                late,
                name=who,
                time=when,
            )
        return tr._("✔️ {name} clocked in at {time}.", name=who, time=when)

    return note


async def clock_in(
    db: Database,
    *,
    person_id: int,
    now: datetime,
    location: Location | None,
    settings: ShiftSettings,
    ctx: PagingContext,
    shift_id: int | None = None,
    account: str | None = None,
) -> ClockedIn:
    """Clock in to the person's current shift (签到).

    `account` ("telegram:<id>") names the account the person acted from, for the audit entry;
    without it the entry names their linked account (one statement more).
    """
    async with db.uow() as uow:
        session = uow.session
        shift, existing = await _candidate(
            session, person_id=person_id, now=now, early=settings.clock_in_early, shift_id=shift_id
        )
        if shift is None:
            upcoming = await _next_shift(session, person_id=person_id, now=now)
            if upcoming is None:
                raise InvalidInput("You have no shift to clock in to now, and none coming.")
            raise InvalidInput(
                "Your next shift starts at {time}; you can clock in from {opens}.",
                time=upcoming.start,
                opens=upcoming.start - settings.clock_in_early,
            )
        if existing is not None:
            stored = await session.get(Shift, shift.shift_id)
            assert stored is not None
            return ClockedIn(await _line(session, stored), existing, True, None)
        check_location(shift.unit, location, settings)
        late = max(0, int((now - shift.start).total_seconds() // 60))
        connection = await session.connection()
        await connection.execute(
            _ADD_CLOCK_EVENT,
            {
                "shift_id": shift.shift_id,
                "person_id": person_id,
                "kind": "in",
                "at": now,
                "late_minutes": late,
                "latitude": location.latitude if location else None,
                "longitude": location.longitude if location else None,
                "accuracy_m": location.accuracy_m if location else None,
                "live_location": location.live if location else False,
                "duty_log": None,
                "handover": None,
                "attachments": None,
            },
        )
        await deadlines.cancel(
            session,
            now=now,
            keys=[f"shift:{shift.shift_id}:{name}" for name in ("remind", "missed")],
        )
        closed = await escalation.close_for_subject(
            session,
            subject_type=SUBJECT,
            subject_id=shift.shift_id,
            note=_clocked_in_note(shift.person_name, late, now, ctx),
            now=now,
            ctx=ctx,
        )
        await audit.record(
            session,
            at=now,
            action="shift.clock_in",
            actor_person_id=person_id,
            actor_account=account,
            subject_type=SUBJECT,
            subject_id=shift.shift_id,
            unit_id=shift.unit_id,
            detail={"late_minutes": late, "live": location.live if location else None},
        )
        await session.flush()
        line = ShiftLine(
            shift_id=shift.shift_id,
            unit_name=shift.unit.name,
            post=shift.post,
            kind=shift.kind,
            start=shift.start,
            end=shift.end,
            person_name=shift.person_name,
            clock_in_at=now,
            late_minutes=late,
            clock_out_at=None,  # no clock-out before the clock-in
        )
        handover = await _handover(
            session, unit_id=shift.unit_id, post=shift.post, start=shift.start
        )
        result = ClockedIn(line, late, False, handover, closed > 0)
        await uow.commit()
    return result


async def open_shift(db: Database, *, person_id: int, now: datetime) -> ShiftLine | None:
    """The shift the person is clocked in to and has not clocked out of."""
    async with db.read() as uow:
        session = uow.session
        rows = await session.exec(
            select(Shift)
            .join(ClockEvent, col(ClockEvent.shift_id) == Shift.id)
            .where(ClockEvent.person_id == person_id, ClockEvent.kind == "in")
            .order_by(col(Shift.start).desc())
            .limit(3)
        )
        for shift in rows.all():
            _in, out = await _events(session, shift.id or 0)
            if out is None and now < shift.end + timedelta(hours=12):
                return await _line(session, shift)
    return None


async def clock_out(
    db: Database,
    *,
    person_id: int,
    shift_id: int,
    now: datetime,
    duty_log: str,
    attachments: list[str],
    nothing_to_report: bool = False,
) -> ClockedOut:
    """Clock out (签退) with the duty log and handover note.

    The next shift reads the log at its clock-in, so an empty one is taken only as the explicit
    answer "nothing to report" (which then stores no text even if some was sent).
    """
    if nothing_to_report:
        duty_log, attachments = "", []
    async with db.uow() as uow:
        session = uow.session
        shift = (await session.exec(select(Shift).where(Shift.id == shift_id))).first()
        if shift is None or shift.id is None:
            raise InvalidInput("You are not clocked in to any shift.")
        clock_in_event, out = await _events(session, shift.id)
        if clock_in_event is None or clock_in_event.person_id != person_id:
            raise InvalidInput("You are not clocked in to any shift.")
        if out is not None:
            raise InvalidInput("You already clocked out of this shift.")
        if not nothing_to_report and not duty_log.strip() and not attachments:
            await audit.record(
                session,
                at=now,
                action="shift.clock_out",
                actor_person_id=person_id,
                subject_type=SUBJECT,
                subject_id=shift.id,
                unit_id=shift.unit_id,
                allowed=False,
                detail={"reason": "empty duty log"},
            )
            await uow.commit()  # the refusal is recorded; the person is still clocked in
            raise EmptyDutyLog(
                "The duty log is empty: write something, or press Nothing to report."
            )
        session.add(
            ClockEvent(
                shift_id=shift.id,
                person_id=person_id,
                kind="out",
                at=now,
                # A draft written before the edge cleaned input may still hold a NUL.
                duty_log=plausible.storable(duty_log),
                attachments=attachments or None,
            )
        )
        await deadlines.cancel(session, now=now, prefix=f"shift:{shift.id}:out")
        await audit.record(
            session,
            at=now,
            action="shift.clock_out",
            actor_person_id=person_id,
            subject_type=SUBJECT,
            subject_id=shift.id,
            unit_id=shift.unit_id,
            detail={"photos": len(attachments), "nothing_to_report": nothing_to_report},
        )
        await session.flush()
        result = ClockedOut(await _line(session, shift), now)
        await uow.commit()
    return result


async def my_shifts(
    db: Database, *, person_id: int, now: datetime, days: int = 7
) -> list[ShiftLine]:
    """The person's shifts from now (including one under way) for the next `days` days."""
    async with db.read() as uow:
        rows = await uow.session.exec(
            select(Shift)
            .where(
                Shift.person_id == person_id,
                col(Shift.end) > now,
                col(Shift.start) < now + timedelta(days=days),
            )
            .order_by(col(Shift.start))
        )
        return [await _line(uow.session, shift) for shift in rows.all()]


async def unit_shifts(
    db: Database, *, unit_id: int, start: datetime, end: datetime
) -> list[ShiftLine]:
    """Every shift of a unit that overlaps [start, end), in order."""
    async with db.read() as uow:
        rows = await uow.session.exec(
            select(Shift)
            .where(Shift.unit_id == unit_id, col(Shift.end) > start, col(Shift.start) < end)
            .order_by(col(Shift.kind).desc(), col(Shift.start))
        )
        return [await _line(uow.session, shift) for shift in rows.all()]


# -- planning and the deadline handlers ------------------------------------------------------

KIND_BEFORE = "shift.before"
KIND_REMIND = "shift.remind"
KIND_MISSED = "shift.missed"
KIND_OUT = "shift.out"
KIND_OUT_LEADER = "shift.out_leader"


def chase(start: datetime, *, now: datetime, looked_ahead: datetime) -> bool:
    """Whether a shift found unplanned at `now` gets its deadlines (pure).

    `looked_ahead` is the planning high-water mark: up to when planning had looked ahead when
    it last ran (on the first start of an installation, that start itself).

    - A shift that started at most PLAN_AHEAD ago is planned as usual; what is already due goes
      out at once, late.
    - One that started earlier is chased only if its start lies beyond the mark: planning had
      not reached it before, so it may have been there all along and fallen due while the bot
      was down; its pages go out late and say so, however long the outage was.
    - Otherwise planning had already looked past its start without seeing it: it was added
      later, after it started (a late import) and is left quiet. So are shifts that started
      before the installation's first start. (A roster import stamps the shifts it creates
      more than PLAN_AHEAD after their start as seen, so an import while the bot is down stays
      quiet too: see `too_late_to_chase`.)
    """
    return start >= now - PLAN_AHEAD or start > looked_ahead


def too_late_to_chase(start: datetime, *, now: datetime) -> bool:
    """Whether a shift created at `now` has started too long ago to be chased (pure)."""
    return start < now - PLAN_AHEAD


async def plan(session: AsyncSession, *, now: datetime, settings: ShiftSettings) -> int:
    """Schedule the deadlines of shifts starting within the next few hours; return how many.

    The planning high-water mark moves to the horizon looked at, in the same transaction.
    """
    horizon = now + max(PLAN_AHEAD, settings.remind_before + timedelta(minutes=30))
    looked_ahead = await marks.hold(session, name=PLAN_MARK, now=now)
    shifts = (
        await session.exec(
            select(Shift).where(col(Shift.planned_at).is_(None), col(Shift.start) <= horizon)
        )
    ).all()
    for shift in shifts:
        assert shift.id is not None
        shift.planned_at = now
        if not chase(shift.start, now=now, looked_ahead=looked_ahead):
            continue
        steps = [
            (KIND_BEFORE, "before", shift.start - settings.remind_before),
            (KIND_REMIND, "remind", shift.start + settings.remind_after),
            (
                KIND_MISSED,
                "missed",
                shift.start + (settings.page_after if shift.person_id else timedelta(0)),
            ),
            (KIND_OUT, "out", shift.end + settings.clock_out_grace),
            (KIND_OUT_LEADER, "out:leader", shift.end + 2 * settings.clock_out_grace),
        ]
        for kind, name, due in steps:
            if kind == KIND_BEFORE and due < now:
                continue  # a reminder for a shift that has started already is no use
            await deadlines.schedule(
                session,
                key=f"shift:{shift.id}:{name}",
                kind=kind,
                subject_type=SUBJECT,
                subject_id=shift.id,
                due_at=due,
                now=now,
                move_pending=True,  # a re-planned shift (new person or end) moves its deadlines
            )
    await marks.advance(session, name=PLAN_MARK, to=horizon)
    return len(shifts)


async def _lock_shift(session: AsyncSession, shift_id: int) -> Shift | None:
    """Load a shift, locking it on PostgreSQL.

    A clock-in and the engine's deadline for the same shift take turns, so a page is never
    started about someone who is clocking in at that moment.
    """
    statement = lock_for_update(select(Shift).where(Shift.id == shift_id), session)
    shift: Shift | None = (await session.exec(statement)).first()
    return shift


async def _shift_state(
    session: AsyncSession, shift_id: int
) -> tuple[Shift, Unit, Person | None, ClockEvent | None, ClockEvent | None] | None:
    shift = await _lock_shift(session, shift_id)
    if shift is None:
        return None
    unit = await contacts.unit(session, shift.unit_id)
    person = await contacts.person(session, shift.person_id) if shift.person_id else None
    clock_in, clock_out = await _events(session, shift_id)
    return shift, unit, person, clock_in, clock_out


def _who(person: Person, ctx: PagingContext) -> Translator:
    return translator(person.language or ctx.default_language)


def clock_in_button(tr: Translator, shift_id: int) -> list[list[Button]]:
    """The button on a shift reminder."""
    return [[Button(tr._(CLOCK_IN_LABEL), callbacks.ClockIn(shift_id).data)]]


async def _nudge(
    session: AsyncSession, deadline: Deadline, now: datetime, ctx: PagingContext, message: str
) -> None:
    """Remind the person of their shift, with a Clock in button, unless they clocked in."""
    state = await _shift_state(session, deadline.subject_id)
    if state is None:
        return
    shift, unit, person, clock_in_event, _ = state
    if person is None or clock_in_event is not None:
        return
    if message == REMIND_BEFORE and shift.start <= now:
        return  # the bot was down: "your shift starts at ..." would come too late
    if shift.end <= now:
        return  # the bot was down the whole shift: "clock in now" is no use any more
    tr = _who(person, ctx)
    text = tr._(
        message,
        time=tr.datetime_text(shift.start, ctx.tz, "MM-dd HH:mm"),
        post=html.escape(shift.post, quote=False),
        unit=html.escape(unit.name, quote=False),
    )
    await outbox.enqueue(
        session,
        now=now,
        text=text,
        person_id=person.id,
        buttons=clock_in_button(tr, shift.id or 0),
    )


REMIND_BEFORE = N_(
    "⏰ Your shift starts at {time}: {post}, {unit}. "
    "Clock in with /in or the button when you arrive."
)
REMIND_LATE = N_(
    "⚠️ Your shift at {unit} ({post}) started at {time} and you have not clocked in. "
    "Please clock in now."
)


def missed_steps(shift: Shift, settings: ShiftSettings) -> list[EscalationStep]:
    """Who is paged for an unmanned post, and when (relative to the first page)."""
    later = max(settings.escalate_after - settings.page_after, timedelta(0))
    if shift.kind == ShiftKind.LEADER:
        return [
            EscalationStep(after=timedelta(0), roles=["principal"], repeat=1),
            EscalationStep(after=later, roles=["officer"], level=Level.PARENT),
        ]
    return [
        EscalationStep(after=timedelta(0), roles=["duty_leader"], repeat=1),
        EscalationStep(after=later, roles=["principal"]),
    ]


async def _missed(
    session: AsyncSession,
    deadline: Deadline,
    now: datetime,
    ctx: PagingContext,
    settings: ShiftSettings,
    *,
    late: bool = False,
) -> None:
    state = await _shift_state(session, deadline.subject_id)
    if state is None:
        return
    shift, unit, person, clock_in_event, _ = state
    if clock_in_event is not None or shift.id is None:
        return
    if person is None:
        what = N_("Post unmanned: {post} has nobody assigned")
        params: dict[str, object] = {"post": shift.post}
    else:
        what = N_("Post unmanned: {post}. {name} (☎ {phone}) has not clocked in")
        params = {"post": shift.post, "name": person.name, "phone": person.phone or "-"}
    subject = PageSubject(
        what=what,
        what_params=params,
        ask=N_("Make sure someone is on duty. Press Covered once someone has taken the post."),
        since=shift.start,
        resolve_label=N_("🔁 Covered"),
    )
    await escalation.start(
        session,
        policy=POLICY,
        steps=missed_steps(shift, settings),
        subject_type=SUBJECT,
        subject_id=shift.id,
        unit_id=unit.id or 0,
        subject=subject,
        now=now,
        exclude=(person.id,) if person is not None and person.id is not None else (),
        late_since=deadline.due_at if late else None,
    )


async def _unclosed(
    session: AsyncSession, deadline: Deadline, now: datetime, ctx: PagingContext, *, leader: bool
) -> None:
    state = await _shift_state(session, deadline.subject_id)
    if state is None:
        return
    shift, unit, person, clock_in_event, clock_out_event = state
    if person is None or clock_in_event is None or clock_out_event is not None:
        return
    if not leader:
        tr = _who(person, ctx)
        text = tr._(
            "Your shift at {unit} ended at {time}. Please clock out with /out and "
            "leave the duty log for the next shift.",
            unit=html.escape(unit.name, quote=False),
            time=tr.time_text(shift.end, ctx.tz),
        )
        buttons = [[Button(tr._(CLOCK_OUT_LABEL), callbacks.ClockOut(deadline.subject_id).data)]]
        await outbox.enqueue(session, now=now, text=text, person_id=person.id, buttons=buttons)
        return
    for leader_person in await contacts.holders(
        session, role="duty_leader", unit_id=unit.id or 0, now=now
    ):
        if leader_person.id == person.id:
            continue
        tr = _who(leader_person, ctx)
        text = tr._(
            "{name} has not clocked out of {post} at {unit} (the shift ended at {time}).",
            name=html.escape(person.name, quote=False),
            post=html.escape(shift.post, quote=False),
            unit=html.escape(unit.name, quote=False),
            time=tr.time_text(shift.end, ctx.tz),
        )
        await outbox.enqueue(session, now=now, text=text, person_id=leader_person.id)


def deadline_handlers(settings: ShiftSettings, ctx: PagingContext) -> dict[str, DeadlineHandler]:
    """The engine handlers of shift deadlines."""

    async def before(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _nudge(s, d, now, ctx, REMIND_BEFORE)

    async def remind(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _nudge(s, d, now, ctx, REMIND_LATE)

    async def missed(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _missed(s, d, now, ctx, settings, late=late)

    async def out(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _unclosed(s, d, now, ctx, leader=False)

    async def out_leader(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _unclosed(s, d, now, ctx, leader=True)

    return {
        KIND_BEFORE: before,
        KIND_REMIND: remind,
        KIND_MISSED: missed,
        KIND_OUT: out,
        KIND_OUT_LEADER: out_leader,
    }


async def plan_upcoming(db: Database, *, now: datetime, settings: ShiftSettings) -> int:
    """Plan the deadlines of the coming shifts in one transaction; return how many shifts."""
    async with db.uow() as uow:
        planned = await plan(uow.session, now=now, settings=settings)
        await uow.commit()  # the high-water mark moves even when no shift was found
    return planned
