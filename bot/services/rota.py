"""The rota: generating duty shifts for a unit tree from the `[rota]` pattern and the holidays.

Rules of `zhiban shifts generate` (what the README repeats):

- Each local day from the first to the last (inclusive, in the configured zone) is a workday or a
  holiday as the `chinesecalendar` package says, overridden and extended by `[rota]
  holidays_file` (see bot/services/holidays.py): statutory holidays and weekends are holidays,
  adjusted workdays (调休) and ordinary weekdays are workdays. Workdays get one staff shift per
  `workday_shifts` span, holidays one per `holiday_shifts` span, all at `post`; every day also
  gets one leader shift (`leader_shift` at `leader_post`).
- The pools: the active people holding one of `staff_roles` (or `leader_roles`) at that very
  unit, in staff-number order. A unit with nobody in the staff pool is skipped with a note; a
  unit with nobody in the leader pool gets its staff shifts and a note, but no leader shifts.
- The rotation continues where the schedule left off: the first shift goes to the first person
  (by staff number) after whoever held the unit's last shift of that kind at that post before
  the first day, so generating week by week is fair. People are served from a queue: a shift
  goes to the first person in the queue who is rested, who then moves to the back; a person
  passed over keeps their place at the front and gets the next shift they can take.
- Rested means none of the person's shifts (this run's, and existing ones anywhere) overlaps
  or even touches the new one: with "08:00-20:00" and "20:00-08:00" nobody works both shifts
  of a day, nor the day shift after a night. When nobody in the pool is rested, the first in
  the queue takes the shift anyway, because a post must never be left empty (严禁空岗), and the
  summary counts it.
- Shifts are matched by unit + post + start, like the roster import. Existing shifts in the
  range are left alone and count as taken turns of their holders. With `replace`, their people
  are reassigned by the rotation, except shifts that have a clock event or have already begun;
  nothing is ever deleted. Written shifts have source "generated".
- The whole run is one transaction: every unit or none.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import and_, col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import RotaSettings
from bot.errors import InvalidInput
from bot.i18n import N_, Translator
from bot.models import AuditEntry, ClockEvent, Person, RoleGrant, Shift, ShiftKind, Unit
from bot.services.holidays import HolidayCalendar
from bot.services.roster_files import MAX_SHIFT
from bot.uow import Database

__all__ = [
    "MAX_DAYS",
    "Commitments",
    "DayKind",
    "GenerateSummary",
    "PlannedShift",
    "RotaNote",
    "Rotation",
    "Slot",
    "day_kinds",
    "day_slots",
    "generate",
    "plan_days",
    "plan_slots",
    "rotation_start",
]

MAX_DAYS = 366
SOURCE = "generated"
_TABLE: sa.Table = Shift.__table__  # type: ignore[attr-defined]
# Rows per INSERT/UPDATE round trip: large enough to be fast, small enough to bound memory.
_CHUNK = 5_000
_KIND_ORDER = {ShiftKind.STAFF: 0, ShiftKind.LEADER: 1}

SlotKey = tuple[str, datetime]


class DayKind(StrEnum):
    """Which pattern a day follows."""

    WORKDAY = "workday"
    HOLIDAY = "holiday"


@dataclass(frozen=True)
class Slot:
    """A shift the pattern asks for: post, start and end (UTC) and kind; nobody in it yet."""

    post: str
    start: datetime
    end: datetime
    kind: ShiftKind

    @property
    def key(self) -> SlotKey:
        """What matches it to an existing shift of the same unit."""
        return (self.post, self.start)


@dataclass(frozen=True)
class PlannedShift:
    """A slot with the person the rotation gives it to."""

    slot: Slot
    person_id: int
    # True when nobody in the pool was rested and the post went to the next in turn anyway.
    without_rest: bool = False


@dataclass(frozen=True)
class Rotation:
    """A pool in rotation order (person ids) and the index of who takes the first shift."""

    people: tuple[int, ...]
    start: int = 0


@dataclass(frozen=True)
class RotaNote:
    """A progress line: a catalog id with its parameters, rendered in the reader's language."""

    message: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, tr: Translator) -> str:
        """The line in the reader's language."""
        return tr._(self.message, **self.params)


