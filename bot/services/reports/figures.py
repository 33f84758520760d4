"""The figures of a leader's summary (工作总结): one scope, one period, a fixed number of queries.

A scope is a unit and everything below it; a period is [start, end) in UTC, read as the
district's local time by whoever chose it (`period_of`, the CLI's dates). Every figure is an
aggregate over the rows as they are at `now` (see README, "Summaries", for the definitions a
bureau writes its 工作总结 from):

1. Incidents by category and by severity: incidents that happened (`occurred_at`) in the
   period at a unit of the scope; drills are left out here.
2. On-time reporting: of those incidents whose severity has a `report_deadline` (the one-hour
   rule), how many carry no late flag — neither reported after the deadline (`reported_late`,
   which a 漏报 recorded by an officer above also sets) nor passed up late (`forwarded_late`:
   the system passed it up at deadline − margin, or a level was reached after the deadline).
3. Time to acknowledge at each level (unit, parent, county) of those incidents: from the moment
   the matter reached that level (`escalation_levels.reached_at`) to the first acknowledgement
   there; the median over the levels that were acknowledged, and how many reached were not.
4. Shifts that started in the period and before `now`: clocked in on time, clocked in late
   (`late_minutes` > 0: after the start, by whole minutes, as attendance records it), missed
   (the shift has ended with no clock-in at all), unfilled (nobody assigned); a shift still
   under way without a clock-in is not counted yet.
5. Check-ins due in the period (the rules of `checkins.compliance`: void ones count nowhere)
   and daily reports of the local days in the period (the rules of `daily_reports.compliance`):
   in time, late, missing, of those owed (whose deadline has passed).
6. Drills started in the period: each with its time to the first acknowledgement at any level
   (as the drill log shows it), and their median.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select

from bot.config import Level, Severity
from bot.errors import InvalidInput
from bot.models import (
    Checkin,
    ClockEvent,
    DailyReport,
    Escalation,
    EscalationLevel,
    Incident,
    Person,
    Shift,
    Unit,
    UTCDateTime,
)
from bot.services.escalation.policy import LEVEL_ORDER
from bot.services.incidents.kinds import Category
from bot.services.incidents.reporting import SUBJECT_TYPE
from bot.uow import Database


class PeriodKind(StrEnum):
    """The periods `/summary` accepts."""

    WEEK = "week"
    MONTH = "month"
    TERM = "term"


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC; `first`..`last` are its local days (for the daily reports)."""

    start: datetime
    end: datetime
    first: date
    last: date


def period_between(start: datetime, end: datetime, tz: ZoneInfo) -> Period:
    """The period [start, end) with its local days."""
    if not start < end:
        raise InvalidInput("The period must end after it starts.")
    return Period(
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        first=start.astimezone(tz).date(),
        last=(end - timedelta(microseconds=1)).astimezone(tz).date(),
    )


