"""/heard: an officer or the desk above records an incident a school never reported (漏报).

A short conversation kept in the database (handlers/conversations.py): the school (its
buttons, or its code typed), the category and severity (the same buttons' words as /report),
one message saying what happened, then Record. The `record_heard_elsewhere` use case stores
the incident marked as not reported by the school, and pages the school's duty leader and
principal to report it; the levels above follow the severity's policy. Only a township or
county officer or the county desk, for a unit below their own, may (anyone else gets one
sentence before anything is asked). Back and Cancel at every step, /cancel too.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.callbacks import REPORT_CATEGORIES, DraftChoice, FollowUpOpen, HeardChoice
from bot.config import Severity
from bot.errors import InvalidInput, ZhibanError
from bot.i18n import N_, Translator
from bot.services import drafts, incidents
from bot.services.incidents import CATEGORY_NAMES, SEVERITY_NAMES, Category
from bot.services.incidents.reporting import MAX_TEXT
from bot.services.page_text import FOLLOW_UP_LABEL
from handlers import draft_steps
from handlers.context import ZhibanContext
from handlers.draft_steps import END
from handlers.replies import reply

if TYPE_CHECKING:
    from handlers.buttons import Press

HEARD = "heard"
# More schools than this are not listed as buttons: the code is typed instead.
MAX_SCHOOL_BUTTONS = 24


class HeardState(IntEnum):
    """The steps of /heard."""

    UNIT = 1
    CATEGORY = 2
    SEVERITY = 3
    WHAT = 4
    CONFIRM = 5


BACK = {
    HeardState.CATEGORY: HeardState.UNIT,
    HeardState.SEVERITY: HeardState.CATEGORY,
    HeardState.WHAT: HeardState.SEVERITY,
    HeardState.CONFIRM: HeardState.WHAT,
}
HEARD_PROMPT = drafts.DraftPrompt(
    warning=N_(
        "Your record of an unreported incident is not sent yet and will be dropped in "
        "{time}. Record it as it is, go on, or discard it?"
    ),
    send=N_("📣 Record it as it is"),
    timed_out=N_(
        "Your unfinished record of an unreported incident was left for {time} and has been "
        "dropped; nothing was recorded. Send /heard to start again."
    ),
    discarded=N_(
        "Your unfinished record of an unreported incident was discarded; nothing was "
        "recorded. Send /heard to start it again."
    ),
)
CANCELLED = N_("Cancelled; nothing was recorded.")
GONE = N_(
    "This record is no longer open: it was sent, cancelled or timed out. Send /heard to start "
    "again."
)


def _button(label: str, choice: HeardChoice) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=choice.data)


def _summary(tr: Translator, data: dict[str, Any]) -> str:
    return tr._(
        "{severity} · {category} at {unit}, not reported by the school (漏报):\n{what}",
        severity=tr._(SEVERITY_NAMES[Severity(data["severity"])]),
        category=tr._(CATEGORY_NAMES[Category(data["category"])]),
        unit=data["unit"],
        what=data.get("what", ""),
    )


def view(tr: Translator, state: int, data: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup]:
    """What a step of /heard says and its buttons."""
    nav = [
        _button(tr._("↩ Back"), HeardChoice("back")),
        _button(tr._("✖ Cancel"), HeardChoice("cancel")),
    ]
    rows: list[list[InlineKeyboardButton]]
    match state:
        case HeardState.UNIT:
            text = tr._(
                "📣 Record an incident a school did not report (漏报). Which school? "
                "Tap it, or type its code."
            )
            labels = [
                _button(f"{name} ({code})", HeardChoice("unit", str(unit_id)))
                for unit_id, code, name in data.get("schools", [])
            ]
            rows = [labels[i : i + 2] for i in range(0, len(labels), 2)]
            rows.append([nav[1]])
            return text, InlineKeyboardMarkup(rows)
        case HeardState.CATEGORY:
            text = tr._("{unit}: what happened? Choose the kind.", unit=data["unit"])
            labels = [
                _button(tr._(CATEGORY_NAMES[Category(c)]), HeardChoice("cat", c))
                for c in REPORT_CATEGORIES
            ]
            rows = [labels[i : i + 2] for i in range(0, len(labels), 2)]
        case HeardState.SEVERITY:
            text = tr._(
                "{category}. How serious is it?",
                category=tr._(CATEGORY_NAMES[Category(data["category"])]),
            )
            rows = [
                [_button(tr._(SEVERITY_NAMES[s]), HeardChoice("sev", s.value))] for s in Severity
            ]
        case HeardState.WHAT:
            text = tr._("Write in one message what happened and how you heard of it.")
            rows = []
        case _:
            text = tr._(
                "Please check:\n{summary}\n\nRecording it pages the school to report it.",
                summary=_summary(tr, data),
            )
            rows = [[_button(tr._("📣 Record and page the school"), HeardChoice("send"))]]
    rows.append(nav)
    return text, InlineKeyboardMarkup(rows)


async def heard_command(update: Update, context: ZhibanContext) -> int | None:
    """/heard: choose the school (officers and the desk above it only)."""
    message, me = update.effective_message, context.me
    if message is None or me is None:
        return None
    runtime = context.runtime
    tr = context.tr_for(update)
    try:
        schools = await incidents.heard_elsewhere_schools(runtime.db, person_id=me.person_id)
    except ZhibanError as error:
        await reply(message, error.render(tr), parse_mode=None)
        return None
    listed = schools if len(schools) <= MAX_SCHOOL_BUTTONS else []
    data: dict[str, Any] = {
        "schools": [[s.unit_id, s.code, s.name] for s in listed],
        "begun_at": runtime.clock.now().isoformat(),
    }
    await draft_steps.begin(update, context, HEARD, HeardState.UNIT, data)
    text, markup = view(tr, HeardState.UNIT, data)
    await reply(message, text, parse_mode=None, reply_markup=markup)
    return HeardState.UNIT


async def _choose_unit(
    context: ZhibanContext, tr: Translator, data: dict[str, Any], ref: int | str
) -> str | None:
    """Put the school in the draft; the refusal in one sentence, or None."""
    assert context.me is not None
    try:
        unit = await incidents.heard_elsewhere_unit(
            context.runtime.db, person_id=context.me.person_id, code_or_id=ref
        )
    except ZhibanError as error:
        return error.render(tr)
    data["unit_id"], data["unit"] = unit.unit_id, unit.name
    return None


async def on_heard_input(update: Update, context: ZhibanContext) -> int:
    """A message at a step of /heard: a school's code, or what happened."""
    message = update.effective_message
    if message is None:
        return END
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, HEARD)
    if draft is None:
        return await draft_steps.gone(update, context, None, GONE)
    data, state = dict(draft.data), HeardState(draft.state)
    text = (message.text or "").strip()
    following = state
    problem: str | None = None
    match state:
        case HeardState.UNIT if text:
            problem = await _choose_unit(context, tr, data, text[:40])
            following = state if problem else HeardState.CATEGORY
        case HeardState.UNIT:
            problem = tr._("Tap the school, or type its code.")
        case HeardState.CATEGORY:
            problem = tr._("Please choose one of the listed categories.")
        case HeardState.SEVERITY:
            problem = tr._("Please choose one of the listed severities.")
        case HeardState.WHAT if text and len(text) <= MAX_TEXT:
            data["what"] = text
            following = HeardState.CONFIRM
        case HeardState.WHAT if text:
            problem = tr._(
                "That text is too long: keep it under {limit} characters.", limit=MAX_TEXT
            )
        case HeardState.WHAT:
            problem = tr._("Please say in a few words what happened.")
        case _:
            problem = tr._("Press Record to send it, or Back to change something.")
    if problem is None and not await draft_steps.save(update, context, HEARD, following, data):
        return await draft_steps.gone(update, context, None, GONE)
    body, markup = view(tr, following, data)
    await reply(message, body if problem is None else problem, parse_mode=None, reply_markup=markup)
    return following