@dataclass(frozen=True)
class GenerateSummary:
    """What a run created, reassigned and left as it was, and which units it skipped."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    units: int = 0
    skipped: tuple[str, ...] = ()
    without_rest: int = 0

    @property
    def changed(self) -> bool:
        """Whether the run wrote anything."""
        return bool(self.created or self.updated)


class Commitments:
    """Each person's shifts that a plan must work around, as (start, end) pairs sorted by start."""

    def __init__(self, shifts: Mapping[int, Iterable[tuple[datetime, datetime]]] | None = None):
        self._starts: dict[int, list[datetime]] = {}
        self._ends: dict[int, list[datetime]] = {}
        self._longest: dict[int, timedelta] = {}
        for person_id, spans in (shifts or {}).items():
            for start, end in spans:
                self.add(person_id, start, end)

    def add(self, person_id: int, start: datetime, end: datetime) -> None:
        """Record that the person is on duty from start to end."""
        starts = self._starts.setdefault(person_id, [])
        at = bisect.bisect_right(starts, start)
        starts.insert(at, start)
        self._ends.setdefault(person_id, []).insert(at, end)
        self._longest[person_id] = max(self._longest.get(person_id, timedelta(0)), end - start)

    def touches(self, person_id: int, start: datetime, end: datetime) -> bool:
        """Whether one of the person's shifts overlaps or touches start..end."""
        starts = self._starts.get(person_id)
        if not starts:
            return False
        ends = self._ends[person_id]
        low = bisect.bisect_left(starts, start - self._longest[person_id])
        high = bisect.bisect_right(starts, end)
        return any(ends[i] >= start for i in range(low, high))


# The pure planner: plain data in, planned shifts out.


def day_kinds(
    first: date, last: date, calendar: HolidayCalendar | None = None
) -> dict[date, DayKind]:
    """Workday or holiday for each day from first to last, or InvalidInput for a bad range."""
    if last < first:
        raise InvalidInput(
            N_("The last day {last} is before the first day {first}."),
            first=first.isoformat(),
            last=last.isoformat(),
        )
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise InvalidInput(
            N_("Generate at most {limit} days at a time; {first} to {last} is {count} days."),
            limit=MAX_DAYS,
            first=first.isoformat(),
            last=last.isoformat(),
            count=count,
        )
    kinds: dict[date, DayKind] = {}
    for offset in range(count):
        day = first + timedelta(days=offset)
        workday = (calendar or HolidayCalendar()).is_workday(day)
        kinds[day] = DayKind.WORKDAY if workday else DayKind.HOLIDAY
    return kinds


def day_slots(days: Mapping[date, DayKind], *, rota: RotaSettings, tz: ZoneInfo) -> list[Slot]:
    """The pattern's slots for these days, in the order the rotation fills them."""
    slots: dict[SlotKey, Slot] = {}
    for day, kind in sorted(days.items()):
        spans = rota.workday_shifts if kind is DayKind.WORKDAY else rota.holiday_shifts
        wanted = [(rota.post, span, ShiftKind.STAFF) for span in spans]
        wanted.append((rota.leader_post, rota.leader_shift, ShiftKind.LEADER))
        for post, (start, length), shift_kind in wanted:
            slot = _slot(day, start, length, post, shift_kind, tz)
            # Two spans with one start would be one shift (unit + post + start is unique).
            slots.setdefault(slot.key, slot)
    return sorted(slots.values(), key=_slot_order)


def _slot(
    day: date, start: time, length: timedelta, post: str, kind: ShiftKind, tz: ZoneInfo
) -> Slot:
    # Wall-clock arithmetic, so "20:00-08:00" ends at 08:00 local even across a DST change.
    local_start = datetime.combine(day, start)
    local_end = local_start + length
    return Slot(
        post=post,
        start=local_start.replace(tzinfo=tz).astimezone(UTC),
        end=local_end.replace(tzinfo=tz).astimezone(UTC),
        kind=kind,
    )


