"""The escalation rules as one pure decision: from a matter's state and the time, what to do now.

Shaped after GoAlert's `calcUpdates`: the engine loads the state, asks `decide`, carries out
the actions and sleeps until `Decision.next_at`. Nothing here reads the database or a clock,
so every rule is tested with plain values (tests/services/test_policy.py).

The rules (SPEC §4):

1. Each level a matter has reached (its own unit, the unit above, the county) has its own
   state. That level's steps page its roles, and repeat, until someone there acknowledges;
   acknowledging stops that level's steps and repeats, and nothing else.
2. A step at a level the matter has not reached is escalation for silence: at its time it fires
   only if no level below has acknowledged, and firing it makes the matter reach that level.
3. With a report deadline, the matter must reach every level above its unit by occurrence +
   deadline, acknowledged below or not: at deadline − forward margin the system passes it up to
   each level not reached yet, and that reach counts as late (迟报).

Passing up, the direct report and the phone report are people's actions (`actions.py`): each
makes a level reached, and from then on this function pages it. A level's steps keep their
spacing from the level's first step, which fires as soon as the level is reached. A level the
system reached counts as reached when the rule said so (`Reach.due_at`), even if the engine
only got to it later: its pages then go out marked late.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.config import EscalationStep, Level

LEVEL_ORDER: tuple[Level, ...] = (Level.UNIT, Level.PARENT, Level.COUNTY)

# Roles paged at a level the matter was passed up to, when the policy names no step there.
PASS_UP_ROLES: tuple[str, ...] = ("officer", "desk", "principal")
PASS_UP_REPEAT = 3
PASS_UP_EVERY = timedelta(minutes=5)


class ReachHow(StrEnum):
    """How a matter came to reach a level."""

    START = "start"
    SILENCE = "silence"
    DEADLINE = "deadline"
    PASSED_UP = "passed_up"
    DIRECT = "direct"
    PHONE = "phone"


@dataclass(frozen=True)
class PolicyStep:
    """One step: page `roles` at `level`, `after` the matter started, repeating `repeat` times."""

    after: timedelta
    level: Level
    roles: tuple[str, ...]
    repeat: int = 0
    every: timedelta = timedelta(minutes=5)
    # False for a step that pages a level only once something else made the matter reach it.
    silence: bool = True
    # One-way channels (`[[channels]]` names) that also get this step's pages.
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """The steps of one matter, with its levels and its report deadline."""

    steps: tuple[PolicyStep, ...]
    # The distinct levels this matter can reach, lowest first (a county-direct school has no
    # separate parent level; the county itself has only its own).
    levels: tuple[Level, ...] = LEVEL_ORDER
    report_deadline: timedelta | None = None
    forward_margin: timedelta = timedelta(minutes=10)

    def above(self, level: Level) -> Level | None:
        """The next level up from `level`, if the matter has one."""
        index = self.levels.index(level)
        return self.levels[index + 1] if index + 1 < len(self.levels) else None


@dataclass(frozen=True)
class LevelState:
    """When a level was reached and, if so, acknowledged."""

    reached_at: datetime
    acknowledged_at: datetime | None = None


@dataclass(frozen=True)
class StepProgress:
    """How often a step has fired (1 for its first page, more for repeats) and when last."""

    fired: int = 0
    last_at: datetime | None = None


@dataclass(frozen=True)
class MatterState:
    """Everything `decide` needs to know about one matter."""

    started_at: datetime
    levels: Mapping[Level, LevelState]
    progress: Mapping[int, StepProgress] = field(default_factory=dict)
    occurred_at: datetime | None = None
    resolved: bool = False


@dataclass(frozen=True)
class Reach:
    """Make the matter reach `level` (the system passes it up), due at `due_at`."""

    level: Level
    how: ReachHow
    due_at: datetime


@dataclass(frozen=True)
class Fire:
    """Page step `step` (repeat 0 is its first page), due at `due_at`."""

    step: int
    repeat: int
    level: Level
    due_at: datetime


Action = Reach | Fire


@dataclass(frozen=True)
class Decision:
    """What to do now, and when to look again (None: nothing left to wait for).

    `next_at` covers what is not due yet; the actions taken now add their own later work
    (a step's next repeat), which the engine learns by deciding again after carrying them out.
    """

    actions: tuple[Action, ...]
    next_at: datetime | None


def effective_policy(
    steps: list[EscalationStep],
    *,
    levels: tuple[Level, ...],
    report_deadline: timedelta | None = None,
    forward_margin: timedelta = timedelta(minutes=10),
) -> Policy:
    """Fit configured steps to the levels a matter has, and give every level above a step.

    A step at a level the unit lacks moves to the next level up that exists (a county-direct
    school's "parent" is the county) or, at the top, to the unit itself. A level above with no
    step of its own gets one that pages `PASS_UP_ROLES` when the matter is passed up to it.
    """
    if not levels or levels[0] != Level.UNIT:
        raise ValueError("a matter's levels start with its own unit")
    fitted = []
    for step in steps:
        level = _existing(step.level, levels)
        fitted.append(
            PolicyStep(
                after=step.after,
                level=level,
                roles=tuple(step.roles),
                repeat=step.repeat,
                every=step.every,
                channels=tuple(step.channels),
            )
        )
    for level in levels[1:]:
        if not any(step.level == level for step in fitted):
            fitted.append(
                PolicyStep(
                    after=timedelta(0),
                    level=level,
                    roles=PASS_UP_ROLES,
                    repeat=PASS_UP_REPEAT,
                    every=PASS_UP_EVERY,
                    silence=False,
                )
            )
    return Policy(
        steps=tuple(fitted),
        levels=levels,
        report_deadline=report_deadline,
        forward_margin=forward_margin,
    )


def _existing(level: Level, levels: tuple[Level, ...]) -> Level:
    for candidate in LEVEL_ORDER[LEVEL_ORDER.index(level) :]:
        if candidate in levels:
            return candidate
    return levels[-1]


def forward_at(state: MatterState, policy: Policy) -> datetime | None:
    """When the system passes the matter up itself under the report deadline (rule 3)."""
    if policy.report_deadline is None:
        return None
    occurred = state.occurred_at or state.started_at
    return occurred + policy.report_deadline - policy.forward_margin


def decide(state: MatterState, policy: Policy, now: datetime) -> Decision:
    """Apply the three rules at `now`: the levels to reach and the steps to fire."""
    if state.resolved:
        return Decision((), None)
    levels = dict(state.levels)
    actions: list[Action] = []
    wake: list[datetime] = []

    def acknowledged_below(level: Level) -> bool:
        below = policy.levels[: policy.levels.index(level)]
        return any(
            (reached := levels.get(lower)) is not None and reached.acknowledged_at is not None
            for lower in below
        )

    # Rule 3: the report deadline reaches every level above, acknowledged below or not.
    deadline = forward_at(state, policy)
    missing = [level for level in policy.levels[1:] if level not in levels]
    if deadline is not None and missing:
        if now >= deadline:
            for level in missing:
                levels[level] = LevelState(reached_at=deadline)
                actions.append(Reach(level, ReachHow.DEADLINE, deadline))
        else:
            wake.append(deadline)

    # Rule 2: silence at the levels below makes the matter reach a level at its step's time.
    for level in policy.levels[1:]:
        if level in levels or acknowledged_below(level):
            continue
        times = [s.after for s in policy.steps if s.level == level and s.silence]
        if not times:
            continue
        due = state.started_at + min(times)
        if now >= due:
            levels[level] = LevelState(reached_at=due)
            actions.append(Reach(level, ReachHow.SILENCE, due))
        else:
            wake.append(due)

    # Rule 1: every reached, unacknowledged level's steps page and repeat.
    for index, step in enumerate(policy.steps):
        reached = levels.get(step.level)
        if reached is None or reached.acknowledged_at is not None:
            continue
        progress = state.progress.get(index, StepProgress())
        if progress.fired == 0:
            due = _first_due(policy, step, state.started_at, reached.reached_at)
        elif progress.fired <= step.repeat and progress.last_at is not None:
            due = progress.last_at + step.every
        else:
            continue
        if now >= due:
            actions.append(Fire(index, progress.fired, step.level, due))
        else:
            wake.append(due)
    return Decision(tuple(actions), min(wake, default=None))


def _first_due(policy: Policy, step: PolicyStep, started: datetime, reached: datetime) -> datetime:
    if step.level == policy.levels[0]:
        return started + step.after
    first = min(s.after for s in policy.steps if s.level == step.level)
    return reached + (step.after - first)
