"""The last line of defence: log the failure and tell the person in one sentence."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from handlers.context import ZhibanContext

log = logging.getLogger(__name__)


async def on_error(update: object, context: ZhibanContext) -> None:
    """Log an unhandled error; the chat gets an apology, never a traceback."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    tr = context.tr_for(update)
    text = tr._("Sorry, something went wrong on our side. Please try again in a minute.")
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        else:
            await context.bot.send_message(update.effective_chat.id, text)
    except TelegramError:
        log.warning("could not tell the chat about the error", exc_info=True)
