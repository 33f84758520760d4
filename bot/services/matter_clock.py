"""The clock of a matter that happened: time since, time left to the report deadline, who has it.

One pure computation (`clock_of`, `now` a parameter) and its two lines of text, shared by the
pages about an incident (written at the moment each page is written, so a reminder's clock is
current), `/incidents` and `/incident N`. Nothing here reads the database or a clock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.config import Level
from bot.i18n import N_, Translator

# Lowest first, as the levels are declared.
_ORDER = tuple(Level)

HAPPENED = N_("Happened {ago} ago ({time})")
DUE_LEFT = N_("report due by {due}, {left} left")
DUE_LATE = N_("report due by {due}, {late} late")
DUE_BY_SYSTEM = N_("report due by {due}; passed up by the system, recorded late (迟报)")
DUE_MET = N_("report due by {due}; it reached every level in time")
WITH_ACKNOWLEDGED = N_("Now with: {unit} (acknowledged by {name})")
WITH_WAITING = N_("Now with: {unit} (not yet acknowledged)")


@dataclass(frozen=True)
class Reached:
    """One level a matter reached, as the clock needs it."""

    level: Level
    unit: str
    reached_at: datetime
    late: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None


@dataclass(frozen=True)
class Holder:
    """Who has the matter now: the highest level it reached, acknowledged there or not."""

    level: Level
    unit: str
    reached_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None


@dataclass(frozen=True)
class MatterClock:
    """A matter's clock at one moment (`at`)."""

    at: datetime
    occurred_at: datetime
    since: timedelta
    # occurrence + the report deadline; None when the severity has none.
    deadline_at: datetime | None
    # Time left before the deadline while a level above is still missing.
    time_left: timedelta | None
    # How late: the deadline passed with a level above missing, or a level was reached after it.
    late_by: timedelta | None
    # A level was reached late (the system passed it up at deadline − margin, or a late call).
    forwarded_late: bool
    # Whether any level above the unit must be reached by the deadline.
    levels_above: bool
    holder: Holder | None


def clock_of(
    *,
    occurred_at: datetime,
    reported_at: datetime,
    report_deadline: timedelta | None,
    needed: Collection[Level],
    reached: Sequence[Reached],
    now: datetime,
    stopped_at: datetime | None = None,
) -> MatterClock:
    """The clock at `now`: `needed` are the levels above that the deadline is about.

    A matter closed at `stopped_at` counts no more time left nor lateness after it.
    """
    until = now if stopped_at is None else min(now, stopped_at)
    holder = None
    if reached:
        top = max(reached, key=lambda row: _ORDER.index(row.level))
        holder = Holder(
            level=top.level,
            unit=top.unit,
            reached_at=top.reached_at,
            acknowledged_by=top.acknowledged_by,
            acknowledged_at=top.acknowledged_at,
        )
    deadline_at = occurred_at + report_deadline if report_deadline is not None else None
    time_left = late_by = None
    if deadline_at is not None:
        times = {row.level: row.reached_at for row in reached}
        if set(needed) <= set(times):
            # A level cannot have had the report before it was made.
            last = max([reported_at, *(times[level] for level in needed)])
            if last > deadline_at:
                late_by = last - deadline_at
        elif until >= deadline_at:
            late_by = until - deadline_at
        elif stopped_at is None:
            time_left = deadline_at - now
    return MatterClock(
        at=now,
        occurred_at=occurred_at,
        since=max(now - occurred_at, timedelta(0)),
        deadline_at=deadline_at,
        time_left=time_left,
        late_by=late_by,
        forwarded_late=any(row.late for row in reached),
        levels_above=bool(needed),
        holder=holder,
    )


def _moment(tr: Translator, tz: tzinfo, moment: datetime, now: datetime) -> str:
    """A time of day, with the date when it is not today."""
    if moment.astimezone(tz).date() == now.astimezone(tz).date():
        return tr.time_text(moment, tz)
    return tr.datetime_text(moment, tz, "MM-dd HH:mm")


def clock_text(tr: Translator, tz: tzinfo, clock: MatterClock) -> str:
    """The clock line, e.g. "Happened 12 min ago (08:03) · report due by 09:03, 48 min left"."""
    parts = [
        tr._(
            HAPPENED,
            ago=tr.duration_text(clock.since),
            time=_moment(tr, tz, clock.occurred_at, clock.at),
        )
    ]
    if clock.deadline_at is not None:
        due = _moment(tr, tz, clock.deadline_at, clock.at)
        if clock.time_left is not None:
            parts.append(tr._(DUE_LEFT, due=due, left=tr.duration_text(clock.time_left)))
        elif clock.late_by is not None:
            parts.append(tr._(DUE_LATE, due=due, late=tr.duration_text(clock.late_by)))
        elif clock.forwarded_late:
            parts.append(tr._(DUE_BY_SYSTEM, due=due))
        elif clock.levels_above:
            parts.append(tr._(DUE_MET, due=due))
    return " · ".join(parts)


def holder_text(tr: Translator, holder: Holder | None) -> str:
    """Who has it, e.g. "Now with: 红星小学 (acknowledged by 王老师)"; empty for nobody."""
    if holder is None:
        return ""
    if holder.acknowledged_by:
        return tr._(WITH_ACKNOWLEDGED, unit=holder.unit, name=holder.acknowledged_by)
    return tr._(WITH_WAITING, unit=holder.unit)
