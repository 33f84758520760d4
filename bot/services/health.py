"""What the ops port reads from the database: whether it answers, and a few aggregate figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, func, select

from bot.models import Deadline, DeadlineStatus, OutboxMessage, OutboxStatus, Page
from bot.uow import Database

# Every status a page can have (bot/models.Page.status), shown even when none has it, so a
# dashboard's series do not come and go.
PAGE_STATUSES = ("active", "closed", "undeliverable")
# Outbox rows not sent yet: waiting for a sender, or claimed by one and on their way.
_UNSENT = (OutboxStatus.PENDING, OutboxStatus.SENDING)


@dataclass(frozen=True)
class OpsFigures:
    """The database's side of /metrics, read at one moment."""

    pages: dict[str, int]
    outbox_due: int
    outbox_oldest_age: float
    engine_lag: float


async def database_answers(db: Database) -> None:
    """Run a trivial query; raise whatever the database raises when it does not answer."""
    async with db.read() as uow:
        await uow.session.exec(select(sa.literal(1)))


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # SQLite hands back naive UTC
        then = then.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - then).total_seconds())


async def ops_figures(db: Database, *, now: datetime) -> OpsFigures:
    """Pages by status, the outbox's due rows and oldest age, and the engine's lag at `now`.

    Four aggregate queries over indexed columns (outbox and deadlines by status and time).
    The outbox counts rows due (`not_before` passed) and not sent yet; the engine's lag is how
    long the oldest pending deadline has been due (0 when none is).
    """
    async with db.read() as uow:
        session = uow.session
        by_status = (
            await session.exec(select(Page.status, func.count()).group_by(col(Page.status)))
        ).all()
        due, oldest = (
            await session.exec(
                select(func.count(), func.min(OutboxMessage.not_before)).where(
                    col(OutboxMessage.status).in_(_UNSENT), col(OutboxMessage.not_before) <= now
                )
            )
        ).one()
        oldest_deadline = (
            await session.exec(
                select(func.min(Deadline.due_at)).where(
                    col(Deadline.status) == DeadlineStatus.PENDING, col(Deadline.due_at) <= now
                )
            )
        ).one()
    pages = dict.fromkeys(PAGE_STATUSES, 0) | {str(s): int(n) for s, n in by_status}
    return OpsFigures(
        pages=pages,
        outbox_due=int(due or 0),
        outbox_oldest_age=_age(now, oldest),
        engine_lag=_age(now, oldest_deadline),
    )
