"""Named points in time the engine keeps across restarts (the planners' high-water marks)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import EngineMark
from bot.services.sql import insert_ignoring_conflicts, lock_for_update

_TABLE: sa.Table = EngineMark.__table__  # type: ignore[attr-defined]


async def hold(session: AsyncSession, *, name: str, now: datetime) -> datetime:
    """Lock the mark `name` until the transaction ends and return its time.

    A mark that does not exist yet is created at `now`: this is the installation's first start
    for that planner. On PostgreSQL the lock makes planners of several instances take turns.
    """
    await insert_ignoring_conflicts(session, _TABLE, {"name": name, "at": now}, unique=["name"])
    statement = lock_for_update(select(EngineMark.at).where(EngineMark.name == name), session)
    at: datetime = (await session.exec(statement)).one()
    return at


async def advance(session: AsyncSession, *, name: str, to: datetime) -> None:
    """Move the mark forward to `to`; it never moves back."""
    await session.execute(
        sa.update(_TABLE).where(_TABLE.c.name == name, _TABLE.c.at < to).values(at=to)
    )
