"""/report, /incidents and /incident N: reporting an incident and following it.

(/followup is in handlers/followups.py, /final in handlers/final_report.py, /heard in
handlers/heard.py.)

/report is a ConversationHandler on the database (handlers/conversations.py): category →
severity → what happened (the place is the reporter's unit unless changed) → when →
casualties → confirm. The fast path is four interactions: a category, a severity, one message
saying what happened, and Report on the summary that answers it (happened when /report was
sent, no casualties given). "Done" on that summary goes on to the time and the casualties.
Everything entered lives in the draft (bot/services/drafts.py); nothing reaches the incident
tables before the confirmation.
"""

from __future__ import annotations

import functools
from datetime import datetime, time, timedelta, tzinfo
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import ConversationHandler

from bot.callbacks import (
    REPORT_CATEGORIES,
    REPORT_MINUTES_AGO,
    DraftChoice,
    FollowUpOpen,
    ReportChoice,
)
from bot.config import Severity
from bot.errors import DraftGone, InvalidInput, ZhibanError
from bot.i18n import N_, Translator
from bot.services import checkins, drafts, incidents
from bot.services.incidents import (
    CATEGORY_NAMES,
    SEVERITY_NAMES,
    Category,
    IncidentLine,
    IncidentStatus,
)
from bot.services.matter_clock import clock_text, holder_text
from bot.services.page_text import FOLLOW_UP_LABEL
from handlers import draft_steps
from handlers.context import ZhibanContext
from handlers.followups import attachments_text
from handlers.replies import reply

if TYPE_CHECKING:
    from handlers.buttons import Press

REPORT = "report"
END = ConversationHandler.END
MAX_PLACE = 200


class ReportStep(IntEnum):
    """The steps of /report (WHERE is reached from WHAT, to change the place)."""

    CATEGORY = 1
    SEVERITY = 2
    WHERE = 3
    WHAT = 4
    WHEN = 5
    CASUALTIES = 6
    CONFIRM = 7


# Where Back goes from each step.
BACK = {
    ReportStep.SEVERITY: ReportStep.CATEGORY,
    ReportStep.WHERE: ReportStep.WHAT,
    ReportStep.WHAT: ReportStep.SEVERITY,
    ReportStep.WHEN: ReportStep.WHAT,
    ReportStep.CASUALTIES: ReportStep.WHEN,
    ReportStep.CONFIRM: ReportStep.CASUALTIES,
}

REPORT_PROMPT = drafts.DraftPrompt(
    warning=N_(
        "Your incident report is not sent yet and will be dropped in {time}. "
        "Send it as it is, go on, or discard it?"
    ),
    send=N_("🚨 Send the report as it is"),
    timed_out=N_(
        "Your unfinished incident report was left for {time} and has been dropped; nothing "
        "was reported. Send /report to start again."
    ),
    discarded=N_(
        "Your unfinished incident report was discarded; nothing was reported. Send /report to "
        "start it again."
    ),
)

MINUTES_LABELS = {
    0: N_("Just now"),
    10: N_("10 min ago"),
    30: N_("30 min ago"),
    60: N_("1 hour ago"),
}
CANCELLED = N_("Cancelled; nothing was reported.")
GONE = N_("This report is no longer open: it was sent, cancelled or timed out. Send /report.")


def _button(label: str, choice: ReportChoice) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=choice.data)


