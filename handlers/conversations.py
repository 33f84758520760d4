"""Every conversation of the product: python-telegram-bot ConversationHandlers kept in the database.

How a conversation holds together (SPEC §3):
- The state is an IntEnum per conversation, kept by bot/persistence.py in the conversation's
  `conversation_drafts` row; what the person entered lives in the same row's data, written
  by bot/services/drafts.py in each step's transaction (handlers/draft_steps.py: load, save,
  end, "no longer open"). Nothing goes in user_data.
- Buttons: a conversation registers its own CallbackQueryHandlers (by callback prefix), ahead
  of the one generic handler in handlers/buttons.py, and wraps each in
  `buttons.conversation_step`, which does what the generic handler does (refuses a press
  from another chat, decodes the data into its typed button, audits a forged one, answers
  exactly once) and returns the step's next state. A press of a conversation's button when
  the person is in no such conversation (an old message, a finished draft) is not taken by
  the ConversationHandler, so it reaches the generic handler, which says in one sentence that
  it is no longer open. This keeps one decoder and one answering rule while the conversation
  alone decides its own steps. Buttons that answer someone else's message (a colleague
  accepting a swap, a leader approving it) are not steps of anyone's conversation and stay
  with the generic handler.
- One conversation at a time per person and chat. Starting one (an entry point that returns a
  state) discards the person's other draft: the database row goes in `drafts.begin`, and
  `Conversations` makes every other ConversationHandler let go of the person, so their next
  message or press is not taken by a conversation that no longer exists. The person is told
  in one sentence which draft was discarded, right after the new conversation's first
  question. Discarding rather than asking is the choice: the person has just asked for
  something else, and the sentence says how to start the old one again.
  python-telegram-bot has no public call to end a person's conversation from outside its
  handler, so `DraftConversationHandler.let_go` does what the handler itself does when a step
  returns END (`_update_state(END, key)`): it forgets the key and marks it for the
  persistence, which then writes the end (bot/persistence.py deletes nothing that `begin`
  has not deleted already). tests/e2e/test_conversations.py holds this behaviour, so an
  upgrade of the library that changes it fails there.
- Timeout: not python-telegram-bot's `conversation_timeout`, which counts real seconds in the
  JobQueue (an injected clock cannot move it, and its job dies with the process). Each step
  re-arms two deadlines of the engine instead (bot/services/drafts.py): the prompt "Send it as
  it is / Go on / Discard" `[conversations] prompt_before` ahead, then the timeout (`timeout`
  after the last step) with a polite word. Both are database rows, so a restart keeps them,
  and they follow the injected clock. When the engine drops a draft, the ConversationHandler
  may still hold the person's state in memory; the next step finds no draft, says so in one
  sentence and ends.
- Cancel (a button, and /cancel) and Back at every step. /cancel outside any conversation
  gets one sentence (handlers/fallback.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from telegram import Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.ext._utils.types import ConversationKey

from bot.callbacks import (
    CheckinProblem,
    ClockOut,
    DailyOpen,
    DailyStep,
    DraftChoice,
    DutyLogStep,
    FinalStep,
    FollowUpOpen,
    FollowUpStep,
    HeardChoice,
    ReportChoice,
    SwapStepButton,
)
from bot.services import drafts
from bot.services.drafts import DraftPrompt
from handlers import (
    attendance,
    checkins,
    daily_reports,
    draft_steps,
    final_report,
    followups,
    heard,
    incidents,
    swaps,
)
from handlers.buttons import Press, conversation_step
from handlers.context import ZhibanContext
from handlers.replies import reply

# What each conversation says before its draft times out, when it does, and when another
# conversation discards it.
PROMPTS: Mapping[str, DraftPrompt] = {
    attendance.OUT: attendance.OUT_PROMPT,
    incidents.REPORT: incidents.REPORT_PROMPT,
    swaps.SWAP: swaps.SWAP_PROMPT,
    followups.FOLLOWUP: followups.FOLLOWUP_PROMPT,
    final_report.FINAL: final_report.FINAL_PROMPT,
    heard.HEARD: heard.HEARD_PROMPT,
    daily_reports.DAILY: daily_reports.DAILY_PROMPT,
}

PRIVATE = filters.ChatType.PRIVATE
Callback = Callable[[Update, ZhibanContext], Coroutine[Any, Any, object]]
Button = TypeVar("Button")


class DraftConversationHandler(ConversationHandler):  # type: ignore[type-arg]
    """A ConversationHandler that can let go of one person when another conversation starts."""

    def let_go(self, key: ConversationKey) -> None:
        """Forget the person's state here, as a step returning END would (persisted too)."""
        self._update_state(self.END, key)


