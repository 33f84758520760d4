"""The leaders' daily digest: yesterday's incidents, late and missed reports, shifts, compliance.

Rules (issue 12, item 2):
- At `[digest] time` (local) every principal, township officer and county desk gets one digest
  of their scope (the unit of their grant and everything below it). It covers the 24 hours
  ending at the digest time: at 08:00 that is exactly the last 08:00–08:00 duty day; a county
  that sets an evening time gets the 24 hours up to that evening.
- What belongs to the window: incidents *reported* in it (drills counted apart); shifts that
  *started* in it, were chased (they have a missed-shift deadline: not one imported after its
  start) and whose missed-shift page had fallen due by the digest time (start +
  `[shifts] page_after`), missed when nobody ever clocked in, late when the clock-in was late;
  check-ins *due* in it (answered in time, late, missing; a void one counts nowhere, as in
  checkins/compliance.py); daily reports whose *deadline* fell in it (daily_reports.status_of).
- A class counts with its school; a township central school or the county bureau is a row of
  its own. A township or county digest lists the units with problems first (at most 4,096
  characters, cut with "and N more"), the rest as one line. Nothing wrong → one line, never
  silence.
- Planned like the daily reports: a high-water mark (`plan:digest`), one engine deadline per
  day (`digest:<day>`), so a digest is sent once across restarts and instances. A digest whose
  time fell while the bot was down goes out when it is back, marked late, unless it is more than
  `MAX_LATE` (12 h) late: a digest of yesterday read in the evening helps nobody, and the next
  one is due.
- Recipients with no linked account are skipped (counted in the log).
- The figures are computed once for the whole installation with a fixed number of queries
  (`compute`), then sliced per recipient (`scope_view`) and rendered (`render`, pure).
  `scope_view` is the hook for a chart: it returns all the figures a picture needs.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import DigestSettings, ShiftSettings
from bot.i18n import Translator, translator
from bot.message_parts import MESSAGE_LIMIT
from bot.models import (
    Account,
    Checkin,
    ClockEvent,
    DailyReport,
    Deadline,
    Incident,
    Person,
    Role,
    RoleGrant,
    Shift,
    Unit,
    UnitKind,
)
from bot.services import daily_reports, deadlines, marks, outbox
from bot.services.checkins import rounds
from bot.services.checkins.compliance import Figures, status
from bot.services.engine import DeadlineHandler
from bot.services.escalation import PagingContext
from bot.services.incidents.kinds import CATEGORY_NAMES, SEVERITY_NAMES
from bot.uow import Database

log = logging.getLogger(__name__)

KIND = "digest.send"
SUBJECT = "digest"  # subject id: the local day's ordinal
PLAN_MARK = "plan:digest"
PLAN_AHEAD = timedelta(hours=3)
MAX_LATE = timedelta(hours=12)
RECIPIENT_ROLES = (Role.PRINCIPAL, Role.OFFICER, Role.DESK)
# Incidents listed by name in a township's or the county's digest; the rest are counted.
MAX_INCIDENT_LINES = 15


# --- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentLine:
    """An incident reported in the window."""

    number: str
    category: str
    severity: str
    unit_id: int
    reported_at: datetime
    late: bool


@dataclass(frozen=True)
class MissedShift:
    """A shift nobody clocked in to."""

    unit_id: int
    post: str
    start: datetime
    person: str | None


@dataclass
class UnitFigures:
    """One row of the digest: a school (with its classes), a township or the county bureau."""

    unit_id: int
    name: str
    kind: str
    path: str
    incidents: list[IncidentLine] = field(default_factory=list)
    drills: int = 0
    missed_shifts: list[MissedShift] = field(default_factory=list)
    late_clock_ins: int = 0
    shifts: int = 0
    checkins: Figures = field(default_factory=Figures)
    # The daily report whose deadline fell in the window: daily_reports.Status, or None.
    daily_report: str | None = None

    @property
    def late_incidents(self) -> int:
        """Incidents whose report was late (迟报)."""
        return sum(incident.late for incident in self.incidents)

    @property
    def problems(self) -> int:
        """How much went wrong here (0: all in order); orders the rows, worst first.

        A late incident report (迟报) weighs most, then a missing daily report (漏报), then
        incidents and missed shifts; late answers and clock-ins least.
        """
        return (
            10 * self.late_incidents
            + 2 * len(self.incidents)
            + 2 * len(self.missed_shifts)
            + self.late_clock_ins
            + self.checkins.missing
            + self.checkins.late
            + (3 if self.daily_report == daily_reports.Status.MISSING else 0)
            + (1 if self.daily_report == daily_reports.Status.LATE else 0)
        )


@dataclass(frozen=True)
class Digest:
    """Every unit's figures for one window (the whole installation)."""

    start: datetime
    end: datetime
    units: dict[int, UnitFigures]