def _slot_order(slot: Slot) -> tuple[datetime, int, str]:
    # At one start, staff posts first: a person in both pools is needed more at a staff post.
    return (slot.start, _KIND_ORDER[slot.kind], slot.post)


def rotation_start(staff_nos: Sequence[str], last: str | None) -> int:
    """Index of the first person after `last` in staff-number order (wrapping), or 0."""
    if last is None:
        return 0
    at = bisect.bisect_right(staff_nos, last)
    return at if at < len(staff_nos) else 0


def plan_days(
    days: Mapping[date, DayKind],
    *,
    rota: RotaSettings,
    tz: ZoneInfo,
    staff: Rotation,
    leaders: Rotation,
    fixed: Mapping[SlotKey, int | None] | None = None,
    busy: Commitments | None = None,
) -> list[PlannedShift]:
    """Plan the pattern's shifts for these days; see `plan_slots` for the rotation."""
    slots = day_slots(days, rota=rota, tz=tz)
    return plan_slots(slots, staff=staff, leaders=leaders, fixed=fixed, busy=busy)


def plan_slots(
    slots: Sequence[Slot],
    *,
    staff: Rotation,
    leaders: Rotation,
    fixed: Mapping[SlotKey, int | None] | None = None,
    busy: Commitments | None = None,
) -> list[PlannedShift]:
    """Give each slot to the next rested person of its pool; `fixed` slots keep their holder.

    Slots must come in start order (as `day_slots` gives them). A fixed slot (an existing shift
    that stays) is not planned, but counts as its holder's turn. `busy` holds the people's
    other shifts. Leader slots are not planned when the leader pool is empty.
    """
    queues = {
        ShiftKind.STAFF: _queue(staff),
        ShiftKind.LEADER: _queue(leaders),
    }
    fixed = fixed or {}
    busy = busy or Commitments()
    # Slots come in start order, so a person is rested for a slot when everything this plan
    # gave them ended before it starts; `until` keeps the latest end per person.
    until: dict[int, datetime] = {}
    planned: list[PlannedShift] = []
    for slot in slots:
        queue = queues[slot.kind]
        if slot.key in fixed:
            holder = fixed[slot.key]
            if holder is not None:
                _take_turn(queue, until, holder, slot)
            continue
        if not queue:
            continue
        chosen = next(
            (
                index
                for index, person_id in enumerate(queue)
                if (person_id not in until or until[person_id] < slot.start)
                and not busy.touches(person_id, slot.start, slot.end)
            ),
            None,
        )
        person_id = queue[0 if chosen is None else chosen]
        _take_turn(queue, until, person_id, slot)
        planned.append(PlannedShift(slot, person_id, without_rest=chosen is None))
    return planned


def _queue(rotation: Rotation) -> list[int]:
    people = list(rotation.people)
    if not people:
        return people
    start = rotation.start % len(people)
    return people[start:] + people[:start]


def _take_turn(queue: list[int], until: dict[int, datetime], person_id: int, slot: Slot) -> None:
    if person_id in queue:
        queue.remove(person_id)
        queue.append(person_id)
    if person_id not in until or until[person_id] < slot.end:
        until[person_id] = slot.end


# The use case: load what the plan needs, plan each unit, write in bulk, one transaction.


@dataclass
class _Pool:
    staff: list[tuple[str, int]] = field(default_factory=list)  # (staff_no, person id)
    leaders: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class _Existing:
    """An existing shift at a slot of a unit in scope."""

    id: int
    end: datetime
    person_id: int | None
    kind: str
    keep: bool


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    without_rest: int = 0


