"""A matter under escalation as stored: its policy, the levels it reached, its timeline, ticks.

One `Escalation` row is one matter (a missed shift, an incident); `EscalationLevel` rows say how
far it got at each level and `EscalationEvent` rows are its timeline, which is also where the
engine reads how often each step has fired. Functions here take a session and never commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import EscalationStep, Level
from bot.models import Escalation, EscalationEvent, EscalationLevel, Unit
from bot.services import audit, contacts, deadlines
from bot.services.escalation.policy import (
    LevelState,
    MatterState,
    Policy,
    PolicyStep,
    ReachHow,
    StepProgress,
    effective_policy,
)
from bot.services.page_text import PageSubject
from bot.services.sql import lock_for_update

STEP_KIND = "escalation.step"

ACTIVE = "active"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"


# What keeps a subject's own record in step with the levels its matter reached, by subject
# type (the incidents package keeps an incident's highest unit and late flag). The subject's
# package registers it, so that escalation never imports the packages built on it.
ReachListener = Callable[[AsyncSession, Escalation], Awaitable[None]]
_reach_listeners: dict[str, ReachListener] = {}


def on_reach(subject_type: str, listener: ReachListener) -> None:
    """Call `listener` in the same transaction whenever a matter of this type changes level."""
    _reach_listeners[subject_type] = listener


async def reach_changed(session: AsyncSession, escalation: Escalation) -> None:
    """Tell the subject's listener that the matter's levels changed (reached, moved, late)."""
    listener = _reach_listeners.get(escalation.subject_type)
    if listener is not None:
        await listener(session, escalation)


def tick_key(escalation_id: int, tick: int) -> str:
    """The deadline key of one planned look at a matter."""
    return f"esc:{escalation_id}:t{tick}"


def fire_key(step: int, repeat: int) -> str:
    """The timeline key that makes one firing of one step happen once."""
    return f"fire:{step}:{repeat}"


async def levels_of(session: AsyncSession, base: Unit) -> dict[Level, Unit]:
    """The distinct units a matter at `base` can reach, by level, lowest first."""
    found: dict[Level, Unit] = {Level.UNIT: base}
    seen = {base.id}
    await contacts.units_above(session, base)
    for level in (Level.PARENT, Level.COUNTY):
        unit = await contacts.unit_at_level(session, base, level)
        if unit is not None and unit.id not in seen:
            found[level] = unit
            seen.add(unit.id)
    return found


def _policy_json(policy: Policy) -> dict[str, Any]:
    return {
        "steps": [
            {
                "after": step.after.total_seconds(),
                "level": step.level.value,
                "roles": list(step.roles),
                "repeat": step.repeat,
                "every": step.every.total_seconds(),
                "silence": step.silence,
                **({"channels": list(step.channels)} if step.channels else {}),
            }
            for step in policy.steps
        ],
        "levels": [level.value for level in policy.levels],
        "report_deadline": (
            policy.report_deadline.total_seconds() if policy.report_deadline is not None else None
        ),
        "forward_margin": policy.forward_margin.total_seconds(),
    }


def policy_of(escalation: Escalation) -> Policy:
    """The matter's policy as stored when it started."""
    data = (escalation.details or {}).get("policy")
    if data is None:  # stored before levels existed: the steps alone, fitted to every level
        steps = [
            EscalationStep(
                after=timedelta(seconds=s["after"]),
                roles=s["roles"],
                level=Level(s["level"]),
                repeat=s["repeat"],
                every=timedelta(seconds=s["every"]),
            )
            for s in (escalation.details or {}).get("steps", [])
        ]
        return effective_policy(steps, levels=(Level.UNIT, Level.PARENT, Level.COUNTY))
    deadline = data.get("report_deadline")
    return Policy(
        steps=tuple(
            PolicyStep(
                after=timedelta(seconds=s["after"]),
                level=Level(s["level"]),
                roles=tuple(s["roles"]),
                repeat=int(s["repeat"]),
                every=timedelta(seconds=s["every"]),
                silence=bool(s.get("silence", True)),
                channels=tuple(s.get("channels") or ()),
            )
            for s in data["steps"]
        ),
        levels=tuple(Level(level) for level in data["levels"]),
        report_deadline=timedelta(seconds=deadline) if deadline is not None else None,
        forward_margin=timedelta(seconds=data["forward_margin"]),
    )


def subject_of(escalation: Escalation) -> PageSubject:
    """What the matter's pages say it is about."""
    return PageSubject.from_json((escalation.details or {})["subject"])


def excluded(escalation: Escalation) -> set[int]:
    """People never paged about this matter (the absent person of a missed shift)."""
    return {int(p) for p in (escalation.details or {}).get("exclude") or []}


def late_since(escalation: Escalation) -> datetime | None:
    """When the matter itself fell due, if the bot found it only after downtime."""
    value = (escalation.details or {}).get("late_since")
    return datetime.fromisoformat(value) if value else None


