"""The daily safety report (日报/零报告): prompts, submissions, the missing-report page, roll-ups.

Rules (SPEC §3.5, §4 "Missing daily report"):
- Who owes one: every unit of kind `school`, county-direct schools included, one per local day.
  Township central schools (kind `township`) do not: they are the level that reads the
  roll-up; classes report through their school; the county bureau is the desk.
- Planning looks `PLAN_AHEAD` ahead with a high-water mark (`plan:daily_reports`), as shift
  planning does: a day is planned once, when its prompt time comes within the horizon (a school
  added to the roster after that owes reports from the next day); a day whose
  prompt time fell while the bot was down (beyond the mark) is planned late when it is back,
  its prompt and page marked late while the day lasts (a report cannot be submitted after its
  day, so neither is sent then), its roll-up marked late in any case. Such a day is owed only by
  schools that owed an earlier one: a school imported while the bot was down owes reports from
  the first day planned in the ordinary way, as a shift imported after its start is not chased.
  Days before the installation's first start are not planned.
- The prompt goes `[daily_report] prompt_before` ahead of `deadline` to the school's duty leader
  of the day and its principal, listing the day's incidents at the school (drills left out),
  with 📝 Submit and ✅ Nothing to report.
- Who may submit: a duty leader, safety officer or principal of the school itself (a grant at
  the school, `authz.may_submit_daily_report`). Township officers and the desk supervise; they
  do not report for a school. First answer wins; the other prompts are edited to say who did.
- A report can be submitted until the end of its own local day; after the deadline it is late.
  The next day its prompt is stale, and that day stays missing.
- At the deadline a missing report starts an escalation (subject `daily_report`): the principal
  at once, the township officer (the parent level; the county for a county-direct school) at
  deadline + `escalate_after` unless acknowledged. A late submission resolves it and its pages
  say so.
- At deadline + `escalate_after` each township officer gets one roll-up of their schools and
  the county desk one by township (county-direct schools as a group of their own), problems
  first. Both are one engine deadline per day, handled exactly once, late after downtime.
- Compliance is what the rows hold: in time (`submitted_at <= deadline`), late (after it),
  missing (not submitted and its deadline passed); `compliance` counts them for a unit and its
  schools over a period.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import authz, callbacks
from bot.config import DailyReportSettings, EscalationStep, Level
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, Translator, translator
from bot.models import (
    DailyReport,
    Deadline,
    EngineMark,
    Incident,
    OutboxMessage,
    Person,
    Role,
    Unit,
    UnitKind,
)
from bot.services import audit, contacts, deadlines, escalation, marks, outbox
from bot.services.engine import DeadlineHandler
from bot.services.escalation import PagingContext
from bot.services.incidents.kinds import CATEGORY_NAMES, SEVERITY_NAMES
from bot.services.outbox import Button
from bot.services.page_text import PageSubject
from bot.services.sql import insert_ignoring_conflicts, lock_for_update
from bot.uow import Database

SUBJECT = "daily_report"
POLICY = "daily_report.missing"
PLAN_AHEAD = timedelta(hours=3)
PLAN_MARK = "plan:daily_reports"
KIND_PROMPT = "daily.prompt"
KIND_MISSING = "daily.missing"
KIND_ROLLUP = "daily.rollup"
ROLLUP_SUBJECT = "daily_rollup"  # subject id: the day's ordinal

SUBMIT_LABEL = N_("📝 Submit")
NOTHING_LABEL = N_("✅ Nothing to report")
MAX_TEXT = 3000
_REPORTS: sa.Table = DailyReport.__table__  # type: ignore[attr-defined]


class Status:
    """How a school stands for one day."""

    IN_TIME = "in_time"
    LATE = "late"
    MISSING = "missing"
    PENDING = "pending"


@dataclass(frozen=True)
class Target:
    """A report someone may submit now: what the conversation shows."""

    report_id: int
    school: str
    day: date
    deadline: datetime


@dataclass(frozen=True)
class Submitted:
    """A report just submitted."""

    school: str
    day: date
    late: bool
    nothing_to_report: bool
    at: datetime


@dataclass(frozen=True)
class Compliance:
    """A unit's daily reports over a period: how many in time, late, missing, still open."""

    in_time: int
    late: int
    missing: int
    pending: int
    nothing_to_report: int

    @property
    def owed(self) -> int:
        """Reports whose deadline has passed."""
        return self.in_time + self.late + self.missing


