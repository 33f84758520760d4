"""The daily safety report (日报) in the chat: ✅ Nothing to report, and 📝 Submit's conversation.

📝 Submit on a prompt opens a conversation kept in the database (handlers/conversations.py):
write the report in a message, or press 📤 Send at once to submit the incidents the prompt
listed as they are (two taps); once something is written, ◀ Back drops it and ✖ Cancel (or
/cancel) ends without submitting. ✅ Nothing to report (零报告) submits in one tap. Who may,
and when, is decided in bot/services/daily_reports.py; a refusal is one sentence and changes
nothing.
"""

from __future__ import annotations

import html
from datetime import date
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.callbacks import DailyNothing, DailyOpen, DailyStep, DraftChoice
from bot.errors import ZhibanError
from bot.i18n import N_, Translator
from bot.services import daily_reports, drafts
from handlers import draft_steps
from handlers.context import ZhibanContext
from handlers.draft_steps import END
from handlers.replies import edit, reply

if TYPE_CHECKING:
    from handlers.buttons import Press

DAILY = "daily_report"


class DailyState(IntEnum):
    """The one step of a daily report: writing it (or sending the listed incidents as they are)."""

    WRITING = 1


DAILY_PROMPT = drafts.DraftPrompt(
    warning=N_(
        "Your daily report is not submitted yet and will be dropped in {time}. "
        "Submit it as it is, go on, or discard it?"
    ),
    send=N_("📤 Submit the daily report as it is"),
    timed_out=N_(
        "Your unfinished daily report was left for {time} and has been dropped; nothing was "
        "submitted. Press 📝 Submit on the prompt to start again."
    ),
    discarded=N_(
        "Your unfinished daily report was discarded; nothing was submitted. Press 📝 Submit on "
        "the prompt to start it again."
    ),
)
GONE = N_(
    "This daily report is no longer open: it was submitted, cancelled or timed out. "
    "Press 📝 Submit on the prompt."
)


def _buttons(tr: Translator, *, written: bool) -> InlineKeyboardMarkup:
    row = [InlineKeyboardButton(tr._("📤 Send"), callback_data=DailyStep("send").data)]
    if written:
        row.append(InlineKeyboardButton(tr._("↩ Back"), callback_data=DailyStep("back").data))
    row.append(InlineKeyboardButton(tr._("✖ Cancel"), callback_data=DailyStep("cancel").data))
    return InlineKeyboardMarkup([row])


def _day(data: dict[str, Any]) -> str:
    return date.fromisoformat(data["day"]).strftime("%m-%d")


def _draft_text(tr: Translator, data: dict[str, Any]) -> str:
    school = html.escape(data["school"], quote=False)
    text = data.get("text")
    if not text:
        return tr._(
            "Daily report of {school} for {day}: write it in one message, or press Send to submit "
            "the incidents listed as they are.",
            school=school,
            day=_day(data),
        )
    return "\n".join(
        [
            tr._("Daily report of {school} for {day}:", school=school, day=_day(data)),
            html.escape(text, quote=False),
            tr._("Press Send, write it again, or go Back."),
        ]
    )


def _submitted(tr: Translator, done: daily_reports.Submitted) -> str:
    day = done.day.strftime("%m-%d")
    if done.late:
        return tr._(
            "Submitted: the daily report of {school} for {day}, after the deadline "
            "(recorded late).",
            school=done.school,
            day=day,
        )
    return tr._("Submitted: the daily report of {school} for {day}.", school=done.school, day=day)


