"""The one authorization check: role × unit scope × action.

A role held at a unit covers that unit and every unit below it (materialised paths make that a
prefix test). Every handler and callback asks `allowed`; nothing else decides access.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum

from bot.models import Role


class Action(StrEnum):
    """What a person may try to do."""

    PAGE_ACKNOWLEDGE = "page.acknowledge"
    PAGE_PASS_UP = "page.pass_up"
    PAGE_RESOLVE = "page.resolve"
    PAGE_DETAILS = "page.details"
    BOARD_VIEW = "board.view"
    INCIDENT_REPORT = "incident.report"
    ROSTER_MANAGE = "roster.manage"
    INVITE_ISSUE = "invite.issue"
    DRILL_START = "drill.start"
    SWAP_APPROVE = "swap.approve"
    SUMMARY_VIEW = "summary.view"


_LEADER_ACTIONS = frozenset(
    {
        Action.PAGE_ACKNOWLEDGE,
        Action.PAGE_PASS_UP,
        Action.PAGE_RESOLVE,
        Action.PAGE_DETAILS,
        Action.BOARD_VIEW,
        Action.INCIDENT_REPORT,
        Action.DRILL_START,
        Action.SWAP_APPROVE,
    }
)

# Summaries (/summary) are for the unit's leadership and the levels above, not for the duty
# leader of the day: they are the figures a 工作总结 is written from.
_SUMMARY = frozenset({Action.SUMMARY_VIEW})

ACTIONS_BY_ROLE: dict[str, frozenset[Action]] = {
    Role.STAFF: frozenset({Action.INCIDENT_REPORT}),
    Role.DUTY_LEADER: _LEADER_ACTIONS,
    Role.SAFETY_OFFICER: _LEADER_ACTIONS | _SUMMARY,
    Role.PRINCIPAL: _LEADER_ACTIONS | _SUMMARY,
    Role.OFFICER: _LEADER_ACTIONS | _SUMMARY,
    Role.DESK: _LEADER_ACTIONS | _SUMMARY,
    Role.ADMIN: frozenset(
        {
            Action.ROSTER_MANAGE,
            Action.INVITE_ISSUE,
            Action.BOARD_VIEW,
            Action.DRILL_START,
            Action.SUMMARY_VIEW,
        }
    ),
}


@dataclass(frozen=True)
class Grant:
    """A role held at a unit, with that unit's materialised path."""

    role: str
    unit_id: int
    unit_path: str


def covers(scope_path: str, unit_path: str) -> bool:
    """Tell whether a unit lies at or below the unit of `scope_path`."""
    return bool(scope_path) and unit_path.startswith(scope_path)


def allowed(grants: Iterable[Grant], action: Action, unit_path: str) -> bool:
    """Tell whether any grant lets its holder do `action` at the unit with `unit_path`."""
    return any(
        action in ACTIONS_BY_ROLE.get(grant.role, frozenset())
        and covers(grant.unit_path, unit_path)
        for grant in grants
    )


def may_press_page(
    grants: Iterable[Grant],
    action: Action,
    unit_path: str,
    *,
    person_id: int,
    paged_person_id: int,
    subject_ids: Collection[int],
) -> bool:
    """Who may press a page's buttons, decided here only.

    Never a person the matter is about (the absent person of a missed shift, the silent person
    of a check-in), whatever roles they hold; otherwise the person the page went to, or anyone
    whose role lets them do `action` at the matter's unit.
    """
    if person_id in subject_ids:
        return False
    return person_id == paged_person_id or allowed(grants, action, unit_path)


# Who answers for a school's daily safety report (日报): its own leaders, not the levels above.
DAILY_REPORT_ROLES = frozenset({Role.DUTY_LEADER, Role.SAFETY_OFFICER, Role.PRINCIPAL})


def may_submit_daily_report(grants: Iterable[Grant], unit_path: str) -> bool:
    """Whether a duty leader, safety officer or principal role is held at the school itself.

    A township officer or the county desk supervises the reports and reads the roll-ups; they
    never submit one for a school, so a role held above the school does not count here.
    """
    return any(
        grant.role in DAILY_REPORT_ROLES and grant.unit_path == unit_path for grant in grants
    )