def deadline_of(day: date, settings: DailyReportSettings, tz: ZoneInfo) -> datetime:
    """The moment a day's report is due (aware, in `tz`)."""
    return datetime.combine(day, settings.deadline, tzinfo=tz)


def status_of(report: DailyReport, now: datetime) -> str:
    """In time, late, missing or still open (pure)."""
    if report.submitted_at is not None:
        return Status.LATE if report.submitted_at > report.deadline else Status.IN_TIME
    return Status.MISSING if now >= report.deadline else Status.PENDING


def days_to_plan(
    *,
    now: datetime,
    looked_ahead: datetime,
    settings: DailyReportSettings,
    tz: ZoneInfo,
    first_start: bool = False,
) -> list[date]:
    """The local days whose reports are planned at `now` (pure); see the module's rules.

    A day is planned once, when its prompt time first comes within the horizon: it lies beyond
    the mark `looked_ahead` (after an outage, maybe long past: those days are caught up late).
    On the installation's first start the day whose prompt went out less than `PLAN_AHEAD` ago
    is planned too.
    """
    horizon = now + PLAN_AHEAD
    first = (min(looked_ahead, now) - PLAN_AHEAD).astimezone(tz).date() - timedelta(days=1)
    last = horizon.astimezone(tz).date()
    days = []
    day = first
    while day <= last:
        prompt_at = deadline_of(day, settings, tz) - settings.prompt_before
        recent = first_start and prompt_at >= now - PLAN_AHEAD
        if prompt_at <= horizon and (prompt_at > looked_ahead or recent):
            days.append(day)
        day += timedelta(days=1)
    return days


async def _schools(session: AsyncSession) -> list[Unit]:
    statement = select(Unit).where(Unit.kind == UnitKind.SCHOOL).order_by(col(Unit.code))
    return list((await session.exec(statement)).all())


async def _reporting_before(session: AsyncSession, day: date) -> set[int]:
    """The schools that owed a report before `day` (they were on the roster before an outage)."""
    statement = select(DailyReport.unit_id).where(col(DailyReport.day) < day).distinct()
    return set((await session.exec(statement)).all())


async def plan(
    session: AsyncSession, *, now: datetime, settings: DailyReportSettings, tz: ZoneInfo
) -> int:
    """Create the coming days' reports and their deadlines; return how many days were planned."""
    first_start = await session.get(EngineMark, PLAN_MARK) is None
    looked_ahead = await marks.hold(session, name=PLAN_MARK, now=now)
    days = days_to_plan(
        now=now, looked_ahead=looked_ahead, settings=settings, tz=tz, first_start=first_start
    )
    schools = await _schools(session) if days else []
    for day in days:
        due = deadline_of(day, settings, tz)
        owing = schools
        if due - settings.prompt_before < now - PLAN_AHEAD:
            earlier = await _reporting_before(session, day)
            owing = [school for school in schools if school.id in earlier]
        for school in owing:
            await insert_ignoring_conflicts(
                session,
                _REPORTS,
                {"unit_id": school.id, "day": day, "deadline": due, "nothing_to_report": False},
                unique=["unit_id", "day"],
            )
            report = (
                await session.exec(
                    select(DailyReport).where(
                        DailyReport.unit_id == school.id, DailyReport.day == day
                    )
                )
            ).one()
            assert report.id is not None
            for kind, name, at in (
                (KIND_PROMPT, "prompt", due - settings.prompt_before),
                (KIND_MISSING, "missing", due),
            ):
                await deadlines.schedule(
                    session,
                    key=f"daily:{report.id}:{name}",
                    kind=kind,
                    subject_type=SUBJECT,
                    subject_id=report.id,
                    due_at=at,
                    now=now,
                )
        if not owing:
            continue  # nobody owes that day (a roster imported during an outage): no roll-up
        await deadlines.schedule(
            session,
            key=f"daily:rollup:{day.isoformat()}",
            kind=KIND_ROLLUP,
            subject_type=ROLLUP_SUBJECT,
            subject_id=day.toordinal(),
            due_at=due + settings.escalate_after,
            now=now,
        )
    await marks.advance(session, name=PLAN_MARK, to=now + PLAN_AHEAD)
    return len(days)


