"""The duty board (/board): a leader's area now, one unit or school per entry, problems first.

What it holds per unit: who is on duty now (staff and leader-on-duty shifts covering `now`)
and whether they clocked in; unmanned posts (the shift has started and nobody clocked in);
open incidents with the clock their pages show (`matter_clock`); the unanswered check-ins of
the last round; today's daily report; and the leaders (principal, duty leader, safety officer,
officer, desk) who cannot be reached: no account linked, or the platform refused delivery
(blocked the bot, never pressed Start), which the sender marks on the account.

How it reads the database: a fixed number of queries, whatever the size of the area (the
units, the shifts covering now, their clock events, the open incidents, their escalations and
levels, the last check-in round and its unanswered check-ins, today's daily reports, the
leaders and their accounts), then one pure function (`assemble`) that groups the rows by
unit. Classes fold into their school. A county of 500 schools stays well under a second.

Choices (also in the README): a check-in counts as unanswered once its answer window has
closed (inside the window it is "waiting", shown on a school's own board only); a daily report
before its deadline is "due HH:MM" on a school's board only, never a problem; a clocked-out
shift is no longer on duty and not unmanned (its holder handed over).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from bot.authz import ACTIONS_BY_ROLE, Action
from bot.config import DailyReportSettings, Level, Severity
from bot.errors import NotAllowed
from bot.i18n import N_
from bot.models import (
    Account,
    Checkin,
    ClockEvent,
    DailyReport,
    Escalation,
    EscalationLevel,
    Incident,
    Person,
    Role,
    RoleGrant,
    Shift,
    ShiftKind,
    Unit,
    UnitKind,
)
from bot.services import audit, daily_reports
from bot.services.accounts import Me
from bot.services.checkins import rounds
from bot.services.escalation import matter
from bot.services.incidents.kinds import Category, IncidentStatus
from bot.services.matter_clock import MatterClock, Reached, clock_of
from bot.uow import Database

# The subject type of an incident's escalation (bot.services.incidents.SUBJECT_TYPE).
INCIDENT_SUBJECT = "incident"
# Leaders who must stay reachable around the clock (SPEC §1, §4).
LEADER_ROLES = (Role.PRINCIPAL, Role.DUTY_LEADER, Role.SAFETY_OFFICER, Role.OFFICER, Role.DESK)
NOT_IN_AREA = N_(
    "There is no unit {code} in your area of responsibility. Send /board for your whole area, "
    "or /board and the code of a unit in it."
)
NOT_FOR_YOU = N_(
    "The board is for principals, safety officers, duty leaders, township and county officers, "
    "the county desk and administrators."
)
NOT_IN_AREA_BUTTON = N_("This unit is not in your area of responsibility.")
_SERIOUS = (Severity.ESPECIALLY_SERIOUS, Severity.SERIOUS)


class ReportState:
    """Where today's daily report of a school stands, as the board shows it."""

    IN_TIME = daily_reports.Status.IN_TIME
    LATE = daily_reports.Status.LATE
    MISSING = daily_reports.Status.MISSING
    DUE = "due"  # before the deadline: not a problem yet


@dataclass(frozen=True)
class OnDuty:
    """One shift covering now: who (None for an unfilled post), which post, clocked in or not."""

    post: str
    person: str | None
    leader: bool
    start: datetime
    clocked_in: bool

    def unmanned_for(self, now: datetime) -> timedelta | None:
        """How long the post has been unmanned (started, nobody clocked in); None if manned."""
        return None if self.clocked_in else max(now - self.start, timedelta(0))


@dataclass(frozen=True)
class OpenIncident:
    """An open incident (or drill) with the clock its pages show."""

    number: str
    category: Category
    severity: Severity
    drill: bool
    reported_late: bool
    clock: MatterClock

    @property
    def late(self) -> bool:
        """Late by the one-hour rule, or reported late (迟报)."""
        return self.reported_late or self.clock.late_by is not None or self.clock.forwarded_late