def days_between(first: date, last: date, tz: ZoneInfo) -> Period:
    """The local days `first` to `last`, both included (what `zhiban report` takes)."""
    if last < first:
        raise InvalidInput(
            "The end date {last} is before the start date {first}.", first=first, last=last
        )
    start = datetime.combine(first, time(0), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
    return period_between(start, end, tz)


def term_start(today: date, term_starts: Sequence[tuple[int, int]]) -> date:
    """The latest term start on or before `today` (last year's latest in early January)."""
    candidates = [
        date(year, month, day)
        for year in (today.year - 1, today.year)
        for month, day in term_starts
    ]
    return max(day for day in candidates if day <= today)


def period_of(
    kind: PeriodKind, *, now: datetime, tz: ZoneInfo, term_starts: Sequence[tuple[int, int]]
) -> Period:
    """The week from Monday 00:00, the month from the 1st, or the term from its start, to now."""
    today = now.astimezone(tz).date()
    if kind == PeriodKind.WEEK:
        first = today - timedelta(days=today.weekday())
    elif kind == PeriodKind.MONTH:
        first = today.replace(day=1)
    else:
        first = term_start(today, term_starts)
    start = datetime.combine(first, time(0), tzinfo=tz)
    # A period always has some length, even asked for at Monday 00:00 exactly.
    return period_between(start, max(now, start + timedelta(seconds=1)), tz)


# A unit as the per-unit tables name it: (code, name).
UnitRef = tuple[str, str]


_T = TypeVar("_T")


def _sorted(by_unit: dict[UnitRef, _T]) -> tuple[tuple[UnitRef, _T], ...]:
    return tuple(sorted(by_unit.items()))


@dataclass(frozen=True)
class Reporting:
    """Incidents under the one-hour rule: how many were reported on time."""

    with_deadline: int = 0
    on_time: int = 0

    @property
    def late(self) -> int:
        """Incidents recorded late (迟报, 漏报 included)."""
        return self.with_deadline - self.on_time

    @property
    def rate(self) -> float | None:
        """The on-time share, None when no incident had a deadline."""
        return self.on_time / self.with_deadline if self.with_deadline else None


@dataclass(frozen=True)
class LevelAck:
    """How quickly one level acknowledged the incidents that reached it."""

    level: Level
    reached: int
    acknowledged: int
    median: timedelta | None

    @property
    def never(self) -> int:
        """Reached and never acknowledged there."""
        return self.reached - self.acknowledged


@dataclass(frozen=True)
class Shifts:
    """Shifts that started in the period (and before now)."""

    on_time: int = 0
    late: int = 0
    missed: int = 0
    unfilled: int = 0

    @staticmethod
    def total(parts: Iterable[Shifts]) -> Shifts:
        """The sum of several units' figures."""
        parts = list(parts)
        return Shifts(
            on_time=sum(p.on_time for p in parts),
            late=sum(p.late for p in parts),
            missed=sum(p.missed for p in parts),
            unfilled=sum(p.unfilled for p in parts),
        )

    @property
    def owed(self) -> int:
        """Staffed shifts that were clocked in to or are over."""
        return self.on_time + self.late + self.missed


@dataclass(frozen=True)
class Compliance:
    """Answers owed in the period: in time, late, missing (and still open, not yet owed)."""

    in_time: int = 0
    late: int = 0
    missing: int = 0
    open: int = 0

    @staticmethod
    def total(parts: Iterable[Compliance]) -> Compliance:
        """The sum of several units' figures."""
        parts = list(parts)
        return Compliance(
            in_time=sum(p.in_time for p in parts),
            late=sum(p.late for p in parts),
            missing=sum(p.missing for p in parts),
            open=sum(p.open for p in parts),
        )

    @property
    def owed(self) -> int:
        """Those whose deadline has passed."""
        return self.in_time + self.late + self.missing

    @property
    def rate(self) -> float | None:
        """In time of owed, None when nothing was owed."""
        return self.in_time / self.owed if self.owed else None


@dataclass(frozen=True)
class Drill:
    """One drill held in the period."""

    number: str
    unit: str
    severity: Severity
    started_at: datetime
    first_ack_after: timedelta | None


@dataclass(frozen=True)
class Figures:
    """Everything a summary shows, for one scope and period, as the rows stood at `now`."""

    unit_code: str
    unit_name: str
    period: Period
    now: datetime
    by_category: dict[Category, int]
    by_severity: dict[Severity, int]
    reporting: Reporting
    acks: tuple[LevelAck, ...]
    shifts: Shifts
    checkins: Compliance
    daily_reports: Compliance
    drills: tuple[Drill, ...] = field(default=())
    # The same per unit of the scope that has any (unit code, name), in code order.
    shifts_by_unit: tuple[tuple[UnitRef, Shifts], ...] = field(default=())
    checkins_by_unit: tuple[tuple[UnitRef, Compliance], ...] = field(default=())
    daily_reports_by_unit: tuple[tuple[UnitRef, Compliance], ...] = field(default=())

    @property
    def incidents(self) -> int:
        """Incidents in the period (drills left out)."""
        return sum(self.by_category.values())

    @property
    def drill_median(self) -> timedelta | None:
        """The median time to the first acknowledgement of the drills acknowledged."""
        times = [d.first_ack_after for d in self.drills if d.first_ack_after is not None]
        return _median(times)


def _median(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    return timedelta(seconds=statistics.median(v.total_seconds() for v in values))


def _int(value: Any) -> int:
    return int(value or 0)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


async def figures(
    db: Database,
    *,
    unit_id: int,
    period: Period,
    now: datetime,
    deadline_severities: Collection[Severity],
) -> Figures:
    """The summary of `unit_id` and everything below it over `period`, as it stands at `now`.

    `deadline_severities` are the severities whose policy has a report deadline. Seven queries
    whatever the size of the scope; medians are taken in Python over the rows one query returns.
    """
    async with db.read() as uow:
        session = uow.session
        top = (await session.exec(select(Unit).where(Unit.id == unit_id))).one()
        in_scope = col(Unit.path).startswith(top.path)
        start, end = period.start, period.end

        # 1, 2: incidents by category and severity, with their late flags.
        late_flag = sa.or_(col(Incident.reported_late), col(Incident.forwarded_late))
        rows = (
            await session.execute(
                sa.select(
                    col(Incident.category),
                    col(Incident.severity),
                    sa.func.count(),
                    _count(late_flag),
                )
                .join(Unit, col(Unit.id) == Incident.unit_id)
                .where(
                    in_scope,
                    sa.not_(col(Incident.is_drill)),
                    col(Incident.occurred_at) >= start,
                    col(Incident.occurred_at) < end,
                )
                .group_by(Incident.category, Incident.severity)
            )
        ).all()
        by_category: dict[Category, int] = {}
        by_severity: dict[Severity, int] = {}
        with_deadline = late = 0
        for category, severity, count, late_count in rows:
            by_category[Category(category)] = by_category.get(Category(category), 0) + count
            by_severity[Severity(severity)] = by_severity.get(Severity(severity), 0) + count
            if Severity(severity) in deadline_severities:
                with_deadline += count
                late += _int(late_count)
        reporting = Reporting(with_deadline=with_deadline, on_time=with_deadline - late)

        # 3: time to acknowledge at each level.
        level_rows = (
            await session.execute(
                sa.select(
                    col(EscalationLevel.level),
                    col(EscalationLevel.reached_at),
                    col(EscalationLevel.acknowledged_at),
                )
                .join(Escalation, col(Escalation.id) == EscalationLevel.escalation_id)
                .join(Incident, col(Incident.id) == Escalation.subject_id)
                .join(Unit, col(Unit.id) == Incident.unit_id)
                .where(
                    col(Escalation.subject_type) == SUBJECT_TYPE,
                    in_scope,
                    sa.not_(col(Incident.is_drill)),
                    col(Incident.occurred_at) >= start,
                    col(Incident.occurred_at) < end,
                )
            )
        ).all()
        waits: dict[Level, list[timedelta]] = {level: [] for level in LEVEL_ORDER}
        reached: dict[Level, int] = dict.fromkeys(LEVEL_ORDER, 0)
        for level, reached_at, acknowledged_at in level_rows:
            reached[Level(level)] += 1
            if acknowledged_at is not None:
                # An acknowledgement cannot come before the level had the matter.
                waits[Level(level)].append(max(acknowledged_at - reached_at, timedelta(0)))
        acks = tuple(
            LevelAck(level, reached[level], len(waits[level]), _median(waits[level]))
            for level in LEVEL_ORDER
        )

        # 4: shifts, each with its first clock-in's lateness (NULL: none). An outer join and
        # GROUP BY, not a subquery per shift: PostgreSQL hashes it in one pass.
        per_shift = (
            sa.select(
                col(Unit.code).label("code"),
                col(Unit.name).label("name"),
                col(Shift.person_id).label("person_id"),
                col(Shift.end).label("shift_end"),
                sa.func.min(ClockEvent.late_minutes).label("late"),
            )
            .join(Unit, col(Unit.id) == Shift.unit_id)
            .outerjoin(
                ClockEvent,
                sa.and_(col(ClockEvent.shift_id) == Shift.id, col(ClockEvent.kind) == "in"),
            )
            .where(
                in_scope,
                col(Shift.start) >= start,
                col(Shift.start) < end,
                col(Shift.start) < now,
            )
            .group_by(
                col(Shift.id), col(Shift.person_id), col(Shift.end), col(Unit.code), col(Unit.name)
            )
            .subquery()
        )
        staffed = per_shift.c.person_id.is_not(None)
        shift_rows = (
            await session.execute(
                sa.select(
                    per_shift.c.code,
                    per_shift.c.name,
                    _count(sa.and_(staffed, per_shift.c.late == 0)),
                    _count(sa.and_(staffed, per_shift.c.late > 0)),
                    _count(
                        sa.and_(
                            staffed,
                            per_shift.c.late.is_(None),
                            per_shift.c.shift_end <= _bind_time(now),
                        )
                    ),
                    _count(sa.not_(staffed)),
                )
                .select_from(per_shift)
                .group_by(per_shift.c.code, per_shift.c.name)
            )
        ).all()
        shifts_by_unit = {
            (code, name): Shifts(*(_int(value) for value in counts))
            for code, name, *counts in shift_rows
        }

        # 5a: check-ins; an unanswered one is void when its person left or its shift changed
        # hands (`checkins.rounds.void`).
        answered = col(Checkin.answered_at).is_not(None)
        void = sa.and_(
            sa.not_(answered),
            sa.or_(
                sa.not_(col(Person.active)),
                sa.and_(
                    col(Shift.id).is_not(None),
                    sa.or_(
                        col(Shift.person_id).is_(None),
                        col(Shift.person_id) != Checkin.person_id,
                    ),
                ),
            ),
        )
        counted = sa.not_(void)
        checkin_rows = (
            await session.execute(
                sa.select(
                    col(Unit.code),
                    col(Unit.name),
                    _count(sa.and_(answered, col(Checkin.answered_at) <= col(Checkin.deadline))),
                    _count(sa.and_(answered, col(Checkin.answered_at) > col(Checkin.deadline))),
                    _count(
                        sa.and_(
                            counted,
                            sa.not_(answered),
                            col(Checkin.deadline) < _bind_time(now),
                        )
                    ),
                    _count(
                        sa.and_(
                            counted,
                            sa.not_(answered),
                            col(Checkin.deadline) >= _bind_time(now),
                        )
                    ),
                )
                .select_from(Checkin)
                .join(Person, col(Person.id) == Checkin.person_id)
                .join(Unit, col(Unit.id) == Checkin.unit_id)
                .outerjoin(Shift, col(Shift.id) == Checkin.shift_id)
                .where(in_scope, col(Checkin.due_at) >= start, col(Checkin.due_at) < end)
                .group_by(col(Unit.code), col(Unit.name))
            )
        ).all()
        checkins_by_unit = {
            (code, name): Compliance(*(_int(value) for value in counts))
            for code, name, *counts in checkin_rows
        }

        # 5b: daily reports of the period's local days (`daily_reports.status_of`).
        submitted = col(DailyReport.submitted_at).is_not(None)
        daily_rows = (
            await session.execute(
                sa.select(
                    col(Unit.code),
                    col(Unit.name),
                    _count(
                        sa.and_(
                            submitted, col(DailyReport.submitted_at) <= col(DailyReport.deadline)
                        )
                    ),
                    _count(
                        sa.and_(
                            submitted, col(DailyReport.submitted_at) > col(DailyReport.deadline)
                        )
                    ),
                    _count(
                        sa.and_(sa.not_(submitted), col(DailyReport.deadline) <= _bind_time(now))
                    ),
                    _count(
                        sa.and_(sa.not_(submitted), col(DailyReport.deadline) > _bind_time(now))
                    ),
                )
                .select_from(DailyReport)
                .join(Unit, col(Unit.id) == DailyReport.unit_id)
                .where(
                    in_scope,
                    col(DailyReport.day) >= period.first,
                    col(DailyReport.day) <= period.last,
                )
                .group_by(col(Unit.code), col(Unit.name))
            )
        ).all()
        daily_by_unit = {
            (code, name): Compliance(*(_int(value) for value in counts))
            for code, name, *counts in daily_rows
        }

        # 6: drills started in the period, each with its first acknowledgement at any level.
        first_ack = (
            sa.select(sa.func.min(EscalationLevel.acknowledged_at))
            .join(Escalation, col(Escalation.id) == EscalationLevel.escalation_id)
            .where(
                col(Escalation.subject_type) == SUBJECT_TYPE,
                col(Escalation.subject_id) == Incident.id,
            )
            .correlate(Incident)
            .scalar_subquery()
        )
        drill_rows = (
            await session.execute(
                sa.select(
                    col(Incident.number),
                    col(Unit.name),
                    col(Incident.severity),
                    col(Incident.reported_at),
                    first_ack.label("first_ack"),
                )
                .join(Unit, col(Unit.id) == Incident.unit_id)
                .where(
                    in_scope,
                    col(Incident.is_drill),
                    col(Incident.reported_at) >= start,
                    col(Incident.reported_at) < end,
                )
                .order_by(col(Incident.reported_at), col(Incident.id))
            )
        ).all()
    drills = tuple(
        Drill(
            number=number,
            unit=name,
            severity=Severity(severity),
            started_at=reported_at,
            first_ack_after=(_aware(acked) - reported_at if acked is not None else None),
        )
        for number, name, severity, reported_at, acked in drill_rows
    )
    return Figures(
        unit_code=top.code,
        unit_name=top.name,
        period=period,
        now=now,
        by_category=by_category,
        by_severity=by_severity,
        reporting=reporting,
        acks=acks,
        shifts=Shifts.total(shifts_by_unit.values()),
        checkins=Compliance.total(checkins_by_unit.values()),
        daily_reports=Compliance.total(daily_by_unit.values()),
        drills=drills,
        shifts_by_unit=_sorted(shifts_by_unit),
        checkins_by_unit=_sorted(checkins_by_unit),
        daily_reports_by_unit=_sorted(daily_by_unit),
    )


def _bind_time(moment: datetime) -> sa.BindParameter[datetime]:
    """A moment compared with a timestamp column, stored as the columns store it."""
    return sa.bindparam(None, moment, type_=UTCDateTime())


def _aware(value: datetime | str) -> datetime:
    """A MIN() over a timestamp comes back untyped on SQLite (text) and naive-free on PostgreSQL."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