async def plan_upcoming(
    db: Database, *, now: datetime, settings: DailyReportSettings, tz: ZoneInfo
) -> int:
    """Plan the coming days' reports in one transaction (the engine's planner)."""
    async with db.uow() as uow:
        planned = await plan(uow.session, now=now, settings=settings, tz=tz)
        await uow.commit()  # the high-water mark moves even when no day was planned
    return planned


def _tr(person: Person, ctx: PagingContext) -> Translator:
    return translator(person.language or ctx.default_language)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _day_text(tr: Translator, day: date, tz: ZoneInfo) -> str:
    return tr.datetime_text(datetime.combine(day, time(12), tzinfo=tz), tz, "MM-dd")


async def _incidents_of(
    session: AsyncSession, unit: Unit, day: date, tz: ZoneInfo
) -> list[Incident]:
    start = datetime.combine(day, time(0), tzinfo=tz)
    statement = (
        select(Incident)
        .where(
            Incident.unit_id == unit.id,
            col(Incident.occurred_at) >= start,
            col(Incident.occurred_at) < start + timedelta(days=1),
            col(Incident.is_drill).is_(False),
        )
        .order_by(col(Incident.occurred_at))
    )
    return list((await session.exec(statement)).all())


def incident_line(tr: Translator, incident: Incident, tz: ZoneInfo) -> str:
    """One incident as the prompt lists it."""
    category = CATEGORY_NAMES.get(incident.category, incident.category)  # type: ignore[call-overload]
    severity = SEVERITY_NAMES.get(incident.severity, incident.severity)  # type: ignore[call-overload]
    return "• " + tr._(
        "{number} {category}, {severity}, at {time}",
        number=_esc(incident.number),
        category=tr._(category),
        severity=tr._(severity),
        time=tr.time_text(incident.occurred_at, tz),
    )


async def _recipients(session: AsyncSession, unit: Unit, now: datetime) -> list[Person]:
    people: dict[int, Person] = {}
    for role in (Role.DUTY_LEADER, Role.PRINCIPAL):
        for person in await contacts.holders(session, role=role, unit_id=unit.id or 0, now=now):
            if person.id is not None and person.active:
                people.setdefault(person.id, person)
    return list(people.values())


def prompt_buttons(tr: Translator, report_id: int) -> list[list[Button]]:
    """📝 Submit and ✅ Nothing to report."""
    return [
        [
            Button(tr._(SUBMIT_LABEL), callbacks.DailyOpen(report_id).data),
            Button(tr._(NOTHING_LABEL), callbacks.DailyNothing(report_id).data),
        ]
    ]


async def _prompt(
    session: AsyncSession, deadline: Deadline, now: datetime, ctx: PagingContext, late: bool
) -> None:
    report = await _lock(session, deadline.subject_id)
    if report is None or report.submitted_at is not None or report.id is None:
        return
    if now.astimezone(ctx.tz).date() > report.day:
        return  # the bot was down the whole day: the prompt could no longer be answered
    unit = await contacts.unit(session, report.unit_id)
    incidents = await _incidents_of(session, unit, report.day, ctx.tz)
    for person in await _recipients(session, unit, now):
        tr = _tr(person, ctx)
        lines = [
            tr._(
                "📋 Daily safety report (日报) of {school} for {day}, due by {time}.",
                school=_esc(unit.name),
                day=_day_text(tr, report.day, ctx.tz),
                time=tr.time_text(report.deadline, ctx.tz),
            )
        ]
        if incidents:
            lines.append(tr._("Incidents reported today at the school:"))
            lines.extend(incident_line(tr, incident, ctx.tz) for incident in incidents)
        else:
            lines.append(tr._("No incidents were reported today at the school."))
        lines.append(
            tr._(
                "Submit the report (a few words, or the incidents as listed), "
                "or answer Nothing to report."
            )
        )
        if late:
            lines.append(tr._("⚠️ Sent late: Zhiban was not running at the time."))
        await outbox.enqueue(
            session,
            now=now,
            text="\n".join(lines),
            person_id=person.id,
            buttons=prompt_buttons(tr, report.id),
            dedupe_key=f"daily:{report.id}:prompt:{person.id}",
            late=late,
        )