@dataclass(frozen=True)
class Unreachable:
    """A leader who cannot be reached: no account linked, or delivery refused since `since`."""

    name: str
    roles: tuple[str, ...]
    since: datetime | None  # None: never linked


@dataclass(frozen=True)
class DailyReportLine:
    """Today's daily report of a school."""

    state: str
    deadline: datetime
    submitted_at: datetime | None = None
    nothing_to_report: bool = False


@dataclass(frozen=True)
class UnitBoard:
    """One unit of the board (a school with its classes, a township or county office)."""

    unit_id: int
    code: str
    name: str
    kind: str
    on_duty: tuple[OnDuty, ...] = ()
    incidents: tuple[OpenIncident, ...] = ()
    # Unanswered check-ins of the last round whose answer window has closed, and those still open.
    checkins_missed: tuple[str, ...] = ()
    checkins_waiting: tuple[str, ...] = ()
    daily_report: DailyReportLine | None = None
    unreachable: tuple[Unreachable, ...] = ()

    @property
    def clocked_in(self) -> int:
        """People on duty who clocked in."""
        return sum(1 for d in self.on_duty if d.clocked_in and d.person is not None)

    @property
    def people_on_duty(self) -> int:
        """Shifts covering now with someone on them."""
        return sum(1 for d in self.on_duty if d.person is not None)

    @property
    def unmanned(self) -> tuple[OnDuty, ...]:
        """Posts whose shift has started with nobody clocked in, longest unmanned first."""
        return tuple(sorted((d for d in self.on_duty if not d.clocked_in), key=lambda d: d.start))

    @property
    def real_incidents(self) -> tuple[OpenIncident, ...]:
        """Open incidents that are not drills."""
        return tuple(i for i in self.incidents if not i.drill)

    @property
    def report_missing(self) -> bool:
        """Today's daily report is past its deadline and not in."""
        return self.daily_report is not None and self.daily_report.state == ReportState.MISSING

    @property
    def weight(self) -> int:
        """How bad it is, for ordering (worst first); 0 is all clear.

        A serious incident outweighs everything, then any incident (a late one more), an
        unmanned post, a missed check-in, a missing daily report, an unreachable leader.
        """
        score = 0
        for incident in self.real_incidents:
            score += 10_000 if incident.severity in _SERIOUS else 1_000
            score += 500 if incident.late else 0
        score += 100 * len(self.unmanned)
        score += 10 * len(self.checkins_missed)
        score += 10 if self.report_missing else 0
        score += len(self.unreachable)
        # A drill is shown but is no problem of the unit's.
        return score

    @property
    def clear(self) -> bool:
        """Nothing on this unit's board needs anyone."""
        return self.weight == 0 and not self.incidents


@dataclass(frozen=True)
class Totals:
    """The summary header of a township's or the county's board."""

    schools: int
    on_duty: int
    clocked_in: int
    unmanned: int
    incidents: int
    drills: int
    checkins_missed: int
    reports_missing: int
    unreachable: int


@dataclass(frozen=True)
class Board:
    """A board at one moment: the unit it is for and its units, worst first."""

    unit_id: int
    code: str
    name: str
    kind: str
    at: datetime
    units: tuple[UnitBoard, ...]
    # The round the check-ins shown belong to, if any round has been held.
    round_at: datetime | None = None
    round_deadline: datetime | None = None
    totals: Totals = field(default_factory=lambda: Totals(0, 0, 0, 0, 0, 0, 0, 0, 0))

    @property
    def single(self) -> bool:
        """A school's (or class's) own board: short, a few lines."""
        return self.kind in (UnitKind.SCHOOL, UnitKind.CLASS)


# --- Who may look where -------------------------------------------------------------------


def may_view(me: Me) -> bool:
    """Whether any of the person's roles shows a board (not staff)."""
    return me.can_anywhere(Action.BOARD_VIEW)


