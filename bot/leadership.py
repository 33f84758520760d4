"""Which instance takes updates: the leader; the others stand by (SPEC §10).

Engines and senders run in every instance (they share work through the database); only taking
updates (getUpdates or the webhook) is the leader's. One instance alone is always the leader.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What this instance does with updates."""

    LEADER = "leader"
    STANDBY = "standby"


class Leadership:
    """An instance's role, as the election last decided it (one instance: the leader)."""

    def __init__(self, role: Role = Role.LEADER) -> None:
        self._role = role

    @property
    def role(self) -> Role:
        """The role now."""
        return self._role

    @property
    def is_leader(self) -> bool:
        """Whether this instance takes updates now."""
        return self._role is Role.LEADER

    def set(self, role: Role) -> None:
        """Record the election's outcome."""
        self._role = role
