"""Shared fixtures: a migrated database on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from factories import District, build_district
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.migrate import upgrade
from bot.sandbox.bytecode import compile_packages
from bot.uow import Database

# Workers per CPU for `pytest -n auto`. The suite waits much of its time (the emulator's
# answers, `zhiban run` processes starting, PostgreSQL, a browser): on 2 CPUs two workers kept
# them 62% busy and took 13:05, three took 11:13 (2026-11-30).
WORKERS_PER_CPU = 1.5


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many workers `-n auto` starts: `WORKERS_PER_CPU` a CPU this process may use."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, round((cpus or 1) * WORKERS_PER_CPU))


@pytest.fixture(scope="session", autouse=True)
def _compiled_packages() -> None:
    """The `zhiban run` processes tests start load bytecode, not sources (compile_packages)."""
    compile_packages()


PG_ENV = "ZHIBAN_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgresql"]


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


async def _pg_execute(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _migrate(url: str) -> None:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated PostgreSQL database that each test clones; None when none is configured."""
    admin_url = _pg_admin_url()
    if admin_url is None:
        yield None
        return
    name = f"zhiban_tpl_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_execute(admin_url, f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        asyncio.run(_migrate(url))
        yield name
    finally:
        asyncio.run(_pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    pg_template: str | None,
) -> AsyncIterator[str]:
    """A fresh, migrated database for one test, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "zhiban.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    admin_url = _pg_admin_url()
    if admin_url is None or pg_template is None:
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run this test on PostgreSQL")
    name = f"zhiban_t_{uuid.uuid4().hex[:10]}"
    await _pg_execute(admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A Database on a fresh, migrated schema."""
    database = Database(create_engine(DatabaseSettings(url=database_url)))
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def district(db: Database) -> District:
    """A small district (county, two townships, two schools, a leader of every kind)."""
    return await build_district(db)
