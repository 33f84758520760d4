"""`zhiban pages` and `zhiban audit`: what the operator sees of paging."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from factories import build_district
from sqlmodel import select
from test_cli import zhiban

from bot.config import DatabaseSettings, Severity, settings_from_mapping
from bot.db import create_engine
from bot.migrate import upgrade
from bot.models import OutboxMessage, Page
from bot.services import escalation
from bot.services.engine import run_due
from bot.services.escalation import PagingContext
from bot.services.page_text import PageSubject
from bot.uow import Database

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
CTX = PagingContext(tz=ZoneInfo("Asia/Shanghai"), default_language="en")


async def test_pages_lists_each_page_with_status_and_error_and_audit_names_who_acknowledged(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/z.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[bot]\nlanguage = "en"\n')
    db = Database(create_engine(DatabaseSettings(url=url)))
    try:
        await upgrade(db.engine)
        district = await build_district(db)
        steps = settings_from_mapping({}, environ={}).escalation[Severity.SERIOUS].steps[:1]
        async with db.uow() as uow:
            await escalation.start(
                uow.session,
                policy="test",
                steps=steps,
                subject_type="test",
                subject_id=1,
                unit_id=district.units["S"],
                now=T0,
                subject=PageSubject(what="Post unmanned", ask="Acknowledge."),
            )
            await uow.commit()
        await run_due(
            db, now=T0, handlers={escalation.STEP_KIND: escalation.step_handler(CTX)}, worker="w"
        )
        async with db.uow() as uow:
            first = (await uow.session.exec(select(OutboxMessage).limit(1))).one()
            first.status, first.last_error = "failed", "Bad Request: chat not found"
            page = (
                await uow.session.exec(
                    select(Page).where(Page.person_id == district.people["principal"])
                )
            ).one()
            await uow.commit()
        await escalation.press(
            db,
            external_id=district.chats["principal"],
            action="a",
            page_id=page.id or 0,
            now=T0,
            ctx=CTX,
        )
    finally:
        await db.dispose()

    listing = zhiban("pages", "--config", str(config))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == 3
    assert lines[-1].split("\t")[1:5] == ["failed", "12-01 10:00:00", "-", "李带班 (石坝小学)"]
    assert lines[-1].endswith("Bad Request: chat not found")
    failed_only = zhiban("pages", "--status", "failed", "--config", str(config))
    assert len(failed_only.stdout.strip().splitlines()) == 1

    log = zhiban("audit", "--since", "2026-12-01", "--config", str(config))
    assert log.returncode == 0, log.stderr
    acknowledged = [line for line in log.stdout.splitlines() if "page.acknowledge" in line]
    assert acknowledged[0].split("\t")[:4] == [
        "2026-12-01 10:00:00",
        "王校长 (telegram:5003)",
        "page.acknowledge",
        "test:1",
    ]
    bad = zhiban("audit", "--since", "yesterday", "--config", str(config))
    assert bad.returncode == 1
    assert "'yesterday' is not a date" in bad.stderr
