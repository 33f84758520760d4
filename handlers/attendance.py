"""/shifts, /in and /out: my shifts, clocking in (with location where needed), the duty log."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)

from bot.authz import Action
from bot.callbacks import ClockIn, ClockOut, DutyLogStep
from bot.errors import ZhibanError
from bot.i18n import Translator
from bot.services import attendance, drafts
from bot.services.attendance import ClockedIn, EmptyDutyLog, Location, NeedLocation, ShiftLine
from handlers.context import ZhibanContext
from handlers.render import escape
from handlers.replies import edit, reply, send

if TYPE_CHECKING:
    from handlers.buttons import Press

OUT = "out"
OUT_COLLECTING = 1


def _span(tr: Translator, line: ShiftLine, tz: ZoneInfo) -> str:
    return f"{tr.datetime_text(line.start, tz, 'MM-dd HH:mm')}–{tr.time_text(line.end, tz)}"


def _status(tr: Translator, line: ShiftLine, tz: ZoneInfo) -> str:
    if line.clock_out_at is not None:
        return tr._(
            "✅ in {time}, out {out}",
            time=tr.time_text(line.clock_in_at or line.start, tz),
            out=tr.time_text(line.clock_out_at, tz),
        )
    if line.clock_in_at is not None:
        when = tr.time_text(line.clock_in_at, tz)
        if line.late_minutes:
            return tr.n_(
                "✅ in {time}, {count} minute late",
                "✅ in {time}, {count} minutes late",
                line.late_minutes,
                time=when,
            )
        return tr._("✅ in {time}", time=when)
    return ""


def shifts_text(
    tr: Translator,
    mine: list[ShiftLine],
    units: list[tuple[str, list[ShiftLine]]],
    tz: ZoneInfo,
    now: datetime,
) -> str:
    """My coming shifts, and for leaders the day of their units."""
    lines = [tr._("<b>My shifts (next 7 days)</b>")]
    if not mine:
        lines.append(tr._("No shifts in the next 7 days."))
    for line in mine:
        status = _status(tr, line, tz)
        lines.append(
            f"• {_span(tr, line, tz)} {escape(line.post)}, {escape(line.unit_name)}"
            + (f" — {status}" if status else "")
        )
    for unit_name, day in units:
        lines.append("")
        lines.append(tr._("<b>Today at {unit}</b>", unit=escape(unit_name)))
        for line in day:
            who = escape(line.person_name) if line.person_name else tr._("⚠️ nobody assigned")
            status = _status(tr, line, tz)
            if not status and line.person_name and line.start <= now:
                status = tr._("⏳ not clocked in")
            lines.append(
                f"• {_span(tr, line, tz)} {escape(line.post)}: {who}"
                + (f" — {status}" if status else "")
            )
    return "\n".join(lines)


def clocked_in_text(tr: Translator, result: ClockedIn, tz: ZoneInfo) -> str:
    """What the person reads after clocking in, with the handover from the shift before."""
    shift = result.shift
    if result.already:
        return tr._(
            "You already clocked in at {time}.",
            time=tr.time_text(shift.clock_in_at or shift.start, tz),
        )
    lines = [
        tr._(
            "✅ Clocked in at {time}: {post}, {unit} ({span}).",
            time=tr.time_text(shift.clock_in_at or shift.start, tz),
            post=escape(shift.post),
            unit=escape(shift.unit_name),
            span=_span(tr, shift, tz),
        )
    ]
    if result.late_minutes:
        lines.append(
            tr.n_(
                "You are {count} minute late; this is recorded.",
                "You are {count} minutes late; this is recorded.",
                result.late_minutes,
            )
        )
    if result.handover is not None:
        note = result.handover
        lines.append("")
        lines.append(
            tr._(
                "📋 Handover from {name} ({time}):",
                name=escape(note.by_name),
                time=tr.datetime_text(note.at, tz, "MM-dd HH:mm"),
            )
        )
        if note.duty_log:
            lines.append(escape(note.duty_log))
        if note.attachments:
            lines.append(
                tr.n_("({count} photo follows)", "({count} photos follow)", len(note.attachments))
            )
    return "\n".join(lines)


def out_buttons(tr: Translator) -> InlineKeyboardMarkup:
    """Done, nothing to report, cancel."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(tr._("✅ Done"), callback_data=DutyLogStep("done").data),
                InlineKeyboardButton(
                    tr._("Nothing to report"), callback_data=DutyLogStep("none").data
                ),
            ],
            [InlineKeyboardButton(tr._("✖ Cancel"), callback_data=DutyLogStep("cancel").data)],
        ]
    )