def _button_to(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


def _nav(tr: Translator) -> list[InlineKeyboardButton]:
    return [
        _button(tr._("↩ Back"), ReportChoice("back")),
        _button(tr._("✖ Cancel"), ReportChoice("cancel")),
    ]


def _has_deadline(context: ZhibanContext, severity: str) -> bool:
    policies = context.runtime.settings.escalation
    return severity in policies and policies[Severity(severity)].report_deadline is not None


def _described(data: dict[str, Any]) -> bool:
    return bool(data.get("texts") or data.get("attachments") or data.get("latitude") is not None)


def _occurred(data: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(data.get("occurred_at") or data["begun_at"]))


def _summary(tr: Translator, context: ZhibanContext, data: dict[str, Any]) -> str:
    tz = context.runtime.settings.bot.tz
    lines = [
        tr._(
            "{severity} · {category}",
            severity=tr._(SEVERITY_NAMES[Severity(data["severity"])]),
            category=tr._(CATEGORY_NAMES[Category(data["category"])]),
        ),
        tr._("Place: {place}", place=data.get("place") or ""),
        tr._("Happened: {time}", time=tr.datetime_text(_occurred(data), tz, "MM-dd HH:mm")),
        tr._("Casualties: {casualties}", casualties=data.get("casualties") or tr._("none given")),
    ]
    lines.extend(data.get("texts", []))
    extras = len(data.get("attachments", []))
    if extras:
        lines.append(tr._("📎 Attachments: {count}", count=extras))
    if data.get("latitude") is not None:
        lines.append(tr._("📍 Location attached"))
    return "\n".join(lines)


def _confirm_rows(
    tr: Translator, context: ZhibanContext, data: dict[str, Any]
) -> list[list[InlineKeyboardButton]]:
    rows = [[_button(tr._("🚨 Report"), ReportChoice("send"))]]
    if _has_deadline(context, str(data.get("severity"))):
        rows.append(
            [_button(tr._("⏫ Report and pass straight to the county"), ReportChoice("direct"))]
        )
    return rows


def view(
    tr: Translator, context: ZhibanContext, step: int, data: dict[str, Any]
) -> tuple[str, InlineKeyboardMarkup]:
    """What a step says and the buttons it shows."""
    nav = _nav(tr)
    rows: list[list[InlineKeyboardButton]]
    match step:
        case ReportStep.CATEGORY:
            text = tr._("🚨 Report an incident. What happened? Choose the kind.")
            labels = [
                _button(tr._(CATEGORY_NAMES[Category(c)]), ReportChoice("cat", c))
                for c in REPORT_CATEGORIES
            ]
            rows = [labels[i : i + 2] for i in range(0, len(labels), 2)]
            rows.append([_button(tr._("✖ Cancel"), ReportChoice("cancel"))])
            return text, InlineKeyboardMarkup(rows)
        case ReportStep.SEVERITY:
            text = tr._(
                "{category}. How serious is it?",
                category=tr._(CATEGORY_NAMES[Category(data["category"])]),
            )
            rows = [
                [_button(tr._(SEVERITY_NAMES[s]), ReportChoice("sev", s.value))] for s in Severity
            ]
        case ReportStep.WHERE:
            text = tr._("Where did it happen? Tap your unit, or type the place.")
            rows = [[_button(f"📍 {data.get('unit', '')}", ReportChoice("here"))]]
        case ReportStep.WHAT if _described(data):
            text = tr._(
                "Draft report:\n{summary}\n\nSend more (text, photos, voice, location), report it "
                "now, or press Done to give the time and the casualties.",
                summary=_summary(tr, context, data),
            )
            rows = [
                *_confirm_rows(tr, context, data),
                [_button(tr._("✅ Done: time and casualties"), ReportChoice("done"))],
            ]
        case ReportStep.WHAT:
            text = tr._(
                "Place: {place}. Write what happened; photos, voice notes and a location are "
                "welcome too.",
                place=data.get("place") or "",
            )
            rows = [[_button(tr._("📍 Another place"), ReportChoice("place"))]]
        case ReportStep.WHEN:
            text = tr._("When did it happen? Tap, or type the time today as HH:MM.")
            buttons = [
                _button(tr._(MINUTES_LABELS[m]), ReportChoice("ago", str(m)))
                for m in (0, *REPORT_MINUTES_AGO)
            ]
            rows = [buttons[:2], buttons[2:]]
        case ReportStep.CASUALTIES:
            text = tr._("Any casualties? Tap, or type them (for example: two pupils hurt).")
            rows = [
                [
                    _button(tr._("None"), ReportChoice("none")),
                    _button(tr._("Not known yet"), ReportChoice("unknown")),
                ]
            ]
        case _:
            text = tr._("Please check the report:\n{summary}", summary=_summary(tr, context, data))
            rows = _confirm_rows(tr, context, data)
    rows.append(nav)
    return text, InlineKeyboardMarkup(rows)


async def report_command(update: Update, context: ZhibanContext) -> int:
    """Start a report: choose the category."""
    message, me = update.effective_message, context.me
    if message is None or me is None:
        return END
    return await begin_report(update, context, message, unit_name=me.unit_name)


async def begin_report(
    update: Update,
    context: ZhibanContext,
    message: Message,
    *,
    unit_name: str,
    checkin_id: int | None = None,
) -> int:
    """Open the report's draft at `unit_name` and ask for the category.

    A report begun from a check-in's 🚨 Report a problem keeps the check-in's id: sending the
    report answers that check-in too (bot/services/checkins/answers.py).
    """
    tr = context.tr_for(update)
    data: dict[str, Any] = {
        "unit": unit_name,
        "place": unit_name,
        "begun_at": context.runtime.clock.now().isoformat(),
        "texts": [],
        "attachments": [],
    }
    if checkin_id is not None:
        data["checkin_id"] = checkin_id
    await draft_steps.begin(update, context, REPORT, ReportStep.CATEGORY, data)
    text, markup = view(tr, context, ReportStep.CATEGORY, data)
    await reply(message, text, parse_mode=None, reply_markup=markup)
    return ReportStep.CATEGORY


async def _submit(
    update: Update, context: ZhibanContext, press: Press[Any], draft: drafts.Draft, *, direct: bool
) -> int:
    """Report the incident; a refusal keeps the draft where it was."""
    me = context.me
    if me is None:
        return END
    runtime = context.runtime
    tr = context.tr_for(update)
    tz = runtime.settings.bot.tz
    now = runtime.clock.now()
    data = draft.data
    report = incidents.ReportDraft(
        category=str(data.get("category", "")),
        severity=str(data.get("severity", "")),
        place=data.get("place"),
        latitude=data.get("latitude"),
        longitude=data.get("longitude"),
        description="\n".join(data.get("texts", [])) or tr._("(see the attachments)"),
        attachments=tuple(data.get("attachments", [])),
        occurred_at=_occurred(data),
        casualties=data.get("casualties"),
        direct=direct,
    )
    # Reporting drops the draft in its own commit: a second press can never store it again.
    finishing = draft_steps.key(update, REPORT, draft)
    user = update.effective_user
    account = f"telegram:{user.id}" if user is not None else None
    try:
        if not _described(data):
            raise InvalidInput("Please say in a few words what happened.")
        checkin_id = data.get("checkin_id")
        if isinstance(checkin_id, int):
            done = (
                await checkins.report_problem(
                    runtime.db,
                    person_id=me.person_id,
                    checkin_id=checkin_id,
                    draft=report,
                    now=now,
                    policies=runtime.settings.escalation,
                    times=runtime.settings.checkins.times,
                    ctx=runtime.paging,
                    finishing=finishing,
                    account=account,
                )
            ).report
        else:
            done = await incidents.report(
                runtime.db,
                person_id=me.person_id,
                draft=report,
                now=now,
                policies=runtime.settings.escalation,
                ctx=runtime.paging,
                finishing=finishing,
                account=account,
            )
    except DraftGone:
        return await draft_steps.gone(update, context, press, GONE)
    except ZhibanError as error:
        await press.answer(error.render(tr, tz), alert=True)
        return draft.state
    lines = [
        tr._(
            "Reported: {number}. The leaders of {unit} are being paged.",
            number=done.number,
            unit=data.get("unit") or me.unit_name,
        )
    ]
    if direct:
        lines.append(tr._("It went straight to the county as well (越级直报)."))
    if done.late:
        lines.append(tr._("It came after the reporting deadline and is recorded as late (迟报)."))
    lines.append(
        tr._(
            "Add what you learn with ➕ Follow-up, or /followup {number} and your text.",
            number=done.number,
        )
    )
    follow_up = InlineKeyboardMarkup(
        [[_button_to(tr._(FOLLOW_UP_LABEL), FollowUpOpen(done.incident_id).data)]]
    )
    return await draft_steps.finished(
        update, context, press, REPORT, "\n".join(lines), follow_up, dropped=True
    )


async def on_report_button(
    update: Update, context: ZhibanContext, press: Press[ReportChoice]
) -> int:
    """A press at any step of /report."""
    runtime = context.runtime
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, REPORT)
    if draft is None:
        return await draft_steps.gone(update, context, press, GONE)
    data, step = dict(draft.data), ReportStep(draft.state)
    choice = press.button
    following: ReportStep
    match choice.action:
        case "cancel":
            return await draft_steps.dropped(update, context, press, REPORT, CANCELLED)
        case "back":
            if step not in BACK:
                await press.answer(
                    tr._("This is the first step. Press Cancel to stop reporting."), alert=True
                )
                return step
            following = BACK[step]
        case "cat":
            data["category"] = choice.value
            following = ReportStep.SEVERITY
        case "sev" if "category" in data:
            data["severity"] = choice.value
            following = ReportStep.WHAT
        case "place":
            following = ReportStep.WHERE
        case "here":
            data["place"] = data.get("unit")
            following = ReportStep.WHAT
        case "done" if _described(data):
            following = ReportStep.WHEN
        case "ago" if _described(data):
            minutes = int(choice.value)
            data["occurred_at"] = (runtime.clock.now() - timedelta(minutes=minutes)).isoformat()
            following = ReportStep.CASUALTIES
        case "none" | "unknown" if _described(data):
            data["casualties"] = None if choice.action == "none" else tr._("not known yet")
            following = ReportStep.CONFIRM
        case "send" | "direct" if "severity" in data:
            return await _submit(update, context, press, draft, direct=choice.action == "direct")
        case _:
            await press.answer(
                tr._("Please finish this step first: write what happened."), alert=True
            )
            return step
    shown = view(tr, context, following, data)
    return await draft_steps.moved(update, context, press, REPORT, following, data, shown, GONE)


