"""The one-screen summary that ends `zhiban demo`, computed from the demo's database.

`compute` reads what the day left in the database (incidents with their timelines, the digest's
figures for the county, late check-in answers and late clock-ins); `render` turns it into at most
about twenty lines in the reader's language. Nothing here is scripted: a change in the bot's
behaviour shows in the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlmodel import col, select

from bot.config import Settings
from bot.i18n import N_, Translator
from bot.models import Checkin, ClockEvent, Person, Shift, Unit, UnitKind
from bot.services import daily_reports, digest
from bot.services.checkins.compliance import Figures
from bot.services.incidents import views
from bot.services.incidents.kinds import CATEGORY_NAMES, SEVERITY_NAMES, EntryKind
from bot.uow import Database

# Names listed by name before the rest are counted.
MAX_NAMED = 3


@dataclass(frozen=True)
class Step:
    """A level that acknowledged an incident, or that the system passed it up to."""

    unit: str
    at: datetime
    person: str | None = None


@dataclass(frozen=True)
class IncidentStory:
    """One incident of the day, as the summary tells it."""

    number: str
    category: str
    severity: str
    unit: str
    reporter: str | None
    reported_at: datetime
    occurred_at: datetime
    deadline_at: datetime | None
    late: bool
    acknowledged: tuple[Step, ...]
    passed_by_system: tuple[Step, ...]
    follow_ups: int
    closed_at: datetime | None
    closed_by: str | None


@dataclass(frozen=True)
class Named:
    """Someone (or a unit) at a moment: a late answer, a late clock-in, a missed shift."""

    name: str
    unit: str
    at: datetime
    minutes: int = 0


@dataclass(frozen=True)
class DaySummary:
    """What the demo's day left in the database, for the county."""

    scope: str
    start: datetime
    end: datetime
    incidents: tuple[IncidentStory, ...]
    missed_shifts: tuple[Named, ...]
    late_clock_ins: tuple[Named, ...]
    checkins: Figures
    late_answers: tuple[Named, ...]
    reports_in_time: int
    reports_late: int
    reports_missing: tuple[str, ...]


async def _story(db: Database, *, viewer_id: int, number: str, now: datetime) -> IncidentStory:
    found = await views.timeline(db, person_id=viewer_id, number_or_id=number, now=now)
    line = found.incident
    acknowledged = tuple(
        Step(item.unit or "", item.at, item.person)
        for item in found.items
        if item.kind == "acknowledged"
    )
    by_system = tuple(
        Step(item.unit or "", item.at)
        for item in found.items
        if item.kind == "reached" and item.person is None and item.late
    )
    return IncidentStory(
        number=line.number,
        category=line.category,
        severity=line.severity,
        unit=line.unit,
        reporter=found.reporter,
        reported_at=line.reported_at,
        occurred_at=line.occurred_at,
        deadline_at=line.deadline_at,
        late=line.late,
        acknowledged=acknowledged,
        passed_by_system=by_system,
        follow_ups=sum(item.kind == EntryKind.FOLLOW_UP for item in found.items),
        closed_at=found.final.at if found.final else None,
        closed_by=found.final.by if found.final else None,
    )