async def _record(
    update: Update, context: ZhibanContext, press: Press[Any], draft: drafts.Draft
) -> int:
    """Record the incident as not reported by the school; a refusal keeps the draft."""
    assert context.me is not None
    runtime = context.runtime
    tr = context.tr_for(update)
    data = draft.data
    try:
        if "unit_id" not in data or "what" not in data:
            raise InvalidInput("Please say in a few words what happened.")
        done = await incidents.record_heard_elsewhere(
            runtime.db,
            person_id=context.me.person_id,
            unit_id=int(data["unit_id"]),
            draft=incidents.ReportDraft(
                category=str(data.get("category", "")),
                severity=str(data.get("severity", "")),
                place=str(data["unit"]),
                description=str(data["what"]),
                occurred_at=datetime.fromisoformat(str(data["begun_at"])),
            ),
            now=runtime.clock.now(),
            policies=runtime.settings.escalation,
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
        return draft.state
    recorded = tr._(
        "Recorded: {number}, not reported by {unit} (漏报). {unit} is being paged to report it.",
        number=done.number,
        unit=data["unit"],
    )
    follow_up = InlineKeyboardButton(
        tr._(FOLLOW_UP_LABEL), callback_data=FollowUpOpen(done.incident_id).data
    )
    return await draft_steps.finished(
        update, context, press, HEARD, recorded, InlineKeyboardMarkup([[follow_up]])
    )


async def on_heard_button(update: Update, context: ZhibanContext, press: Press[HeardChoice]) -> int:
    """A press at a step of /heard."""
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, HEARD)
    if draft is None:
        return await draft_steps.gone(update, context, press, GONE)
    data, state = dict(draft.data), HeardState(draft.state)
    choice = press.button
    match choice.action:
        case "cancel":
            return await draft_steps.dropped(update, context, press, HEARD, CANCELLED)
        case "back" if state in BACK:
            following = BACK[state]
        case "unit" if state == HeardState.UNIT:
            problem = await _choose_unit(context, tr, data, int(choice.value))
            if problem is not None:
                await press.answer(problem, alert=True)
                return state
            following = HeardState.CATEGORY
        case "cat" if state == HeardState.CATEGORY:
            data["category"] = choice.value
            following = HeardState.SEVERITY
        case "sev" if state == HeardState.SEVERITY:
            data["severity"] = choice.value
            following = HeardState.WHAT
        case "send" if state == HeardState.CONFIRM:
            return await _record(update, context, press, draft)
        case _:
            await press.answer(tr._("Please answer this step first."), alert=True)
            return state
    shown = view(tr, following, data)
    return await draft_steps.moved(update, context, press, HEARD, following, data, shown, GONE)


async def on_heard_prompt(update: Update, context: ZhibanContext, press: Press[DraftChoice]) -> int:
    """Before the timeout: record it as it is, go on, or discard it."""
    return await draft_steps.answer_prompt(
        update,
        context,
        press,
        HEARD,
        send=_record,
        show=lambda tr, draft: view(tr, draft.state, draft.data),
        discarded=N_("The record is discarded; nothing was recorded."),
    )


async def heard_cancel_command(update: Update, context: ZhibanContext) -> int:
    """/cancel during /heard."""
    return await draft_steps.cancel_command(update, context, HEARD, CANCELLED)


async def on_stale_button(
    update: Update, context: ZhibanContext, press: Press[HeardChoice]
) -> None:
    """A /heard button pressed when no record is being written."""
    await press.answer(context.tr_for(update)._(GONE), alert=True)
