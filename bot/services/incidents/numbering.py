"""Incident numbers ("20261128-007"): per local day, one county per database, never shared."""

from __future__ import annotations

from datetime import datetime, tzinfo

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import IncidentCounter
from bot.services.sql import upsert

_TABLE: sa.Table = IncidentCounter.__table__  # type: ignore[attr-defined]


def day_of(moment: datetime, tz: tzinfo) -> str:
    """The local day of a moment as the number's prefix ("20261128")."""
    return moment.astimezone(tz).strftime("%Y%m%d")


def format_number(day: str, sequence: int) -> str:
    """The printed number: the day, a dash and at least three digits."""
    return f"{day}-{sequence:03d}"


async def next_number(session: AsyncSession, *, now: datetime, tz: tzinfo) -> str:
    """Hand out the day's next number in the caller's transaction.

    One upsert with RETURNING: on PostgreSQL it takes the day's row lock (a second report waits
    for the first to commit or roll back, then counts on from it); SQLite writers already take
    turns. A report that rolls back gives its number back, so numbers have no gaps.
    """
    day = day_of(now, tz)
    statement = (
        upsert(session, _TABLE)
        .values(day=day, last=1)
        .on_conflict_do_update(index_elements=["day"], set_={"last": _TABLE.c["last"] + 1})
        .returning(_TABLE.c["last"])
    )
    sequence = (await session.execute(statement)).scalar_one()
    return format_number(day, int(sequence))