@dataclass(frozen=True)
class ScopeDigest:
    """What one recipient's digest covers: the rows of their scope and the totals."""

    scope_name: str
    scope_kind: str
    start: datetime
    end: datetime
    rows: list[UnitFigures]

    @property
    def incidents(self) -> list[IncidentLine]:
        """The scope's incidents, oldest first."""
        return sorted((i for row in self.rows for i in row.incidents), key=lambda i: i.reported_at)

    @property
    def missed_shifts(self) -> list[MissedShift]:
        """The scope's missed shifts, oldest first."""
        return sorted((m for row in self.rows for m in row.missed_shifts), key=lambda m: m.start)

    @property
    def drills(self) -> int:
        """Drills held."""
        return sum(row.drills for row in self.rows)

    @property
    def late_clock_ins(self) -> int:
        """Clock-ins after the start."""
        return sum(row.late_clock_ins for row in self.rows)

    @property
    def checkins(self) -> Figures:
        """Check-in figures summed."""
        return Figures(
            in_time=sum(row.checkins.in_time for row in self.rows),
            late=sum(row.checkins.late for row in self.rows),
            missing=sum(row.checkins.missing for row in self.rows),
            open=sum(row.checkins.open for row in self.rows),
        )

    def daily_reports(self, state: str) -> int:
        """How many of the scope's daily reports stand at `state`."""
        return sum(row.daily_report == state for row in self.rows)

    @property
    def all_in_order(self) -> bool:
        """Nothing to tell: no incident, drill, missed or late shift, late or missing answer."""
        return self.drills == 0 and all(row.problems == 0 for row in self.rows)

    @property
    def single_unit(self) -> bool:
        """A school's digest (one row), not a summary of many."""
        return self.scope_kind == UnitKind.SCHOOL or len(self.rows) <= 1


def bucket_of(path: str, kinds: dict[int, str]) -> int | None:
    """The unit a unit's figures count at: itself, or the nearest ancestor that is no class."""
    ids = [int(part) for part in path.strip("/").split("/") if part]
    for unit_id in reversed(ids):
        if kinds.get(unit_id) != UnitKind.CLASS:
            return unit_id
    return None