class _Writer:
    """Bulk INSERT and UPDATE in chunks, inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._inserts: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []

    async def insert(self, row: dict[str, Any]) -> None:
        self._inserts.append(row)
        if len(self._inserts) >= _CHUNK:
            await self._flush_inserts()

    async def update(self, row: dict[str, Any]) -> None:
        self._updates.append(row)
        if len(self._updates) >= _CHUNK:
            await self._flush_updates()

    async def flush(self) -> None:
        await self._flush_inserts()
        await self._flush_updates()

    async def _flush_inserts(self) -> None:
        if self._inserts:
            await self._session.execute(sa.insert(_TABLE), self._inserts)
            self._inserts = []

    async def _flush_updates(self) -> None:
        if self._updates:
            statement = (
                sa.update(_TABLE)
                .where(_TABLE.c.id == sa.bindparam("b_id"))
                .values(
                    person_id=sa.bindparam("b_person_id"),
                    end=sa.bindparam("b_end"),
                    kind=sa.bindparam("b_kind"),
                    source=sa.bindparam("b_source"),
                    planned_at=None,  # its reminders and pages are planned again, moved
                )
            )
            await self._session.execute(statement, self._updates)
            self._updates = []


async def generate(
    db: Database,
    *,
    unit_code: str,
    first: date,
    last: date,
    rota: RotaSettings,
    tz: ZoneInfo,
    replace: bool = False,
    now: datetime,
    progress: Callable[[RotaNote], None] | None = None,
    calendar: HolidayCalendar | None = None,
) -> GenerateSummary:
    """Fill the rota's shifts for a unit and every unit below it, all in one transaction."""
    slots = day_slots(day_kinds(first, last, calendar), rota=rota, tz=tz)
    keys = {slot.key for slot in slots}
    window_start = datetime.combine(first, time()).replace(tzinfo=tz).astimezone(UTC)
    window_end = max(slot.end for slot in slots)
    tell = progress or (lambda _note: None)
    async with db.uow() as uow:
        session = uow.session
        root = (await session.exec(select(Unit).where(Unit.code == unit_code))).first()
        if root is None or root.id is None:
            raise InvalidInput(N_("unknown unit {code}"), code=unit_code)
        # An empty path would match every unit; such a unit stands for itself alone.
        scope = col(Unit.path).startswith(root.path) if root.path else col(Unit.id) == root.id
        units = list((await session.exec(select(Unit).where(scope))).all())
        units.sort(key=lambda unit: (unit.path.count("/"), unit.code))
        pools = await _pools(session, scope, rota)
        last_holders = await _last_holders(session, scope, rota, before=window_start)
        clocked = (
            await _clocked(session, scope, window_start, window_end) if replace else set[int]()
        )
        existing, busy = await _existing(
            session,
            scope,
            rota,
            keys=keys,
            # Existing shifts are at most MAX_SHIFT long (the roster import refuses longer).
            since=window_start - MAX_SHIFT,
            until=window_end,
            keep=lambda shift_id, start: not replace or shift_id in clocked or start <= now,
        )
        # A person rotating at two units must be rested across both.
        seen: set[int] = set()
        shared: set[int] = set()
        for pool in pools.values():
            for person_id in {p for _, p in pool.staff} | {p for _, p in pool.leaders}:
                (shared if person_id in seen else seen).add(person_id)
        writer = _Writer(session)
        counts = _Counts()
        skipped: list[str] = []
        done = 0
        for index, unit in enumerate(units, start=1):
            assert unit.id is not None
            label = f"[{index}/{len(units)}] {unit.code} {unit.name}"
            pool = pools.get(unit.id, _Pool())
            if not pool.staff:
                skipped.append(unit.code)
                tell(
                    RotaNote(
                        N_("{unit}: skipped, nobody there holds a staff role ({roles})."),
                        {"unit": label, "roles": ", ".join(rota.staff_roles)},
                    )
                )
                continue
            if not pool.leaders:
                tell(
                    RotaNote(
                        N_("{unit}: nobody there holds a leader role ({roles}); no leader shifts."),
                        {"unit": label, "roles": ", ".join(rota.leader_roles)},
                    )
                )
            at_unit = existing.get(unit.id, {})
            plan = plan_slots(
                slots,
                staff=_rotation(pool.staff, last_holders.get((unit.id, ShiftKind.STAFF))),
                leaders=_rotation(pool.leaders, last_holders.get((unit.id, ShiftKind.LEADER))),
                fixed={key: found.person_id for key, found in at_unit.items() if found.keep},
                busy=busy,
            )
            before = (counts.created, counts.updated, counts.unchanged)
            if at_unit:
                # Existing shifts the plan does not rewrite: kept ones, and leader shifts of a
                # unit that has lost its leaders.
                planned = {shift.slot.key for shift in plan}
                counts.unchanged += sum(1 for key in at_unit if key not in planned)
            for shift in plan:
                if shift.person_id in shared:
                    busy.add(shift.person_id, shift.slot.start, shift.slot.end)
                await _write(writer, counts, unit.id, shift, at_unit.get(shift.slot.key))
            unit_without_rest = sum(1 for shift in plan if shift.without_rest)
            counts.without_rest += unit_without_rest
            done += 1
            tell(
                RotaNote(
                    N_("{what}: {created} new, {updated} updated, {unchanged} unchanged"),
                    {
                        "what": label,
                        "created": counts.created - before[0],
                        "updated": counts.updated - before[1],
                        "unchanged": counts.unchanged - before[2],
                    },
                )
            )
            if unit_without_rest:
                tell(
                    RotaNote(
                        N_("{unit}: {count} shifts follow another without rest (too few people)."),
                        {"unit": label, "count": unit_without_rest},
                    )
                )
        await writer.flush()
        summary = GenerateSummary(
            created=counts.created,
            updated=counts.updated,
            unchanged=counts.unchanged,
            units=done,
            skipped=tuple(skipped),
            without_rest=counts.without_rest,
        )
        if summary.changed:
            session.add(
                AuditEntry(
                    at=now.astimezone(UTC),
                    action="shifts_generate",
                    subject_type="unit",
                    subject_id=root.id,
                    unit_id=root.id,
                    detail={
                        "from": first.isoformat(),
                        "to": last.isoformat(),
                        "replace": replace,
                        "shifts": [summary.created, summary.updated, summary.unchanged],
                    },
                )
            )
            await uow.commit()
    return summary


