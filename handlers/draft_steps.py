"""What every conversation's steps do with their draft: load it, save it, end it, say it is gone.

A conversation (/out, /report, /swap, a follow-up, a final report, /heard) keeps what the
person entered in a draft (bot/services/drafts.py), keyed by conversation, chat and person.
These helpers take the keys from the update and the timeouts from the configuration, so a step
reads as what it decides, not as bookkeeping. The endings every conversation has alike live
here too: Cancel and /cancel (`dropped`, `cancel_command`), the draft prompt's Send as it is /
Go on / Discard (`answer_prompt`), and the confirmation once the use case is done
(`finished`). They also check input that no conversation keeps: attachments beyond the cap,
files too large to download, voice notes too long (`attachment_problem`).
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.ext import ConversationHandler
from telegram.warnings import PTBDeprecationWarning

from bot.config import ConversationSettings
from bot.i18n import N_, Translator
from bot.services import drafts
from handlers.context import ZhibanContext
from handlers.replies import edit, reply

if TYPE_CHECKING:
    from bot.callbacks import DraftChoice
    from handlers.buttons import Press

END = ConversationHandler.END

# A draft holds at most this many photos and voice notes: a report or a duty log, not an album.
MAX_ATTACHMENTS = 10
# The Bot API lets a bot download files up to 20 MB; a larger one could never be read back.
MAX_FILE_BYTES = 20 * 1024 * 1024
# A voice note is a quick word from the scene, not a recording of the whole afternoon.
MAX_VOICE_SECONDS = 10 * 60

DRAFT_GONE = N_("This draft is no longer open: it was sent, discarded or timed out.")


def keys(update: Update) -> tuple[int, int]:
    """The chat and the person a draft is kept for."""
    chat, user = update.effective_chat, update.effective_user
    return (chat.id if chat else 0, user.id if user else 0)


class _Owner(TypedDict):
    """Whose draft of which conversation: the keys every draft call takes."""

    conversation: str
    chat_id: int
    user_id: int


class _Timed(_Owner):
    """The keys, and what a draft's deadlines are counted from."""

    now: datetime
    limits: ConversationSettings


def _owner(update: Update, conversation: str) -> _Owner:
    chat_id, user_id = keys(update)
    return _Owner(conversation=conversation, chat_id=chat_id, user_id=user_id)


def _timed(update: Update, context: ZhibanContext, conversation: str) -> _Timed:
    runtime = context.runtime
    return _Timed(
        **_owner(update, conversation),
        now=runtime.clock.now(),
        limits=runtime.settings.conversations,
    )


def key(update: Update, conversation: str, draft: drafts.Draft) -> drafts.DraftKey:
    """What names this draft to the use case that finishes it (and drops it in its commit)."""
    return drafts.DraftKey(**_owner(update, conversation), token=draft.token)


async def begin(
    update: Update, context: ZhibanContext, conversation: str, state: int, data: dict[str, Any]
) -> drafts.Draft:
    """Start the person's draft of this conversation (any other draft of theirs is dropped)."""
    timed = _timed(update, context, conversation)
    return await drafts.begin(context.runtime.db, state=state, data=data, **timed)


async def load(update: Update, context: ZhibanContext, conversation: str) -> drafts.Draft | None:
    """The person's open draft of this conversation, or None when it is gone."""
    return await drafts.current(context.runtime.db, **_owner(update, conversation))


async def save(
    update: Update, context: ZhibanContext, conversation: str, state: int, data: dict[str, Any]
) -> bool:
    """Store the step and what was entered, with the full time again; False when it is gone."""
    timed = _timed(update, context, conversation)
    saved = await drafts.save(context.runtime.db, state=state, data=data, **timed)
    return saved is not None


async def go_on(
    update: Update, context: ZhibanContext, conversation: str, token: str
) -> drafts.Draft | None:
    """The prompt's Go on: the draft named by the token gets its full time again."""
    timed = _timed(update, context, conversation)
    return await drafts.go_on(context.runtime.db, token=token, **timed)


async def end(update: Update, context: ZhibanContext, conversation: str) -> bool:
    """Drop the person's draft of this conversation (sent, cancelled, discarded)."""
    runtime = context.runtime
    owner = _owner(update, conversation)
    return await drafts.end(runtime.db, now=runtime.clock.now(), **owner)


async def moved(
    update: Update,
    context: ZhibanContext,
    press: Press[Any],
    conversation: str,
    state: int,
    data: dict[str, Any],
    shown: tuple[str, InlineKeyboardMarkup],
    gone_sentence: str,
) -> int:
    """Save the draft at the step a press led to and turn its message into that step (`shown`).

    A draft that is gone meanwhile gets `gone_sentence` (a catalog id) and ends the step.
    """
    if not await save(update, context, conversation, state, data):
        return await gone(update, context, press, gone_sentence)
    text, markup = shown
    await press.answer()
    await edit(press.query, text, parse_mode=None, reply_markup=markup)
    return state


