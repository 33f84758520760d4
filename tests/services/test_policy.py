"""The escalation rules as a table: state and time in, actions and next look out (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import EscalationStep, Level
from bot.services.escalation.policy import (
    PASS_UP_ROLES,
    Decision,
    Fire,
    LevelState,
    MatterState,
    Policy,
    Reach,
    ReachHow,
    StepProgress,
    decide,
    effective_policy,
)

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
U, P, C = Level.UNIT, Level.PARENT, Level.COUNTY


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def steps(*rows: tuple[float, Level, int]) -> list[EscalationStep]:
    return [
        EscalationStep(after=timedelta(minutes=after), roles=["principal"], level=level, repeat=rep)
        for after, level, rep in rows
    ]


# The configured "serious" shape: the unit at once (2 repeats), township at 10, county at 15.
SERIOUS = effective_policy(
    steps((0, U, 2), (10, P, 0), (15, C, 0)),
    levels=(U, P, C),
    report_deadline=timedelta(hours=1),
    forward_margin=timedelta(minutes=10),
)
LARGE = effective_policy(steps((0, U, 1), (15, U, 0), (30, P, 0)), levels=(U, P, C))


def state(
    levels: dict[Level, tuple[float, float | None]],
    fired: dict[int, tuple[int, float]] | None = None,
    *,
    occurred: float | None = None,
    resolved: bool = False,
) -> MatterState:
    return MatterState(
        started_at=T0,
        occurred_at=m(occurred) if occurred is not None else None,
        resolved=resolved,
        levels={
            level: LevelState(m(at), m(ack) if ack is not None else None)
            for level, (at, ack) in levels.items()
        },
        progress={i: StepProgress(n, m(last)) for i, (n, last) in (fired or {}).items()},
    )


CASES: list[tuple[str, Policy, MatterState, float, Decision]] = [
    (
        "a new matter pages its unit at once",
        SERIOUS,
        state({U: (0, None)}),
        0,
        Decision((Fire(0, 0, U, m(0)),), m(10)),
    ),
    (
        "a reminder falls due five minutes after the last page",
        SERIOUS,
        state({U: (0, None)}, {0: (1, 0)}),
        5,
        Decision((Fire(0, 1, U, m(5)),), m(10)),
    ),
    (
        "after the repeats, the unit waits and the township is next",
        SERIOUS,
        state({U: (0, None)}, {0: (3, 10)}),
        9,
        Decision((), m(10)),
    ),
    (
        "silence at the school reaches the township at its step's time",
        SERIOUS,
        state({U: (0, None)}, {0: (3, 10)}),
        10,
        Decision((Reach(P, ReachHow.SILENCE, m(10)), Fire(1, 0, P, m(10))), m(15)),
    ),
    (
        "an acknowledgement at the school stops its repeats and the silence steps",
        SERIOUS,
        state({U: (0, 2)}, {0: (1, 0)}),
        5,
        Decision((), m(50)),
    ),
    (
        "acknowledged at the school, the report deadline still reaches both levels",
        SERIOUS,
        state({U: (0, 2)}, {0: (1, 0)}),
        50,
        Decision(
            (
                Reach(P, ReachHow.DEADLINE, m(50)),
                Reach(C, ReachHow.DEADLINE, m(50)),
                Fire(1, 0, P, m(50)),
                Fire(2, 0, C, m(50)),
            ),
            None,
        ),
    ),
    (
        "the deadline counts from when it happened, not from the report",
        SERIOUS,
        state({U: (0, 1)}, {0: (1, 0)}, occurred=-45),
        5,
        Decision(
            (
                Reach(P, ReachHow.DEADLINE, m(5)),
                Reach(C, ReachHow.DEADLINE, m(5)),
                Fire(1, 0, P, m(5)),
                Fire(2, 0, C, m(5)),
            ),
            None,
        ),
    ),
    (
        "a township that acknowledged keeps the county quiet until the deadline",
        SERIOUS,
        state({U: (0, None), P: (10, 12)}, {0: (3, 10), 1: (1, 10)}),
        15,
        Decision((), m(50)),
    ),
    (
        "passed up early, the township is paged at once, not at its step's time",
        SERIOUS,
        state({U: (0, 1), P: (1, None)}, {0: (1, 0)}),
        1,
        Decision((Fire(1, 0, P, m(1)),), m(50)),
    ),
    (
        "a level passed up to with no step of its own gets the pass-up roles, repeated",
        LARGE,
        state({U: (0, 3), P: (3, None), C: (4, None)}, {0: (1, 0), 2: (1, 3), 3: (1, 4)}),
        9,
        # the next repeat is planned once this one has fired (the engine decides again)
        Decision((Fire(3, 1, C, m(9)),), None),
    ),
    (
        "a later step at the unit stops with the unit's acknowledgement",
        LARGE,
        state({U: (0, 1)}, {0: (1, 0)}),
        15,
        Decision((), None),
    ),
    (
        "after downtime a late step fires once, and repeats count from now",
        SERIOUS,
        state({U: (0, None)}, {0: (1, 0)}),
        12,
        Decision(
            (Reach(P, ReachHow.SILENCE, m(10)), Fire(0, 1, U, m(5)), Fire(1, 0, P, m(10))), m(15)
        ),
    ),
    (
        "a resolved matter does nothing and needs no look",
        SERIOUS,
        state({U: (0, None)}, resolved=True),
        30,
        Decision((), None),
    ),
]


@pytest.mark.parametrize(
    ("policy", "matter", "minute", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(policy: Policy, matter: MatterState, minute: float, expected: Decision) -> None:
    assert decide(matter, policy, m(minute)) == expected


def test_a_county_direct_school_has_no_separate_parent_level() -> None:
    policy = effective_policy(steps((0, U, 0), (10, P, 0), (15, C, 0)), levels=(U, C))
    assert [(s.level, s.after) for s in policy.steps] == [
        (U, timedelta(0)),
        (C, timedelta(minutes=10)),
        (C, timedelta(minutes=15)),
    ]
    # the county is reached at 10 and its second step keeps its five minutes' spacing
    matter = state({U: (0, None), C: (10, None)}, {0: (1, 0), 1: (1, 10)})
    assert decide(matter, policy, m(14)) == Decision((), m(15))


def test_the_county_itself_pages_only_its_own_people() -> None:
    policy = effective_policy(steps((0, U, 0), (10, C, 0)), levels=(U,))
    assert {s.level for s in policy.steps} == {U}
    assert policy.above(U) is None


def test_every_level_above_gets_a_pass_up_step_that_waits_to_be_reached() -> None:
    policy = effective_policy(steps((0, U, 0)), levels=(U, P, C))
    implicit = policy.steps[1:]
    assert [(s.level, s.roles, s.silence) for s in implicit] == [
        (P, PASS_UP_ROLES, False),
        (C, PASS_UP_ROLES, False),
    ]
    assert decide(state({U: (0, None)}, {0: (1, 0)}), policy, m(600)) == Decision((), None)