def home_path(me: Me) -> str | None:
    """The top unit of the person's area: of the grants that show a board, the highest.

    Someone with roles in two separate parts of the district sees the highest (then the first
    by id) and reaches the other with `/board CODE`.
    """
    paths = [
        g.unit_path
        for g in me.grants
        if Action.BOARD_VIEW in ACTIONS_BY_ROLE.get(g.role, frozenset()) and g.unit_path
    ]
    if not paths:
        return None
    return min(paths, key=lambda p: (p.count("/"), [int(x) for x in p.strip("/").split("/")]))


async def _refuse(
    db: Database, me: Me, *, now: datetime, unit_id: int | None = None, **detail: object
) -> None:
    async with db.uow() as uow:
        await audit.record(
            uow.session,
            at=now,
            action="board.view",
            actor_person_id=me.person_id,
            subject_type="unit" if unit_id is not None else None,
            subject_id=unit_id,
            allowed=False,
            detail=detail,
        )
        await uow.commit()


# --- Reading the area (a fixed number of queries) -------------------------------------------


@dataclass(frozen=True)
class Rows:
    """What the queries return, as plain values for `assemble`."""

    units: Sequence[Unit]
    shifts: Sequence[tuple[int, str, str | None, str, datetime]]  # id, post, person, kind, start
    shift_units: Mapping[int, int]  # shift id → unit id
    clocked: Mapping[int, set[str]]  # shift id → {"in", "out"}
    incidents: Sequence[Incident]
    escalations: Sequence[Escalation]
    levels: Sequence[tuple[EscalationLevel, str, str | None]]  # row, unit name, acknowledged by
    round_at: datetime | None
    checkins: Sequence[tuple[int, str, datetime]]  # unit id, person name, deadline
    reports: Sequence[DailyReport]
    leaders: Sequence[tuple[int, int, str, str, int | None, datetime | None]]
    # (unit id, person id, name, role, account id, unreachable since)


def _in(path: str) -> sa.ColumnElement[bool]:
    return col(Unit.path).startswith(path)


