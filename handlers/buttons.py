"""Every button press: decoded once, refused outside the presser's own chat, answered once.

Which chat a button acts in: every button Zhiban sends today is personal — a reminder, a page,
a swap request, a step of /lang, /out or /swap — and goes to one person's private chat. So a
press acts only when it comes from the message's own private chat, `query.message.chat.id ==
query.from_user.id`. A press on a message in a group (someone can forge `lang:en` on the bot's
message in a duty group), on an inline message (no chat), or on a chat that is not the
presser's own is refused with one sentence and changes nothing. A button meant for a group
would need its own rule here.

Every press gets exactly one answer (`answerCallbackQuery`), so no client is left with a
spinning button: `Answer` gives it once, and anything said later goes to the chat as a message;
a press the handler left unanswered is answered empty at the end; when a handler raises, the
person reads the apology here (as the answer, or as a message once the answer was given) and
the error handler only logs. A press that waited longer than Telegram keeps it open (a storm
of presses handled one at a time) cannot be answered any more; that is no failure of what the
press did, so the handler goes on and its messages and edits still reach the chat.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from telegram import CallbackQuery, Update
from telegram.error import BadRequest, TelegramError

from bot import callbacks
from bot.callbacks import (
    BoardPage,
    ButtonData,
    CheckinNormal,
    CheckinProblem,
    ClockIn,
    ClockOut,
    DailyNothing,
    DailyOpen,
    DailyStep,
    DraftChoice,
    DrillEnd,
    DrillStart,
    DutyLogStep,
    FinalStep,
    FollowUpOpen,
    FollowUpStep,
    HeardChoice,
    InvalidButton,
    Language,
    PageButton,
    PhoneCallee,
    PhoneConfirm,
    PhoneWhen,
    ReportChoice,
    SwapAnswer,
    SwapBack,
    SwapCancel,
    SwapConfirm,
    SwapDecision,
    SwapOffer,
    SwapShift,
    UnitPage,
)
from bot.i18n import Translator
from bot.services import refusals
from handlers import (
    attendance,
    board,
    checkins,
    daily_reports,
    draft_steps,
    drills,
    final_report,
    followups,
    heard,
    incidents,
    pages,
    people,
    swaps,
)
from handlers.context import ZhibanContext
from handlers.errors import AlreadyTold, apology
from handlers.replies import send

B = TypeVar("B")


class Answer:
    """The one answer a press gets; whatever is said after it goes to the chat as a message."""

    def __init__(self, query: CallbackQuery) -> None:
        self._query = query
        self.given = False

    async def __call__(self, text: str | None = None, *, alert: bool = False) -> None:
        """Answer the press (a toast, or an alert to dismiss), or write to the chat if answered."""
        if not self.given:
            self.given = True
            try:
                await self._query.answer(text, show_alert=alert)
                return
            except BadRequest as error:
                if "query is too old" not in error.message.lower():
                    raise
                # The press waited in line longer than Telegram keeps it open (a storm of
                # presses): it can no longer be answered, but what it did still stands and the
                # handler goes on; what the answer would have said goes to the chat instead.
        message = self._query.message
        if text and message is not None:
            await send(self._query.get_bot(), message.chat.id, text, parse_mode=None)


@dataclass(frozen=True)
class Press(Generic[B]):
    """A press on one of Zhiban's buttons: the query, what the button says, and its answer."""

    query: CallbackQuery
    button: B
    answer: Answer


def own_chat(query: CallbackQuery) -> bool:
    """Whether the press comes from the presser's own private chat with the bot."""
    return query.message is not None and query.message.chat.id == query.from_user.id


async def _receive(update: Update, context: ZhibanContext) -> Press[ButtonData] | None:
    """Decode a press made in the presser's own chat; refuse (answered, audited) anything else."""
    query = update.callback_query
    if query is None:
        return None
    tr = context.tr_for(update)
    answer = Answer(query)
    runtime = context.runtime
    if not own_chat(query):
        await answer(tr._("This button works only in your own chat with Zhiban."), alert=True)
        await refusals.press_refused(
            runtime.db,
            external_id=query.from_user.id,
            data=query.data,
            reason="not the presser's own chat",
            now=runtime.clock.now(),
        )
        return None
    try:
        button = callbacks.decode(query.data)
    except InvalidButton as error:
        await answer(error.render(tr), alert=True)
        await refusals.press_refused(
            runtime.db,
            external_id=query.from_user.id,
            data=query.data,
            reason="not a button of ours",
            now=runtime.clock.now(),
        )
        return None
    return Press(query, button, answer)


