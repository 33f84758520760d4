"""Buttons on pages: acknowledge (接报), pass up (上报), resolve, details."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from bot.callbacks import PageButton, PhoneButton, PhoneCallee, PhoneConfirm, PhoneWhen
from bot.errors import ZhibanError
from bot.i18n import N_, Translator
from bot.services import escalation
from bot.services.escalation import EscalationView, LevelLine, Outcome, phone
from bot.services.escalation.phone import AGO_CHOICES, Callee
from bot.services.outbox import Button
from handlers.context import ZhibanContext
from handlers.render import role_name
from handlers.replies import edit, send

if TYPE_CHECKING:
    from handlers.buttons import Press


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
    if outcome.others_told:
        return tr._("Acknowledged. Paging has stopped and the others have been told.")
    return tr._("Acknowledged. Paging has stopped.")


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


async def on_page_button(update: Update, context: ZhibanContext, press: Press[PageButton]) -> None:
    """Check and carry out a press on a page's button, then answer it."""
    query = press.query
    tr = context.tr_for(update)
    runtime = context.runtime
    action, page_id = press.button.action, press.button.page_id
    try:
        if action == "p":
            await _ask_whom(update, context, press)
            return
        if action == "d":
            view = await escalation.view(
                runtime.db, external_id=query.from_user.id, page_id=page_id
            )
            await press.answer()
            if query.message is not None:
                await send(context.bot, query.message.chat.id, details_text(tr, view, context))
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
        await press.answer(error.render(tr), alert=True)
        return
    runtime.wake()
    await press.answer(outcome_text(tr, outcome, context), alert=not outcome.done_now)


_AGO_LABELS = {
    0: N_("just now"),
    5: N_("5 min ago"),
    10: N_("10 min ago"),
    15: N_("15 min ago"),
    30: N_("30 min ago"),
    60: N_("1 hour ago"),
}


def callee_buttons(tr: Translator, page_id: int, people: list[Callee]) -> list[list[Button]]:
    """One button per person at the level above, with their role."""
    return [
        [
            Button(
                f"{person.name} · {role_name(tr, person.role)}",
                PhoneCallee(page_id, person.person_id).data,
            )
        ]
        for person in people
    ]


def when_buttons(tr: Translator, page_id: int, callee_id: int) -> list[list[Button]]:
    """When the call was made, in a few coarse choices (the timeline keeps the exact press)."""
    choices = [
        Button(tr._(_AGO_LABELS[minutes]), PhoneWhen(page_id, callee_id, minutes).data)
        for minutes in AGO_CHOICES
    ]
    return [choices[:3], choices[3:]]


def _markup(rows: list[list[Button]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in rows]
    )


async def _ask_whom(update: Update, context: ZhibanContext, press: Press[PageButton]) -> None:
    """Start "reported by phone": ask whom at the level above the leader called."""
    query, page_id = press.query, press.button.page_id
    tr = context.tr_for(update)
    people = await phone.callees(
        context.runtime.db, external_id=query.from_user.id, page_id=page_id
    )
    if not people:
        await press.answer(tr._("Nobody at the level above is on the roster."), alert=True)
        return
    await press.answer()
    if query.message is not None:
        await send(
            context.bot,
            query.message.chat.id,
            tr._("📞 Whom did you call?"),
            parse_mode=None,
            reply_markup=_markup(callee_buttons(tr, page_id, people)),
        )


async def on_phone_button(
    update: Update, context: ZhibanContext, press: Press[PhoneButton]
) -> None:
    """The taps of "reported by phone": whom, then when; the last one records it."""
    query, button = press.query, press.button
    tr = context.tr_for(update)
    runtime = context.runtime
    try:
        if isinstance(button, PhoneCallee):
            await press.answer()
            await edit(
                query,
                tr._("📞 When was the call?"),
                parse_mode=None,
                reply_markup=_markup(when_buttons(tr, button.page_id, button.callee_id)),
            )
            return
        outcome = await phone.press_record(
            runtime.db,
            external_id=query.from_user.id,
            page_id=button.page_id,
            callee_id=button.callee_id,
            minutes_ago=button.minutes_ago,
            now=runtime.clock.now(),
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr), alert=True)
        return
    runtime.wake()
    await press.answer()
    await edit(
        query,
        tr._(
            "📞 Recorded: you called {name} at {time}. They are asked to confirm it.",
            name=html.escape(outcome.callee, quote=False),
            time=tr.time_text(outcome.at, runtime.settings.bot.tz),
        ),
    )


async def on_phone_confirm(
    update: Update, context: ZhibanContext, press: Press[PhoneConfirm]
) -> None:
    """The person phoned answers whether the call reached them."""
    query = press.query
    tr = context.tr_for(update)
    runtime = context.runtime
    try:
        outcome = await phone.press_confirm(
            runtime.db,
            external_id=query.from_user.id,
            event_id=press.button.event_id,
            received=press.button.received,
            now=runtime.clock.now(),
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr), alert=True)
        return
    runtime.wake()
    if outcome.kind == "already":
        await press.answer(tr._("You have answered this already."), alert=True)
        return
    answer = (
        tr._("Thank you: the phone report is confirmed and counts as acknowledged.")
        if outcome.kind == "confirmed"
        else tr._("Noted: the caller has been told.")
    )
    await press.answer(answer)
    if isinstance(query.message, Message) and query.message.text is not None:
        await edit(query, query.message.text_html + "\n\n" + html.escape(answer, quote=False))
