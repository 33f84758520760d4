"""Conversations kept in the database: a restart of the bot resumes each person where they were."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

from sqlmodel import select
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.clock import MovableClock
from bot.models import ConversationDraft
from bot.persistence import DatabasePersistence
from bot.sandbox.server import BotApiEmulator
from bot.sandbox.stack import SANDBOX_TOKEN
from bot.uow import Database

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


class Step(IntEnum):
    NAME = 1
    PLACE = 2


async def _begin(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> int:
    assert update.effective_message is not None
    await update.effective_message.reply_text("name?")
    return Step.NAME


async def _name(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> int:
    assert update.effective_message is not None
    await update.effective_message.reply_text("place?")
    return Step.PLACE


async def _place(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> int:
    assert update.effective_message is not None
    await update.effective_message.reply_text("done")
    return ConversationHandler.END


def _application(
    emulator: BotApiEmulator, db: Database, clock: MovableClock
) -> Application[Any, Any, Any, Any, Any, Any]:
    application = (
        ApplicationBuilder()
        .token(SANDBOX_TOKEN)
        .base_url(emulator.base_url)
        .persistence(DatabasePersistence(db, clock, update_interval=0.05))
        .build()
    )
    application.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("t", _begin)],
            states={
                Step.NAME: [MessageHandler(filters.TEXT & ~filters.COMMAND, _name)],
                Step.PLACE: [MessageHandler(filters.TEXT & ~filters.COMMAND, _place)],
            },
            fallbacks=[],
            name="test",
            persistent=True,
        )
    )
    return application


@asynccontextmanager
async def running(
    emulator: BotApiEmulator, db: Database, clock: MovableClock
) -> AsyncIterator[None]:
    application = _application(emulator, db, clock)
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            yield
        finally:
            await application.updater.stop()
            await application.stop()


async def _stored(db: Database) -> list[tuple[str, int, int | None]]:
    async with db.read() as uow:
        rows = (await uow.session.exec(select(ConversationDraft))).all()
    return [(r.conversation, r.user_id, r.state) for r in rows]


async def test_a_restart_resumes_the_conversation_at_the_same_step(db: Database) -> None:
    clock = MovableClock(T0)
    async with BotApiEmulator(clock=clock.now) as emulator:
        user = emulator.user(7001, "李老师")
        async with running(emulator, db, clock):
            await user.send("/t")
            assert (await user.wait_for()).text == "name?"
            await user.send("王")
            assert (await user.wait_for()).text == "place?"
            for _ in range(100):  # the persistence job writes within its interval
                if await _stored(db) == [("test", 7001, Step.PLACE)]:
                    break
                await asyncio.sleep(0.02)
            assert await _stored(db) == [("test", 7001, Step.PLACE)]
        clock.advance(timedelta(minutes=1))
        async with running(emulator, db, clock):  # a new process: only the database remembers
            await user.send("操场")
            assert (await user.wait_for()).text == "done"
        assert await _stored(db) == []


async def test_stale_conversations_are_not_resumed(db: Database) -> None:
    clock = MovableClock(T0)
    persistence = DatabasePersistence(db, clock, max_age=timedelta(minutes=30))
    await persistence.update_conversation("test", (7001, 7001), Step.NAME)
    await persistence.update_conversation("other", (7002, 7002), Step.PLACE)
    assert await persistence.get_conversations("test") == {(7001, 7001): Step.NAME}
    clock.advance(timedelta(minutes=31))
    assert await persistence.get_conversations("test") == {}
    # a new conversation of the same person replaces the old one; ending it removes it
    await persistence.update_conversation("other", (7001, 7001), Step.NAME)
    assert await _stored(db) == [("other", 7002, Step.PLACE), ("other", 7001, Step.NAME)]
    await persistence.update_conversation("other", (7001, 7001), None)
    assert await _stored(db) == [("other", 7002, Step.PLACE)]


async def test_a_drafted_conversation_is_never_brought_back_by_a_late_write(db: Database) -> None:
    clock = MovableClock(T0)
    persistence = DatabasePersistence(db, clock, drafted={"out"})
    # the draft timed out before the persistence job wrote the person's last step
    await persistence.update_conversation("out", (7001, 7001), Step.NAME)
    assert await _stored(db) == []
    db_row = ConversationDraft(
        conversation="out", chat_id=7001, user_id=7001, state=Step.NAME, data={}, updated_at=T0
    )
    async with db.uow() as uow:
        uow.session.add(db_row)
        await uow.commit()
    clock.advance(timedelta(minutes=5))
    await persistence.update_conversation("out", (7001, 7001), Step.PLACE)
    async with db.read() as uow:
        row = (await uow.session.exec(select(ConversationDraft))).one()
    assert (row.state, row.updated_at) == (Step.NAME, T0)  # the draft's steps write it


async def test_a_late_write_never_puts_a_draft_back_a_step_nor_deletes_a_new_one(
    db: Database,
) -> None:
    """python-telegram-bot writes the state it held when its job ran, which can lag the draft.

    A step commits its new state, then edits the message, then returns the state; the
    persistence job running in between carries the step before. Written, it made the person's
    next message an answer to that step ("Please choose one of the listed severities.").
    """
    clock = MovableClock(T0)
    persistence = DatabasePersistence(db, clock, drafted={"report"})
    async with db.uow() as uow:
        uow.session.add(
            ConversationDraft(
                conversation="report",
                chat_id=7001,
                user_id=7001,
                state=Step.PLACE,
                data={"severity": "serious"},
                updated_at=T0,
            )
        )
        await uow.commit()
    await persistence.update_conversation("report", (7001, 7001), Step.NAME)
    assert await _stored(db) == [("report", 7001, Step.PLACE)]
    # the conversation ended and was begun again before the job wrote its end
    await persistence.update_conversation("report", (7001, 7001), None)
    assert await _stored(db) == [("report", 7001, Step.PLACE)]
    assert await persistence.get_conversations("report") == {(7001, 7001): Step.PLACE}