async def _read(db: Database, root: Unit, *, now: datetime, today: date) -> Rows:
    async with db.read() as uow:
        session = uow.session
        units = (await session.exec(select(Unit).where(_in(root.path)))).all()
        covering = (
            sa.select(
                col(Shift.id),
                col(Shift.post),
                col(Person.name),
                col(Shift.kind),
                col(Shift.start),
                col(Shift.unit_id),
            )
            .join(Unit, col(Unit.id) == Shift.unit_id)
            .outerjoin(Person, col(Person.id) == Shift.person_id)
            .where(_in(root.path), col(Shift.start) <= now, col(Shift.end) > now)
            .order_by(col(Shift.kind).desc(), col(Shift.start), col(Shift.id))
        )
        shift_rows = (await session.execute(covering)).all()
        events = (
            await session.exec(
                select(ClockEvent.shift_id, ClockEvent.kind)
                .join(Shift, col(Shift.id) == ClockEvent.shift_id)
                .join(Unit, col(Unit.id) == Shift.unit_id)
                .where(
                    _in(root.path),
                    col(Shift.start) <= now,
                    col(Shift.end) > now,
                    col(ClockEvent.at) <= now,
                )
            )
        ).all()
        clocked: dict[int, set[str]] = {}
        for shift_id, kind in events:
            clocked.setdefault(shift_id, set()).add(kind)
        open_ids = (
            select(Incident.id)
            .join(Unit, col(Unit.id) == Incident.unit_id)
            .where(_in(root.path), Incident.status == IncidentStatus.OPEN)
        )
        incidents = (
            await session.exec(
                select(Incident)
                .where(col(Incident.id).in_(open_ids))
                .order_by(col(Incident.reported_at), col(Incident.id))
            )
        ).all()
        escalations = (
            await session.exec(
                select(Escalation)
                .where(
                    Escalation.subject_type == INCIDENT_SUBJECT,
                    col(Escalation.subject_id).in_(open_ids),
                )
                .order_by(col(Escalation.id))
            )
        ).all()
        acknowledger = aliased(Person)
        levels = (
            await session.exec(
                select(EscalationLevel, Unit.name, acknowledger.name)
                .join(Escalation, col(Escalation.id) == EscalationLevel.escalation_id)
                .join(Unit, col(Unit.id) == EscalationLevel.unit_id)
                .outerjoin(
                    acknowledger,
                    col(acknowledger.id) == col(EscalationLevel.acknowledged_by_id),
                )
                .where(
                    Escalation.subject_type == INCIDENT_SUBJECT,
                    col(Escalation.subject_id).in_(open_ids),
                )
            )
        ).all()
        round_at = (
            await session.exec(select(sa.func.max(Checkin.due_at)).where(Checkin.due_at <= now))
        ).one()
        checkins: list[tuple[int, str, datetime]] = []
        if round_at is not None:
            rows = (
                await session.exec(
                    select(Checkin, Person, Shift)
                    .join(Person, col(Person.id) == Checkin.person_id)
                    .join(Unit, col(Unit.id) == Checkin.unit_id)
                    .outerjoin(Shift, col(Shift.id) == Checkin.shift_id)
                    .where(
                        _in(root.path),
                        Checkin.due_at == round_at,
                        col(Checkin.answered_at).is_(None),
                    )
                    .order_by(col(Person.staff_no))
                )
            ).all()
            checkins = [
                (c.unit_id, p.name, c.deadline) for c, p, s in rows if not rounds.void(c, p, s)
            ]
        reports = (
            await session.exec(
                select(DailyReport)
                .join(Unit, col(Unit.id) == DailyReport.unit_id)
                .where(_in(root.path), DailyReport.day == today)
            )
        ).all()
        leaders = (
            await session.execute(
                sa.select(
                    col(RoleGrant.unit_id),
                    col(Person.id),
                    col(Person.name),
                    col(RoleGrant.role),
                    col(Account.id),
                    col(Account.unreachable_since),
                )
                .join(Person, col(Person.id) == RoleGrant.person_id)
                .join(Unit, col(Unit.id) == RoleGrant.unit_id)
                .outerjoin(
                    Account,
                    sa.and_(
                        col(Account.person_id) == Person.id, col(Account.unlinked_at).is_(None)
                    ),
                )
                .where(
                    _in(root.path),
                    col(Person.active),
                    col(RoleGrant.role).in_([r.value for r in LEADER_ROLES]),
                )
                .order_by(col(Person.staff_no), col(RoleGrant.role))
            )
        ).all()
    return Rows(
        units=units,
        shifts=[(i, post, name, kind, start) for i, post, name, kind, start, _u in shift_rows],
        shift_units={row[0]: row[5] for row in shift_rows},
        clocked=clocked,
        incidents=incidents,
        escalations=escalations,
        levels=levels,
        round_at=round_at,
        checkins=checkins,
        reports=reports,
        leaders=leaders,
    )


# --- Grouping the rows (pure) ---------------------------------------------------------------


def board_units(units: Iterable[Unit]) -> dict[int, int]:
    """Each unit's board entry: itself, or for a class the nearest unit above that is not one."""
    by_id = {u.id: u for u in units if u.id is not None}
    owner: dict[int, int] = {}
    for unit in sorted(by_id.values(), key=lambda u: u.path.count("/")):
        assert unit.id is not None
        parent = unit.parent_id
        if unit.kind == UnitKind.CLASS and parent is not None and parent in owner:
            owner[unit.id] = owner[parent]
        else:
            owner[unit.id] = unit.id
    return owner


