"""The leader's summary: who may ask for which scope, and the short text it reads as."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from bot.authz import Action, allowed
from bot.config import Level, Settings, Severity
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_, Translator
from bot.models import Unit
from bot.services import audit, contacts
from bot.services.incidents.kinds import CATEGORY_NAMES, SEVERITY_NAMES, Category
from bot.services.reports.figures import Compliance, Figures, PeriodKind, figures, period_of
from bot.uow import Database

NOT_ALLOWED = N_(
    "Summaries are for principals, safety officers, township and county officers, the county "
    "desk and administrators."
)
USAGE = N_(
    "Send /summary week, month or term, optionally followed by the code of a unit in your "
    "area ({codes})."
)
LEVEL_NAMES: dict[Level, str] = {
    Level.UNIT: N_("Own unit"),
    Level.PARENT: N_("Level above"),
    Level.COUNTY: N_("County"),
}
PERIOD_NAMES: dict[PeriodKind, str] = {
    PeriodKind.WEEK: N_("this week"),
    PeriodKind.MONTH: N_("this month"),
    PeriodKind.TERM: N_("this term"),
}


@dataclass(frozen=True)
class Scope:
    """The unit a summary is about (it and everything below it)."""

    unit_id: int
    code: str
    name: str


def parse_period(word: str) -> PeriodKind | None:
    """The period a word names ("week", "月", "学期", ...), or None."""
    word = word.strip().casefold()
    aliases = {
        PeriodKind.WEEK: ("week", "w", "周", "本周"),
        PeriodKind.MONTH: ("month", "m", "月", "本月"),
        PeriodKind.TERM: ("term", "t", "学期", "本学期"),
    }
    for kind, words in aliases.items():
        if word in words:
            return kind
    return None


async def scope_for(
    db: Database, *, person_id: int, unit_code: str | None, period_ok: bool, now: datetime
) -> Scope:
    """The unit this person may have a summary of: the code given, else their widest area.

    An unknown code and one outside the person's area get the same sentence (it names the
    codes of their own area), as does a bad period (`period_ok` False); every refusal is
    audited.
    """
    async with db.uow() as uow:
        session = uow.session
        grants = [
            g
            for g in await contacts.grants_of(session, person_id)
            if allowed([g], Action.SUMMARY_VIEW, g.unit_path)
        ]
        refusal: InvalidInput | NotAllowed | None = None
        unit: Unit | None = None
        if not grants:
            refusal = NotAllowed(NOT_ALLOWED)
        else:
            if unit_code is None:
                widest = min(grants, key=lambda g: (len(g.unit_path), g.unit_path))
                unit = await contacts.unit(session, widest.unit_id)
            else:
                found = await session.exec(select(Unit).where(Unit.code == unit_code.strip()))
                unit = found.first()
                if unit is not None and not allowed(grants, Action.SUMMARY_VIEW, unit.path):
                    unit = None
            if unit is None or not period_ok:
                ids = sorted({g.unit_id for g in grants})
                codes = await session.exec(
                    select(Unit.code).where(col(Unit.id).in_(ids)).order_by(col(Unit.code))
                )
                refusal = InvalidInput(USAGE, codes=", ".join(codes.all()))
        if refusal is not None:
            await audit.record(
                session,
                at=now,
                action="summary.view",
                actor_person_id=person_id,
                subject_type="unit",
                allowed=False,
                detail={"unit": (unit_code or "")[:32], "reason": type(refusal).__name__},
            )
            await uow.commit()
            raise refusal
        assert unit is not None and unit.id is not None
        return Scope(unit.id, unit.code, unit.name)


def percent(value: float | None) -> str:
    """A share as a whole percentage ("83%"), or a dash when there is nothing to divide."""
    return "–" if value is None else f"{round(value * 100)}%"


def _duration(tr: Translator, value: timedelta | None) -> str:
    if value is None:
        return "–"
    if value < timedelta(minutes=1):
        return tr._("{seconds} s", seconds=int(value.total_seconds()))
    return tr.duration_text(value)


def _counts(tr: Translator, names: list[tuple[str, int]]) -> str:
    return tr.list_text([f"{name} {count}" for name, count in names if count]) or "–"


def _compliance_line(tr: Translator, label: str, figures: Compliance) -> str:
    return tr._(
        "{label}: {in_time} of {owed} in time ({rate}), {late} late, {missing} missing",
        label=label,
        in_time=figures.in_time,
        owed=figures.owed,
        rate=percent(figures.rate),
        late=figures.late,
        missing=figures.missing,
    )


def plain_text(text: str) -> str:
    """The summary's HTML as plain text (for the console)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def period_text(tr: Translator, figures: Figures, tz: ZoneInfo, *, days: bool = False) -> str:
    """The period as local times up to now, or as the local days asked for (both included).

    E.g. "2026-12-07 00:00 – 2026-12-10 09:30", or with `days` "2026-09-01 – 2027-01-31".
    """
    if days:
        return tr._(
            "{start} – {end}",
            start=figures.period.first.isoformat(),
            end=figures.period.last.isoformat(),
        )
    return tr._(
        "{start} – {end}",
        start=tr.datetime_text(figures.period.start, tz),
        end=tr.datetime_text(min(figures.period.end, figures.now), tz),
    )