class Conversations:
    """Every conversation's handler, so that one starting ends the others for that person."""

    def __init__(self) -> None:
        self._handlers: dict[str, DraftConversationHandler] = {}

    def handlers(self) -> list[DraftConversationHandler]:
        """The ConversationHandlers, in the order they are added to the Application."""
        return list(self._handlers.values())

    def add(self, handler: DraftConversationHandler) -> DraftConversationHandler:
        """Register a conversation (by its name)."""
        if handler.name is None or handler.name in self._handlers:
            raise ValueError("every conversation needs a name of its own")
        self._handlers[handler.name] = handler
        return handler

    def entry(self, name: str, callback: Callback) -> Callback:
        """Wrap an entry point: once it starts `name`, the person's other conversations end."""

        async def entered(update: Update, context: ZhibanContext) -> object:
            chat_id, user_id = draft_steps.keys(update)
            runtime = context.runtime
            before = await drafts.open_conversations(runtime.db, chat_id=chat_id, user_id=user_id)
            state = await callback(update, context)
            if state is None or state == ConversationHandler.END:
                return state  # nothing started: whatever was open stays open
            for other, handler in self._handlers.items():
                if other != name:
                    handler.let_go((chat_id, user_id))
            message = update.effective_message
            tr = context.tr_for(update)
            for dropped in before:
                prompt = PROMPTS.get(dropped)
                if prompt is not None and message is not None:
                    await reply(message, tr._(prompt.discarded), parse_mode=None)
            return state

        entered.__doc__ = callback.__doc__
        return entered


def _quiet(build: Callable[[], DraftConversationHandler]) -> DraftConversationHandler:
    with warnings.catch_warnings():
        # Tracking per chat and person, not per message, is meant: a conversation's buttons ride
        # on several messages of it, and any of them may be pressed.
        warnings.filterwarnings("ignore", message=".*per_message=False.*")
        return build()


def conversation_handlers() -> list[DraftConversationHandler]:
    """Every conversation, each ending the others for a person when it starts."""
    registry = Conversations()
    registry.add(_quiet(lambda: out_conversation(registry)))
    registry.add(_quiet(lambda: report_conversation(registry)))
    registry.add(_quiet(lambda: swap_conversation(registry)))
    registry.add(_quiet(lambda: followup_conversation(registry)))
    registry.add(_quiet(lambda: final_conversation(registry)))
    registry.add(_quiet(lambda: heard_conversation(registry)))
    registry.add(_quiet(lambda: daily_report_conversation(registry)))
    return registry.handlers()


def _steps(
    button: type[Button],
    on_button: Callable[[Update, ZhibanContext, Press[Button]], Awaitable[object]],
    pattern: str,
    on_prompt: Callable[[Update, ZhibanContext, Press[DraftChoice]], Awaitable[object]],
    on_input: Callback,
    typed: filters.BaseFilter = PRIVATE & ~filters.COMMAND,
) -> list[BaseHandler[Update, Any, object]]:
    """One step's handlers: its own buttons, the draft prompt's buttons, then typed input."""
    return [
        CallbackQueryHandler(conversation_step(button, on_button), pattern=pattern),
        CallbackQueryHandler(conversation_step(DraftChoice, on_prompt), pattern=r"^cv:"),
        MessageHandler(typed, on_input),
    ]


def _conversation(
    name: str,
    *,
    entry_points: list[BaseHandler[Update, Any, object]],
    states: dict[object, list[BaseHandler[Update, Any, object]]],
    on_cancel: Callback,
) -> DraftConversationHandler:
    """A persisted conversation that /cancel ends and its entry points start again."""
    return DraftConversationHandler(
        entry_points=entry_points,
        states=states,
        fallbacks=[CommandHandler("cancel", on_cancel, filters=PRIVATE)],
        name=name,
        persistent=True,
        allow_reentry=True,
    )


def out_conversation(registry: Conversations) -> DraftConversationHandler:
    """/out: write the duty log (text and photos), then Done or Nothing to report."""
    entry = registry.entry
    writing = _steps(
        DutyLogStep,
        attendance.on_out_button,
        r"^out:",
        attendance.on_out_prompt,
        attendance.on_draft_input,
        typed=PRIVATE & ~filters.COMMAND & ~filters.LOCATION,
    )
    return _conversation(
        attendance.OUT,
        entry_points=[
            CommandHandler("out", entry(attendance.OUT, attendance.out_command), filters=PRIVATE),
            CallbackQueryHandler(
                entry(attendance.OUT, conversation_step(ClockOut, attendance.on_clock_out_button)),
                pattern=r"^sh:out:",
            ),
        ],
        states={attendance.OutStep.WRITING: writing},
        on_cancel=attendance.out_cancel_command,
    )


