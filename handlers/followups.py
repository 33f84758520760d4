"""Follow-ups (续报): `/followup N text` at once, or a conversation of text, photos and voice notes.

`/followup NUMBER text` adds a follow-up in one message, as before. `/followup NUMBER` alone,
or the ➕ Follow-up button on a report's confirmation and on every page about an incident,
opens a conversation kept in the database (handlers/conversations.py): the person sends
text, photos and voice notes, as many messages as they like, then Send or Cancel. The draft
holds the photos' and voice notes' file ids; nothing reaches the incident's timeline before
Send. Who may: anyone whose roles cover the incident's unit, and its reporter; a closed
incident, an unknown number and one outside the person's area get one sentence before any
draft opens (bot/services/incidents/reporting.py decides).
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from bot.callbacks import DraftChoice, FollowUpOpen, FollowUpStep
from bot.errors import ZhibanError
from bot.i18n import N_, Translator
from bot.services import drafts, incidents
from bot.services.incidents.attachments import Attachment, MediaKind, count
from bot.services.incidents.reporting import MAX_TEXT
from handlers import draft_steps
from handlers.context import ZhibanContext
from handlers.draft_steps import END
from handlers.replies import reply

if TYPE_CHECKING:
    from handlers.buttons import Press

FOLLOWUP = "followup"


class FollowUpState(IntEnum):
    """The one step of a follow-up: writing (text, photos, voice notes) until Send."""

    WRITING = 1


FOLLOWUP_PROMPT = drafts.DraftPrompt(
    warning=N_(
        "Your follow-up is not sent yet and will be dropped in {time}. "
        "Send it as it is, go on, or discard it?"
    ),
    send=N_("📝 Send the follow-up as it is"),
    timed_out=N_(
        "Your unfinished follow-up was left for {time} and has been dropped; nothing was "
        "sent. Send /followup and the incident's number to start again."
    ),
    discarded=N_(
        "Your unfinished follow-up was discarded; nothing was sent. Send /followup and the "
        "incident's number to start it again."
    ),
)
CANCELLED = N_("Cancelled; the follow-up was not sent.")
GONE = N_(
    "This follow-up is no longer open: it was sent, cancelled or timed out. "
    "Send /followup and the incident's number."
)
USAGE = N_(
    "Write /followup and the incident's number, with what is new or alone to send photos and "
    "voice notes, for example: /followup 20261201-001 Two pupils taken to hospital."
)


def _buttons(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(tr._("📤 Send"), callback_data=FollowUpStep("send").data),
                InlineKeyboardButton(tr._("✖ Cancel"), callback_data=FollowUpStep("cancel").data),
            ]
        ]
    )


def attachments_text(tr: Translator, stored: list[str]) -> str:
    """The attachments as "📎 2 photos, 1 voice note"; empty when there are none."""
    counts = count(stored)
    parts = []
    if counts.photos:
        parts.append(tr.n_("{count} photo", "{count} photos", counts.photos))
    if counts.voices:
        parts.append(tr.n_("{count} voice note", "{count} voice notes", counts.voices))
    if counts.others:
        parts.append(tr.n_("{count} file", "{count} files", counts.others))
    return "📎 " + tr.list_text(parts) if parts else ""


def _draft_text(tr: Translator, data: dict[str, Any]) -> str:
    lines = [tr._("Follow-up (续报) to incident {number}:", number=data["number"])]
    lines.extend(data.get("texts", []))
    files = attachments_text(tr, data.get("attachments", []))
    if files:
        lines.append(files)
    if not data.get("texts") and not files:
        lines.append(tr._("Write what is new; photos and voice notes are welcome too."))
    else:
        lines.append(tr._("Send more, or press Send."))
    return "\n".join(lines)


async def _fast(
    message: Message, context: ZhibanContext, number: str, text: str, tr: Translator
) -> None:
    """The one-message follow-up: `/followup NUMBER text`."""
    assert context.me is not None
    runtime = context.runtime
    try:
        done = await incidents.follow_up(
            runtime.db,
            person_id=context.me.person_id,
            incident_id=number,
            text=text,
            now=runtime.clock.now(),
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        await reply(message, error.render(tr, runtime.settings.bot.tz), parse_mode=None)
        return
    runtime.wake()
    await reply(message, _added(tr, done), parse_mode=None)


def _added(tr: Translator, done: incidents.FollowedUp) -> str:
    return tr.n_(
        "Follow-up added to {number}; sent to {count} person.",
        "Follow-up added to {number}; sent to {count} people.",
        done.forwarded,
        number=done.number,
    )


async def _open(
    update: Update, context: ZhibanContext, ref: int | str
) -> tuple[str, InlineKeyboardMarkup] | str:
    """Open a follow-up draft for the incident; its first view, or the refusal."""
    assert context.me is not None
    runtime = context.runtime
    tr = context.tr_for(update)
    try:
        target = await incidents.follow_up_target(
            runtime.db, person_id=context.me.person_id, incident_id=ref, now=runtime.clock.now()
        )
    except ZhibanError as error:
        return error.render(tr, runtime.settings.bot.tz)
    data: dict[str, Any] = {
        "incident_id": target.incident_id,
        "number": target.number,
        "texts": [],
        "attachments": [],
    }
    await draft_steps.begin(update, context, FOLLOWUP, FollowUpState.WRITING, data)
    return _draft_text(tr, data), _buttons(tr)


async def followup_command(update: Update, context: ZhibanContext) -> int | None:
    """/followup NUMBER [text]: add a follow-up at once, or open one to write."""
    message = update.effective_message
    if message is None or context.me is None:
        return None
    tr = context.tr_for(update)
    number, _space, text = " ".join(context.args or []).partition(" ")
    if not number:
        await reply(message, tr._(USAGE), parse_mode=None)
        return None
    if text.strip():
        await _fast(message, context, number, text, tr)
        return None
    opened = await _open(update, context, number)
    if isinstance(opened, str):
        await reply(message, opened, parse_mode=None)
        return None
    body, markup = opened
    await reply(message, body, parse_mode=None, reply_markup=markup)
    return FollowUpState.WRITING


async def on_follow_up_open(
    update: Update, context: ZhibanContext, press: Press[FollowUpOpen]
) -> int | None:
    """➕ Follow-up on a confirmation or a page: open a follow-up to that incident."""
    message = update.effective_message
    if message is None or context.me is None:
        return None
    opened = await _open(update, context, press.button.incident_id)
    if isinstance(opened, str):
        await press.answer(opened, alert=True)
        return None
    await press.answer()
    body, markup = opened
    await reply(message, body, parse_mode=None, reply_markup=markup)
    return FollowUpState.WRITING


def _add(message: Message, data: dict[str, Any], tr: Translator) -> str | None:
    """Keep a text, photo or voice note in the draft; the problem in one sentence, or None."""
    texts: list[str] = list(data.get("texts", []))
    files: list[str] = list(data.get("attachments", []))
    attachment: Attachment | None = None
    # The same limits as every draft's: how many files, how large, how long a voice note.
    problem = draft_steps.attachment_problem(tr, message, len(files))
    if problem is not None:
        return problem
    if message.photo:
        attachment = Attachment(MediaKind.PHOTO, message.photo[-1].file_id)
    elif message.voice:
        attachment = Attachment(MediaKind.VOICE, message.voice.file_id)
    words = message.text or message.caption or ""
    if attachment is None and not message.text:
        return tr._("Send text, photos or voice notes for the follow-up.")
    if words and sum(len(t) + 1 for t in texts) + len(words) > MAX_TEXT:
        return tr._("That text is too long: keep it under {limit} characters.", limit=MAX_TEXT)
    if words:
        texts.append(words)
    if attachment is not None:
        files.append(attachment.stored)
    data["texts"], data["attachments"] = texts, files
    return None


async def on_follow_up_input(update: Update, context: ZhibanContext) -> int:
    """A message while writing a follow-up: text, a photo or a voice note."""
    message = update.effective_message
    if message is None:
        return END
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, FOLLOWUP)
    if draft is None:
        return await draft_steps.gone(update, context, None, GONE)
    data = dict(draft.data)
    problem = _add(message, data, tr)
    if problem is not None:
        await reply(message, problem, parse_mode=None, reply_markup=_buttons(tr))
        return FollowUpState.WRITING
    if not await draft_steps.save(update, context, FOLLOWUP, FollowUpState.WRITING, data):
        return await draft_steps.gone(update, context, None, GONE)
    await reply(message, _draft_text(tr, data), parse_mode=None, reply_markup=_buttons(tr))
    return FollowUpState.WRITING


async def _send(
    update: Update, context: ZhibanContext, press: Press[Any], draft: drafts.Draft
) -> int:
    """Add the follow-up to the incident; a refusal keeps the draft as it is."""
    assert context.me is not None
    runtime = context.runtime
    tr = context.tr_for(update)
    data = draft.data
    try:
        done = await incidents.follow_up(
            runtime.db,
            person_id=context.me.person_id,
            incident_id=int(data["incident_id"]),
            text="\n".join(data.get("texts", [])),
            attachments=tuple(data.get("attachments", [])),
            now=runtime.clock.now(),
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
        return draft.state
    return await draft_steps.finished(update, context, press, FOLLOWUP, _added(tr, done))


async def on_follow_up_button(
    update: Update, context: ZhibanContext, press: Press[FollowUpStep]
) -> int:
    """Send or Cancel while writing a follow-up."""
    draft = await draft_steps.load(update, context, FOLLOWUP)
    if draft is None:
        return await draft_steps.gone(update, context, press, GONE)
    if press.button.action == "send":
        return await _send(update, context, press, draft)
    return await draft_steps.dropped(update, context, press, FOLLOWUP, CANCELLED)


async def on_follow_up_prompt(
    update: Update, context: ZhibanContext, press: Press[DraftChoice]
) -> int:
    """Before the timeout: send the follow-up as it is, go on with it, or discard it."""
    return await draft_steps.answer_prompt(
        update,
        context,
        press,
        FOLLOWUP,
        send=_send,
        show=lambda tr, draft: (_draft_text(tr, draft.data), _buttons(tr)),
        discarded=N_("The follow-up is discarded; nothing was sent."),
    )


async def follow_up_cancel_command(update: Update, context: ZhibanContext) -> int:
    """/cancel while writing a follow-up."""
    return await draft_steps.cancel_command(update, context, FOLLOWUP, CANCELLED)


async def on_stale_button(
    update: Update, context: ZhibanContext, press: Press[FollowUpStep]
) -> None:
    """A follow-up's Send or Cancel pressed when none is being written."""
    await press.answer(context.tr_for(update)._(GONE), alert=True)
