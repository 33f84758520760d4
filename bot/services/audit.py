"""The audit log: who did what, when, from which account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Account, AuditEntry, Person

_ACTING = "audit.acting"  # session.info key: (person id, account) this transaction acts for
_INSERT = sa.insert(AuditEntry.__table__)  # type: ignore[attr-defined]  # a Core INSERT


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
    """Insert one audit entry in the current transaction, naming the account the actor used.

    That is the account `acting_as` named for this transaction, else the actor's linked
    account, looked up by a subquery inside the entry's own INSERT rather than by a SELECT of
    its own. The INSERT is a Core statement run at once, after the session's pending rows
    (the autoflush): an ORM object and its flush cost more CPU than the statement, and
    nothing reads an entry back in the transaction that writes it.
    """
    if actor_account is None and actor_person_id is not None:
        acting = session.info.get(_ACTING)
        if acting is not None and acting[0] == actor_person_id:
            actor_account = acting[1]
    values = {
        "at": at,
        "action": action,
        "actor_person_id": actor_person_id,
        "actor_account": actor_account,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "unit_id": unit_id,
        "allowed": allowed,
        "detail": detail,
    }
    if actor_account is None and actor_person_id is not None:
        del values["actor_account"]
        statement = _INSERT.values(actor_account=_linked_account(actor_person_id))
        await session.execute(statement, values)
    else:
        await session.execute(_INSERT, values)


def acting_as(session: AsyncSession, *, person_id: int, account: str) -> None:
    """Say that this transaction acts for `person_id` from `account` ("telegram:<id>").

    Their audit entries then name that account without a lookup of their linked account (the
    press came from it, and the transaction found the person through it).
    """
    session.info[_ACTING] = (person_id, account)


def _linked_account(person_id: int) -> sa.ScalarSelect[str]:
    """`channel:external_id` of the person's linked account, the lowest id first (or NULL)."""
    return (
        select(col(Account.channel) + ":" + sa.cast(col(Account.external_id), sa.String))
        .where(Account.person_id == person_id, col(Account.unlinked_at).is_(None))
        .order_by(col(Account.id))
        .limit(1)
        .scalar_subquery()
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
