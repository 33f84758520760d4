"""/final N: the final report (终报) that closes an incident — cause, measures, outcome, confirm.

A conversation kept in the database (handlers/conversations.py): one message each for the
cause, the measures taken and the outcome, then a summary with 🏁 Close the incident. Back and
Cancel at every step, /cancel too, and the draft prompt before the timeout. Who may close an
incident: whoever may resolve its pages at its unit — the unit's duty leaders, safety officers
and principal, and the township and county officers and desk above (bot/authz.py's
`PAGE_RESOLVE`); staff and administrators may not. Who may not is told in one sentence before
anything is asked, and a closed incident refuses a second final report. Nothing reaches the
incident before the confirmation, which calls the `final_report` use case: it closes the
incident, stops its paging and tells everyone paged.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.callbacks import DraftChoice, FinalStep
from bot.errors import ZhibanError
from bot.i18n import N_, Translator
from bot.services import drafts, incidents
from handlers import draft_steps
from handlers.context import ZhibanContext
from handlers.draft_steps import END
from handlers.replies import reply

if TYPE_CHECKING:
    from handlers.buttons import Press

FINAL = "final"
# Each part of a final report is one message of at most this many characters.
MAX_PART = 1000


class FinalState(IntEnum):
    """The steps of /final."""

    CAUSE = 1
    MEASURES = 2
    OUTCOME = 3
    CONFIRM = 4


PARTS = {
    FinalState.CAUSE: "cause",
    FinalState.MEASURES: "measures",
    FinalState.OUTCOME: "outcome",
}
FINAL_PROMPT = drafts.DraftPrompt(
    warning=N_(
        "Your final report is not sent yet and will be dropped in {time}. "
        "Close the incident with it as it is, go on, or discard it?"
    ),
    send=N_("🏁 Close the incident with it"),
    timed_out=N_(
        "Your unfinished final report was left for {time} and has been dropped; the "
        "incident is still open. Send /final and its number to start again."
    ),
    discarded=N_(
        "Your unfinished final report was discarded; the incident is still open. Send /final "
        "and its number to start it again."
    ),
)
CANCELLED = N_("Cancelled; the incident stays open.")
GONE = N_(
    "This final report is no longer open: it was sent, cancelled or timed out. "
    "Send /final and the incident's number."
)


def _button(label: str, action: Any) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=FinalStep(action).data)


def view(tr: Translator, state: int, data: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup]:
    """What a step of /final says and its buttons."""
    nav = [_button(tr._("↩ Back"), "back"), _button(tr._("✖ Cancel"), "cancel")]
    match state:
        case FinalState.CAUSE:
            text = tr._(
                "🏁 Final report (终报) on incident {number}. What was the cause?",
                number=data["number"],
            )
            return text, InlineKeyboardMarkup([[nav[1]]])
        case FinalState.MEASURES:
            text = tr._("What measures were taken?")
        case FinalState.OUTCOME:
            text = tr._("What was the outcome?")
        case _:
            text = tr._(
                "Final report on incident {number}:\nCause: {cause}\nMeasures: {measures}\n"
                "Outcome: {outcome}\n\nClosing it ends the incident and its paging.",
                number=data["number"],
                cause=data.get("cause", ""),
                measures=data.get("measures", ""),
                outcome=data.get("outcome", ""),
            )
            return text, InlineKeyboardMarkup(
                [[_button(tr._("🏁 Close the incident"), "send")], nav]
            )
    return text, InlineKeyboardMarkup([nav])


async def final_command(update: Update, context: ZhibanContext) -> int | None:
    """/final NUMBER: start the final report of an incident, if this person may close it."""
    message, me = update.effective_message, context.me
    if message is None or me is None:
        return None
    runtime = context.runtime
    tr = context.tr_for(update)
    if not context.args or len(context.args) != 1:
        await reply(
            message,
            tr._("Write /final and the incident's number, for example: /final 20261201-001"),
            parse_mode=None,
        )
        return None
    try:
        target = await incidents.final_report_target(
            runtime.db,
            person_id=me.person_id,
            incident_id=context.args[0],
            now=runtime.clock.now(),
        )
    except ZhibanError as error:
        await reply(message, error.render(tr, runtime.settings.bot.tz), parse_mode=None)
        return None
    data: dict[str, Any] = {"incident_id": target.incident_id, "number": target.number}
    await draft_steps.begin(update, context, FINAL, FinalState.CAUSE, data)
    text, markup = view(tr, FinalState.CAUSE, data)
    await reply(message, text, parse_mode=None, reply_markup=markup)
    return FinalState.CAUSE


async def on_final_input(update: Update, context: ZhibanContext) -> int:
    """A message at a step of /final: the cause, the measures or the outcome."""
    message = update.effective_message
    if message is None:
        return END
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, FINAL)
    if draft is None:
        return await draft_steps.gone(update, context, None, GONE)
    data, state = dict(draft.data), FinalState(draft.state)
    text = (message.text or "").strip()
    following = state
    problem: str | None = None
    if state == FinalState.CONFIRM:
        problem = tr._("Press Close the incident to send it, or Back to change something.")
    elif not text:
        problem = tr._("Please write it as a text message.")
    elif len(text) > MAX_PART:
        problem = tr._("That text is too long: keep it under {limit} characters.", limit=MAX_PART)
    else:
        data[PARTS[state]] = text
        following = FinalState(state + 1)
        if not await draft_steps.save(update, context, FINAL, following, data):
            return await draft_steps.gone(update, context, None, GONE)
    body, markup = view(tr, following, data)
    await reply(message, body if problem is None else problem, parse_mode=None, reply_markup=markup)
    return following


async def _close(
    update: Update, context: ZhibanContext, press: Press[Any], draft: drafts.Draft
) -> int:
    """Close the incident with the final report; a refusal keeps the draft where it was."""
    assert context.me is not None
    runtime = context.runtime
    tr = context.tr_for(update)
    data = draft.data
    try:
        closed = await incidents.final_report(
            runtime.db,
            person_id=context.me.person_id,
            incident_id=int(data["incident_id"]),
            cause=str(data.get("cause", "")),
            measures=str(data.get("measures", "")),
            outcome=str(data.get("outcome", "")),
            now=runtime.clock.now(),
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
        return draft.state
    closing = tr._(
        "Incident {number} is closed with its final report; everyone paged about it is told.",
        number=closed.number,
    )
    return await draft_steps.finished(update, context, press, FINAL, closing)


async def on_final_button(update: Update, context: ZhibanContext, press: Press[FinalStep]) -> int:
    """Back, Cancel or Close at a step of /final."""
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, FINAL)
    if draft is None:
        return await draft_steps.gone(update, context, press, GONE)
    state = FinalState(draft.state)
    match press.button.action:
        case "cancel":
            return await draft_steps.dropped(update, context, press, FINAL, CANCELLED)
        case "send" if state == FinalState.CONFIRM:
            return await _close(update, context, press, draft)
        case "back" if state != FinalState.CAUSE:
            following = FinalState(state - 1)
        case _:
            await press.answer(tr._("Please answer this step first."), alert=True)
            return state
    shown = view(tr, following, draft.data)
    return await draft_steps.moved(
        update, context, press, FINAL, following, draft.data, shown, GONE
    )


async def on_final_prompt(update: Update, context: ZhibanContext, press: Press[DraftChoice]) -> int:
    """Before the timeout: close with the final report as it is, go on, or discard it."""
    return await draft_steps.answer_prompt(
        update,
        context,
        press,
        FINAL,
        send=_close,
        show=lambda tr, draft: view(tr, draft.state, draft.data),
        discarded=N_("The final report is discarded; the incident stays open."),
    )


async def final_cancel_command(update: Update, context: ZhibanContext) -> int:
    """/cancel during /final."""
    return await draft_steps.cancel_command(update, context, FINAL, CANCELLED)


async def on_stale_button(update: Update, context: ZhibanContext, press: Press[FinalStep]) -> None:
    """A /final button pressed when no final report is being written."""
    await press.answer(context.tr_for(update)._(GONE), alert=True)