async def no_longer_open(
    update: Update, context: ZhibanContext, text: str, press: Press[Any] | None = None
) -> int:
    """Say in one sentence (already translated) that the draft is gone, and end the step."""
    if press is not None:
        await press.answer(text, alert=True)
    elif update.effective_message is not None:
        await reply(update.effective_message, text, parse_mode=None)
    return END


async def gone(
    update: Update, context: ZhibanContext, press: Press[Any] | None, sentence: str
) -> int:
    """`no_longer_open` with a catalog id: the draft is gone, said in the person's language."""
    return await no_longer_open(update, context, context.tr_for(update)._(sentence), press)


async def prompt_go_on(
    update: Update, context: ZhibanContext, press: Press[DraftChoice], conversation: str
) -> drafts.Draft | int:
    """Check that a prompt's button names the open draft; keep it open on Go on.

    Otherwise (answered) the state to stay in: an old prompt's token leaves the open draft
    where it is, and a draft that is gone ends the conversation.
    """
    draft = await load(update, context, conversation)
    if draft is None or prompt_is_stale(draft, press):
        await press.answer(context.tr_for(update)._(DRAFT_GONE), alert=True)
        return END if draft is None else draft.state
    if press.button.action == "go_on":
        await go_on(update, context, conversation, draft.token)
    return draft


async def answer_prompt(
    update: Update,
    context: ZhibanContext,
    press: Press[DraftChoice],
    conversation: str,
    *,
    send: Callable[[Update, ZhibanContext, Press[Any], drafts.Draft], Awaitable[int]],
    show: Callable[[Translator, drafts.Draft], tuple[str, InlineKeyboardMarkup]],
    discarded: str,
) -> int:
    """The draft prompt's buttons: `send` the draft as it is, go on (`show` its step), discard.

    `discarded` is the catalog id said on the prompt when the draft is discarded.
    """
    draft = await prompt_go_on(update, context, press, conversation)
    if isinstance(draft, int):
        return draft
    match press.button.action:
        case "send":
            return await send(update, context, press, draft)
        case "go_on":
            text, markup = show(context.tr_for(update), draft)
            await press.answer()
            await edit(press.query, text, parse_mode=None, reply_markup=markup)
            return draft.state
    return await dropped(update, context, press, conversation, discarded)


async def dropped(
    update: Update, context: ZhibanContext, press: Press[Any], conversation: str, sentence: str
) -> int:
    """Drop the draft on a press (Cancel, the prompt's Discard) and say so on its message."""
    await end(update, context, conversation)
    await press.answer()
    await edit(press.query, context.tr_for(update)._(sentence), parse_mode=None)
    return END


async def finished(
    update: Update,
    context: ZhibanContext,
    press: Press[Any],
    conversation: str,
    text: str,
    reply_markup: InlineKeyboardMarkup | None = None,
    *,
    dropped: bool = False,
) -> int:
    """After a draft's use case succeeded: drop the draft, wake the engine, say `text`.

    `dropped`: the use case dropped the draft in its own commit (`drafts.finish`), so there is
    nothing left to drop, and looking costs a write transaction.
    """
    if not dropped:
        await end(update, context, conversation)
    context.runtime.wake()
    await press.answer()
    await edit(press.query, text, parse_mode=None, reply_markup=reply_markup)
    return END


async def cancel_command(
    update: Update, context: ZhibanContext, conversation: str, sentence: str
) -> int:
    """/cancel during a conversation: drop its draft and say `sentence` (a catalog id)."""
    await end(update, context, conversation)
    if update.effective_message is not None:
        tr = context.tr_for(update)
        await reply(update.effective_message, tr._(sentence), parse_mode=None)
    return END


def prompt_is_stale(draft: drafts.Draft | None, press: Press[Any]) -> bool:
    """Whether a prompt's button names a draft other than the open one."""
    token = getattr(press.button, "token", None)
    return draft is None or draft.token != token


def attachment_problem(tr: Translator, message: Message, held: int) -> str | None:
    """Why a photo or voice note cannot join a draft that holds `held` already, or None."""
    size: int | None = None
    if message.photo:
        size = message.photo[-1].file_size
    elif message.voice:
        size = message.voice.file_size
        with warnings.catch_warnings():
            # PTB 22.2+ warns that `duration` becomes a timedelta; both forms are read below.
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            duration = message.voice.duration
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
        if seconds > MAX_VOICE_SECONDS:
            return tr._(
                "That voice note is longer than {minutes} minutes; nothing was added. "
                "Say it in a shorter one, or write it.",
                minutes=MAX_VOICE_SECONDS // 60,
            )
    else:
        return None
    if size is not None and size > MAX_FILE_BYTES:
        return tr._(
            "That file is larger than {megabytes} MB and cannot be kept; nothing was added.",
            megabytes=MAX_FILE_BYTES // (1024 * 1024),
        )
    if held >= MAX_ATTACHMENTS:
        return tr._(
            "This draft already holds {count} photos and voice notes, the most it can; that one "
            "was not added. Send text, or finish the draft.",
            count=MAX_ATTACHMENTS,
        )
    return None