def summary_text(
    tr: Translator, figures: Figures, tz: ZoneInfo, *, kind: PeriodKind | None = None
) -> str:
    """The short summary (HTML), in the reader's language; well under Telegram's 4,096."""
    head = tr._(
        "📊 <b>Summary: {unit}</b>, {period}",
        unit=html.escape(figures.unit_name),
        period=(
            tr._(PERIOD_NAMES[kind])
            if kind is not None
            else period_text(tr, figures, tz, days=True)
        ),
    )
    lines = [head]
    if kind is not None:
        lines.append(period_text(tr, figures, tz))
    lines.append(
        tr._(
            "Incidents: {count} (drills not counted). By category: {categories}. "
            "By severity: {severities}.",
            count=figures.incidents,
            categories=_counts(
                tr, [(tr._(CATEGORY_NAMES[c]), figures.by_category.get(c, 0)) for c in Category]
            ),
            severities=_counts(
                tr, [(tr._(SEVERITY_NAMES[s]), figures.by_severity.get(s, 0)) for s in Severity]
            ),
        )
    )
    reporting = figures.reporting
    lines.append(
        tr._(
            "On-time reporting (one-hour rule): {on_time} of {total} ({rate}); "
            "recorded late (迟报/漏报): {late}",
            on_time=reporting.on_time,
            total=reporting.with_deadline,
            rate=percent(reporting.rate),
            late=reporting.late,
        )
    )
    levels = [
        tr._(
            "{level} {median} ({acknowledged} of {reached})",
            level=tr._(LEVEL_NAMES[ack.level]),
            median=_duration(tr, ack.median),
            acknowledged=ack.acknowledged,
            reached=ack.reached,
        )
        for ack in figures.acks
    ]
    lines.append(tr._("Median time to acknowledge: {levels}", levels=tr.list_text(levels)))
    shifts = figures.shifts
    lines.append(
        tr._(
            "Shifts: {owed} owed, {late} clocked in late, {missed} missed (no clock-in), "
            "{unfilled} with nobody assigned",
            owed=shifts.owed,
            late=shifts.late,
            missed=shifts.missed,
            unfilled=shifts.unfilled,
        )
    )
    lines.append(_compliance_line(tr, tr._("Check-ins"), figures.checkins))
    lines.append(_compliance_line(tr, tr._("Daily reports"), figures.daily_reports))
    lines.append(
        tr._(
            "Drills: {count} held; median time to first acknowledgement {median}",
            count=len(figures.drills),
            median=_duration(tr, figures.drill_median),
        )
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Summary:
    """A summary someone asked for: its figures, and the period word they used (if any)."""

    figures: Figures
    kind: PeriodKind | None


async def leader_summary(
    db: Database,
    *,
    person_id: int,
    args: Sequence[str],
    now: datetime,
    settings: Settings,
) -> Summary:
    """`/summary [week|month|term] [UNIT]`: the figures for the unit (else my area) and period.

    No period word means this week. A bad period, an extra word, or a unit outside the
    person's area is refused in one sentence that lists what is accepted.
    """
    words = list(args)
    kind = parse_period(words[0]) if words else PeriodKind.WEEK
    code = words[1] if len(words) > 1 else None
    scope = await scope_for(
        db,
        person_id=person_id,
        unit_code=code,
        period_ok=kind is not None and len(words) <= 2,
        now=now,
    )
    assert kind is not None
    period = period_of(kind, now=now, tz=settings.bot.tz, term_starts=settings.summary.term_starts)
    found = await figures(
        db,
        unit_id=scope.unit_id,
        period=period,
        now=now,
        deadline_severities=deadline_severities(settings),
    )
    return Summary(found, kind)


def deadline_severities(settings: Settings) -> set[Severity]:
    """The severities whose policy has a report deadline (the one-hour rule)."""
    return {
        severity
        for severity, policy in settings.escalation.items()
        if policy.report_deadline is not None
    }


def file_stem(found: Figures) -> str:
    """The name the chart and the workbook are sent or written under, without extension."""
    first = found.period.first.strftime("%Y%m%d")
    last = found.period.last.strftime("%Y%m%d")
    return f"summary-{found.unit_code}-{first}-{last}"