async def _write(
    writer: _Writer, counts: _Counts, unit_id: int, shift: PlannedShift, found: _Existing | None
) -> None:
    slot = shift.slot
    if found is None:
        counts.created += 1
        await writer.insert(
            {
                "unit_id": unit_id,
                "post": slot.post,
                "start": slot.start,
                "end": slot.end,
                "person_id": shift.person_id,
                "kind": slot.kind.value,
                "source": SOURCE,
            }
        )
    elif (found.person_id, found.end, found.kind) == (shift.person_id, slot.end, slot.kind):
        counts.unchanged += 1
    else:
        counts.updated += 1
        await writer.update(
            {
                "b_id": found.id,
                "b_person_id": shift.person_id,
                "b_end": slot.end,
                "b_kind": slot.kind.value,
                "b_source": SOURCE,
            }
        )


def _rotation(pool: list[tuple[str, int]], last: str | None) -> Rotation:
    ordered = sorted(pool)
    return Rotation(
        people=tuple(person_id for _, person_id in ordered),
        start=rotation_start([staff_no for staff_no, _ in ordered], last),
    )


def _pool_grants(scope: Any, rota: RotaSettings) -> Any:
    roles = sorted(set(rota.staff_roles) | set(rota.leader_roles))
    return (
        select(RoleGrant.unit_id, RoleGrant.role, Person.id, Person.staff_no)
        .join(Person, col(Person.id) == RoleGrant.person_id)
        .join(Unit, col(Unit.id) == RoleGrant.unit_id)
        .where(scope, col(RoleGrant.role).in_(roles), col(Person.active).is_(True))
    )


async def _pools(session: AsyncSession, scope: Any, rota: RotaSettings) -> dict[int, _Pool]:
    pools: dict[int, _Pool] = {}
    staff_roles, leader_roles = set(rota.staff_roles), set(rota.leader_roles)
    rows = (await session.execute(_pool_grants(scope, rota))).all()
    for unit_id, role, person_id, staff_no in rows:
        pool = pools.setdefault(unit_id, _Pool())
        member = (staff_no, person_id)
        if role in staff_roles and member not in pool.staff:
            pool.staff.append(member)
        if role in leader_roles and member not in pool.leaders:
            pool.leaders.append(member)
    return pools


