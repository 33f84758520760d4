"""The audit log: who did what, when, from which account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Account, AuditEntry, Person


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
    """Add one audit entry to the current transaction (naming the actor's linked account)."""
    if actor_account is None and actor_person_id is not None:
        account = (
            await session.exec(
                select(Account).where(
                    Account.person_id == actor_person_id, col(Account.unlinked_at).is_(None)
                )
            )
        ).first()
        if account is not None:
            actor_account = f"{account.channel}:{account.external_id}"
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


@dataclass(frozen=True)
class AuditLine:
    """One audit entry with the actor's name."""

    at: datetime
    actor: str
    action: str
    subject: str
    allowed: bool
    detail: dict[str, Any] | None


async def entries_since(session: AsyncSession, *, since: datetime, limit: int) -> list[AuditLine]:
    """Audit entries from `since` on, oldest first."""
    statement = (
        select(AuditEntry, Person.name)
        .join(Person, col(Person.id) == AuditEntry.actor_person_id, isouter=True)
        .where(col(AuditEntry.at) >= since)
        .order_by(col(AuditEntry.at), col(AuditEntry.id))
        .limit(limit)
    )
    lines = []
    for entry, name in await session.exec(statement):
        subject = f"{entry.subject_type}:{entry.subject_id}" if entry.subject_type else "-"
        actor = name or entry.actor_account or "-"
        if name and entry.actor_account:
            actor = f"{name} ({entry.actor_account})"
        lines.append(AuditLine(entry.at, actor, entry.action, subject, entry.allowed, entry.detail))
    return lines