def report_conversation(registry: Conversations) -> DraftConversationHandler:
    """/report (or 🚨 Report a problem on a check-in): kind, severity, what, when, casualties."""
    # Every step takes the same presses and input; the draft's step decides what they mean.
    steps = _steps(
        ReportChoice,
        incidents.on_report_button,
        r"^rp:",
        incidents.on_report_prompt,
        incidents.on_report_input,
    )
    return _conversation(
        incidents.REPORT,
        entry_points=[
            CommandHandler(
                "report",
                registry.entry(incidents.REPORT, incidents.report_command),
                filters=PRIVATE,
            ),
            # 🚨 Report a problem on a check-in prompt: the same report, at the check-in's unit.
            CallbackQueryHandler(
                registry.entry(
                    incidents.REPORT, conversation_step(CheckinProblem, checkins.on_problem_button)
                ),
                pattern=r"^ck:p:",
            ),
        ],
        states={step: steps for step in incidents.ReportStep},
        on_cancel=incidents.report_cancel_command,
    )


def swap_conversation(registry: Conversations) -> DraftConversationHandler:
    """/swap: one of my shifts, a colleague, confirm (their answers are plain buttons)."""
    # Only the asker's steps: sw:a/d (the colleague) and sw:y/n (the leader) are not taken here.
    steps = _steps(
        SwapStepButton,  # type: ignore[arg-type]
        swaps.on_swap_step,
        r"^sw:[sxbcp](:|$)",
        swaps.on_swap_prompt,
        swaps.on_swap_input,
    )
    return _conversation(
        swaps.SWAP,
        entry_points=[
            CommandHandler("swap", registry.entry(swaps.SWAP, swaps.swap_command), filters=PRIVATE)
        ],
        states={step: steps for step in swaps.SwapStep},
        on_cancel=swaps.swap_cancel_command,
    )


def followup_conversation(registry: Conversations) -> DraftConversationHandler:
    """/followup N (or ➕ Follow-up on a confirmation or a page): text, photos, voice; Send."""
    entry = registry.entry
    writing = _steps(
        FollowUpStep,
        followups.on_follow_up_button,
        r"^fu:[sc]$",
        followups.on_follow_up_prompt,
        followups.on_follow_up_input,
    )
    return _conversation(
        followups.FOLLOWUP,
        entry_points=[
            CommandHandler(
                "followup", entry(followups.FOLLOWUP, followups.followup_command), filters=PRIVATE
            ),
            CallbackQueryHandler(
                entry(
                    followups.FOLLOWUP,
                    conversation_step(FollowUpOpen, followups.on_follow_up_open),
                ),
                pattern=r"^fu:o:",
            ),
        ],
        states={followups.FollowUpState.WRITING: writing},
        on_cancel=followups.follow_up_cancel_command,
    )


def final_conversation(registry: Conversations) -> DraftConversationHandler:
    """/final N: cause, measures, outcome, then close the incident."""
    steps = _steps(
        FinalStep,
        final_report.on_final_button,
        r"^fr:",
        final_report.on_final_prompt,
        final_report.on_final_input,
    )
    return _conversation(
        final_report.FINAL,
        entry_points=[
            CommandHandler(
                "final",
                registry.entry(final_report.FINAL, final_report.final_command),
                filters=PRIVATE,
            )
        ],
        states={step: steps for step in final_report.FinalState},
        on_cancel=final_report.final_cancel_command,
    )


def heard_conversation(registry: Conversations) -> DraftConversationHandler:
    """/heard: the school, category, severity, what happened, then record it (漏报)."""
    steps = _steps(
        HeardChoice, heard.on_heard_button, r"^hd:", heard.on_heard_prompt, heard.on_heard_input
    )
    return _conversation(
        heard.HEARD,
        entry_points=[
            CommandHandler(
                "heard", registry.entry(heard.HEARD, heard.heard_command), filters=PRIVATE
            )
        ],
        states={step: steps for step in heard.HeardState},
        on_cancel=heard.heard_cancel_command,
    )


def daily_report_conversation(registry: Conversations) -> DraftConversationHandler:
    """📝 Submit on a daily report prompt: write it or send the listed incidents; Back, Cancel."""
    return _conversation(
        daily_reports.DAILY,
        entry_points=[
            CallbackQueryHandler(
                registry.entry(
                    daily_reports.DAILY, conversation_step(DailyOpen, daily_reports.on_open)
                ),
                pattern=r"^dy:o:",
            ),
        ],
        states={
            daily_reports.DailyState.WRITING: _steps(
                DailyStep,
                daily_reports.on_step,
                r"^dy:[sbc]$",
                daily_reports.on_prompt,
                daily_reports.on_input,
            ),
        },
        on_cancel=daily_reports.cancel_command,
    )