def missing_steps(settings: DailyReportSettings) -> list[EscalationStep]:
    """The principal at the deadline, the township officer `escalate_after` later."""
    return [
        EscalationStep(after=timedelta(0), roles=[Role.PRINCIPAL]),
        EscalationStep(after=settings.escalate_after, roles=[Role.OFFICER], level=Level.PARENT),
    ]


async def _missing(
    session: AsyncSession,
    deadline: Deadline,
    now: datetime,
    ctx: PagingContext,
    settings: DailyReportSettings,
    late: bool,
) -> None:
    report = await _lock(session, deadline.subject_id)
    if report is None or report.submitted_at is not None or report.id is None:
        return
    if now.astimezone(ctx.tz).date() > report.day:
        # The bot was down past the day's end: the report can no longer be submitted, so a page
        # asking for it is no use; the day's roll-up names the school as missing.
        return
    unit = await contacts.unit(session, report.unit_id)
    subject = PageSubject(
        what=N_("Daily safety report missing: {school} has not submitted its report for {day}"),
        what_params={"school": unit.name, "day": report.day.strftime("%m-%d")},
        ask=N_("See that the school submits its daily report today."),
        since=report.deadline,
    )
    await escalation.start(
        session,
        policy=POLICY,
        steps=missing_steps(settings),
        subject_type=SUBJECT,
        subject_id=report.id,
        unit_id=unit.id or 0,
        subject=subject,
        now=now,
        late_since=deadline.due_at if late else None,
    )


async def _lock(session: AsyncSession, report_id: int) -> DailyReport | None:
    statement = lock_for_update(select(DailyReport).where(DailyReport.id == report_id), session)
    report: DailyReport | None = (await session.exec(statement)).first()
    return report


# --- submitting ------------------------------------------------------------------------------


async def _checked(
    session: AsyncSession, *, person_id: int, report_id: int, now: datetime, tz: ZoneInfo
) -> tuple[DailyReport, Unit]:
    """The report if this person may submit it now; otherwise the one sentence why not."""
    report = await _lock(session, report_id)
    if report is None:
        raise NotFound("This button is no longer valid.")
    unit = await contacts.unit(session, report.unit_id)
    grants = await contacts.grants_of(session, person_id)
    if not authz.may_submit_daily_report(grants, unit.path):
        raise NotAllowed(
            "Only the duty leader, safety officer or principal of {school} can submit its daily "
            "report.",
            school=unit.name,
        )
    if report.submitted_at is not None:
        by = await contacts.person(session, report.submitted_by_id or 0)
        raise InvalidInput(
            "The daily report of {school} for {day} was already submitted by {name} at {time}.",
            school=unit.name,
            day=report.day.strftime("%m-%d"),
            name=by.name,
            time=report.submitted_at,
        )
    if now.astimezone(tz).date() > report.day:
        raise InvalidInput(
            "This prompt is for {day}, which is over; that day's report stays missing.",
            day=report.day.strftime("%m-%d"),
        )
    return report, unit


async def _refused(db: Database, *, person_id: int, report_id: int, now: datetime) -> None:
    async with db.uow() as uow:
        await audit.record(
            uow.session,
            at=now,
            action="daily_report.submit",
            actor_person_id=person_id,
            subject_type=SUBJECT,
            subject_id=report_id,
            allowed=False,
        )
        await uow.commit()


