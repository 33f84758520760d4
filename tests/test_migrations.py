"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from bot.migrate import current_revision, head_revision, packaged_head, upgrade
from bot.models import metadata
from bot.uow import Database


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_database_matches_models(db: Database) -> None:
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_diff) == []
    assert await current_revision(db.engine) == head_revision()


async def test_upgrade_twice_is_harmless(db: Database) -> None:
    await upgrade(db.engine)
    assert await current_revision(db.engine) == head_revision()


def test_the_packaged_head_read_from_the_files_is_alembics_head() -> None:
    assert packaged_head() == head_revision() is not None


_UPGRADE_AND_LIST_MODULES = """
import asyncio, sys
from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.migrate import current_revision, upgrade

async def main() -> None:
    engine = create_engine(DatabaseSettings(url=sys.argv[1]))
    try:
        await upgrade(engine)
        print(await current_revision(engine))
    finally:
        await engine.dispose()
    print("alembic loaded" if "alembic" in sys.modules else "alembic not loaded")

asyncio.run(main())
"""


def test_a_database_at_the_newest_revision_is_started_without_loading_alembic(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'zhiban.db'}"

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _UPGRADE_AND_LIST_MODULES, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return done.stdout.split("\n")[:2]

    head = packaged_head()
    assert run() == [head, "alembic loaded"]  # an empty database is migrated by Alembic
    assert run() == [head, "alembic not loaded"]  # then it is recognised as up to date


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    async with db.engine.connect() as connection:
        mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
        keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
    assert (mode, keys) == ("wal", 1)


async def test_a_read_only_unit_of_work_does_not_wait_for_a_writer(db: Database) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL readers never wait for writers")
    async with db.uow() as writer:
        await writer.session.execute(text("UPDATE units SET name = name"))  # holds the lock
        async with db.read() as reader:
            assert (await reader.session.execute(text("SELECT count(*) FROM units"))).scalar() == 0
            with pytest.raises(RuntimeError, match="read-only"):
                await reader.commit()
