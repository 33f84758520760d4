"""Small portable SQL helpers for SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    """The backend of the session's connection ("sqlite" or "postgresql")."""
    bind = session.get_bind()
    return bind.dialect.name


def upsert(session: AsyncSession, table: sa.Table) -> Any:
    """An INSERT of the session's backend, which can say ON CONFLICT (SQLite or PostgreSQL).

    The dialect's module is the one the engine loaded already: a SQLite bot does not load
    PostgreSQL's (about a tenth of a second of its start).
    """
    dialect = importlib.import_module(f"sqlalchemy.dialects.{dialect_name(session)}")
    return dialect.insert(table)


async def insert_ignoring_conflicts(
    session: AsyncSession, table: sa.Table, values: dict[str, Any], *, unique: list[str]
) -> bool:
    """Insert a row unless one with the same unique columns exists; tell whether it was added."""
    statement = upsert(session, table).values(**values)
    statement = statement.on_conflict_do_nothing(index_elements=unique)
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


def lock_for_update(
    statement: Any, session: AsyncSession, *, skip_locked: bool = False, of: Any = None
) -> Any:
    """Add FOR UPDATE (SKIP LOCKED) on PostgreSQL; SQLite already holds the write lock.

    `of` names the table to lock when the statement joins others (PostgreSQL refuses to lock
    the nullable side of an outer join).
    """
    if dialect_name(session) == "postgresql":
        return statement.with_for_update(skip_locked=skip_locked, of=of)
    return statement
