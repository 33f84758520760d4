"""/drill and /drills: start a drill (演练) at a unit in my area, end it, read the drill log."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.callbacks import DrillEnd, DrillStart
from bot.config import Severity
from bot.errors import ZhibanError
from bot.i18n import Translator
from bot.services.escalation.views import DRILL_LINE
from bot.services.incidents import SEVERITY_NAMES, drills
from handlers.context import ZhibanContext
from handlers.render import escape
from handlers.replies import edit, reply

if TYPE_CHECKING:
    from handlers.buttons import Press


def typed_severity(tr: Translator, text: str) -> Severity | None:
    """A severity typed by its key ("serious") or its name in the reader's language (重大)."""
    word = text.strip().casefold()
    for severity in Severity:
        if word in (severity.value, tr._(SEVERITY_NAMES[severity]).casefold()):
            return severity
    return None


def severity_buttons(tr: Translator, unit_id: int) -> InlineKeyboardMarkup:
    """One button per severity, most serious first."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr._(SEVERITY_NAMES[severity]),
                    callback_data=DrillStart(unit_id, severity.value).data,
                )
            ]
            for severity in Severity
        ]
    )


def started_text(tr: Translator, started: drills.DrillStarted, tz: tzinfo) -> str:
    """What the starter reads once the drill runs."""
    return "\n".join(
        [
            tr._(DRILL_LINE),
            tr._(
                "Drill No. {number} started: {severity} at {unit}. Its pages go out now, as for "
                "a real incident. It ends at {time}, and then you get its review.",
                number=started.number,
                severity=tr._(SEVERITY_NAMES[started.severity]),
                unit=escape(started.unit),
                time=tr.time_text(started.ends_at, tz),
            ),
        ]
    )


def end_button(tr: Translator, incident_id: int) -> InlineKeyboardMarkup:
    """The button that ends a drill before its set end."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    tr._("🏁 End the drill now"), callback_data=DrillEnd(incident_id).data
                )
            ]
        ]
    )


def log_text(tr: Translator, lines: list[drills.DrillLogLine], tz: tzinfo) -> str:
    """The drill log: when, where, how serious, who started it, time to first acknowledgement."""
    if not lines:
        return tr._("No drills yet in your area.")
    out = [tr._("<b>Drill log (演练记录)</b>")]
    for line in lines:
        first = (
            tr.duration_text(line.first_acknowledged_after)
            if line.first_acknowledged_after is not None
            else tr._("never acknowledged")
        )
        out.append(
            tr._(
                "{time} · No. {number} · {unit} · {severity} · started by {name} · "
                "first acknowledgement: {first}",
                time=tr.datetime_text(line.started_at, tz, "yyyy-MM-dd HH:mm"),
                number=line.number,
                unit=escape(line.unit),
                severity=tr._(SEVERITY_NAMES[line.severity]),
                name=escape(line.started_by),
                first=first,
            )
        )
    return "\n".join(out)


async def _start(
    context: ZhibanContext, tr: Translator, *, unit: int | str, severity: str, now: datetime
) -> tuple[str, InlineKeyboardMarkup | None]:
    runtime = context.runtime
    assert context.me is not None
    try:
        started = await drills.start_drill(
            runtime.db,
            person_id=context.me.person_id,
            unit_code_or_id=unit,
            severity=severity,
            now=now,
            policies=runtime.settings.escalation,
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        return error.render(tr), None
    runtime.wake()
    tz = runtime.settings.bot.tz
    return started_text(tr, started, tz), end_button(tr, started.incident_id)


async def drill_command(update: Update, context: ZhibanContext) -> None:
    """Start a drill: `/drill UNIT SEVERITY` at once, or the severities as buttons."""
    message = update.effective_message
    if message is None or context.me is None:
        return
    tr = context.tr_for(update)
    args = context.args or []
    runtime = context.runtime
    if len(args) > 2:
        await reply(
            message,
            tr._(
                "Send /drill followed by a unit code and a severity, "
                "for example /drill SB01 serious."
            ),
            parse_mode=None,
        )
        return
    lines = [tr._(DRILL_LINE)]
    if len(args) == 2:
        severity = typed_severity(tr, args[1])
        if severity is not None:
            text, markup = await _start(
                context, tr, unit=args[0], severity=severity.value, now=runtime.clock.now()
            )
            await reply(message, text, reply_markup=markup)
            return
        lines.append(tr._("Please choose one of the listed severities."))
    try:
        target = await drills.drill_target(
            runtime.db, person_id=context.me.person_id, unit_code_or_id=args[0] if args else None
        )
    except ZhibanError as error:
        await reply(message, error.render(tr), parse_mode=None)
        return
    lines.append(tr._("Start a drill at {unit}: how serious?", unit=escape(target.unit)))
    await reply(message, "\n".join(lines), reply_markup=severity_buttons(tr, target.unit_id))


async def on_drill_button(
    update: Update, context: ZhibanContext, press: Press[DrillStart | DrillEnd]
) -> None:
    """Start a drill of the pressed severity, or end one now."""
    if context.me is None:
        return
    tr = context.tr_for(update)
    runtime = context.runtime
    now = runtime.clock.now()
    button = press.button
    if isinstance(button, DrillStart):
        text, markup = await _start(
            context, tr, unit=button.unit_id, severity=button.severity, now=now
        )
        await press.answer()
        await edit(press.query, text, reply_markup=markup)
        return
    try:
        review = await drills.end_drill(
            runtime.db,
            person_id=context.me.person_id,
            incident_id=button.incident_id,
            now=now,
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr), alert=True)
        return
    runtime.wake()
    await press.answer()
    await edit(
        press.query,
        "\n".join(
            [
                tr._(DRILL_LINE),
                tr._(
                    "Drill No. {number} ended; its review follows.",
                    number=review.number,
                ),
            ]
        ),
    )


async def drills_command(update: Update, context: ZhibanContext) -> None:
    """Show the drill log of my area."""
    message = update.effective_message
    if message is None or context.me is None:
        return
    tr = context.tr_for(update)
    runtime = context.runtime
    try:
        lines = await drills.drill_log(runtime.db, person_id=context.me.person_id)
    except ZhibanError as error:
        await reply(message, error.render(tr), parse_mode=None)
        return
    await reply(message, log_text(tr, lines, runtime.settings.bot.tz))
