"""The last line of defence: log the failure and tell the person in one sentence."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.i18n import Translator
from handlers.context import ZhibanContext
from handlers.replies import send

log = logging.getLogger(__name__)


class AlreadyTold(Exception):
    """A handler failed and the person has been told already; only the cause is to be logged."""


def apology(tr: Translator) -> str:
    """The one sentence a person reads when something failed on our side."""
    return tr._("Sorry, something went wrong on our side. Please try again in a minute.")


async def on_error(update: object, context: ZhibanContext) -> None:
    """Log an unhandled error; the chat gets an apology, never a traceback."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(context.error, AlreadyTold):
        return
    if not isinstance(update, Update):
        return
    text = apology(context.tr_for(update))
    query, chat = update.callback_query, update.effective_chat
    if query is not None:
        try:
            await query.answer(text, show_alert=True)
            return
        except TelegramError:
            # Answered already (or too old to answer): the chat still gets the sentence.
            log.info("could not answer the press; telling the chat instead", exc_info=True)
    if chat is None:
        return
    try:
        await send(context.bot, chat.id, text, parse_mode=None)
    except TelegramError:
        log.warning("could not tell the chat about the error", exc_info=True)