async def target(
    db: Database, *, person_id: int, report_id: int, now: datetime, tz: ZoneInfo
) -> Target:
    """The report a 📝 Submit opens, if this person may submit it now (refusals audited)."""
    try:
        async with db.read() as uow:
            report, unit = await _checked(
                uow.session, person_id=person_id, report_id=report_id, now=now, tz=tz
            )
    except NotAllowed:
        await _refused(db, person_id=person_id, report_id=report_id, now=now)
        raise
    assert report.id is not None
    return Target(report.id, unit.name, report.day, report.deadline)


def _submitted_note(
    name: str, late_by: timedelta | None, now: datetime, ctx: PagingContext
) -> escalation.Note:
    def note(tr: Translator) -> str:
        who, when = _esc(name), tr.time_text(now, ctx.tz)
        if late_by is not None:
            return tr._(
                "📝 {name} submitted the daily report at {time}, {late} late.",
                name=who,
                time=when,
                late=tr.duration_text(late_by),
            )
        return tr._("📝 {name} submitted the daily report at {time}.", name=who, time=when)

    return note


async def submit(
    db: Database,
    *,
    person_id: int,
    report_id: int,
    now: datetime,
    ctx: PagingContext,
    text: str | None = None,
    nothing_to_report: bool = False,
) -> Submitted:
    """Submit a school's daily report (text, the listed incidents as they are, or 零报告).

    The first answer wins; the other prompts are edited to say who submitted; a missing-report
    matter resolves, its pages saying when and how late.
    """
    text = (text or "").strip() or None
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidInput(
            "That text is too long: keep it under {limit} characters.", limit=MAX_TEXT
        )
    try:
        async with db.uow() as uow:
            session = uow.session
            report, unit = await _checked(
                session, person_id=person_id, report_id=report_id, now=now, tz=ctx.tz
            )
            person = await contacts.person(session, person_id)
            if text is None and not nothing_to_report:
                # Send with nothing written and no incident listed says the same as 零报告.
                nothing_to_report = not await _incidents_of(session, unit, report.day, ctx.tz)
            report.submitted_at = now
            report.submitted_by_id = person_id
            report.nothing_to_report = nothing_to_report
            report.text = text
            session.add(report)
            late = now > report.deadline
            await deadlines.cancel(
                session,
                now=now,
                keys=[f"daily:{report_id}:{name}" for name in ("prompt", "missing")],
            )
            await escalation.close_for_subject(
                session,
                subject_type=SUBJECT,
                subject_id=report_id,
                note=_submitted_note(
                    person.name, now - report.deadline if late else None, now, ctx
                ),
                now=now,
                ctx=ctx,
            )
            await _edit_prompts(session, report, unit, person, now, ctx)
            await audit.record(
                session,
                at=now,
                action="daily_report.submit",
                actor_person_id=person_id,
                subject_type=SUBJECT,
                subject_id=report_id,
                unit_id=unit.id,
                detail={"late": late, "nothing_to_report": nothing_to_report},
            )
            await uow.commit()
    except NotAllowed:
        await _refused(db, person_id=person_id, report_id=report_id, now=now)
        raise
    return Submitted(unit.name, report.day, late, nothing_to_report, now)


async def _edit_prompts(
    session: AsyncSession,
    report: DailyReport,
    unit: Unit,
    by: Person,
    now: datetime,
    ctx: PagingContext,
) -> None:
    statement = select(OutboxMessage).where(
        col(OutboxMessage.dedupe_key).startswith(f"daily:{report.id}:prompt:")
    )
    for message in (await session.exec(statement)).all():
        reader = await contacts.person(session, message.person_id or 0)
        tr = _tr(reader, ctx)
        params = {
            "school": _esc(unit.name),
            "day": _day_text(tr, report.day, ctx.tz),
            "name": _esc(by.name),
            "time": tr.time_text(now, ctx.tz),
        }
        if report.nothing_to_report:
            text = tr._(
                "📋 {school}, {day}: {name} answered Nothing to report (零报告) at {time}.",
                **params,
            )
        else:
            text = tr._(
                "📋 {school}, {day}: {name} submitted the daily report at {time}.", **params
            )
        await outbox.enqueue_edit(session, now=now, target=message, text=text)