def window_of(day: date, settings: DigestSettings, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The 24 hours the digest of `day` covers, ending at its local digest time."""
    end = datetime.combine(day, settings.time, tzinfo=tz)
    return datetime.combine(day - timedelta(days=1), settings.time, tzinfo=tz), end


async def compute(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    shifts: ShiftSettings,
) -> Digest:
    """Every unit's figures for [start, end): six queries whatever the district's size."""
    units = (await session.exec(select(Unit))).all()
    kinds = {unit.id: unit.kind for unit in units if unit.id is not None}
    bucket = {
        unit.id: bucket_of(unit.path, kinds) or unit.id for unit in units if unit.id is not None
    }
    figures = {
        unit.id: UnitFigures(unit.id, unit.name, unit.kind, unit.path)
        for unit in units
        if unit.id is not None and unit.kind != UnitKind.CLASS
    }

    def row(unit_id: int) -> UnitFigures:
        return figures[bucket[unit_id]]

    incidents = await session.exec(
        select(Incident).where(col(Incident.reported_at) >= start, col(Incident.reported_at) < end)
    )
    for incident in incidents.all():
        if incident.is_drill:
            row(incident.unit_id).drills += 1
            continue
        row(incident.unit_id).incidents.append(
            IncidentLine(
                number=incident.number,
                category=incident.category,
                severity=incident.severity,
                unit_id=incident.unit_id,
                reported_at=incident.reported_at,
                late=incident.reported_late or incident.forwarded_late,
            )
        )

    # Shifts whose missed-shift page fell due by the digest's time, with their first clock-in.
    started = (
        await session.exec(
            select(Shift, Person.name)
            .outerjoin(Person, col(Person.id) == Shift.person_id)
            .where(
                col(Shift.start) >= start,
                col(Shift.start) < end,
                col(Shift.start) <= now - shifts.page_after,
                # Only a shift the bot chased (not one imported after its start) can be missed.
                sa.exists().where(
                    col(Deadline.key)
                    == sa.literal("shift:") + sa.cast(col(Shift.id), sa.String) + ":missed"
                ),
            )
            .order_by(col(Shift.start))
        )
    ).all()
    shift_ids = [shift.id for shift, _name in started]
    first_in: dict[int, ClockEvent] = {}
    if shift_ids:
        events = await session.exec(
            select(ClockEvent)
            .where(col(ClockEvent.shift_id).in_(shift_ids), ClockEvent.kind == "in")
            .order_by(col(ClockEvent.at))
        )
        for event in events.all():
            first_in.setdefault(event.shift_id, event)
    for shift, name in started:
        target = row(shift.unit_id)
        target.shifts += 1
        clock_in = first_in.get(shift.id or 0)
        if clock_in is None:
            target.missed_shifts.append(MissedShift(shift.unit_id, shift.post, shift.start, name))
        elif clock_in.late_minutes > 0:
            target.late_clock_ins += 1

    checkins = (
        await session.exec(
            select(Checkin, Person, Shift)
            .join(Person, col(Person.id) == Checkin.person_id)
            .outerjoin(Shift, col(Shift.id) == Checkin.shift_id)
            .where(col(Checkin.due_at) >= start, col(Checkin.due_at) < end)
        )
    ).all()
    for checkin, person, shift in checkins:
        if checkin.answered_at is None and rounds.void(checkin, person, shift):
            continue
        state = status(checkin, now=now)
        target = row(checkin.unit_id)
        target.checkins = target.checkins.add(state)

    reports = await session.exec(
        select(DailyReport).where(
            col(DailyReport.deadline) >= start, col(DailyReport.deadline) < end
        )
    )
    for report in reports.all():
        row(report.unit_id).daily_report = daily_reports.status_of(report, now)
    return Digest(start, end, figures)


def scope_view(digest: Digest, *, unit_id: int) -> ScopeDigest:
    """The rows of one scope (a unit and everything below it): what a recipient reads.

    This is the hook for a picture of the digest: every figure a chart needs is here.
    """
    scope = digest.units[unit_id]
    rows = [row for row in digest.units.values() if row.path.startswith(scope.path)]
    return ScopeDigest(scope.name, scope.kind, digest.start, digest.end, rows)


# The chart a township's or the county's digest carries (bot/services/reports/charts.py).
CHART_NAME = "digest"
MAX_CHART_GROUPS = 30


def chart_payload(
    digest: Digest, *, unit_id: int, tr: Translator, tz: ZoneInfo
) -> dict[str, Any] | None:
    """The figures the digest's chart is drawn from (JSON), or None for no chart.

    Only a township's or the county's digest has one, and only when something went wrong: one
    group per unit right below the scope (a township's schools, the county's townships), each
    holding everything under it, worst first; past MAX_CHART_GROUPS the rest are one group.
    """
    view = scope_view(digest, unit_id=unit_id)
    if view.single_unit or view.all_in_order:
        return None
    scope = digest.units[unit_id]
    depth = len(scope.path.strip("/").split("/"))
    groups: dict[int, dict[str, Any]] = {}
    for row in view.rows:
        parts = row.path.strip("/").split("/")
        key = int(parts[depth]) if len(parts) > depth else unit_id
        name = digest.units[key].name if key in digest.units else row.name
        group = groups.setdefault(key, {"name": name, **dict.fromkeys(CHART_FIGURES, 0)})
        group["in_time"] += row.checkins.in_time
        group["late"] += row.checkins.late
        group["missing"] += row.checkins.missing
        group["incidents"] += len(row.incidents)
        group["late_incidents"] += row.late_incidents
        group["missed_shifts"] += len(row.missed_shifts)
        group["late_clock_ins"] += row.late_clock_ins
        group["daily_missing"] += row.daily_report == daily_reports.Status.MISSING
        group["problems"] += row.problems
    ordered = sorted(groups.values(), key=lambda g: (-g["problems"], g["name"]))
    if len(ordered) > MAX_CHART_GROUPS:
        rest = ordered[MAX_CHART_GROUPS - 1 :]
        merged = {key: sum(g[key] for g in rest) for key in CHART_FIGURES}
        others = tr.n_("{count} other unit", "{count} other units", len(rest))
        ordered = [*ordered[: MAX_CHART_GROUPS - 1], {"name": others, **merged}]
    return {
        "title": view.scope_name,
        "window": _window_text(tr, view, tz),
        "groups": ordered,
    }


CHART_FIGURES = (
    "in_time",
    "late",
    "missing",
    "incidents",
    "late_incidents",
    "missed_shifts",
    "late_clock_ins",
    "daily_missing",
    "problems",
)


# --- text --------------------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _window_text(tr: Translator, view: ScopeDigest, tz: ZoneInfo) -> str:
    return (
        f"{tr.datetime_text(view.start, tz, 'MM-dd HH:mm')}–"
        f"{tr.datetime_text(view.end, tz, 'MM-dd HH:mm')}"
    )


def _percent(figures: Figures) -> int:
    answered = figures.in_time + figures.late
    return round(100 * answered / figures.owed) if figures.owed else 100


def _checkin_text(tr: Translator, figures: Figures) -> str:
    if not figures.owed:
        return tr._("Check-ins: none owed")
    return tr._(
        "Check-ins: {answered}/{owed} answered ({percent}%), {late} late",
        answered=figures.in_time + figures.late,
        owed=figures.owed,
        percent=_percent(figures),
        late=figures.late,
    )


def _daily_text(tr: Translator, view: ScopeDigest) -> str:
    states = daily_reports.Status
    owed = sum(view.daily_reports(s) for s in (states.IN_TIME, states.LATE, states.MISSING))
    if not owed:
        return tr._("Daily reports: none owed")
    if view.single_unit:
        state = next(row.daily_report for row in view.rows if row.daily_report is not None)
        word = {
            states.IN_TIME: tr._("in on time"),
            states.LATE: tr._("in late"),
            states.MISSING: tr._("❌ missing"),
        }.get(state, tr._("not due yet"))
        return tr._("Daily report: {state}", state=word)
    return tr._(
        "Daily reports: {in_time} on time, {late} late, {missing} missing of {owed}",
        in_time=view.daily_reports(states.IN_TIME),
        late=view.daily_reports(states.LATE),
        missing=view.daily_reports(states.MISSING),
        owed=owed,
    )


def incident_text(tr: Translator, incident: IncidentLine, unit: str | None) -> str:
    """One incident of the digest: number, category, severity, (unit), 迟报."""
    category = CATEGORY_NAMES.get(incident.category, incident.category)  # type: ignore[call-overload]
    severity = SEVERITY_NAMES.get(incident.severity, incident.severity)  # type: ignore[call-overload]
    params = {
        "number": _esc(incident.number),
        "category": tr._(category),
        "severity": tr._(severity),
    }
    if unit is None:
        text = "• " + tr._("{number} {category}, {severity}", **params)
    else:
        text = "• " + tr._("{number} {category}, {severity}, {unit}", unit=_esc(unit), **params)
    if incident.late:
        text += " — " + tr._("⚠️ reported late (迟报)")
    return text


def missed_text(tr: Translator, missed: MissedShift, unit: str | None, tz: ZoneInfo) -> str:
    """One missed shift: when, which post, who did not come."""
    where = _esc(missed.post) if unit is None else f"{_esc(unit)} {_esc(missed.post)}"
    who = _esc(missed.person) if missed.person else tr._("nobody assigned")
    return tr._(
        "• {time} {where}: {who} never clocked in",
        time=tr.datetime_text(missed.start, tz, "MM-dd HH:mm"),
        where=where,
        who=who,
    )


def row_text(tr: Translator, row: UnitFigures) -> str:
    """One unit's line in a township's or the county's digest."""
    parts = []
    if row.late_incidents:
        parts.append(
            tr.n_(
                "{count} incident ({late} reported late)",
                "{count} incidents ({late} reported late)",
                len(row.incidents),
                late=row.late_incidents,
            )
        )
    elif row.incidents:
        parts.append(tr.n_("{count} incident", "{count} incidents", len(row.incidents)))
    if row.daily_report == daily_reports.Status.MISSING:
        parts.append(tr._("daily report missing"))
    elif row.daily_report == daily_reports.Status.LATE:
        parts.append(tr._("daily report late"))
    if row.missed_shifts:
        parts.append(tr.n_("{count} missed shift", "{count} missed shifts", len(row.missed_shifts)))
    if row.late_clock_ins:
        parts.append(tr.n_("{count} late clock-in", "{count} late clock-ins", row.late_clock_ins))
    if row.checkins.missing or row.checkins.late:
        parts.append(
            tr._(
                "check-ins {answered}/{owed}",
                answered=row.checkins.in_time + row.checkins.late,
                owed=row.checkins.owed,
            )
        )
    if row.drills:
        parts.append(tr.n_("{count} drill", "{count} drills", row.drills))
    marker = "❌" if row.problems else "🔹"
    return f"{marker} " + tr._(
        "{unit}: {problems}", unit=_esc(row.name), problems=tr.list_text(parts)
    )


def render(
    tr: Translator,
    view: ScopeDigest,
    tz: ZoneInfo,
    *,
    late: bool = False,
    limit: int = MESSAGE_LIMIT,
) -> str:
    """The digest as its reader sees it, at most `limit` characters (pure)."""
    window = _window_text(tr, view, tz)
    scope = _esc(view.scope_name)
    if view.all_in_order:
        text = tr._(
            "📰 {scope}, yesterday ({window}): all in order — no incidents, every shift manned, "
            "check-ins and daily reports complete.",
            scope=scope,
            window=window,
        )
        if late:
            text += "\n" + tr._("⚠️ Sent late: Zhiban was not running at the time.")
        return text
    names = {row.unit_id: row.name for row in view.rows}
    head = [tr._("📰 <b>Daily digest of {scope}</b>, {window}", scope=scope, window=window)]
    if late:
        head.append(tr._("⚠️ Sent late: Zhiban was not running at the time."))
    incidents = view.incidents
    late_count = sum(incident.late for incident in incidents)
    head.append(
        tr._(
            "Incidents: {count} ({late} reported late); drills: {drills}",
            count=len(incidents),
            late=late_count,
            drills=view.drills,
        )
    )
    unit_of = None if view.single_unit else names
    shown = incidents if view.single_unit else incidents[:MAX_INCIDENT_LINES]
    head.extend(incident_text(tr, i, unit_of[i.unit_id] if unit_of else None) for i in shown)
    if len(incidents) > len(shown):
        head.append(
            tr.n_(
                "… and {count} more incident",
                "… and {count} more incidents",
                len(incidents) - len(shown),
            )
        )
    head.append(_daily_text(tr, view))
    head.append(_checkin_text(tr, view.checkins))
    missed = view.missed_shifts
    head.append(
        tr._(
            "Missed shifts: {missed}; late clock-ins: {late}",
            missed=len(missed),
            late=view.late_clock_ins,
        )
    )
    if view.single_unit:
        head.extend(missed_text(tr, m, None, tz) for m in missed)
        return _cut_lines(tr, head, limit)
    troubled = sorted(
        (row for row in view.rows if row.problems or row.drills),
        key=lambda row: (-row.problems, row.name),
    )
    fine = len(view.rows) - len(troubled)
    tail = (
        [tr.n_("✅ {count} other unit: all in order", "✅ {count} other units: all in order", fine)]
        if fine
        else []
    )
    if troubled:
        head.append(tr._("By unit, problems first:"))
    return _fit(tr, head, [row_text(tr, row) for row in troubled], tail, limit)


def _units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units); tags counted too, to be safe."""
    return len(text.encode("utf-16-le")) // 2


def _size(lines: Sequence[str]) -> int:
    return sum(_units(line) + 1 for line in lines)


def _fit(tr: Translator, head: list[str], rows: list[str], tail: list[str], limit: int) -> str:
    """Head, as many rows as fit, "and N more units", tail: at most `limit` characters."""
    reserve = 80  # the "and N more" line
    budget = limit - _size(head) - _size(tail) - reserve
    kept: list[str] = []
    for line in rows:
        if _size(kept) + _units(line) + 1 > budget:
            break
        kept.append(line)
    more = len(rows) - len(kept)
    cut = [tr.n_("… and {count} more unit", "… and {count} more units", more)] if more else []
    return _cut_lines(tr, [*head, *kept, *cut, *tail], limit)


def _cut_lines(tr: Translator, lines: list[str], limit: int) -> str:
    """Whole lines up to `limit` characters (a school with very many missed shifts)."""
    text = "\n".join(lines)
    if _units(text) <= limit:
        return text
    kept: list[str] = []
    for line in lines:
        if _size(kept) + _units(line) + 80 > limit:
            break
        kept.append(line)
    more = len(lines) - len(kept)
    return "\n".join([*kept, tr.n_("… and {count} more line", "… and {count} more lines", more)])


# --- planning and delivery -----------------------------------------------------------------------


def days_to_plan(
    *, now: datetime, looked_ahead: datetime, settings: DigestSettings, tz: ZoneInfo
) -> list[date]:
    """The local days whose digest is planned at `now` (pure).

    A day's digest is planned once, when its time first comes within `PLAN_AHEAD`: it lies
    beyond the mark `looked_ahead`. After an outage the days whose time fell meanwhile are
    planned late, unless more than `MAX_LATE` ago.
    """
    horizon = now + PLAN_AHEAD
    day = min(looked_ahead, now - MAX_LATE).astimezone(tz).date() - timedelta(days=1)
    days = []
    while day <= horizon.astimezone(tz).date():
        due = datetime.combine(day, settings.time, tzinfo=tz)
        if looked_ahead < due <= horizon and due >= now - MAX_LATE:
            days.append(day)
        day += timedelta(days=1)
    return days


async def plan(
    session: AsyncSession, *, now: datetime, settings: DigestSettings, tz: ZoneInfo
) -> int:
    """Add the coming digests' deadlines (one a day, idempotent by key); return how many."""
    looked_ahead = await marks.hold(session, name=PLAN_MARK, now=now)
    days = days_to_plan(now=now, looked_ahead=looked_ahead, settings=settings, tz=tz)
    for day in days:
        await deadlines.schedule(
            session,
            key=f"digest:{day.isoformat()}",
            kind=KIND,
            subject_type=SUBJECT,
            subject_id=day.toordinal(),
            due_at=datetime.combine(day, settings.time, tzinfo=tz),
            now=now,
        )
    await marks.advance(session, name=PLAN_MARK, to=now + PLAN_AHEAD)
    return len(days)


