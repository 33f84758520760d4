"""/swap: pick one of my shifts, pick a colleague; they accept, the duty leader approves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.callbacks import (
    SwapAnswer,
    SwapButton,
    SwapCancel,
    SwapDecision,
    SwapOffer,
    SwapShift,
)
from bot.errors import ZhibanError
from bot.services import swaps
from handlers.context import ZhibanContext
from handlers.replies import edit, reply

if TYPE_CHECKING:
    from handlers.buttons import Press


def _keyboard(rows: list[tuple[str, str]], cancel: str) -> InlineKeyboardMarkup:
    """One button a row, and Cancel last."""
    buttons = [[InlineKeyboardButton(label, callback_data=data)] for label, data in rows]
    return InlineKeyboardMarkup(
        [*buttons, [InlineKeyboardButton(cancel, callback_data=SwapCancel().data)]]
    )


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
        await reply(message, tr._("You have no coming shift to swap."), parse_mode=None)
        return
    await reply(
        message,
        tr._("Which shift do you want to hand over?"),
        parse_mode=None,
        reply_markup=_keyboard(
            [(c.label, SwapShift(c.id).data) for c in choices], tr._("✖ Cancel")
        ),
    )


async def on_swap_button(update: Update, context: ZhibanContext, press: Press[SwapButton]) -> None:
    """Every step of a swap, checked again on the server at each press."""
    query, me = press.query, context.me
    if me is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    now = runtime.clock.now()
    button = press.button
    leader_roles = runtime.settings.rota.leader_roles
    try:
        match button:
            case SwapCancel():
                await press.answer()
                await edit(query, tr._("Cancelled; nothing was changed."), parse_mode=None)
                return
            case SwapShift(shift_id=shift_id):
                people = await swaps.colleagues(
                    runtime.db,
                    person_id=me.person_id,
                    shift_id=shift_id,
                    now=now,
                    leader_roles=leader_roles,
                )
                await press.answer()
                if not people:
                    await edit(
                        query, tr._("Nobody in your unit is free at that time."), parse_mode=None
                    )
                    return
                await edit(
                    query,
                    tr._("Who should take it?"),
                    parse_mode=None,
                    reply_markup=_keyboard(
                        [(p.label, SwapOffer(shift_id, p.id).data) for p in people],
                        tr._("✖ Cancel"),
                    ),
                )
                return
            case SwapOffer():
                offered = await swaps.offer(
                    runtime.db,
                    person_id=me.person_id,
                    shift_id=button.shift_id,
                    to_person_id=button.to_person_id,
                    now=now,
                    ctx=runtime.paging,
                    leader_roles=leader_roles,
                )
                if offered.already:
                    # The message already says "Asked": a toast, so a repeated press edits nothing.
                    await press.answer(
                        tr._(
                            "You already asked {name} to take this shift; nothing more was sent.",
                            name=offered.to_name,
                        )
                    )
                    return
                text = tr._("Asked. You will hear when they answer and the duty leader decides.")
            case SwapAnswer():
                await swaps.answer(
                    runtime.db,
                    person_id=me.person_id,
                    swap_id=button.swap_id,
                    accept=button.accept,
                    now=now,
                    ctx=runtime.paging,
                )
                text = tr._("Thank you; your answer was passed on.")
            case SwapDecision():
                await swaps.decide(
                    runtime.db,
                    person_id=me.person_id,
                    swap_id=button.swap_id,
                    approve=button.approve,
                    now=now,
                    ctx=runtime.paging,
                    leader_roles=leader_roles,
                )
                text = tr._("Done; everyone involved has been told.")
    except ZhibanError as error:
        await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
        return
    runtime.wake()
    await press.answer()
    await edit(query, text, parse_mode=None)
