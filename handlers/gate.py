"""The door: who is writing, and whether the bot answers them at all.

Runs before every other handler. It reads, and puts the linked person on the context; it
writes only to track reachability (a person who blocks the bot is unreachable until they
unblock it or write again).
Strangers get one short refusal in both languages to anything but /start; group chats are
silent unless bound to a unit (or an admin is binding one). A button press is never dropped
unanswered here: presses outside a private chat go on to handlers/buttons.py, which refuses
them with one sentence.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.authz import Action
from bot.i18n import translator
from bot.services import accounts
from handlers.context import ZhibanContext
from handlers.replies import reply


def refusal(language: str | None) -> str:
    """The stranger's refusal: both languages, the reader's first."""
    first = translator(language)
    second = translator("en" if first.language == "zh" else "zh")
    return "\n".join(
        tr._(
            "You are not registered with Zhiban. "
            "Ask your school's administrator for an invite link."
        )
        for tr in (first, second)
    )


# What `_command` returns for `/cmd@another_bot`: in a group it is for that bot, not us; in a
# private chat Telegram delivers it only if typed, and it is answered like any unknown input.
ELSEWHERE = "@"


def _command(update: Update, bot_username: str) -> str | None:
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    if not text.startswith("/"):
        return None
    name, _, addressee = text.split()[0][1:].partition("@")
    if addressee and addressee.lower() != bot_username.lower():
        return ELSEWHERE
    return name.lower()


async def gate(update: Update, context: ZhibanContext) -> None:
    """Identify the sender; answer strangers and unbound groups here and stop."""
    user, chat, query = update.effective_user, update.effective_chat, update.callback_query
    if user is None or user.is_bot or (chat is None and query is None):
        raise ApplicationHandlerStop
    runtime = context.runtime
    context.me = await accounts.identify(runtime.db, external_id=user.id)
    if update.my_chat_member is not None:
        if chat is not None and chat.type == chat.PRIVATE and context.me is not None:
            # The person blocked or unblocked the bot: pages go elsewhere, or to them again.
            blocked = update.my_chat_member.new_chat_member.status == "kicked"
            await accounts.set_reachable(
                runtime.db, external_id=user.id, reachable=not blocked, now=runtime.clock.now()
            )
        raise ApplicationHandlerStop
    if context.me is not None and context.me.unreachable:
        await accounts.set_reachable(
            runtime.db, external_id=user.id, reachable=True, now=runtime.clock.now()
        )
    command = _command(update, context.bot.username)
    if query is not None and (chat is None or chat.type != chat.PRIVATE):
        return  # a press in a group or on an inline message: refused with a word in buttons.py
    if chat is not None and chat.type != chat.PRIVATE:
        if command == ELSEWHERE:
            raise ApplicationHandlerStop
        me = context.me
        if command == "bindgroup" and me is not None and me.can_anywhere(Action.ROSTER_MANAGE):
            return
        if await accounts.bound_unit(runtime.db, chat_id=chat.id) is None:
            raise ApplicationHandlerStop  # not a duty group: stay silent
        if context.me is None:
            raise ApplicationHandlerStop
        return
    if context.me is not None or command in ("start", "help"):
        return
    text = refusal(user.language_code)
    if query is not None:
        await query.answer(text[:200], show_alert=True)
    elif update.effective_message is not None:
        await reply(update.effective_message, text, parse_mode=None)
    raise ApplicationHandlerStop