async def on_nothing_button(
    update: Update, context: ZhibanContext, press: Press[DailyNothing]
) -> None:
    """✅ Nothing to report (零报告): submit the day's report in one tap."""
    if context.me is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    try:
        done = await daily_reports.submit(
            runtime.db,
            person_id=context.me.person_id,
            report_id=press.button.report_id,
            now=runtime.clock.now(),
            ctx=runtime.paging,
            nothing_to_report=True,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
        return
    runtime.wake()
    await press.answer(_submitted(tr, done))


async def on_open(update: Update, context: ZhibanContext, press: Press[DailyOpen]) -> int | None:
    """📝 Submit on a prompt: open the report to write, if this person may submit it now."""
    message = update.effective_message
    if message is None or context.me is None:
        return None
    runtime = context.runtime
    tr = context.tr_for(update)
    try:
        target = await daily_reports.target(
            runtime.db,
            person_id=context.me.person_id,
            report_id=press.button.report_id,
            now=runtime.clock.now(),
            tz=runtime.settings.bot.tz,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
        return None
    data: dict[str, Any] = {
        "report_id": target.report_id,
        "school": target.school,
        "day": target.day.isoformat(),
        "text": "",
    }
    await draft_steps.begin(update, context, DAILY, DailyState.WRITING, data)
    await press.answer()
    await reply(message, _draft_text(tr, data), reply_markup=_buttons(tr, written=False))
    return DailyState.WRITING


async def on_input(update: Update, context: ZhibanContext) -> int:
    """A message while writing the daily report: its text (written again replaces it)."""
    message = update.effective_message
    if message is None:
        return END
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, DAILY)
    if draft is None:
        return await draft_steps.gone(update, context, None, GONE)
    data = dict(draft.data)
    if not message.text:
        await reply(
            message,
            tr._("Write the daily report as text, or press Send."),
            parse_mode=None,
            reply_markup=_buttons(tr, written=bool(data.get("text"))),
        )
        return DailyState.WRITING
    if len(message.text) > daily_reports.MAX_TEXT:
        await reply(
            message,
            tr._(
                "That text is too long: keep it under {limit} characters.",
                limit=daily_reports.MAX_TEXT,
            ),
            parse_mode=None,
            reply_markup=_buttons(tr, written=bool(data.get("text"))),
        )
        return DailyState.WRITING
    data["text"] = message.text
    if not await draft_steps.save(update, context, DAILY, DailyState.WRITING, data):
        return await draft_steps.gone(update, context, None, GONE)
    await reply(message, _draft_text(tr, data), reply_markup=_buttons(tr, written=True))
    return DailyState.WRITING


async def _send(
    update: Update, context: ZhibanContext, press: Press[Any], draft: drafts.Draft
) -> int:
    assert context.me is not None
    runtime = context.runtime
    tr = context.tr_for(update)
    try:
        done = await daily_reports.submit(
            runtime.db,
            person_id=context.me.person_id,
            report_id=int(draft.data["report_id"]),
            now=runtime.clock.now(),
            ctx=runtime.paging,
            text=draft.data.get("text") or None,
        )
    except ZhibanError as error:
        # Submitted by someone else meanwhile, or the day is over: nothing left to write.
        await draft_steps.end(update, context, DAILY)
        await press.answer()
        await edit(press.query, error.render(tr, runtime.settings.bot.tz), parse_mode=None)
        return END
    await draft_steps.end(update, context, DAILY)
    runtime.wake()
    await press.answer()
    await edit(press.query, _submitted(tr, done), parse_mode=None)
    return END


async def on_step(update: Update, context: ZhibanContext, press: Press[DailyStep]) -> int:
    """Send, Back or Cancel while writing the daily report."""
    draft = await draft_steps.load(update, context, DAILY)
    if draft is None:
        return await draft_steps.gone(update, context, press, GONE)
    tr = context.tr_for(update)
    match press.button.action:
        case "send":
            return await _send(update, context, press, draft)
        case "back":
            data = {**draft.data, "text": ""}
            if not await draft_steps.save(update, context, DAILY, DailyState.WRITING, data):
                return await draft_steps.gone(update, context, press, GONE)
            await press.answer()
            await edit(press.query, _draft_text(tr, data), reply_markup=_buttons(tr, written=False))
            return DailyState.WRITING
    await draft_steps.end(update, context, DAILY)
    await press.answer()
    await edit(press.query, tr._("Cancelled; the daily report was not submitted."), parse_mode=None)
    return END


async def on_prompt(update: Update, context: ZhibanContext, press: Press[DraftChoice]) -> int:
    """Before the timeout: submit the report as it is, go on with it, or discard it."""
    draft = await draft_steps.prompt_go_on(update, context, press, DAILY)
    if isinstance(draft, int):
        return draft
    match press.button.action:
        case "send":
            return await _send(update, context, press, draft)
        case "go_on":
            tr = context.tr_for(update)
            await press.answer()
            await edit(
                press.query,
                _draft_text(tr, draft.data),
                reply_markup=_buttons(tr, written=bool(draft.data.get("text"))),
            )
            return draft.state
    return await draft_steps.dropped(
        update, context, press, DAILY, N_("The daily report is discarded; nothing was submitted.")
    )


async def cancel_command(update: Update, context: ZhibanContext) -> int:
    """/cancel while writing the daily report."""
    await draft_steps.end(update, context, DAILY)
    if update.effective_message is not None:
        tr = context.tr_for(update)
        await reply(
            update.effective_message,
            tr._("Cancelled; the daily report was not submitted."),
            parse_mode=None,
        )
    return END


async def on_stale_button(update: Update, context: ZhibanContext, press: Press[DailyStep]) -> None:
    """Send, Back or Cancel of a daily report pressed when none is being written."""
    await press.answer(context.tr_for(update)._(GONE), alert=True)