def _today_at(context: ZhibanContext, text: str) -> datetime | None:
    """HH:MM today in the configured zone, or None if the text is no such time."""
    hours, colon, minutes = text.strip().replace("：", ":").partition(":")
    if not colon or not (
        hours.isascii() and hours.isdigit() and minutes.isascii() and minutes.isdigit()
    ):
        return None
    if len(minutes) != 2 or not 0 <= int(hours) <= 23 or not 0 <= int(minutes) <= 59:
        return None
    runtime = context.runtime
    tz = runtime.settings.bot.tz
    day = runtime.clock.now().astimezone(tz).date()
    return datetime.combine(day, time(int(hours), int(minutes)), tzinfo=tz)


async def _add_description(tr: Translator, message: Message, data: dict[str, Any]) -> str | None:
    """Keep a text, photo, voice note or location as part of what happened; or say why not."""
    if message.photo or message.voice:
        problem = draft_steps.attachment_problem(tr, message, len(data.get("attachments", [])))
        if problem is not None:
            return problem
    if message.text:
        data["texts"] = [*data.get("texts", []), message.text]
    elif message.photo or message.voice:
        file_id = message.photo[-1].file_id if message.photo else message.voice.file_id  # type: ignore[union-attr]
        data["attachments"] = [*data.get("attachments", []), file_id]
        if message.caption:
            data["texts"] = [*data.get("texts", []), message.caption]
    elif message.location:
        data["latitude"] = message.location.latitude
        data["longitude"] = message.location.longitude
    else:
        return tr._("Send text, photos, a voice note or a location about what happened.")
    return None