async def compute(
    db: Database,
    settings: Settings,
    *,
    scope_code: str,
    viewer_staff_no: str,
    start: datetime,
    now: datetime,
) -> DaySummary:
    """The summary of [start, now) for the unit `scope_code`, as `viewer_staff_no` may see it."""
    async with db.read() as uow:
        session = uow.session
        scope = (await session.exec(select(Unit).where(Unit.code == scope_code))).one()
        viewer = (
            await session.exec(select(Person).where(Person.staff_no == viewer_staff_no))
        ).one()
        assert scope.id is not None and viewer.id is not None
        figures = digest.scope_view(
            await digest.compute(session, start=start, end=now, now=now, shifts=settings.shifts),
            unit_id=scope.id,
        )
        all_units = (await session.exec(select(Unit))).all()
        units = {u.id: u.name for u in all_units}
        kinds = {u.id: u.kind for u in all_units}
        late_answers = (
            await session.exec(
                select(Checkin, Person)
                .join(Person, col(Person.id) == Checkin.person_id)
                .where(
                    col(Checkin.due_at) >= start,
                    col(Checkin.due_at) < now,
                    col(Checkin.answered_at) > col(Checkin.deadline),
                )
                .order_by(col(Checkin.answered_at))
            )
        ).all()
        late_ins = (
            await session.exec(
                select(ClockEvent, Person, Shift)
                .join(Person, col(Person.id) == ClockEvent.person_id)
                .join(Shift, col(Shift.id) == ClockEvent.shift_id)
                .where(
                    ClockEvent.kind == "in",
                    col(ClockEvent.late_minutes) > 0,
                    col(ClockEvent.at) >= start,
                    col(ClockEvent.at) <= now,
                )
                .order_by(col(ClockEvent.at))
            )
        ).all()
    incidents = [
        await _story(db, viewer_id=viewer.id, number=incident.number, now=now)
        for incident in figures.incidents
    ]
    return DaySummary(
        scope=scope.name,
        start=start,
        end=now,
        incidents=tuple(incidents),
        # The schools' missed shifts first: the bureau's and townships' offices come after.
        missed_shifts=tuple(
            Named(m.person or "—", units.get(m.unit_id, ""), m.start)
            for m in sorted(
                figures.missed_shifts,
                key=lambda m: (kinds.get(m.unit_id) != UnitKind.SCHOOL, m.start),
            )
        ),
        late_clock_ins=tuple(
            Named(person.name, units.get(shift.unit_id, ""), event.at, event.late_minutes)
            for event, person, shift in late_ins
        ),
        checkins=figures.checkins,
        late_answers=tuple(
            Named(person.name, units.get(checkin.unit_id, ""), checkin.answered_at or now)
            for checkin, person in late_answers
        ),
        reports_in_time=figures.daily_reports(daily_reports.Status.IN_TIME),
        reports_late=figures.daily_reports(daily_reports.Status.LATE),
        reports_missing=tuple(
            row.name for row in figures.rows if row.daily_report == daily_reports.Status.MISSING
        ),
    )


TITLE = N_("Summary of the day at {scope}, {start}–{end}")
HAPPENED = N_("What happened")
INCIDENT = N_("• {number} {severity} {category} at {unit}, reported at {time} by {reporter}")
ACKNOWLEDGED = N_("  acknowledged: {steps}")
ACK_STEP = N_("{unit} ({name}, {time})")
FOLLOW_UPS = N_("  follow-ups: {count}; closed with its final report at {time} by {name}")
FOLLOW_UPS_OPEN = N_("  follow-ups: {count}; still open")
CHECKINS = N_("• Check-ins: {answered}/{total} answered, {late} late, {missing} never answered")
REPORTS = N_("• Daily reports: {in_time} on time, {late} late, {missing} missing")
LATE = N_("What was late or missing")
INCIDENT_LATE = N_("• {number}: the school's report was late (迟报)")
MISSED = N_("• Shifts nobody clocked in to: {count} ({names})")
LATE_IN = N_("• Late clock-ins: {names}")
LATE_IN_ONE = N_("{name} {time} ({minutes} min)")
LATE_ANSWER = N_("• Check-ins answered late: {names}")
MISSING_REPORTS = N_("• Daily reports missing: {names}")
AND_MORE = N_("{names} and {more} more")
RULE = N_("The one-hour rule")
RULE_DUE = N_("• {number}: happened {occurred}, due at the levels above by {due}")
RULE_SYSTEM = N_("  the system passed it up at {time} to {units}: recorded late (迟报)")
RULE_IN_TIME = N_("  every level above had it in time")
NOTHING = N_("• Nothing.")