def place_unit_id(escalation: Escalation) -> int:
    """The unit the matter is about (pages at every level say where it is)."""
    return int((escalation.details or {}).get("place_unit_id") or escalation.unit_id)


async def lock(session: AsyncSession, escalation_id: int) -> Escalation | None:
    """Load a matter, locking it on PostgreSQL: presses and the engine take turns.

    Its unit comes in the same statement (held for the session's `contacts.unit`): a look at
    the matter and a press on its page both ask for it next.
    """
    statement = (
        select(Escalation, Unit)
        .join(Unit, col(Unit.id) == Escalation.unit_id)
        .where(Escalation.id == escalation_id)
    )
    statement = lock_for_update(statement, session, of=Escalation).execution_options(
        populate_existing=True
    )
    found: tuple[Escalation, Unit] | None = (await session.exec(statement)).first()
    if found is None:
        return None
    escalation, unit = found
    contacts.keep_unit(session, unit)
    return escalation


async def level_rows(session: AsyncSession, escalation_id: int) -> dict[Level, EscalationLevel]:
    """The levels a matter has reached."""
    rows = await session.exec(
        select(EscalationLevel)
        .where(EscalationLevel.escalation_id == escalation_id)
        .execution_options(populate_existing=True)
    )
    return {Level(row.level): row for row in rows.all()}


async def timeline(session: AsyncSession, escalation_id: int) -> list[EscalationEvent]:
    """A matter's timeline, oldest first."""
    rows = await session.exec(
        select(EscalationEvent)
        .where(EscalationEvent.escalation_id == escalation_id)
        .order_by(col(EscalationEvent.at), col(EscalationEvent.id))
    )
    return list(rows.all())


async def progress_of(session: AsyncSession, escalation_id: int) -> dict[int, StepProgress]:
    """How often each step has fired and when last, from the timeline's "fired" lines."""
    rows = await session.exec(
        select(EscalationEvent.step, EscalationEvent.at).where(
            EscalationEvent.escalation_id == escalation_id,
            EscalationEvent.kind == "fired",
            col(EscalationEvent.step).is_not(None),
        )
    )
    fired: dict[int, list[datetime]] = defaultdict(list)
    for step, at in rows.all():
        assert step is not None
        fired[step].append(at)
    return {step: StepProgress(len(times), max(times)) for step, times in fired.items()}


def state_from(
    escalation: Escalation,
    levels: dict[Level, EscalationLevel],
    progress: dict[int, StepProgress],
) -> MatterState:
    """The matter as `decide` sees it, from its row, its levels and its steps' progress."""
    states = {
        level: LevelState(row.reached_at, row.acknowledged_at) for level, row in levels.items()
    }
    # A matter stored before levels existed has reached its own unit all the same.
    states.setdefault(Level.UNIT, LevelState(escalation.started_at, escalation.acknowledged_at))
    return MatterState(
        started_at=escalation.started_at,
        occurred_at=escalation.occurred_at,
        resolved=escalation.status == RESOLVED,
        levels=states,
        progress=dict(progress),
    )


async def record(
    session: AsyncSession,
    escalation: Escalation,
    *,
    kind: str,
    at: datetime,
    level: Level | None = None,
    person_id: int | None = None,
    step: int | None = None,
    repeat: int | None = None,
    key: str | None = None,
    **detail: Any,
) -> EscalationEvent:
    """Add one line to the matter's timeline."""
    assert escalation.id is not None
    event = EscalationEvent(
        escalation_id=escalation.id,
        at=at,
        kind=kind,
        level=level.value if level is not None else None,
        step=step,
        repeat=repeat,
        person_id=person_id,
        key=key,
        detail=detail or None,
    )
    session.add(event)
    await session.flush()
    return event


async def reach(
    session: AsyncSession,
    escalation: Escalation,
    *,
    level: Level,
    how: ReachHow,
    now: datetime,
    by: int | None = None,
    at: datetime | None = None,
    late: bool | None = None,
    levels: dict[Level, EscalationLevel] | None = None,
) -> EscalationLevel | None:
    """Make the matter reach a level (once); return the new level, or None if it had it.

    This is the one place where a matter reaches a level, whoever makes it (a person passing
    it up, the system for silence or at the report deadline, a direct report, a confirmed
    call), so the subject's listener hears of every change here. `late` defaults to whether
    the system passed it up under the report deadline. `levels` is the matter's levels as the
    caller already read them (the engine's look): they are used instead of reading them again,
    and the new level is added to them.
    """
    assert escalation.id is not None
    existing = levels if levels is not None else await level_rows(session, escalation.id)
    if level in existing:
        return None
    base = await contacts.unit(session, escalation.unit_id)
    units = await levels_of(session, base)
    unit = units.get(level)
    if unit is None or unit.id is None:
        return None
    row = EscalationLevel(
        escalation_id=escalation.id,
        level=level.value,
        unit_id=unit.id,
        reached_at=at or now,
        reached_how=how.value,
        reached_by_id=by,
        late=how == ReachHow.DEADLINE if late is None else late,
    )
    session.add(row)
    if levels is not None:
        levels[level] = row
    if escalation.status == ACKNOWLEDGED:
        escalation.status = ACTIVE  # a new level waits for its acknowledgement
    await session.flush()
    await record(
        session, escalation, kind="reached", at=now, level=level, person_id=by, how=how.value
    )
    await reach_changed(session, escalation)
    return row


