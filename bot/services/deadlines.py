"""Durable deadlines: "at T, do X for subject S", idempotent by key, claimed exactly once.

Nothing lives only in memory: the scheduler job asks `next_due` when to wake and `claim_due`
what to do. On PostgreSQL, claiming takes row locks with SKIP LOCKED so that several instances
share the work; on SQLite one process holds the write lock for the whole transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Deadline, DeadlineStatus
from bot.services.sql import insert_ignoring_conflicts, lock_for_update

_TABLE: sa.Table = Deadline.__table__  # type: ignore[attr-defined]


async def schedule(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    subject_type: str,
    subject_id: int,
    due_at: datetime,
    now: datetime,
    payload: dict[str, Any] | None = None,
    move_pending: bool = False,
) -> bool:
    """Add a pending deadline unless one with this key exists; tell whether it was added.

    With `move_pending`, an existing deadline that is still pending moves to `due_at`.
    """
    added = await insert_ignoring_conflicts(
        session,
        _TABLE,
        {
            "key": key,
            "kind": kind,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "due_at": due_at,
            "status": DeadlineStatus.PENDING,
            "payload": payload,
            "created_at": now,
            "late": False,
            "attempts": 0,
        },
        unique=["key"],
    )
    if not added and move_pending:
        await move(session, key=key, due_at=due_at)
    return added


async def move(session: AsyncSession, *, key: str, due_at: datetime) -> bool:
    """Move a pending deadline to a new time; tell whether there was one."""
    result = await session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.key == key, _TABLE.c.status == DeadlineStatus.PENDING)
        .values(due_at=due_at)
    )
    return bool(getattr(result, "rowcount", 0))


def _cancel_statement(condition: Any) -> Any:
    """Cancel the pending deadlines matching `condition`, now (parameter `now`).

    A deadline an engine has claimed is skipped rather than waited for: waiting could deadlock
    (the engine holds the deadline and wants the subject; a press holds the subject). The
    engine's handler then finds its subject closed and does nothing.
    """
    pending = (
        sa.select(_TABLE.c.id)
        .where(condition, _TABLE.c.status == DeadlineStatus.PENDING)
        .with_for_update(skip_locked=True)
    )
    return (
        sa.update(_TABLE)
        .where(_TABLE.c.id.in_(pending.scalar_subquery()))
        .values(status=DeadlineStatus.CANCELLED, handled_at=sa.bindparam("now"))
    )


# Built once, one per way of naming the deadlines: a clock-in and every answer cancel some, and
# building the statement cost more CPU than running it.
_CANCEL_KEY = _cancel_statement(_TABLE.c.key == sa.bindparam("one_key"))
_CANCEL_KEYS = _cancel_statement(_TABLE.c.key.in_(sa.bindparam("keys", expanding=True)))
_CANCEL_PREFIX = _cancel_statement(_TABLE.c.key.startswith(sa.bindparam("prefix")))


async def cancel(
    session: AsyncSession,
    *,
    now: datetime,
    key: str | None = None,
    keys: Sequence[str] | None = None,
    prefix: str | None = None,
) -> int:
    """Cancel pending deadlines by exact key, exact keys (one statement) or key prefix."""
    if sum(given is not None for given in (key, keys, prefix)) != 1:
        raise ValueError("give exactly one of key, keys and prefix")
    params: dict[str, Any]
    if key is not None:
        statement, params = _CANCEL_KEY, {"one_key": key}
    elif keys is not None:
        statement, params = _CANCEL_KEYS, {"keys": list(keys)}
    else:
        statement, params = _CANCEL_PREFIX, {"prefix": prefix}
    result = await session.execute(statement, {**params, "now": now})
    return int(getattr(result, "rowcount", 0))


async def mark_done(
    session: AsyncSession, *, ids: Sequence[int], now: datetime, worker: str, late: bool
) -> None:
    """Mark handled deadlines done, in one statement (the engine's batch, on time or late)."""
    if ids:
        await session.execute(
            sa.update(_TABLE)
            .where(_TABLE.c.id.in_(list(ids)))
            .values(status=DeadlineStatus.DONE, handled_at=now, handled_by=worker, late=late)
        )


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending deadline falls due (an index seek, not a scan)."""
    statement = (
        select(Deadline.due_at)
        .where(Deadline.status == DeadlineStatus.PENDING)
        .order_by(col(Deadline.due_at))
        .limit(1)
    )
    return (await session.exec(statement)).first()


async def claim_due(session: AsyncSession, *, now: datetime, limit: int) -> list[Deadline]:
    """Lock and return up to `limit` pending deadlines due by `now`, earliest first."""
    statement = (
        select(Deadline)
        .where(Deadline.status == DeadlineStatus.PENDING, col(Deadline.due_at) <= now)
        .order_by(col(Deadline.due_at), col(Deadline.id))
        .limit(limit)
    )
    statement = lock_for_update(statement, session, skip_locked=True)
    return list((await session.exec(statement)).all())