def _names(tr: Translator, names: list[str]) -> str:
    sep = tr._(", ")
    if len(names) <= MAX_NAMED:
        return sep.join(names)
    return tr._(AND_MORE, names=sep.join(names[:MAX_NAMED]), more=len(names) - MAX_NAMED)


def render(tr: Translator, tz: tzinfo, summary: DaySummary) -> list[str]:
    """The summary as lines of text (about twenty), in the reader's language."""

    def at(moment: datetime) -> str:
        return tr.time_text(moment, tz)

    sep = tr._(", ")
    lines = [
        tr._(
            TITLE,
            scope=summary.scope,
            start=tr.datetime_text(summary.start, tz, "MM-dd HH:mm"),
            end=at(summary.end),
        ),
        tr._(HAPPENED),
    ]
    for story in summary.incidents:
        lines.append(
            tr._(
                INCIDENT,
                number=story.number,
                severity=tr._(SEVERITY_NAMES[story.severity]),  # type: ignore[index]
                category=tr._(CATEGORY_NAMES[story.category]),  # type: ignore[index]
                unit=story.unit,
                time=at(story.reported_at),
                reporter=story.reporter or "—",
            )
        )
        if story.acknowledged:
            steps = sep.join(
                tr._(ACK_STEP, unit=step.unit, name=step.person or "—", time=at(step.at))
                for step in story.acknowledged
            )
            lines.append(tr._(ACKNOWLEDGED, steps=steps))
        if story.closed_at is not None:
            lines.append(
                tr._(
                    FOLLOW_UPS,
                    count=story.follow_ups,
                    time=at(story.closed_at),
                    name=story.closed_by or "—",
                )
            )
        else:
            lines.append(tr._(FOLLOW_UPS_OPEN, count=story.follow_ups))
    figures = summary.checkins
    total = figures.in_time + figures.late + figures.missing + figures.open
    lines.append(
        tr._(
            CHECKINS,
            answered=figures.in_time + figures.late,
            total=total,
            late=figures.late,
            missing=figures.missing,
        )
    )
    lines.append(
        tr._(
            REPORTS,
            in_time=summary.reports_in_time,
            late=summary.reports_late,
            missing=len(summary.reports_missing),
        )
    )

    late = [tr._(INCIDENT_LATE, number=s.number) for s in summary.incidents if s.late]
    if summary.missed_shifts:
        names = [f"{m.unit} {m.name} {at(m.at)}" for m in summary.missed_shifts]
        late.append(tr._(MISSED, count=len(names), names=_names(tr, names)))
    if summary.late_clock_ins:
        names = [
            tr._(LATE_IN_ONE, name=m.name, time=at(m.at), minutes=m.minutes)
            for m in summary.late_clock_ins
        ]
        late.append(tr._(LATE_IN, names=_names(tr, names)))
    if summary.late_answers:
        names = [f"{m.name} {at(m.at)}" for m in summary.late_answers]
        late.append(tr._(LATE_ANSWER, names=_names(tr, names)))
    if summary.reports_missing:
        late.append(tr._(MISSING_REPORTS, names=_names(tr, list(summary.reports_missing))))
    lines += [tr._(LATE), *(late or [tr._(NOTHING)])]

    rule = []
    for story in summary.incidents:
        if story.deadline_at is None:
            continue
        rule.append(
            tr._(
                RULE_DUE,
                number=story.number,
                occurred=at(story.occurred_at),
                due=at(story.deadline_at),
            )
        )
        if story.passed_by_system:
            units = sep.join(step.unit for step in story.passed_by_system)
            rule.append(tr._(RULE_SYSTEM, time=at(story.passed_by_system[0].at), units=units))
        elif not story.late:
            rule.append(tr._(RULE_IN_TIME))
    lines += [tr._(RULE), *(rule or [tr._(NOTHING)])]
    return lines