async def on_report_input(update: Update, context: ZhibanContext) -> int:
    """A message at any step of /report."""
    message = update.effective_message
    if message is None:
        return END
    runtime = context.runtime
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, REPORT)
    if draft is None:
        return await draft_steps.gone(update, context, None, GONE)
    data, step = dict(draft.data), ReportStep(draft.state)
    problem: str | None = None
    following = step
    text = (message.text or "").strip()
    match step:
        case ReportStep.CATEGORY:
            problem = tr._("Please choose one of the listed categories.")
        case ReportStep.SEVERITY:
            problem = tr._("Please choose one of the listed severities.")
        case ReportStep.WHERE if text and len(text) <= MAX_PLACE:
            data["place"] = text
            following = ReportStep.WHAT
        case ReportStep.WHERE:
            problem = tr._("Type the place in a few words, or tap your unit.")
        case ReportStep.WHAT:
            problem = await _add_description(tr, message, data)
        case ReportStep.WHEN:
            moment = _today_at(context, text)
            if moment is None:
                problem = tr._(
                    "Tap one of the buttons, or type the time as HH:MM (for example 07:45)."
                )
            elif moment > runtime.clock.now():
                problem = tr._("The time it happened cannot be in the future.")
            else:
                data["occurred_at"] = moment.isoformat()
                following = ReportStep.CASUALTIES
        case ReportStep.CASUALTIES if text and len(text) <= MAX_PLACE:
            data["casualties"] = text
            following = ReportStep.CONFIRM
        case ReportStep.CASUALTIES:
            problem = tr._("Tap one of the buttons, or say the casualties in a few words.")
        case _:
            problem = tr._("Press Report to send it, or Back to change something.")
    if problem is None and not await draft_steps.save(update, context, REPORT, following, data):
        return await draft_steps.gone(update, context, None, GONE)
    body, markup = view(tr, context, following, data)
    await reply(message, body if problem is None else problem, parse_mode=None, reply_markup=markup)
    return following


