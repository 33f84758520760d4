"""Direct replies of any length: long text goes out over several messages, edits are cut short.

Every direct reply passes through bot/message_parts.py, as every outbox row does, so no text
the bot writes can exceed what Telegram accepts. The reply markup rides on the last part: its
buttons act on what was just read, and a reply keyboard removed or shown with it changes
under the whole text at once.
"""

from __future__ import annotations

from typing import Any

from telegram import Bot, CallbackQuery, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.message_parts import split_html, split_plain, truncate_html, truncate_plain


def _parts(text: str, parse_mode: str | None) -> list[str]:
    return split_html(text) if parse_mode == ParseMode.HTML else split_plain(text)


async def send(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    parse_mode: str | None = ParseMode.HTML,
    reply_markup: Any = None,
    **options: Any,
) -> Message:
    """Send `text` to a chat over as many messages as it needs; return the last one."""
    parts = _parts(text, parse_mode)
    for part in parts[:-1]:
        await bot.send_message(chat_id, part, parse_mode=parse_mode, **options)
    return await bot.send_message(
        chat_id, parts[-1], parse_mode=parse_mode, reply_markup=reply_markup, **options
    )


async def reply(
    message: Message,
    text: str,
    *,
    parse_mode: str | None = ParseMode.HTML,
    reply_markup: Any = None,
    **options: Any,
) -> Message:
    """Answer a message with `text` over as many messages as it needs; return the last one."""
    parts = _parts(text, parse_mode)
    for part in parts[:-1]:
        await message.reply_text(part, parse_mode=parse_mode, **options)
    return await message.reply_text(
        parts[-1], parse_mode=parse_mode, reply_markup=reply_markup, **options
    )


async def edit(
    query: CallbackQuery,
    text: str,
    *,
    parse_mode: str | None = ParseMode.HTML,
    reply_markup: Any = None,
) -> None:
    """Replace the text of the message a button sits on: one message, so cut short if need be."""
    short = truncate_html(text) if parse_mode == ParseMode.HTML else truncate_plain(text)
    try:
        await query.edit_message_text(short, parse_mode=parse_mode, reply_markup=reply_markup)
    except BadRequest as error:
        reason = error.message.lower()
        # A press on a photo or a file (a forged one: ours carry no buttons) has no text to
        # replace: the answer goes out as a message of its own.
        if "no text in the message to edit" in reason and isinstance(query.message, Message):
            await send(
                query.get_bot(),
                query.message.chat.id,
                text,
                parse_mode=parse_mode,
                reply_markup=reply_markup,
            )
            return
        # A second press of the same button asks for what the message already shows (Telegram
        # refuses such an edit): there is nothing left to do, and nothing went wrong.
        if "message is not modified" not in reason:
            raise
