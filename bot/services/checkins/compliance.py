"""Check-in compliance per person and per unit: in time, late, missing (for leaders' summaries).

Nothing extra is stored: a check-in's status follows from what is: answered by its `deadline`
is in time, answered after it is late, unanswered once the deadline has passed is missing, and
before that it is still open. A void check-in (the person no longer on duty for it) counts
nowhere.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import col, select

from bot.models import Checkin, Person, Shift, Unit
from bot.services.checkins import rounds
from bot.uow import Database


class CheckinStatus(StrEnum):
    """Where one check-in stands."""

    IN_TIME = "in_time"
    LATE = "late"
    MISSING = "missing"
    OPEN = "open"


def status(checkin: Checkin, *, now: datetime) -> CheckinStatus:
    """A check-in's status at `now` (pure)."""
    if checkin.answered_at is not None:
        return (
            CheckinStatus.LATE if checkin.answered_at > checkin.deadline else CheckinStatus.IN_TIME
        )
    return CheckinStatus.MISSING if now > checkin.deadline else CheckinStatus.OPEN


@dataclass(frozen=True)
class Figures:
    """How many check-ins were answered in time, late, or are missing (and still open)."""

    in_time: int = 0
    late: int = 0
    missing: int = 0
    open: int = 0

    @property
    def owed(self) -> int:
        """Check-ins whose window has closed."""
        return self.in_time + self.late + self.missing

    def add(self, state: CheckinStatus) -> Figures:
        """These figures with one more check-in of this status."""
        counts = {s: getattr(self, s.value) for s in CheckinStatus}
        counts[state] += 1
        return Figures(**{s.value: n for s, n in counts.items()})


@dataclass(frozen=True)
class Compliance:
    """A unit's check-in figures for a period: the whole, each unit in it, each person."""

    total: Figures
    by_unit: dict[int, Figures]
    by_person: dict[int, Figures]
    unit_names: dict[int, str]
    person_names: dict[int, str]


async def compliance(
    db: Database, *, unit_id: int, start: datetime, end: datetime, now: datetime
) -> Compliance:
    """Figures for the check-ins due in [start, end) at `unit_id` and every unit below it."""
    async with db.read() as uow:
        session = uow.session
        top = (await session.exec(select(Unit).where(Unit.id == unit_id))).one()
        rows = (
            await session.exec(
                select(Checkin, Person, Unit)
                .join(Person, col(Person.id) == Checkin.person_id)
                .join(Unit, col(Unit.id) == Checkin.unit_id)
                .where(
                    col(Unit.path).startswith(top.path),
                    col(Checkin.due_at) >= start,
                    col(Checkin.due_at) < end,
                )
            )
        ).all()
        shift_ids = {c.shift_id for c, _p, _u in rows if c.shift_id}
        found = await session.exec(select(Shift).where(col(Shift.id).in_(shift_ids)))
        shifts = {shift.id: shift for shift in found.all()}
    total = Figures()
    by_unit: dict[int, Figures] = defaultdict(Figures)
    by_person: dict[int, Figures] = defaultdict(Figures)
    unit_names: dict[int, str] = {}
    person_names: dict[int, str] = {}
    for checkin, person, unit in rows:
        shift = shifts.get(checkin.shift_id) if checkin.shift_id else None
        if checkin.answered_at is None and rounds.void(checkin, person, shift):
            continue
        state = status(checkin, now=now)
        total = total.add(state)
        by_unit[checkin.unit_id] = by_unit[checkin.unit_id].add(state)
        by_person[checkin.person_id] = by_person[checkin.person_id].add(state)
        unit_names[checkin.unit_id] = unit.name
        person_names[checkin.person_id] = person.name
    return Compliance(total, dict(by_unit), dict(by_person), unit_names, person_names)
