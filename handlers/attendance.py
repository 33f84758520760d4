"""/shifts, /in and /out: my shifts, clocking in (with location where needed), the duty log."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import ConversationHandler

from bot.authz import Action
from bot.callbacks import ClockIn, ClockOut, DraftChoice, DutyLogStep
from bot.errors import ZhibanError
from bot.i18n import N_, Translator
from bot.services import attendance, drafts
from bot.services.attendance import ClockedIn, EmptyDutyLog, Location, NeedLocation, ShiftLine
from handlers import draft_steps
from handlers.context import ZhibanContext
from handlers.render import escape
from handlers.replies import edit, reply, send

if TYPE_CHECKING:
    from handlers.buttons import Press

OUT = "out"


class OutStep(IntEnum):
    """The steps of /out: the duty log is written in one step, text and photos, until Done."""

    WRITING = 1


END = ConversationHandler.END

OUT_PROMPT = drafts.DraftPrompt(
    warning=N_(
        "Your duty log is not sent yet and will be dropped in {time}. "
        "Clock out with what is written, keep writing, or discard it?"
    ),
    send=N_("👋 Clock out with what is written"),
    timed_out=N_(
        "Your unfinished duty log was left for {time} and has been dropped; you are still "
        "clocked in. Send /out to start again."
    ),
    discarded=N_(
        "Your unfinished duty log was discarded; you are still clocked in. Send /out to write "
        "it again."
    ),
)
GONE = N_("This clock-out was already finished or has timed out. Send /out to start again.")


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
    today = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    for unit_name, day in units:
        # Today's shifts and the one under way: last night's shift that ended this morning
        # belongs to yesterday's day.
        shown = [line for line in day if line.start >= today or line.end > now]
        if not shown:
            continue
        lines.append("")
        lines.append(tr._("<b>Today at {unit}</b>", unit=escape(unit_name)))
        for line in shown:
            who = escape(line.person_name) if line.person_name else tr._("⚠️ nobody assigned")
            status = _status(tr, line, tz)
            if not status and line.person_name and line.end <= now:
                status = tr._("❌ never clocked in")
            elif not status and line.person_name and line.start <= now:
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
    """Done, nothing to report, back, cancel."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(tr._("✅ Done"), callback_data=DutyLogStep("done").data),
                InlineKeyboardButton(
                    tr._("Nothing to report"), callback_data=DutyLogStep("none").data
                ),
            ],
            [
                InlineKeyboardButton(tr._("↩ Back"), callback_data=DutyLogStep("back").data),
                InlineKeyboardButton(tr._("✖ Cancel"), callback_data=DutyLogStep("cancel").data),
            ],
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
    chat, user, me = update.effective_chat, update.effective_user, context.me
    if chat is None or user is None or me is None:
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
            account=f"telegram:{user.id}",
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
) -> int:
    """The Clock out button on the end-of-shift reminder: the same as /out."""
    await press.answer()
    return await out_command(update, context)


async def out_command(update: Update, context: ZhibanContext) -> int:
    """Start clocking out: ask for the duty log."""
    message, me = update.effective_message, context.me
    if message is None or me is None:
        return END
    runtime = context.runtime
    tr = context.tr_for(update)
    shift = await attendance.open_shift(runtime.db, person_id=me.person_id, now=runtime.clock.now())
    if shift is None:
        await reply(message, tr._("You are not clocked in to any shift."), parse_mode=None)
        return END
    data = {"shift_id": shift.shift_id, "texts": [], "photos": [], "added": []}
    await draft_steps.begin(update, context, OUT, OutStep.WRITING, data)
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
    return OutStep.WRITING


async def _gone(update: Update, context: ZhibanContext, press: Press[Any] | None = None) -> int:
    """Say that the clock-out is no longer open, and end the conversation."""
    tr = context.tr_for(update)
    return await draft_steps.no_longer_open(update, context, tr._(GONE), press)


async def on_draft_input(update: Update, context: ZhibanContext) -> int:
    """Add a text or photo to the duty log in progress."""
    message = update.effective_message
    if message is None:
        return END
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, OUT)
    if draft is None:
        return await _gone(update, context)
    data = draft.data
    texts, photos = list(data.get("texts", [])), list(data.get("photos", []))
    # What each input added, so that Back takes back exactly the last one.
    added: list[list[int]] = list(data.get("added", []))
    if message.photo:
        problem = draft_steps.attachment_problem(tr, message, len(photos))
        if problem is not None:
            await reply(message, problem, parse_mode=None, reply_markup=out_buttons(tr))
            return OutStep.WRITING
        photos.append(message.photo[-1].file_id)
        if message.caption:
            texts.append(message.caption)
    elif message.text:
        texts.append(message.text)
    else:
        await reply(
            message,
            tr._("Send text or photos for the duty log, or press Done."),
            parse_mode=None,
            reply_markup=out_buttons(tr),
        )
        return OutStep.WRITING
    added.append(
        [len(texts) - len(data.get("texts", [])), len(photos) - len(data.get("photos", []))]
    )
    data = {**data, "texts": texts, "photos": photos, "added": added}
    if not await draft_steps.save(update, context, OUT, OutStep.WRITING, data):
        return await _gone(update, context)
    await reply(
        message,
        tr._("Added to the duty log. Send more, or press Done."),
        parse_mode=None,
        reply_markup=out_buttons(tr),
    )
    return OutStep.WRITING