# --- roll-ups ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchoolLine:
    """One school in a roll-up."""

    name: str
    status: str
    nothing_to_report: bool


_ORDER = {Status.MISSING: 0, Status.PENDING: 0, Status.LATE: 1, Status.IN_TIME: 2}


def _rank(line: SchoolLine) -> tuple[int, int, str]:
    return (_ORDER[line.status], int(line.nothing_to_report), line.name)


def school_text(tr: Translator, line: SchoolLine) -> str:
    """A school's line in a township's roll-up."""
    name = _esc(line.name)
    if line.status in (Status.MISSING, Status.PENDING):
        return tr._("❌ {school}: missing", school=name)
    late = line.status == Status.LATE
    if line.nothing_to_report:
        if late:
            return tr._("✅ {school}: nothing to report, late", school=name)
        return tr._("✅ {school}: nothing to report", school=name)
    if late:
        return tr._("📝 {school}: reported, late", school=name)
    return tr._("📝 {school}: reported", school=name)


def township_rollup_text(
    tr: Translator, *, township: str, day: str, lines: Sequence[SchoolLine], late: bool
) -> str:
    """The township officer's roll-up: every school, problems first (pure)."""
    ordered = sorted(lines, key=_rank)
    missing = sum(line.status in (Status.MISSING, Status.PENDING) for line in ordered)
    head = [
        tr._("📋 Daily safety reports of {township} for {day}", township=_esc(township), day=day),
        tr._(
            "{missing} missing, {late} late, {reported} reported, {nothing} nothing to report",
            missing=missing,
            late=sum(line.status == Status.LATE for line in ordered),
            reported=sum(
                line.status in (Status.IN_TIME, Status.LATE) and not line.nothing_to_report
                for line in ordered
            ),
            nothing=sum(line.nothing_to_report for line in ordered),
        ),
    ]
    if late:
        head.append(tr._("⚠️ Sent late: Zhiban was not running at the time."))
    return "\n".join([*head, *(school_text(tr, line) for line in ordered)])


def county_rollup_text(
    tr: Translator, *, day: str, groups: Sequence[tuple[str, Sequence[SchoolLine]]], late: bool
) -> str:
    """The county desk's roll-up: one line per township, the missing named, problems first."""

    def missing_of(lines: Sequence[SchoolLine]) -> list[str]:
        return sorted(
            line.name for line in lines if line.status in (Status.MISSING, Status.PENDING)
        )

    ordered = sorted(groups, key=lambda group: (-len(missing_of(group[1])), group[0]))
    total_missing = sum(len(missing_of(lines)) for _name, lines in ordered)
    out = [
        tr._("📋 Daily safety reports of the county for {day}", day=day),
        tr.n_(
            "{count} school missing",
            "{count} schools missing",
            total_missing,
        ),
    ]
    if late:
        out.append(tr._("⚠️ Sent late: Zhiban was not running at the time."))
    for name, lines in ordered:
        missing = missing_of(lines)
        counts = tr._(
            "{name}: {submitted}/{total} submitted ({late} late, {nothing} nothing to report)",
            name=_esc(name),
            submitted=len(lines) - len(missing),
            total=len(lines),
            late=sum(line.status == Status.LATE for line in lines),
            nothing=sum(line.nothing_to_report for line in lines),
        )
        marker = "❌ " if missing else "✅ "
        out.append(marker + counts)
        if missing:
            out.append(
                "   " + tr._("missing: {schools}", schools=tr.list_text([_esc(m) for m in missing]))
            )
    return "\n".join(out)


async def _day_lines(
    session: AsyncSession, day: date, now: datetime
) -> dict[int, list[SchoolLine]]:
    """The day's schools by their parent unit."""
    rows = (
        await session.exec(
            select(DailyReport, Unit)
            .join(Unit, col(Unit.id) == DailyReport.unit_id)
            .where(DailyReport.day == day)
        )
    ).all()
    by_parent: dict[int, list[SchoolLine]] = {}
    for report, unit in rows:
        line = SchoolLine(unit.name, status_of(report, now), report.nothing_to_report)
        by_parent.setdefault(unit.parent_id or 0, []).append(line)
    return by_parent