def _rota_posts(rota: RotaSettings) -> Any:
    return or_(
        and_(col(Shift.kind) == ShiftKind.STAFF.value, col(Shift.post) == rota.post),
        and_(col(Shift.kind) == ShiftKind.LEADER.value, col(Shift.post) == rota.leader_post),
    )


async def _last_holders(
    session: AsyncSession, scope: Any, rota: RotaSettings, *, before: datetime
) -> dict[tuple[int, str], str]:
    """Staff number of whoever held each unit's last staff and leader shift before a moment."""
    latest = (
        select(
            col(Shift.unit_id).label("unit_id"),
            col(Shift.kind).label("kind"),
            func.max(Shift.start).label("start"),
        )
        .join(Unit, col(Unit.id) == Shift.unit_id)
        .where(
            scope,
            col(Shift.start) < before,
            col(Shift.person_id).is_not(None),
            _rota_posts(rota),
        )
        .group_by(col(Shift.unit_id), col(Shift.kind))
        .subquery()
    )
    statement = (
        select(Shift.unit_id, Shift.kind, Person.staff_no)
        .join(
            latest,
            and_(
                col(Shift.unit_id) == latest.c.unit_id,
                col(Shift.kind) == latest.c.kind,
                col(Shift.start) == latest.c.start,
            ),
        )
        .join(Person, col(Person.id) == Shift.person_id)
        .where(_rota_posts(rota))
    )
    rows = (await session.execute(statement)).all()
    return {(unit_id, kind): staff_no for unit_id, kind, staff_no in rows}


async def _clocked(session: AsyncSession, scope: Any, since: datetime, until: datetime) -> set[int]:
    """Ids of the shifts in the window that someone clocked in or out of."""
    statement = (
        select(ClockEvent.shift_id)
        .join(Shift, col(Shift.id) == ClockEvent.shift_id)
        .join(Unit, col(Unit.id) == Shift.unit_id)
        .where(scope, col(Shift.start) >= since, col(Shift.start) < until)
        .distinct()
    )
    return set((await session.execute(statement)).scalars().all())


async def _existing(
    session: AsyncSession,
    scope: Any,
    rota: RotaSettings,
    *,
    keys: set[SlotKey],
    since: datetime,
    until: datetime,
    keep: Callable[[int, datetime], bool],
) -> tuple[dict[int, dict[SlotKey, _Existing]], Commitments]:
    """Existing shifts at the run's slots per unit, and the pools' other shifts as commitments."""
    in_scope = select(Unit.id).where(scope)
    pooled = _pool_grants(scope, rota).with_only_columns(col(Person.id))
    statement = (
        sa.select(
            _TABLE.c.id,
            _TABLE.c.unit_id,
            _TABLE.c.post,
            _TABLE.c.start,
            _TABLE.c.end,
            _TABLE.c.person_id,
            _TABLE.c.kind,
        )
        .where(
            col(Shift.start) >= since,
            col(Shift.start) <= until,
            or_(col(Shift.unit_id).in_(in_scope), col(Shift.person_id).in_(pooled)),
        )
        .order_by(col(Shift.start))
    )
    existing: dict[int, dict[SlotKey, _Existing]] = {}
    busy = Commitments()
    unit_ids = set((await session.execute(in_scope)).scalars().all())
    # Streamed in batches: a rerun over a whole term meets every shift of the district.
    result = await session.stream(statement.execution_options(yield_per=_CHUNK))
    async for rows in result.partitions():
        for shift_id, unit_id, post, start, end, person_id, kind in rows:
            at_slot = unit_id in unit_ids and (post, start) in keys
            kept = not at_slot or keep(shift_id, start)
            if at_slot:
                existing.setdefault(unit_id, {})[(post, start)] = _Existing(
                    shift_id, end, person_id, kind, kept
                )
            if kept and person_id is not None:
                busy.add(person_id, start, end)
    return existing, busy
