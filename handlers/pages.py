"""Buttons on pages: acknowledge (接报), pass up (上报), resolve, details."""

from __future__ import annotations

import html
import re
from zoneinfo import ZoneInfo

from telegram import Update
from telegram.constants import ParseMode

from bot.errors import ZhibanError
from bot.i18n import N_, Translator
from bot.services import escalation
from bot.services.escalation import EscalationView, LevelLine, Outcome
from handlers.context import ZhibanContext

CALLBACK_PATTERN = re.compile(r"^pg:([aurdx]):(\d{1,12})$")


def outcome_text(tr: Translator, outcome: Outcome, ctx: ZhibanContext) -> str:
    """The short answer shown to whoever pressed the button."""
    tz = ctx.runtime.settings.bot.tz
    when = tr.time_text(outcome.at, tz)
    if not outcome.done_now:
        if outcome.kind == "resolved":
            return tr._("Already resolved by {name} at {time}.", name=outcome.by_name, time=when)
        return tr._("Already acknowledged by {name} at {time}.", name=outcome.by_name, time=when)
    if outcome.kind == "resolved":
        return tr._("Marked as resolved. Thank you.")
    if outcome.kind == "passed_up":
        return tr._("Passed up to the level above; they are being paged now.")
    if outcome.kind == "reported_direct":
        return tr._("Reported straight to the county; the duty desk is being paged now.")
    return tr._("Acknowledged. Paging has stopped and the others have been told.")


def details_text(tr: Translator, view: EscalationView, ctx: ZhibanContext) -> str:
    """Every page sent for this matter, who got it and what became of it."""
    tz = ctx.runtime.settings.bot.tz
    params = {
        k: v if not isinstance(v, dict) else tr._(v["msg"])
        for k, v in view.subject.what_params.items()
    }
    lines = ["<b>" + html.escape(tr._(view.subject.what, **params), quote=False) + "</b>"]
    lines.append(tr._("📍 Where: {unit}", unit=html.escape(view.place, quote=False)))
    lines.append(tr._("Started: {time}", time=tr.datetime_text(view.started_at, tz)))
    if view.acknowledged_by and view.acknowledged_at:
        lines.append(
            tr._(
                "✅ Acknowledged by {name} at {time}.",
                name=html.escape(view.acknowledged_by, quote=False),
                time=tr.time_text(view.acknowledged_at, tz),
            )
        )
    lines.append(tr._("Levels reached:"))
    for level in view.levels:
        lines.append(level_line(tr, level, tz))
    lines.append(tr._("Pages:"))
    for page in view.pages:
        state = {
            "active": tr._("waiting"),
            "closed": tr._("closed"),
            "undeliverable": tr._("could not be delivered"),
        }.get(page.status, page.status)
        lines.append(
            f"• {tr.time_text(page.at, tz)} {html.escape(page.person, quote=False)}"
            f" ({html.escape(page.unit, quote=False)}) × {page.sent_count} — {state}"
        )
    return "\n".join(lines)


_REACHED = {
    "start": N_("{unit}: reported at {time}"),
    "silence": N_("{unit}: passed up by Zhiban at {time}, nobody below acknowledged"),
    "deadline": N_("{unit}: passed up by Zhiban at {time} under the report deadline (late)"),
    "passed_up": N_("{unit}: passed up at {time}"),
    "direct": N_("{unit}: reported straight to the county at {time}"),
    "phone": N_("{unit}: reported by phone at {time}"),
}


def level_line(tr: Translator, level: LevelLine, tz: ZoneInfo) -> str:
    """One level the matter reached: how and when, and who acknowledged there."""
    reached = tr._(
        _REACHED.get(level.how, _REACHED["passed_up"]),
        unit=html.escape(level.unit, quote=False),
        time=tr.time_text(level.reached_at, tz),
    )
    if level.acknowledged_by and level.acknowledged_at:
        return (
            "• "
            + reached
            + " — "
            + tr._(
                "acknowledged by {name} at {time}",
                name=html.escape(level.acknowledged_by, quote=False),
                time=tr.time_text(level.acknowledged_at, tz),
            )
        )
    return "• " + reached + " — " + tr._("not acknowledged yet")


async def on_page_button(update: Update, context: ZhibanContext) -> None:
    """Check and carry out a press on a page's button, then answer it."""
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    tr = context.tr_for(update)
    runtime = context.runtime
    match = CALLBACK_PATTERN.match(query.data or "")
    if match is None:
        await query.answer(tr._("This button is no longer valid."), show_alert=True)
        return
    action, page_id = match.group(1), int(match.group(2))
    try:
        if action == "d":
            view = await escalation.view(
                runtime.db, external_id=query.from_user.id, page_id=page_id
            )
            await query.answer()
            if query.message is not None:
                await context.bot.send_message(
                    query.message.chat.id,
                    details_text(tr, view, context),
                    parse_mode=ParseMode.HTML,
                )
            return
        outcome = await escalation.press(
            runtime.db,
            external_id=query.from_user.id,
            action=action,
            page_id=page_id,
            now=runtime.clock.now(),
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        await query.answer(error.render(tr), show_alert=True)
        return
    runtime.wake()
    await query.answer(outcome_text(tr, outcome, context), show_alert=not outcome.done_now)