async def _rollup(
    session: AsyncSession, deadline: Deadline, now: datetime, ctx: PagingContext, late: bool
) -> None:
    day = date.fromordinal(deadline.subject_id)
    by_parent = await _day_lines(session, day, now)
    if not by_parent:
        return
    parents = {
        unit.id: unit
        for unit in (
            await session.exec(select(Unit).where(col(Unit.id).in_(list(by_parent))))
        ).all()
    }
    groups: list[tuple[Unit, list[SchoolLine]]] = [
        (parents[parent_id], lines)
        for parent_id, lines in by_parent.items()
        if parent_id in parents
    ]
    for unit, lines in groups:
        if unit.kind != UnitKind.TOWNSHIP:
            continue  # county-direct schools: the county desk's roll-up has them
        for officer in await contacts.people_with_role(
            session, role=Role.OFFICER, unit_id=unit.id or 0
        ):
            tr = _tr(officer, ctx)
            await outbox.enqueue(
                session,
                now=now,
                text=township_rollup_text(
                    tr,
                    township=unit.name,
                    day=_day_text(tr, day, ctx.tz),
                    lines=lines,
                    late=late,
                ),
                person_id=officer.id,
                dedupe_key=f"daily:rollup:{day.isoformat()}:{unit.id}:{officer.id}",
                late=late,
            )
    counties = (await session.exec(select(Unit).where(Unit.kind == UnitKind.COUNTY))).all()
    for county in counties:
        mine = [(u, lines) for u, lines in groups if u.path.startswith(county.path)]
        if not mine:
            continue
        for desk in await contacts.people_with_role(
            session, role=Role.DESK, unit_id=county.id or 0
        ):
            tr = _tr(desk, ctx)
            named = [
                (
                    tr._("County-direct schools") if u.kind == UnitKind.COUNTY else u.name,
                    lines,
                )
                for u, lines in mine
            ]
            await outbox.enqueue(
                session,
                now=now,
                text=county_rollup_text(
                    tr, day=_day_text(tr, day, ctx.tz), groups=named, late=late
                ),
                person_id=desk.id,
                dedupe_key=f"daily:rollup:{day.isoformat()}:{county.id}:{desk.id}",
                late=late,
            )


def deadline_handlers(
    settings: DailyReportSettings, ctx: PagingContext
) -> dict[str, DeadlineHandler]:
    """The engine handlers of daily report deadlines."""

    async def prompt(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _prompt(s, d, now, ctx, late)

    async def missing(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _missing(s, d, now, ctx, settings, late)

    async def rollup(s: AsyncSession, d: Deadline, now: datetime, late: bool) -> None:
        await _rollup(s, d, now, ctx, late)

    return {KIND_PROMPT: prompt, KIND_MISSING: missing, KIND_ROLLUP: rollup}


# --- compliance --------------------------------------------------------------------------------


async def compliance(
    db: Database, *, unit_id: int, first: date, last: date, now: datetime
) -> Compliance:
    """The daily reports of a unit and the schools below it, `first` to `last` (local days)."""
    async with db.read() as uow:
        session = uow.session
        unit = await contacts.unit(session, unit_id)
        rows = (
            await session.exec(
                select(DailyReport)
                .join(Unit, col(Unit.id) == DailyReport.unit_id)
                .where(
                    col(Unit.path).startswith(unit.path),
                    col(DailyReport.day) >= first,
                    col(DailyReport.day) <= last,
                )
            )
        ).all()
    statuses = [status_of(report, now) for report in rows]
    return Compliance(
        in_time=statuses.count(Status.IN_TIME),
        late=statuses.count(Status.LATE),
        missing=statuses.count(Status.MISSING),
        pending=statuses.count(Status.PENDING),
        nothing_to_report=sum(
            report.nothing_to_report and report.submitted_at is not None for report in rows
        ),
    )
