"""On SQLite each statement is one trip to aiosqlite's thread, and reads and writes as before."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.migrate import upgrade
from bot.models import Unit, UnitKind
from bot.sqlite_trips import OneTripConnection
from bot.uow import Database


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/t.db")))
    await upgrade(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The name of each function aiosqlite's thread runs, in order."""
    seen: list[str] = []
    original = aiosqlite.core.Connection._execute

    async def counting(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counting)
    yield seen


def _unit(code: str) -> dict[str, Any]:
    return {"code": code, "name": f"学校{code}", "kind": UnitKind.SCHOOL, "path": f"/{code}"}


async def test_a_statement_is_one_trip_and_gives_rows_counts_and_ids(
    sqlite_db: Database, trips: list[str]
) -> None:
    async with sqlite_db.uow() as uow:
        connection = await uow.session.connection()
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, aiosqlite.Connection)
        assert type(raw.dbapi_connection) is OneTripConnection
        trips.clear()
        inserted = await uow.session.execute(sa.insert(Unit).values(**_unit("A")))
        assert trips == ["_run"]  # one trip: opened, executed, fetched, closed in the thread
        assert inserted.inserted_primary_key is not None and inserted.inserted_primary_key[0] > 0
        await uow.session.execute(sa.insert(Unit), [_unit("B"), _unit("C")])  # executemany
        returned = await uow.session.execute(
            sa.insert(Unit).values(**_unit("D")).returning(Unit.code)  # type: ignore[arg-type]
        )
        assert returned.scalar_one() == "D"
        changed = await uow.session.execute(
            sa.update(Unit).where(sa.column("code").in_(["A", "B", "X"])).values(name="改")
        )
        assert getattr(changed, "rowcount", None) == 2
        await uow.commit()
    async with sqlite_db.read() as uow:
        trips.clear()
        rows = (await uow.session.exec(select(Unit.code, Unit.name).order_by(Unit.code))).all()
        assert trips == ["_run"]
    assert [tuple(r) for r in rows] == [("A", "改"), ("B", "改"), ("C", "学校C"), ("D", "学校D")]


async def test_a_failing_statement_raises_sqlalchemys_error_and_changes_nothing(
    sqlite_db: Database,
) -> None:
    async with sqlite_db.uow() as uow:
        await uow.session.execute(sa.insert(Unit).values(**_unit("A")))
        await uow.commit()
    with pytest.raises(IntegrityError):
        async with sqlite_db.uow() as uow:
            await uow.session.execute(sa.insert(Unit).values(**_unit("B")))
            await uow.session.execute(sa.insert(Unit).values(**_unit("A")))  # code is unique
    async with sqlite_db.read() as uow:
        codes = (await uow.session.exec(select(Unit.code))).all()
    assert codes == ["A"]
