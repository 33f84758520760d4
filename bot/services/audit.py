"""The audit log: who did what, when, from which account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import AuditEntry


async def record(
    session: AsyncSession,
    *,
    at: datetime,
    action: str,
    actor_person_id: int | None = None,
    actor_account: str | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    unit_id: int | None = None,
    allowed: bool = True,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one audit entry to the current transaction."""
    session.add(
        AuditEntry(
            at=at,
            action=action,
            actor_person_id=actor_person_id,
            actor_account=actor_account,
            subject_type=subject_type,
            subject_id=subject_id,
            unit_id=unit_id,
            allowed=allowed,
            detail=detail,
        )
    )
