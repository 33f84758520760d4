"""What the follow-up, final report and /heard conversations share: their draft and its prompt.

Each keeps its draft in the database through bot/services/drafts.py, keyed by conversation, chat
and person, as /report does (handlers/conversations.py tells how a conversation holds together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.ext import ConversationHandler

from bot.callbacks import DraftChoice
from bot.i18n import N_
from bot.services import drafts
from handlers.context import ZhibanContext
from handlers.replies import edit, reply

if TYPE_CHECKING:
    from handlers.buttons import Press

END = ConversationHandler.END
DRAFT_GONE = N_("This draft is no longer open: it was sent, discarded or timed out.")


def keys(update: Update) -> tuple[int, int]:
    """The chat and person a draft belongs to."""
    chat, user = update.effective_chat, update.effective_user
    return (chat.id if chat else 0, user.id if user else 0)


async def begin(
    update: Update, context: ZhibanContext, conversation: str, state: int, data: dict[str, Any]
) -> None:
    """Open a draft of `conversation` at `state` (replacing any other of this person here)."""
    chat_id, user_id = keys(update)
    runtime = context.runtime
    await drafts.begin(
        runtime.db,
        conversation=conversation,
        chat_id=chat_id,
        user_id=user_id,
        state=state,
        data=data,
        now=runtime.clock.now(),
    )


async def current(update: Update, context: ZhibanContext, conversation: str) -> drafts.Draft | None:
    """The person's open draft of `conversation` in this chat."""
    chat_id, user_id = keys(update)
    return await drafts.current(
        context.runtime.db, conversation=conversation, chat_id=chat_id, user_id=user_id
    )


async def save(
    update: Update, context: ZhibanContext, conversation: str, state: int, data: dict[str, Any]
) -> bool:
    """Store the draft's new step and data; False when the draft is gone."""
    chat_id, user_id = keys(update)
    runtime = context.runtime
    saved = await drafts.save(
        runtime.db,
        conversation=conversation,
        chat_id=chat_id,
        user_id=user_id,
        state=state,
        data=data,
        now=runtime.clock.now(),
    )
    return saved is not None


async def end(update: Update, context: ZhibanContext, conversation: str) -> None:
    """Drop the draft (sent or cancelled)."""
    chat_id, user_id = keys(update)
    runtime = context.runtime
    await drafts.end(
        runtime.db,
        conversation=conversation,
        chat_id=chat_id,
        user_id=user_id,
        now=runtime.clock.now(),
    )


async def _hand_over(update: Update, context: ZhibanContext) -> bool:
    """Pass a message to the conversation whose draft is open now; tell whether one took it.

    Starting a conversation replaces the person's draft of another one, but that other
    ConversationHandler still holds the person's state in memory, and being added earlier it
    would take their next message. When its draft is gone and another one is open, the message
    belongs to the open one.
    """
    chat_id, user_id = keys(update)
    name = await drafts.open_conversation(context.runtime.db, chat_id=chat_id, user_id=user_id)
    if name is None:
        return False
    for group in context.application.handlers.values():
        for handler in group:
            if isinstance(handler, ConversationHandler) and handler.name == name:
                check = handler.check_update(update)
                if check is None:
                    return False
                await handler.handle_update(update, context.application, check, context)
                return True
    return False


async def gone(
    update: Update, context: ZhibanContext, press: Press[Any] | None, sentence: str
) -> int:
    """Say in one sentence that the draft is no longer open, and end the conversation.

    A message meant for another conversation that is open now goes there instead.
    """
    tr = context.tr_for(update)
    if press is None and await _hand_over(update, context):
        return END
    if press is not None:
        await press.answer(tr._(sentence), alert=True)
    elif update.effective_message is not None:
        await reply(update.effective_message, tr._(sentence), parse_mode=None)
    return END


async def prompt_go_on(
    update: Update, context: ZhibanContext, press: Press[DraftChoice], conversation: str
) -> drafts.Draft | int:
    """Check that a prompt's button names the open draft; keep it open on Go on.

    Otherwise (answered) the state to stay in: an old prompt's token leaves the open draft
    where it is, and a draft that is gone ends the conversation.
    """
    draft = await current(update, context, conversation)
    if draft is None or draft.token != press.button.token:
        await press.answer(context.tr_for(update)._(DRAFT_GONE), alert=True)
        return END if draft is None else draft.state
    if press.button.action == "go_on":
        chat_id, user_id = keys(update)
        runtime = context.runtime
        await drafts.go_on(
            runtime.db,
            conversation=conversation,
            chat_id=chat_id,
            user_id=user_id,
            token=draft.token,
            now=runtime.clock.now(),
        )
    return draft


async def discarded(
    update: Update, context: ZhibanContext, press: Press[Any], conversation: str, sentence: str
) -> int:
    """Drop the draft on Discard and say so on the prompt."""
    await end(update, context, conversation)
    await press.answer()
    await edit(press.query, context.tr_for(update)._(sentence), parse_mode=None)
    return END