async def on_report_prompt(
    update: Update, context: ZhibanContext, press: Press[DraftChoice]
) -> int:
    """Before the timeout: send the report as it is, go on with it, or discard it."""
    return await draft_steps.answer_prompt(
        update,
        context,
        press,
        REPORT,
        send=functools.partial(_submit, direct=False),
        show=lambda tr, draft: view(tr, context, draft.state, draft.data),
        discarded=N_("The report is discarded; nothing was reported."),
    )


async def report_cancel_command(update: Update, context: ZhibanContext) -> int:
    """/cancel while reporting."""
    return await draft_steps.cancel_command(update, context, REPORT, CANCELLED)


async def on_stale_report_button(
    update: Update, context: ZhibanContext, press: Press[ReportChoice]
) -> None:
    """A /report button pressed when no report is being written."""
    await press.answer(context.tr_for(update)._(GONE), alert=True)


def line_text(tr: Translator, tz: tzinfo, line: IncidentLine) -> str:
    """One incident with its clock and who has it now, in plain text (as its pages say it)."""
    head = tr._(
        "{number} · {severity} · {category} · {unit}",
        number=line.number,
        severity=tr._(SEVERITY_NAMES[line.severity]),
        category=tr._(CATEGORY_NAMES[line.category]),
        unit=line.unit,
    )
    clock = "🕒 " + clock_text(tr, tz, line.clock)
    if line.reported_late:
        clock += " · " + tr._("⚠️ reported late (迟报)")
    # A closed incident is with nobody any more.
    holder = "" if line.status == IncidentStatus.CLOSED else holder_text(tr, line.holder)
    return "\n".join(p for p in (head, clock, "📌 " + holder if holder else "") if p)


