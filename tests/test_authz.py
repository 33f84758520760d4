"""The one authorization check, as a table: role × where it is held × action × target unit."""

from __future__ import annotations

import pytest

from bot.authz import ACTIONS_BY_ROLE, Action, Grant, allowed
from bot.models import Role

# county 1 → township 2 → school 4; township 3 → school 5
PATHS = {
    "county": "/1/",
    "township": "/1/2/",
    "school": "/1/2/4/",
    "other_township": "/1/3/",
    "other_school": "/1/3/5/",
}

TABLE = [
    # role, held at, action, target, allowed?
    ("staff", "school", Action.INCIDENT_REPORT, "school", True),
    ("staff", "school", Action.PAGE_ACKNOWLEDGE, "school", False),
    ("staff", "school", Action.BOARD_VIEW, "school", False),
    ("duty_leader", "school", Action.PAGE_ACKNOWLEDGE, "school", True),
    ("duty_leader", "school", Action.PAGE_ACKNOWLEDGE, "township", False),
    ("duty_leader", "school", Action.PAGE_ACKNOWLEDGE, "other_school", False),
    ("principal", "school", Action.PAGE_RESOLVE, "school", True),
    ("principal", "school", Action.INVITE_ISSUE, "school", False),
    ("officer", "township", Action.BOARD_VIEW, "school", True),
    ("officer", "township", Action.BOARD_VIEW, "township", True),
    ("officer", "township", Action.BOARD_VIEW, "other_school", False),
    ("officer", "township", Action.PAGE_PASS_UP, "school", True),
    ("desk", "county", Action.PAGE_ACKNOWLEDGE, "other_school", True),
    ("desk", "county", Action.ROSTER_MANAGE, "school", False),
    ("admin", "township", Action.INVITE_ISSUE, "school", True),
    ("admin", "township", Action.INVITE_ISSUE, "other_school", False),
    ("admin", "township", Action.PAGE_ACKNOWLEDGE, "school", False),
    ("admin", "county", Action.ROSTER_MANAGE, "other_school", True),
    ("safety_officer", "school", Action.DRILL_START, "school", True),
    ("duty_leader", "school", Action.SWAP_APPROVE, "school", True),
    ("staff", "school", Action.SWAP_APPROVE, "school", False),
]


@pytest.mark.parametrize(("role", "held_at", "action", "target", "expected"), TABLE)
def test_role_scope_and_action_decide_access(
    role: str, held_at: str, action: Action, target: str, expected: bool
) -> None:
    grant = Grant(role=role, unit_id=0, unit_path=PATHS[held_at])
    assert allowed([grant], action, PATHS[target]) is expected


def test_every_role_has_its_actions_listed() -> None:
    assert set(ACTIONS_BY_ROLE) == {role.value for role in Role}


def test_a_path_prefix_is_not_mistaken_for_a_parent() -> None:
    # unit 1 must not cover unit 12 just because "/1" starts "/12/"
    grant = Grant(role="officer", unit_id=1, unit_path="/1/")
    assert not allowed([grant], Action.BOARD_VIEW, "/12/")
    assert allowed([grant], Action.BOARD_VIEW, "/1/12/")


def test_no_grants_allow_nothing() -> None:
    assert not any(allowed([], action, "/1/") for action in Action)