def location_keyboard(tr: Translator) -> ReplyKeyboardMarkup:
    """A one-tap button that shares the phone's location."""
    return ReplyKeyboardMarkup(
        [[KeyboardButton(tr._("📍 Share my location"), request_location=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


async def shifts_command(update: Update, context: ZhibanContext) -> None:
    """List my coming shifts; leaders also see today's shifts of their units."""
    message, me = update.effective_message, context.me
    if message is None or me is None:
        return
    runtime = context.runtime
    tz = runtime.settings.bot.tz
    now = runtime.clock.now()
    tr = context.tr_for(update)
    mine = await attendance.my_shifts(runtime.db, person_id=me.person_id, now=now)
    local_day = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    units: list[tuple[str, list[ShiftLine]]] = []
    seen: set[int] = set()
    for grant in me.grants:
        if grant.unit_id in seen or not me.can(Action.BOARD_VIEW, grant.unit_path):
            continue
        seen.add(grant.unit_id)
        day = await attendance.unit_shifts(
            runtime.db, unit_id=grant.unit_id, start=local_day, end=local_day + timedelta(days=1)
        )
        if day:
            units.append((day[0].unit_name, day))
    await reply(message, shifts_text(tr, mine, units, tz, now))


async def _clock_in(
    update: Update, context: ZhibanContext, *, location: Location | None, shift_id: int | None
) -> None:
    chat, me = update.effective_chat, context.me
    if chat is None or me is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    tz = runtime.settings.bot.tz
    try:
        result = await attendance.clock_in(
            runtime.db,
            person_id=me.person_id,
            now=runtime.clock.now(),
            location=location,
            settings=runtime.settings.shifts,
            ctx=runtime.paging,
            shift_id=shift_id,
        )
    except NeedLocation as error:
        await send(
            context.bot,
            chat.id,
            error.render(tr, tz),
            parse_mode=None,
            reply_markup=location_keyboard(tr),
        )
        return
    except ZhibanError as error:
        await send(
            context.bot,
            chat.id,
            error.render(tr, tz),
            parse_mode=None,
            reply_markup=ReplyKeyboardRemove(),
        )
        return
    if result.closed_pages:
        runtime.wake()  # the pages about this shift are to be edited
    # A long handover goes out over several messages, in order, before its photos.
    await send(
        context.bot, chat.id, clocked_in_text(tr, result, tz), reply_markup=ReplyKeyboardRemove()
    )
    if result.handover is not None:
        for file_id in result.handover.attachments:
            await context.bot.send_photo(chat.id, file_id)


async def in_command(update: Update, context: ZhibanContext) -> None:
    """Clock in to the current shift (asks for the location where the unit has a geofence)."""
    await _clock_in(update, context, location=None, shift_id=None)


async def on_clock_in_button(update: Update, context: ZhibanContext, press: Press[ClockIn]) -> None:
    """The Clock in button on a shift reminder."""
    await press.answer()
    await _clock_in(update, context, location=None, shift_id=press.button.shift_id)


async def on_location(update: Update, context: ZhibanContext) -> None:
    """A shared location: a clock-in attempt."""
    message = update.effective_message
    if message is None or message.location is None:
        return
    shared = message.location
    location = Location(
        latitude=shared.latitude,
        longitude=shared.longitude,
        accuracy_m=shared.horizontal_accuracy,
        live=shared.live_period is not None,
    )
    await _clock_in(update, context, location=location, shift_id=None)


async def on_clock_out_button(
    update: Update, context: ZhibanContext, press: Press[ClockOut]
) -> None:
    """The Clock out button on the end-of-shift reminder: the same as /out."""
    await press.answer()
    await out_command(update, context)


async def out_command(update: Update, context: ZhibanContext) -> None:
    """Start clocking out: ask for the duty log."""
    message, chat, me = update.effective_message, update.effective_chat, context.me
    user = update.effective_user
    if message is None or chat is None or me is None or user is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    now = runtime.clock.now()
    shift = await attendance.open_shift(runtime.db, person_id=me.person_id, now=now)
    if shift is None:
        await reply(message, tr._("You are not clocked in to any shift."), parse_mode=None)
        return
    await drafts.begin(
        runtime.db,
        conversation=OUT,
        chat_id=chat.id,
        user_id=user.id,
        state=OUT_COLLECTING,
        data={"shift_id": shift.shift_id, "texts": [], "photos": []},
        now=now,
    )
    await reply(
        message,
        tr._(
            "Clocking out of {post}, {unit}. Write the duty log (值班记录): what happened and "
            "what the next shift should know. Send text or photos, then press Done.",
            post=escape(shift.post),
            unit=escape(shift.unit_name),
        ),
        reply_markup=out_buttons(tr),
    )


async def on_draft_input(update: Update, context: ZhibanContext) -> bool:
    """Add a text or photo to the duty log in progress; tell whether it was taken."""
    message, chat, me = update.effective_message, update.effective_chat, context.me
    user = update.effective_user
    if message is None or chat is None or me is None or user is None:
        return False
    runtime = context.runtime
    now = runtime.clock.now()
    tr = context.tr_for(update)
    draft = await drafts.current(runtime.db, chat_id=chat.id, user_id=user.id, now=now)
    if isinstance(draft, drafts.Expired):
        await reply(
            message,
            tr._("Your unfinished duty log timed out and was dropped. Send /out to start again."),
            parse_mode=None,
        )
        return True
    if draft is None or draft.conversation != OUT:
        return False
    data = draft.data
    if message.photo:
        data["photos"].append(message.photo[-1].file_id)
        if message.caption:
            data["texts"].append(message.caption)
    elif message.text:
        data["texts"].append(message.text)
    else:
        await reply(
            message,
            tr._("Send text or photos for the duty log, or press Done."),
            parse_mode=None,
            reply_markup=out_buttons(tr),
        )
        return True
    await drafts.save(
        runtime.db, chat_id=chat.id, user_id=user.id, state=OUT_COLLECTING, data=data, now=now
    )
    await reply(
        message,
        tr._("Added to the duty log. Send more, or press Done."),
        parse_mode=None,
        reply_markup=out_buttons(tr),
    )
    return True


async def on_out_button(update: Update, context: ZhibanContext, press: Press[DutyLogStep]) -> None:
    """Done, nothing to report, or cancel."""
    query, chat, me = press.query, update.effective_chat, context.me
    user = update.effective_user
    if chat is None or me is None or user is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    tz = runtime.settings.bot.tz
    now = runtime.clock.now()
    draft = await drafts.current(runtime.db, chat_id=chat.id, user_id=user.id, now=now)
    if not isinstance(draft, drafts.Draft) or draft.conversation != OUT:
        await press.answer(
            tr._("This clock-out was already finished or has timed out. Send /out to start again."),
            alert=True,
        )
        return
    choice = press.button.choice
    if choice == "cancel":
        await drafts.end(runtime.db, chat_id=chat.id, user_id=user.id)
        await press.answer()
        await edit(query, tr._("Cancelled. You are still clocked in."), parse_mode=None)
        return
    try:
        result = await attendance.clock_out(
            runtime.db,
            person_id=me.person_id,
            shift_id=int(draft.data["shift_id"]),
            now=now,
            duty_log="\n".join(draft.data.get("texts", [])),
            attachments=list(draft.data.get("photos", [])),
            nothing_to_report=choice == "none",
        )
    except EmptyDutyLog as error:
        await press.answer(error.render(tr, tz), alert=True)  # the draft stays open
        return
    except ZhibanError as error:
        await drafts.end(runtime.db, chat_id=chat.id, user_id=user.id)
        await press.answer(error.render(tr, tz), alert=True)
        return
    await drafts.end(runtime.db, chat_id=chat.id, user_id=user.id)
    await press.answer()
    await edit(
        query,
        tr._(
            "👋 Clocked out at {time}. The duty log is saved; the next shift will see it "
            "when they clock in.",
            time=tr.time_text(result.at, tz),
        ),
        parse_mode=None,
    )