async def plan_upcoming(
    db: Database, *, now: datetime, settings: DigestSettings, tz: ZoneInfo
) -> int:
    """Plan the coming digests in one transaction (the engine's planner)."""
    if not settings.enabled:
        return 0
    async with db.uow() as uow:
        planned = await plan(uow.session, now=now, settings=settings, tz=tz)
        await uow.commit()
    return planned


@dataclass(frozen=True)
class Recipient:
    """Someone who gets a digest of a unit's scope."""

    person_id: int
    unit_id: int
    language: str | None
    linked: bool


async def recipients(session: AsyncSession) -> list[Recipient]:
    """Every active principal, officer and desk, once per unit they hold such a role at."""
    rows = (
        await session.exec(
            select(RoleGrant.person_id, RoleGrant.unit_id, Person.language, Account.id)
            .join(Person, col(Person.id) == RoleGrant.person_id)
            .outerjoin(
                Account,
                (col(Account.person_id) == RoleGrant.person_id)
                & col(Account.unlinked_at).is_(None),
            )
            .where(col(RoleGrant.role).in_(list(RECIPIENT_ROLES)), col(Person.active))
            .order_by(col(RoleGrant.unit_id), col(RoleGrant.person_id))
        )
    ).all()
    found: dict[tuple[int, int], Recipient] = {}
    for person_id, unit_id, language, account_id in rows:
        known = found.get((person_id, unit_id))
        linked = account_id is not None or (known is not None and known.linked)
        found[(person_id, unit_id)] = Recipient(person_id, unit_id, language, linked)
    return list(found.values())