def _clock(
    incident: Incident, escalations: Sequence[Escalation], reached: list[Reached], now: datetime
) -> MatterClock:
    policies = [matter.policy_of(e) for e in escalations]
    deadlines = [p.report_deadline for p in policies if p.report_deadline is not None]
    return clock_of(
        occurred_at=incident.occurred_at,
        reported_at=incident.reported_at,
        report_deadline=min(deadlines) if deadlines else None,
        needed={level for p in policies for level in p.levels[1:]},
        reached=reached,
        now=now,
        stopped_at=incident.closed_at,
    )


def _daily(
    unit: Unit, report: DailyReport | None, *, now: datetime, deadline: datetime
) -> DailyReportLine | None:
    if unit.kind != UnitKind.SCHOOL:
        return None
    if report is None:
        # Not planned yet (its prompt is hours away) or not owed (a school added today).
        return DailyReportLine(ReportState.DUE, deadline) if now < deadline else None
    state = daily_reports.status_of(report, now)
    if state == daily_reports.Status.PENDING:
        return DailyReportLine(ReportState.DUE, report.deadline)
    return DailyReportLine(state, report.deadline, report.submitted_at, report.nothing_to_report)


def assemble(root: Unit, rows: Rows, *, now: datetime, report_deadline: datetime) -> Board:
    """Group the rows by board unit, worst first (pure)."""
    owner = board_units(rows.units)
    units = {u.id: u for u in rows.units if u.id is not None}

    on_duty: dict[int, list[OnDuty]] = {}
    for shift_id, post, person, kind, start in rows.shifts:
        events = rows.clocked.get(shift_id, set())
        if "out" in events:
            continue  # handed over: no longer on duty, and the post is not unmanned
        entry = OnDuty(post, person, kind == ShiftKind.LEADER, start, "in" in events)
        on_duty.setdefault(owner[rows.shift_units[shift_id]], []).append(entry)

    by_incident: dict[int, list[Escalation]] = {}
    for escalation in rows.escalations:
        by_incident.setdefault(escalation.subject_id, []).append(escalation)
    reached: dict[int, list[Reached]] = {}
    for level, unit_name, acknowledged_by in rows.levels:
        reached.setdefault(level.escalation_id, []).append(
            Reached(
                level=Level(level.level),
                unit=unit_name,
                reached_at=level.reached_at,
                late=level.late,
                acknowledged_by=acknowledged_by,
                acknowledged_at=level.acknowledged_at,
            )
        )
    incidents: dict[int, list[OpenIncident]] = {}
    for incident in rows.incidents:
        assert incident.id is not None
        matters = by_incident.get(incident.id, [])
        found = [r for e in matters for r in reached.get(e.id or 0, [])]
        incidents.setdefault(owner[incident.unit_id], []).append(
            OpenIncident(
                number=incident.number,
                category=Category(incident.category),
                severity=Severity(incident.severity),
                drill=incident.is_drill,
                reported_late=incident.reported_late,
                clock=_clock(incident, matters, found, now),
            )
        )

    missed: dict[int, list[str]] = {}
    waiting: dict[int, list[str]] = {}
    round_deadline = None
    for unit_id, name, deadline in rows.checkins:
        round_deadline = deadline if round_deadline is None else max(round_deadline, deadline)
        target = missed if now > deadline else waiting
        target.setdefault(owner[unit_id], []).append(name)

    reports = {r.unit_id: r for r in rows.reports}

    leaders: dict[int, dict[int, tuple[str, list[str], datetime | None]]] = {}
    for unit_id, person_id, name, role, account_id, since in rows.leaders:
        if account_id is not None and since is None:
            continue  # linked and deliverable
        people = leaders.setdefault(owner[unit_id], {})
        _name, roles, _since = people.setdefault(person_id, (name, [], since))
        if role not in roles:
            roles.append(role)

    boards = []
    for unit_id, unit in units.items():
        if owner[unit_id] != unit_id:
            continue
        boards.append(
            UnitBoard(
                unit_id=unit_id,
                code=unit.code,
                name=unit.name,
                kind=unit.kind,
                on_duty=tuple(on_duty.get(unit_id, ())),
                incidents=tuple(incidents.get(unit_id, ())),
                checkins_missed=tuple(missed.get(unit_id, ())),
                checkins_waiting=tuple(waiting.get(unit_id, ())),
                daily_report=_daily(unit, reports.get(unit_id), now=now, deadline=report_deadline),
                unreachable=tuple(
                    Unreachable(name, tuple(roles), since)
                    for name, roles, since in leaders.get(unit_id, {}).values()
                ),
            )
        )
    boards.sort(key=lambda b: (-b.weight, not b.incidents, b.code))
    totals = Totals(
        schools=sum(1 for b in boards if b.kind == UnitKind.SCHOOL),
        on_duty=sum(b.people_on_duty for b in boards),
        clocked_in=sum(b.clocked_in for b in boards),
        unmanned=sum(len(b.unmanned) for b in boards),
        incidents=sum(len(b.real_incidents) for b in boards),
        drills=sum(len(b.incidents) - len(b.real_incidents) for b in boards),
        checkins_missed=sum(len(b.checkins_missed) for b in boards),
        reports_missing=sum(1 for b in boards if b.report_missing),
        unreachable=sum(len(b.unreachable) for b in boards),
    )
    assert root.id is not None
    return Board(
        unit_id=root.id,
        code=root.code,
        name=root.name,
        kind=root.kind,
        at=now,
        units=tuple(boards),
        round_at=rows.round_at,
        round_deadline=round_deadline,
        totals=totals,
    )


