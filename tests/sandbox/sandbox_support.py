"""Helpers shared by the emulator tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.sandbox import BotApiEmulator

TOKEN = "123456:TEST-token"


class MovableClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 0, 3, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def _start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None and update.effective_user is not None
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("接报", callback_data="ack:7"),
                InlineKeyboardButton("详情", url="https://example.org/7"),
            ]
        ]
    )
    payload = " ".join(context.args or [])
    await update.effective_message.reply_text(
        f"你好 <b>{update.effective_user.first_name}</b> {payload}".strip(),
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
    )


async def _button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(f"收到 {query.data}")
    await query.edit_message_text(f"已接报 ({query.data})")


async def _document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_document(
        InputFile(b"id,name\n1,\xe5\xbc\xa0\n", filename="roster.csv"), caption="名册"
    )


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None and update.effective_message.text is not None
    await update.effective_message.reply_text(f"echo: {update.effective_message.text}")


def build_application(emu: BotApiEmulator) -> Application:  # type: ignore[type-arg]
    """Build a real PTB application with tiny handlers, pointed at the emulator."""
    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(emu.base_url)
        .base_file_url(emu.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", _start))
    app.add_handler(CommandHandler("doc", _document))
    app.add_handler(CallbackQueryHandler(_button))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, _echo))
    return app
