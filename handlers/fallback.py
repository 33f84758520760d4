"""Whatever no command or conversation took: one sentence pointing to /help."""

from __future__ import annotations

from telegram import Update

from handlers.context import ZhibanContext
from handlers.replies import reply


async def free_input(update: Update, context: ZhibanContext) -> None:
    """Text or media outside a command and outside any conversation: not understood."""
    await not_understood(update, context)


async def not_understood(update: Update, context: ZhibanContext) -> None:
    """Answer an unknown command, text, sticker or voice message with a pointer to /help."""
    message = update.effective_message
    if message is None:
        return
    tr = context.tr_for(update)
    if message.text and message.text.startswith("/"):
        await reply(
            message,
            tr._("I don't know that command. Send /help to see what I can do."),
            parse_mode=None,
        )
    else:
        await reply(
            message,
            tr._("I didn't understand that. Send /help to see what I can do."),
            parse_mode=None,
        )


async def nothing_to_cancel(update: Update, context: ZhibanContext) -> None:
    """/cancel when no conversation is open."""
    if update.effective_message is not None:
        tr = context.tr_for(update)
        await reply(update.effective_message, tr._("There is nothing to cancel."), parse_mode=None)
