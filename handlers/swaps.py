"""/swap: pick one of my shifts, pick a colleague; they accept, the duty leader approves."""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.errors import ZhibanError
from bot.services import swaps
from handlers.context import ZhibanContext

PATTERN = re.compile(r"^sw:(x|s:\d{1,12}|p:\d{1,12}:\d{1,12}|[adyn]:\d{1,12})$")


def _keyboard(rows: list[tuple[str, str]], cancel: str) -> InlineKeyboardMarkup:
    """One button a row, and Cancel last."""
    buttons = [[InlineKeyboardButton(label, callback_data=data)] for label, data in rows]
    return InlineKeyboardMarkup([*buttons, [InlineKeyboardButton(cancel, callback_data="sw:x")]])


async def swap_command(update: Update, context: ZhibanContext) -> None:
    """Offer the person's coming shifts as buttons."""
    message, me = update.effective_message, context.me
    if message is None or me is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    choices = await swaps.my_swappable(
        runtime.db, person_id=me.person_id, now=runtime.clock.now(), ctx=runtime.paging, tr=tr
    )
    if not choices:
        await message.reply_text(tr._("You have no coming shift to swap."))
        return
    await message.reply_text(
        tr._("Which shift do you want to hand over?"),
        reply_markup=_keyboard([(c.label, f"sw:s:{c.id}") for c in choices], tr._("✖ Cancel")),
    )


async def on_swap_button(update: Update, context: ZhibanContext) -> None:
    """Every step of a swap, checked again on the server at each press."""
    query, me = update.callback_query, context.me
    if query is None or me is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    now = runtime.clock.now()
    match = PATTERN.match(query.data or "")
    if match is None:
        await query.answer(tr._("This button is no longer valid."), show_alert=True)
        return
    kind, *numbers = match.group(1).split(":")
    if kind == "x":
        await query.answer()
        await query.edit_message_text(tr._("Cancelled; nothing was changed."))
        return
    ids = [int(n) for n in numbers]
    leader_roles = runtime.settings.rota.leader_roles
    try:
        if kind == "s":
            people = await swaps.colleagues(
                runtime.db,
                person_id=me.person_id,
                shift_id=ids[0],
                now=now,
                leader_roles=leader_roles,
            )
            await query.answer()
            if not people:
                await query.edit_message_text(tr._("Nobody in your unit is free at that time."))
                return
            await query.edit_message_text(
                tr._("Who should take it?"),
                reply_markup=_keyboard(
                    [(p.label, f"sw:p:{ids[0]}:{p.id}") for p in people], tr._("✖ Cancel")
                ),
            )
            return
        if kind == "p":
            offered = await swaps.offer(
                runtime.db,
                person_id=me.person_id,
                shift_id=ids[0],
                to_person_id=ids[1],
                now=now,
                ctx=runtime.paging,
                leader_roles=leader_roles,
            )
            if offered.already:
                # The message already says "Asked": a toast, so a repeated press edits nothing.
                await query.answer(
                    tr._(
                        "You already asked {name} to take this shift; nothing more was sent.",
                        name=offered.to_name,
                    )
                )
                return
            text = tr._("Asked. You will hear when they answer and the duty leader decides.")
        elif kind in ("a", "d"):
            await swaps.answer(
                runtime.db,
                person_id=me.person_id,
                swap_id=ids[0],
                accept=kind == "a",
                now=now,
                ctx=runtime.paging,
            )
            text = tr._("Thank you; your answer was passed on.")
        else:
            await swaps.decide(
                runtime.db,
                person_id=me.person_id,
                swap_id=ids[0],
                approve=kind == "y",
                now=now,
                ctx=runtime.paging,
                leader_roles=leader_roles,
            )
            text = tr._("Done; everyone involved has been told.")
    except ZhibanError as error:
        await query.answer(error.render(tr, runtime.settings.bot.tz), show_alert=True)
        return
    runtime.wake()
    await query.answer()
    await query.edit_message_text(text)