# --- The use cases ----------------------------------------------------------------------------


async def _build(
    db: Database, root: Unit, *, now: datetime, daily: DailyReportSettings, tz: ZoneInfo
) -> Board:
    today = now.astimezone(tz).date()
    rows = await _read(db, root, now=now, today=today)
    deadline = daily_reports.deadline_of(today, daily, tz)
    return assemble(root, rows, now=now, report_deadline=deadline)


async def for_code(
    db: Database,
    *,
    me: Me,
    code: str | None,
    now: datetime,
    daily: DailyReportSettings,
    tz: ZoneInfo,
) -> Board:
    """The board of the person's area, or of the unit with `code` in it (refusals audited).

    An unknown code and one outside the area get the same sentence, so the answer tells
    nothing about other areas.
    """
    if not may_view(me):
        await _refuse(db, me, now=now, reason="role")
        raise NotAllowed(NOT_FOR_YOU)
    async with db.read() as uow:
        if code is None:
            path = home_path(me)
            root = (await uow.session.exec(select(Unit).where(Unit.path == path))).first()
        else:
            root = (await uow.session.exec(select(Unit).where(Unit.code == code.strip()))).first()
    if root is None or not me.can(Action.BOARD_VIEW, root.path):
        await _refuse(db, me, now=now, reason="not in area", code=(code or "")[:32])
        raise NotAllowed(NOT_IN_AREA, code=(code or "")[:32])
    return await _build(db, root, now=now, daily=daily, tz=tz)


async def for_unit(
    db: Database,
    *,
    me: Me,
    unit_id: int,
    now: datetime,
    daily: DailyReportSettings,
    tz: ZoneInfo,
) -> Board:
    """The board of a unit named by a button: checked again against the presser's area.

    The refusal names no unit: an id from forged button data must tell nothing.
    """
    async with db.read() as uow:
        root = await uow.session.get(Unit, unit_id)
    if root is None or not me.can(Action.BOARD_VIEW, root.path):
        await _refuse(db, me, now=now, unit_id=unit_id, reason="button not in area")
        raise NotAllowed(NOT_IN_AREA_BUTTON)
    return await _build(db, root, now=now, daily=daily, tz=tz)
