"""Schema migrations (Alembic), run in-process on the bot's own engine.

Alembic itself (about 11 MB of a running bot) is imported only when there is something to
migrate, or when asked for its view: a database already at the newest revision is recognised by
reading `alembic_version` and the revision lines of the packaged migration files.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

# Any fixed number: instances starting together take turns at upgrading.
_MIGRATION_LOCK = 7_202_611
_VERSION_TABLE = "alembic_version"
_REVISION_LINE = re.compile(r'^(down_revision|revision)\b[^=]*=\s*(?:"([^"]*)"|None)', re.MULTILINE)


def alembic_config() -> Config:
    """An Alembic configuration pointing at the packaged migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("bot") / "migrations"))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current(connection: Connection) -> str | None:
    """The revision recorded in the database (None for an empty one), read without Alembic."""
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:  # branches: not something this project makes; let Alembic judge
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()
    return rows[0] if rows else None


def packaged_head() -> str | None:
    """The newest revision among the packaged migration files, read from their revision lines.

    The one revision no other file names as its `down_revision`; None when that is not exactly
    one (then the caller asks Alembic).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    versions = resources.files("bot") / "migrations" / "versions"
    for entry in versions.iterdir():
        if not entry.name.endswith(".py") or entry.name.startswith("_"):
            continue
        for key, value in _REVISION_LINE.findall(entry.read_text(encoding="utf-8")):
            (revisions if key == "revision" else parents).add(value)
    parents.discard("")
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database schema up to `revision`."""
    if revision == "head":
        head = packaged_head()
        if head is not None and await current_revision(engine) == head:
            return
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def head_revision() -> str | None:
    """The newest revision the code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