async def _take_back(
    update: Update, context: ZhibanContext, press: Press[DutyLogStep], draft: drafts.Draft
) -> int:
    """Back: take the last text or photo out of the duty log."""
    tr = context.tr_for(update)
    data = draft.data
    added: list[list[int]] = list(data.get("added", []))
    if not added:
        await press.answer(
            tr._("Nothing is written yet. Press Cancel to stop clocking out."), alert=True
        )
        return OutStep.WRITING
    texts_added, photos_added = added.pop()
    texts, photos = list(data.get("texts", [])), list(data.get("photos", []))
    del texts[len(texts) - texts_added :]
    del photos[len(photos) - photos_added :]
    data = {**data, "texts": texts, "photos": photos, "added": added}
    await draft_steps.save(update, context, OUT, OutStep.WRITING, data)
    await press.answer()
    message = press.query.message
    if message is not None:
        await send(
            context.bot,
            message.chat.id,
            tr._("Took back the last thing you added. Send more, or press Done."),
            parse_mode=None,
            reply_markup=out_buttons(tr),
        )
    return OutStep.WRITING


async def _finish(
    update: Update,
    context: ZhibanContext,
    press: Press[Any],
    draft: drafts.Draft,
    *,
    nothing_to_report: bool,
) -> int:
    """Clock out with the duty log as written; an empty log keeps the draft open."""
    me = context.me
    if me is None:
        return END
    runtime = context.runtime
    tr = context.tr_for(update)
    tz = runtime.settings.bot.tz
    try:
        result = await attendance.clock_out(
            runtime.db,
            person_id=me.person_id,
            shift_id=int(draft.data["shift_id"]),
            now=runtime.clock.now(),
            duty_log="\n".join(draft.data.get("texts", [])),
            attachments=list(draft.data.get("photos", [])),
            nothing_to_report=nothing_to_report,
        )
    except EmptyDutyLog as error:
        await press.answer(error.render(tr, tz), alert=True)  # the draft stays open
        return OutStep.WRITING
    except ZhibanError as error:
        await draft_steps.end(update, context, OUT)
        await press.answer(error.render(tr, tz), alert=True)
        return END
    await draft_steps.end(update, context, OUT)
    await press.answer()
    await edit(
        press.query,
        tr._(
            "👋 Clocked out at {time}. The duty log is saved; the next shift will see it "
            "when they clock in.",
            time=tr.time_text(result.at, tz),
        ),
        parse_mode=None,
    )
    return END


async def on_out_button(update: Update, context: ZhibanContext, press: Press[DutyLogStep]) -> int:
    """Done, nothing to report, back, or cancel."""
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, OUT)
    if draft is None:
        return await _gone(update, context, press)
    choice = press.button.choice
    if choice == "back":
        return await _take_back(update, context, press, draft)
    if choice == "cancel":
        await draft_steps.end(update, context, OUT)
        await press.answer()
        await edit(press.query, tr._("Cancelled. You are still clocked in."), parse_mode=None)
        return END
    return await _finish(update, context, press, draft, nothing_to_report=choice == "none")


async def on_out_prompt(update: Update, context: ZhibanContext, press: Press[DraftChoice]) -> int:
    """Before the timeout: clock out with what is written, keep writing, or discard the draft."""
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, OUT)
    if draft is None or draft_steps.prompt_is_stale(draft, press):
        await press.answer(tr._(draft_steps.DRAFT_GONE), alert=True)
        return OutStep.WRITING if draft is not None else END
    match press.button.action:
        case "send":
            written = bool(draft.data.get("texts") or draft.data.get("photos"))
            return await _finish(update, context, press, draft, nothing_to_report=not written)
        case "go_on":
            await draft_steps.go_on(update, context, OUT, draft.token)
            await press.answer()
            await edit(
                press.query,
                tr._("Go on: send text or photos for the duty log, then press Done."),
                parse_mode=None,
                reply_markup=out_buttons(tr),
            )
            return OutStep.WRITING
    await draft_steps.end(update, context, OUT)
    await press.answer()
    await edit(
        press.query,
        tr._("The duty log draft is discarded. You are still clocked in."),
        parse_mode=None,
    )
    return END


async def out_cancel_command(update: Update, context: ZhibanContext) -> int:
    """/cancel while writing the duty log."""
    tr = context.tr_for(update)
    await draft_steps.end(update, context, OUT)
    if update.effective_message is not None:
        await reply(
            update.effective_message,
            tr._("Cancelled. You are still clocked in."),
            parse_mode=None,
            reply_markup=ReplyKeyboardRemove(),
        )
    return END
