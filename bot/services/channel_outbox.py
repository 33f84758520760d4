"""Robot messages in the outbox: claimed per channel within its per-minute budget, and listed.

A channel's budget is counted in the database, so that every instance sharing a PostgreSQL
database keeps to one limit per robot: the rows of the channel claimed in the last minute
(a try counts once, at its latest claim). A claim takes at most what is left of the budget;
once it is spent, the channel's other due rows are put back to the moment the oldest claim in
the window is a minute old, so they wait visibly (`zhiban pages`) and go out then. On
PostgreSQL a transaction-scoped advisory lock per channel makes two instances count in turn.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import OutboxMessage, OutboxStatus, Page, Unit
from bot.services.sql import dialect_name, lock_for_update

WINDOW = timedelta(minutes=1)
_TABLE: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]


def _due(now: datetime, lease: timedelta) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(
            col(OutboxMessage.status) == OutboxStatus.PENDING,
            col(OutboxMessage.not_before) <= now,
        ),
        sa.and_(
            col(OutboxMessage.status) == OutboxStatus.SENDING,
            col(OutboxMessage.claimed_at) < now - lease,
        ),
    )


async def claim(
    session: AsyncSession,
    *,
    channel: str,
    per_minute: int,
    now: datetime,
    limit: int,
    worker: str,
    lease: timedelta,
) -> list[OutboxMessage]:
    """Claim the channel's due rows, oldest first, within what its budget has left."""
    if dialect_name(session) == "postgresql":
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"zhiban-channel:{channel}"},
        )
    mine = col(OutboxMessage.channel) == channel
    recent = col(OutboxMessage.claimed_at) > now - WINDOW
    used, oldest = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(_TABLE.c.claimed_at)).where(mine, recent)
        )
    ).one()
    room = per_minute - int(used)
    rows: list[OutboxMessage] = []
    if room > 0:
        statement = (
            select(OutboxMessage)
            .where(mine, _due(now, lease))
            .order_by(col(OutboxMessage.id))
            .limit(min(room, limit))
        )
        rows = list(
            (await session.exec(lock_for_update(statement, session, skip_locked=True))).all()
        )
        for row in rows:
            row.status = OutboxStatus.SENDING
            row.claimed_by = worker
            row.claimed_at = now
            row.attempts += 1
        await session.flush()
    if int(used) + len(rows) >= per_minute:
        free_at = (oldest if oldest is not None and int(used) else now) + WINDOW
        await session.execute(
            sa.update(_TABLE)
            .where(
                _TABLE.c.channel == channel,
                _TABLE.c.status == OutboxStatus.PENDING,
                _TABLE.c.not_before < free_at,
            )
            .values(not_before=free_at)
        )
    return rows


async def fail_unconfigured(
    session: AsyncSession, *, configured: Collection[str], now: datetime
) -> int:
    """Fail due robot rows for channels this configuration no longer has; return how many."""
    statement = sa.update(_TABLE).where(
        _TABLE.c.channel.is_not(None),
        _TABLE.c.status == OutboxStatus.PENDING,
        _TABLE.c.not_before <= now,
    )
    if configured:
        statement = statement.where(_TABLE.c.channel.not_in(list(configured)))
    result = await session.execute(
        statement.values(status=OutboxStatus.FAILED, last_error="no such channel is configured")
    )
    return int(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class ChannelRow:
    """One robot message for the operator's listing."""

    id: int
    channel: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    not_before: datetime
    unit: str
    mentioned: list[str]
    attempts: int
    last_error: str | None


async def listing(
    session: AsyncSession, *, statuses: list[str] | None, limit: int
) -> list[ChannelRow]:
    """The newest robot messages (optionally in some statuses), newest first."""
    statement = (
        select(OutboxMessage, Unit.name)
        .outerjoin(Page, col(Page.id) == OutboxMessage.page_id)
        .outerjoin(Unit, col(Unit.id) == Page.unit_id)
        .where(col(OutboxMessage.channel).is_not(None))
        .order_by(col(OutboxMessage.id).desc())
        .limit(limit)
    )
    if statuses:
        statement = statement.where(col(OutboxMessage.status).in_(statuses))
    return [
        ChannelRow(
            id=row.id or 0,
            channel=row.channel or "",
            status=row.status,
            created_at=row.created_at,
            sent_at=row.sent_at,
            not_before=row.not_before,
            unit=unit or "-",
            mentioned=[str(p["name"]) for p in row.body.get("people") or []],
            attempts=row.attempts,
            last_error=row.last_error,
        )
        for row, unit in await session.exec(statement)
    ]