def status_after(levels: dict[Level, EscalationLevel], resolved: bool) -> str:
    """Resolved; acknowledged when every level reached is; otherwise active."""
    if resolved:
        return RESOLVED
    if levels and all(row.acknowledged_at is not None for row in levels.values()):
        return ACKNOWLEDGED
    return ACTIVE


async def plan_next(
    session: AsyncSession,
    escalation: Escalation,
    *,
    next_at: datetime | None,
    now: datetime,
    handling: str | None = None,
) -> None:
    """Replace the matter's pending tick with one at `next_at` (none when nothing is left).

    A matter has at most one pending tick, the last one planned, so it is cancelled by its key
    (an index lookup; a key-prefix match cannot use SQLite's index and scanned every deadline),
    unless it is `handling`, the tick the engine is handling now and closes itself.
    Matters stored before ticks existed may still hold per-step deadlines: those go by prefix.
    """
    assert escalation.id is not None
    current = tick_key(escalation.id, escalation.ticks) if escalation.ticks else None
    if current is not None and current != handling:
        await deadlines.cancel(session, now=now, key=current)
    if "policy" not in (escalation.details or {}):
        await deadlines.cancel(session, now=now, prefix=f"esc:{escalation.id}:")
    if next_at is None or escalation.status == RESOLVED:
        return
    escalation.ticks += 1
    await _schedule_tick(session, escalation, due_at=next_at, now=now)


async def _schedule_tick(
    session: AsyncSession, escalation: Escalation, *, due_at: datetime, now: datetime
) -> None:
    """The deadline of the matter's current tick (`ticks` counts it already)."""
    assert escalation.id is not None
    await deadlines.schedule(
        session,
        key=tick_key(escalation.id, escalation.ticks),
        kind=STEP_KIND,
        subject_type="escalation",
        subject_id=escalation.id,
        due_at=due_at,
        now=now,
    )


@dataclass(frozen=True)
class Start:
    """What a new matter is and how it is paged."""

    policy: str
    steps: list[EscalationStep]
    subject_type: str
    subject_id: int
    unit_id: int
    subject: PageSubject
    drill: bool = False
    place_unit_id: int | None = None
    exclude: tuple[int, ...] = ()
    late_since: datetime | None = None
    occurred_at: datetime | None = None
    report_deadline: timedelta | None = None
    forward_margin: timedelta = timedelta(minutes=10)
    reporter_id: int | None = None
    # The subject was stored in this very transaction, so no matter about it can exist yet.
    new_subject: bool = False


async def create(session: AsyncSession, spec: Start, *, now: datetime) -> tuple[Escalation, bool]:
    """Store a new matter at its unit's level, its first look due now (or find the existing)."""
    if not spec.new_subject:
        existing = (
            await session.exec(
                select(Escalation).where(
                    Escalation.subject_type == spec.subject_type,
                    Escalation.subject_id == spec.subject_id,
                    Escalation.policy == spec.policy,
                )
            )
        ).first()
        if existing is not None:
            return existing, False
    base = await contacts.unit(session, spec.unit_id)
    units = await levels_of(session, base)
    policy = effective_policy(
        spec.steps,
        levels=tuple(units),
        report_deadline=spec.report_deadline,
        forward_margin=spec.forward_margin,
    )
    escalation = Escalation(
        policy=spec.policy,
        subject_type=spec.subject_type,
        subject_id=spec.subject_id,
        unit_id=spec.unit_id,
        started_at=now,
        occurred_at=spec.occurred_at,
        details={
            "subject": spec.subject.to_json(),
            "policy": _policy_json(policy),
            "place_unit_id": spec.place_unit_id or spec.unit_id,
            "exclude": list(spec.exclude),
            "late_since": spec.late_since.isoformat() if spec.late_since else None,
            "reporter_id": spec.reporter_id,
        },
        is_drill=spec.drill,
        # Counts the first look, planned below, in the INSERT instead of an UPDATE after it.
        ticks=1,
    )
    session.add(escalation)
    await session.flush()
    assert escalation.id is not None
    session.add(
        EscalationLevel(
            escalation_id=escalation.id,
            level=Level.UNIT.value,
            unit_id=spec.unit_id,
            reached_at=now,
            reached_how=ReachHow.START.value,
        )
    )
    await record(session, escalation, kind="started", at=now, level=Level.UNIT)
    await audit.record(
        session,
        at=now,
        action="escalation.start",
        actor_account="system",
        subject_type=spec.subject_type,
        subject_id=spec.subject_id,
        unit_id=spec.unit_id,
        detail={"policy": spec.policy, "escalation": escalation.id},
    )
    await _schedule_tick(session, escalation, due_at=now, now=now)
    return escalation, True