@dataclass(frozen=True)
class Sent:
    """What one digest run did."""

    queued: int
    unlinked: int


async def send(
    session: AsyncSession,
    *,
    day: date,
    now: datetime,
    late: bool,
    ctx: PagingContext,
    settings: DigestSettings,
    shifts: ShiftSettings,
) -> Sent:
    """Compute the day's digest once and queue one message per linked recipient."""
    start, end = window_of(day, settings, ctx.tz)
    digest = await compute(session, start=start, end=end, now=now, shifts=shifts)
    notices = []
    charts: list[tuple[int, str, dict[str, Any], str, str]] = []
    unlinked = 0
    for recipient in await recipients(session):
        if recipient.unit_id not in digest.units:
            continue  # a role at a class: its school's principal reads it
        if not recipient.linked:
            unlinked += 1
            continue
        tr = translator(recipient.language or ctx.default_language)
        key = f"{day.isoformat()}:{recipient.unit_id}:{recipient.person_id}"
        notices.append(
            outbox.Notice(
                person_id=recipient.person_id,
                text=render(tr, scope_view(digest, unit_id=recipient.unit_id), ctx.tz, late=late),
                dedupe_key=f"digest:{key}",
            )
        )
        payload = chart_payload(digest, unit_id=recipient.unit_id, tr=tr, tz=ctx.tz)
        if payload is not None:
            caption = tr._(
                "📊 {scope}, {window}: check-ins and problems by unit",
                scope=payload["title"],
                window=payload["window"],
            )
            charts.append((recipient.person_id, tr.language, payload, caption, key))
    queued = await outbox.enqueue_notices(
        session, now=now, notices=notices, kind="digest", late=late
    )
    # After the texts, so each reader's chart arrives under their digest.
    for person_id, language, payload, caption, key in charts:
        await outbox.enqueue_chart(
            session,
            now=now,
            person_id=person_id,
            chart=CHART_NAME,
            language=language,
            payload=payload,
            caption=caption,
            dedupe_key=f"digest-chart:{key}",
            late=late,
        )
    return Sent(queued, unlinked)


def deadline_handlers(
    settings: DigestSettings, shifts: ShiftSettings, ctx: PagingContext
) -> dict[str, DeadlineHandler]:
    """The engine handler of the digest deadline."""

    async def handle(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        if now - d.due_at > MAX_LATE:
            log.warning("digest of %s not sent: %s late", d.key, now - d.due_at)
            return
        day = date.fromordinal(d.subject_id)
        started = time.perf_counter()
        sent = await send(
            s,
            day=day,
            now=now,
            late=late,
            ctx=ctx,
            settings=settings,
            shifts=shifts,
        )
        log.info(
            "digest of %s: %s queued, %s recipients skipped (no linked account), %.0f ms",
            day.isoformat(),
            sent.queued,
            sent.unlinked,
            1000 * (time.perf_counter() - started),
        )

    return {KIND: handle}
