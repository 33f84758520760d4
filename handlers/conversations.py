"""Every conversation of the product: python-telegram-bot ConversationHandlers kept in the database.

How a conversation holds together (SPEC §3):
- The state is an IntEnum per conversation, kept by bot/persistence.py in the conversation's
  `conversation_drafts` row; what the person entered lives in the same row's data, written
  by bot/services/drafts.py in each step's transaction. Nothing goes in user_data.
- Buttons: a conversation registers its own CallbackQueryHandlers (by callback prefix), ahead
  of the one generic handler in handlers/buttons.py, and wraps each in
  `buttons.conversation_step`, which does what the generic handler does (refuses a press
  from another chat, decodes the data into its typed button, audits a forged one, answers
  exactly once) and returns the step's next state. A press of a conversation's button when
  the person is in no such conversation (an old message, a finished draft) is not taken by
  the ConversationHandler, so it reaches the generic handler, which says in one sentence that
  it is no longer open. This keeps one decoder and one answering rule while the conversation
  alone decides its own steps.
- Timeout: not python-telegram-bot's `conversation_timeout`, which counts real seconds in the
  JobQueue (an injected clock cannot move it, and its job dies with the process). Each step
  re-arms two deadlines of the engine instead (bot/services/drafts.py): the prompt "Send it as
  it is / Go on / Discard" five minutes before, then the timeout with a polite word. Both are
  database rows, so a restart keeps them, and they follow the injected clock. When the
  engine drops a draft, the ConversationHandler may still hold the person's state in memory;
  the next step finds no draft, says so in one sentence and ends. The same happens when a
  person starts another conversation (its draft replaces theirs); the follow-up, final report
  and /heard conversations then hand such a message to the conversation whose draft is open
  (handlers/drafting.py), so it is not lost.
- Cancel (a button, and /cancel) and Back at every step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from telegram import Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.callbacks import (
    ClockOut,
    DraftChoice,
    DutyLogStep,
    FinalStep,
    FollowUpOpen,
    FollowUpStep,
    HeardChoice,
    ReportChoice,
)
from bot.services.drafts import DraftPrompt
from handlers import attendance, final_report, followups, heard, incidents
from handlers.buttons import conversation_step

# What each conversation says before its draft times out, and when it does.
PROMPTS: Mapping[str, DraftPrompt] = {
    attendance.OUT: attendance.OUT_PROMPT,
    incidents.REPORT: incidents.REPORT_PROMPT,
    followups.FOLLOWUP: followups.FOLLOWUP_PROMPT,
    final_report.FINAL: final_report.FINAL_PROMPT,
    heard.HEARD: heard.HEARD_PROMPT,
}

PRIVATE = filters.ChatType.PRIVATE


def out_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    """/out: write the duty log (text and photos), then Done or Nothing to report."""
    with warnings.catch_warnings():
        # Tracking per chat and person, not per message, is meant: the duty log's buttons ride
        # on several messages of one conversation, and any of them may be pressed.
        warnings.filterwarnings("ignore", message=".*per_message=False.*")
        return _out_conversation()


def _out_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    return ConversationHandler(
        entry_points=[
            CommandHandler("out", attendance.out_command, filters=PRIVATE),
            CallbackQueryHandler(
                conversation_step(ClockOut, attendance.on_clock_out_button), pattern=r"^sh:out:"
            ),
        ],
        states={
            attendance.OutStep.WRITING: [
                CallbackQueryHandler(
                    conversation_step(DutyLogStep, attendance.on_out_button), pattern=r"^out:"
                ),
                CallbackQueryHandler(
                    conversation_step(DraftChoice, attendance.on_out_prompt), pattern=r"^cv:"
                ),
                MessageHandler(
                    PRIVATE & ~filters.COMMAND & ~filters.LOCATION, attendance.on_draft_input
                ),
            ],
        },
        fallbacks=[CommandHandler("cancel", attendance.out_cancel_command, filters=PRIVATE)],
        name=attendance.OUT,
        persistent=True,
        allow_reentry=True,
    )


def report_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    """/report: category, severity, what happened, when, casualties, then confirm."""
    with warnings.catch_warnings():
        # Per chat and person, as for /out: each step's buttons ride on their own message.
        warnings.filterwarnings("ignore", message=".*per_message=False.*")
        return _report_conversation()


def _report_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    # Every step takes the same presses and input; the draft's step decides what they mean.
    steps: list[BaseHandler[Update, Any, object]] = [
        CallbackQueryHandler(
            conversation_step(ReportChoice, incidents.on_report_button), pattern=r"^rp:"
        ),
        CallbackQueryHandler(
            conversation_step(DraftChoice, incidents.on_report_prompt), pattern=r"^cv:"
        ),
        MessageHandler(PRIVATE & ~filters.COMMAND, incidents.on_report_input),
    ]
    return ConversationHandler(
        entry_points=[CommandHandler("report", incidents.report_command, filters=PRIVATE)],
        states={step: steps for step in incidents.ReportStep},
        fallbacks=[CommandHandler("cancel", incidents.report_cancel_command, filters=PRIVATE)],
        name=incidents.REPORT,
        persistent=True,
        allow_reentry=True,
    )


def _per_person(build: Callable[[], ConversationHandler]) -> ConversationHandler:  # type: ignore[type-arg]
    with warnings.catch_warnings():
        # Per chat and person, as for /report: each step's buttons ride on their own message.
        warnings.filterwarnings("ignore", message=".*per_message=False.*")
        return build()


def followup_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    """/followup N (or ➕ Follow-up on a confirmation or a page): text, photos, voice; Send."""
    return _per_person(_followup_conversation)


def _followup_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    return ConversationHandler(
        entry_points=[
            CommandHandler("followup", followups.followup_command, filters=PRIVATE),
            CallbackQueryHandler(
                conversation_step(FollowUpOpen, followups.on_follow_up_open), pattern=r"^fu:o:"
            ),
        ],
        states={
            followups.FollowUpState.WRITING: [
                CallbackQueryHandler(
                    conversation_step(FollowUpStep, followups.on_follow_up_button),
                    pattern=r"^fu:[sc]$",
                ),
                CallbackQueryHandler(
                    conversation_step(DraftChoice, followups.on_follow_up_prompt), pattern=r"^cv:"
                ),
                MessageHandler(PRIVATE & ~filters.COMMAND, followups.on_follow_up_input),
            ],
        },
        fallbacks=[CommandHandler("cancel", followups.follow_up_cancel_command, filters=PRIVATE)],
        name=followups.FOLLOWUP,
        persistent=True,
        allow_reentry=True,
    )


def final_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    """/final N: cause, measures, outcome, then close the incident."""
    return _per_person(_final_conversation)


def _final_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    steps: list[BaseHandler[Update, Any, object]] = [
        CallbackQueryHandler(
            conversation_step(FinalStep, final_report.on_final_button), pattern=r"^fr:"
        ),
        CallbackQueryHandler(
            conversation_step(DraftChoice, final_report.on_final_prompt), pattern=r"^cv:"
        ),
        MessageHandler(PRIVATE & ~filters.COMMAND, final_report.on_final_input),
    ]
    return ConversationHandler(
        entry_points=[CommandHandler("final", final_report.final_command, filters=PRIVATE)],
        states={step: steps for step in final_report.FinalState},
        fallbacks=[CommandHandler("cancel", final_report.final_cancel_command, filters=PRIVATE)],
        name=final_report.FINAL,
        persistent=True,
        allow_reentry=True,
    )


def heard_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    """/heard: the school, category, severity, what happened, then record it (漏报)."""
    return _per_person(_heard_conversation)


def _heard_conversation() -> ConversationHandler:  # type: ignore[type-arg]
    steps: list[BaseHandler[Update, Any, object]] = [
        CallbackQueryHandler(
            conversation_step(HeardChoice, heard.on_heard_button), pattern=r"^hd:"
        ),
        CallbackQueryHandler(
            conversation_step(DraftChoice, heard.on_heard_prompt), pattern=r"^cv:"
        ),
        MessageHandler(PRIVATE & ~filters.COMMAND, heard.on_heard_input),
    ]
    return ConversationHandler(
        entry_points=[CommandHandler("heard", heard.heard_command, filters=PRIVATE)],
        states={step: steps for step in heard.HeardState},
        fallbacks=[CommandHandler("cancel", heard.heard_cancel_command, filters=PRIVATE)],
        name=heard.HEARD,
        persistent=True,
        allow_reentry=True,
    )