async def incidents_command(update: Update, context: ZhibanContext) -> None:
    """/incidents: the open incidents in my scope, newest first, with their clocks."""
    message, me = update.effective_message, context.me
    if message is None or me is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    lines = await incidents.open_in_scope(
        runtime.db, person_id=me.person_id, now=runtime.clock.now()
    )
    if not lines:
        await reply(message, tr._("No open incidents in your area."), parse_mode=None)
        return
    body = "\n\n".join(line_text(tr, runtime.settings.bot.tz, line) for line in lines)
    await reply(message, tr._("Open incidents:") + "\n\n" + body, parse_mode=None)


ITEM_NAMES = {
    "report": N_("reported by {person}"),
    "follow_up": N_("follow-up by {person}"),
    "final_report": N_("final report by {person}"),
    "not_reported_by_unit": N_("recorded by {person}: not reported by the unit (漏报)"),
    "reported_late": N_("the report came late (迟报)"),
    "reached": N_("reached {unit}"),
    "reached_deadline": N_(
        "passed up by the system to {unit}: the report deadline was near; recorded late (迟报)"
    ),
    "reached_silence": N_("passed up by the system to {unit}: nobody below acknowledged"),
    "reached_phone": N_("reached {unit} by a phone call"),
    "paged": N_("paged {person}"),
    "acknowledged": N_("acknowledged by {person}"),
    "passed_up": N_("passed up by {person}"),
    "reported_direct": N_("reported straight to the county by {person}"),
    "phoned": N_("phone report recorded by {person}"),
    "phone_confirmed": N_("phone report confirmed by {person}"),
    "phone_denied": N_("phone report denied by {person}"),
    "undeliverable": N_("could not be delivered to {person}"),
    "resolved": N_("resolved by {person}"),
    "reminded": N_("paged again"),
    "closed": N_("closed"),
}


async def incident_command(update: Update, context: ZhibanContext) -> None:
    """/incident NUMBER: the incident's whole timeline."""
    message, me = update.effective_message, context.me
    if message is None or me is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    tz = runtime.settings.bot.tz
    if not context.args:
        await reply(message, tr._("Write /incident and the incident's number."), parse_mode=None)
        return
    try:
        found = await incidents.timeline(
            runtime.db,
            person_id=me.person_id,
            number_or_id=context.args[0],
            now=runtime.clock.now(),
        )
    except ZhibanError as error:
        await reply(message, error.render(tr, tz), parse_mode=None)
        return
    lines = [line_text(tr, tz, found.incident)]
    if found.incident.not_reported_by_unit:
        lines.append(tr._("⚠️ Not reported by the unit (漏报): recorded by a level above."))
    if found.incident.status == IncidentStatus.CLOSED:
        lines.append(tr._("🏁 Closed with its final report (终报)."))
    lines.append(found.description)
    if found.casualties:
        lines.append(tr._("Casualties: {casualties}", casualties=found.casualties))
    lines.append("")
    for item in found.items:
        kind = item.kind
        if kind == "reached" and f"reached_{item.how}" in ITEM_NAMES:
            kind = f"reached_{item.how}"  # by the system, or by phone: say so
        what = tr._(
            ITEM_NAMES.get(kind, kind),
            person=item.person or tr._("the system"),
            unit=item.unit or "",
        )
        if item.late and item.kind != "reported_late":
            what += " ⚠️"
        text = f"{tr.time_text(item.at, tz)} {what}"
        if item.text and item.kind in ("follow_up", "not_reported_by_unit"):
            text = tr._("{what}: {text}", what=text, text=item.text)
        if item.attachments and item.kind == "follow_up":
            text += " " + attachments_text(tr, list(item.attachments))
        lines.append(text)
    if found.final is not None:
        lines.append("")
        lines.append(tr._("🏁 Final report (终报):"))
        lines.append(
            tr._(
                "Cause: {cause}\nMeasures: {measures}\nOutcome: {outcome}",
                cause=found.final.cause,
                measures=found.final.measures,
                outcome=found.final.outcome,
            )
        )
    await reply(message, "\n".join(lines), parse_mode=None)