async def on_button(update: Update, context: ZhibanContext) -> None:
    """Decode a press, check where it was made, and hand it to its handler."""
    press = await _receive(update, context)
    if press is None:
        return
    tr = context.tr_for(update)  # the apology in the language the press was made in
    try:
        await _dispatch(update, context, press.query, press.button, press.answer)
        if not press.answer.given:
            await press.answer()
    except Exception as error:
        await _apologise(press.answer, tr)
        raise AlreadyTold from error


def conversation_step(
    kind: type[B], step: Callable[[Update, ZhibanContext, Press[B]], Awaitable[object]]
) -> Callable[[Update, ZhibanContext], Coroutine[Any, Any, object]]:
    """A press as one step of a ConversationHandler, with the guarantees of `on_button`.

    Refused, forged and foreign presses are answered, audited and leave the step where it is
    (None); otherwise `step` runs and its result is the conversation's next state.
    """

    async def pressed(update: Update, context: ZhibanContext) -> object:
        press = await _receive(update, context)
        if press is None:
            return None
        tr = context.tr_for(update)
        if not isinstance(press.button, kind):
            await press.answer(InvalidButton().render(tr), alert=True)
            return None
        try:
            state = await step(update, context, Press(press.query, press.button, press.answer))
            if not press.answer.given:
                await press.answer()
        except Exception as error:
            await _apologise(press.answer, tr)
            raise AlreadyTold from error
        return state

    pressed.__doc__ = step.__doc__
    return pressed


async def _apologise(answer: Answer, tr: Translator) -> None:
    # The error handler logs the cause; the chat itself may be what is failing.
    with suppress(TelegramError):
        await answer(apology(tr), alert=True)


async def _dispatch(
    update: Update,
    context: ZhibanContext,
    query: CallbackQuery,
    button: ButtonData,
    answer: Answer,
) -> None:
    def press(data: B) -> Press[B]:
        return Press(query, data, answer)

    match button:
        case Language():
            await people.on_language_button(update, context, press(button))
        case ClockIn():
            await attendance.on_clock_in_button(update, context, press(button))
        case ClockOut():
            await attendance.on_clock_out_button(update, context, press(button))
        case DutyLogStep():
            await attendance.on_out_button(update, context, press(button))
        case DraftChoice():
            # A prompt's button pressed outside its conversation: the draft is already gone.
            await answer(context.tr_for(update)._(draft_steps.DRAFT_GONE), alert=True)
        case SwapCancel() | SwapBack() | SwapConfirm() | SwapShift() | SwapOffer():
            # A step of /swap pressed outside its conversation: the swap is no longer open.
            await swaps.on_stale_swap_step(update, context, press(button))
        case SwapAnswer() | SwapDecision():
            await swaps.on_swap_answer(update, context, press(button))
        case PageButton():
            await pages.on_page_button(update, context, press(button))
        case PhoneCallee() | PhoneWhen():
            await pages.on_phone_button(update, context, press(button))
        case PhoneConfirm():
            await pages.on_phone_confirm(update, context, press(button))
        case UnitPage():
            await people.on_unit_page_button(update, context, press(button))
        case BoardPage():
            await board.on_board_button(update, context, press(button))
        case ReportChoice():
            await incidents.on_stale_report_button(update, context, press(button))
        case DrillStart() | DrillEnd():
            await drills.on_drill_button(update, context, press(button))
        case FollowUpStep():
            await followups.on_stale_button(update, context, press(button))
        case FinalStep():
            await final_report.on_stale_button(update, context, press(button))
        case HeardChoice():
            await heard.on_stale_button(update, context, press(button))
        case FollowUpOpen() | DailyOpen():
            # Taken by a conversation's entry point (handlers/conversations.py).
            await answer(InvalidButton().render(context.tr_for(update)), alert=True)
        case DailyNothing():
            await daily_reports.on_nothing_button(update, context, press(button))
        case DailyStep():
            await daily_reports.on_stale_button(update, context, press(button))
        case CheckinNormal():
            await checkins.on_normal_button(update, context, press(button))
        case CheckinProblem():
            # Taken by the report conversation's entry point (handlers/conversations.py).
            await answer(InvalidButton().render(context.tr_for(update)), alert=True)
