"""Shift deadlines after downtime: what fell due while the bot was down goes out once, late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from factories import District
from sqlmodel import col, select

from bot.config import settings_from_mapping
from bot.models import Deadline, OutboxMessage, Shift
from bot.services import attendance, escalation
from bot.services.engine import run_due
from bot.services.escalation import PagingContext
from bot.uow import Database

START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
CTX = PagingContext(tz=ZoneInfo("Asia/Shanghai"), default_language="zh")
SETTINGS = settings_from_mapping({}, environ={}).shifts


async def test_a_missed_shift_found_after_downtime_is_paged_once_and_marked_late(
    db: Database, district: District
) -> None:
    async with db.uow() as uow:
        uow.session.add(
            Shift(
                unit_id=district.units["S"],
                post="值班室",
                start=START,
                end=START + timedelta(hours=12),
                person_id=district.people["staff"],
            )
        )
        await uow.commit()
    # Planned before the bot went down; it comes back an hour after the start.
    await attendance.plan_upcoming(db, now=START - timedelta(hours=2), settings=SETTINGS)
    handlers = {
        escalation.STEP_KIND: escalation.step_handler(CTX),
        **attendance.deadline_handlers(SETTINGS, CTX),
    }
    back = START + timedelta(hours=1)
    await run_due(db, now=back, handlers=handlers, worker="w")
    await run_due(db, now=back, handlers=handlers, worker="w")
    async with db.uow() as uow:
        rows = (await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    texts = [(row.kind, row.body["text"].splitlines()[0], row.late) for row in rows]
    assert all("系统未运行" in row.body["text"] for row in rows if row.kind == "page")
    assert not any("您的班次12-01 08:00开始" in text for _, text, _ in texts)  # no stale "starts"
    pages = [(text, late) for kind, text, late in texts if kind == "page"]
    assert pages and all(late for _, late in pages)
    assert all("岗位无人：值班室，张老师" in text for text, _ in pages)
    assert len(pages) == len({row.person_id for row in rows if row.kind == "page"})


async def test_filling_a_planned_empty_shift_moves_its_page_to_after_the_grace(
    db: Database, district: District
) -> None:
    async with db.uow() as uow:
        shift = Shift(
            unit_id=district.units["S"],
            post="值班室",
            start=START,
            end=START + timedelta(hours=12),
            person_id=None,
        )
        uow.session.add(shift)
        await uow.commit()
    await attendance.plan_upcoming(db, now=START - timedelta(hours=2), settings=SETTINGS)
    async with db.uow() as uow:  # as a roster import or `shifts generate --replace` does
        filled = (await uow.session.exec(select(Shift))).one()
        filled.person_id = district.people["staff"]
        filled.planned_at = None
        await uow.commit()
    await attendance.plan_upcoming(db, now=START - timedelta(hours=1), settings=SETTINGS)
    async with db.uow() as uow:
        missed = (
            await uow.session.exec(
                select(Deadline).where(Deadline.key == f"shift:{shift.id}:missed")
            )
        ).one()
    assert missed.due_at == START + SETTINGS.page_after
