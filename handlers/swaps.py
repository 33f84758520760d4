"""/swap: pick one of my shifts, pick a colleague, confirm; they accept, the duty leader approves.

The asker's part is a ConversationHandler on the database (handlers/conversations.py): SHIFT →
COLLEAGUE → CONFIRM, with Back and Cancel at every step and /cancel, resumed at the same step
after a restart, prompted before its timeout. What the draft holds (the shift, the colleague)
is what Confirm offers: the confirm button itself carries nothing. Each pick is checked by the
swaps service when it is made and again when the offer is made, so a forged or stale press
changes nothing.

The colleague's answer and the duty leader's decision are answers by other people to messages
they were sent, not steps of the asker's conversation: they stay ordinary buttons, dispatched
by handlers/buttons.py to `on_swap_answer`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.callbacks import (
    DraftChoice,
    SwapAnswer,
    SwapBack,
    SwapCancel,
    SwapConfirm,
    SwapDecision,
    SwapOffer,
    SwapShift,
    SwapStepButton,
)
from bot.errors import ZhibanError
from bot.i18n import N_, Translator
from bot.services import drafts, swaps
from handlers import draft_steps
from handlers.context import ZhibanContext
from handlers.draft_steps import END
from handlers.replies import edit, reply

if TYPE_CHECKING:
    from handlers.buttons import Press

SWAP = "swap"


class SwapStep(IntEnum):
    """The asker's steps of /swap."""

    SHIFT = 1
    COLLEAGUE = 2
    CONFIRM = 3


SWAP_PROMPT = drafts.DraftPrompt(
    warning=N_(
        "Your swap request is not sent yet and will be dropped in {time}. "
        "Ask the colleague now, go on, or discard it?"
    ),
    send=N_("🔁 Ask them now"),
    timed_out=N_(
        "Your unfinished swap request was left for {time} and has been dropped; nobody was "
        "asked. Send /swap to start again."
    ),
    discarded=N_("Your unfinished swap request was discarded; nobody was asked."),
)
GONE = N_("This swap request is no longer open: it was sent, cancelled or timed out. Send /swap.")


def _keyboard(tr: Translator, rows: list[tuple[str, str]], *, back: bool) -> InlineKeyboardMarkup:
    """One button a row, then Back (after the first step) and Cancel."""
    buttons = [[InlineKeyboardButton(label, callback_data=data)] for label, data in rows]
    nav = [InlineKeyboardButton(tr._("✖ Cancel"), callback_data=SwapCancel().data)]
    if back:
        nav.insert(0, InlineKeyboardButton(tr._("↩ Back"), callback_data=SwapBack().data))
    return InlineKeyboardMarkup([*buttons, nav])


async def _shift_view(
    update: Update, context: ZhibanContext
) -> tuple[str, InlineKeyboardMarkup] | None:
    """The first step: my coming shifts as buttons (None: I have none)."""
    me, runtime = context.me, context.runtime
    if me is None:
        return None
    tr = context.tr_for(update)
    choices = await swaps.my_swappable(
        runtime.db, person_id=me.person_id, now=runtime.clock.now(), ctx=runtime.paging, tr=tr
    )
    if not choices:
        return None
    rows = [(c.label, SwapShift(c.id).data) for c in choices]
    return tr._("Which shift do you want to hand over?"), _keyboard(tr, rows, back=False)


async def _label(update: Update, context: ZhibanContext, shift_id: int) -> str:
    """How the first step's button named this shift."""
    me, runtime = context.me, context.runtime
    if me is None:
        return ""
    choices = await swaps.my_swappable(
        runtime.db,
        person_id=me.person_id,
        now=runtime.clock.now(),
        ctx=runtime.paging,
        tr=context.tr_for(update),
    )
    return next((c.label for c in choices if c.id == shift_id), "")


async def _colleague_view(
    update: Update, context: ZhibanContext, shift_id: int
) -> tuple[str, InlineKeyboardMarkup] | None:
    """The second step: colleagues free then who may take the shift (None: nobody)."""
    me, runtime = context.me, context.runtime
    if me is None:
        return None
    tr = context.tr_for(update)
    people = await swaps.colleagues(
        runtime.db,
        person_id=me.person_id,
        shift_id=shift_id,
        now=runtime.clock.now(),
        leader_roles=runtime.settings.rota.leader_roles,
    )
    if not people:
        return None
    rows = [(p.label, SwapOffer(shift_id, p.id).data) for p in people]
    return tr._("Who should take it?"), _keyboard(tr, rows, back=True)


def _confirm_view(tr: Translator, data: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup]:
    text = tr._(
        "Ask {name} to take your shift {shift}? The duty leader approves once they accept.",
        name=data.get("to_name", ""),
        shift=data.get("shift_label", ""),
    )
    rows = [(tr._("🔁 Ask them"), SwapConfirm().data)]
    return text, _keyboard(tr, rows, back=True)


async def swap_command(update: Update, context: ZhibanContext) -> int:
    """Start a swap: offer the person's coming shifts as buttons."""
    message = update.effective_message
    if message is None or context.me is None:
        return END
    tr = context.tr_for(update)
    shown = await _shift_view(update, context)
    if shown is None:
        await reply(message, tr._("You have no coming shift to swap."), parse_mode=None)
        return END
    await draft_steps.begin(update, context, SWAP, SwapStep.SHIFT, {})
    text, markup = shown
    await reply(message, text, parse_mode=None, reply_markup=markup)
    return SwapStep.SHIFT


async def _move(
    update: Update,
    context: ZhibanContext,
    press: Press[Any],
    step: SwapStep,
    data: dict[str, Any],
    shown: tuple[str, InlineKeyboardMarkup],
) -> int:
    """Save the draft at `step` and turn the pressed message into that step's view."""
    if not await draft_steps.save(update, context, SWAP, step, data):
        return await draft_steps.no_longer_open(
            update, context, context.tr_for(update)._(GONE), press
        )
    await press.answer()
    text, markup = shown
    await edit(press.query, text, parse_mode=None, reply_markup=markup)
    return step


async def _view_of(
    update: Update, context: ZhibanContext, step: SwapStep, data: dict[str, Any]
) -> tuple[str, InlineKeyboardMarkup] | None:
    if step == SwapStep.SHIFT:
        return await _shift_view(update, context)
    if step == SwapStep.COLLEAGUE:
        return await _colleague_view(update, context, int(data["shift_id"]))
    return _confirm_view(context.tr_for(update), data)


async def _ask(
    update: Update, context: ZhibanContext, press: Press[Any], draft: drafts.Draft
) -> int:
    """Make the offer the draft holds; a refusal keeps the draft where it was."""
    me, runtime = context.me, context.runtime
    if me is None:
        return END
    tr = context.tr_for(update)
    data = draft.data
    if draft.state != SwapStep.CONFIRM or "to_person_id" not in data:
        await press.answer(tr._("Choose the shift and the colleague first."), alert=True)
        return draft.state
    offered = await swaps.offer(
        runtime.db,
        person_id=me.person_id,
        shift_id=int(data["shift_id"]),
        to_person_id=int(data["to_person_id"]),
        now=runtime.clock.now(),
        ctx=runtime.paging,
        leader_roles=runtime.settings.rota.leader_roles,
    )
    await draft_steps.end(update, context, SWAP)
    await press.answer()
    if offered.already:
        text = tr._(
            "You already asked {name} to take this shift; nothing more was sent.",
            name=offered.to_name,
        )
    else:
        runtime.wake()
        text = tr._("Asked. You will hear when they answer and the duty leader decides.")
    await edit(press.query, text, parse_mode=None)
    return END


async def on_swap_step(update: Update, context: ZhibanContext, press: Press[SwapStepButton]) -> int:
    """A press at any step of /swap: a shift, a colleague, confirm, back or cancel."""
    me, runtime = context.me, context.runtime
    if me is None:
        return END
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, SWAP)
    if draft is None:
        return await draft_steps.no_longer_open(update, context, tr._(GONE), press)
    step, data = SwapStep(draft.state), dict(draft.data)
    button = press.button
    try:
        match button:
            case SwapCancel():
                await draft_steps.end(update, context, SWAP)
                await press.answer()
                await edit(press.query, tr._("Cancelled; nothing was changed."), parse_mode=None)
                return END
            case SwapBack() if step != SwapStep.SHIFT:
                back = SwapStep(step - 1)
                # What was chosen at the step gone back to is chosen again there.
                kept = ("shift_id", "shift_label") if back == SwapStep.COLLEAGUE else ()
                data = {key: value for key, value in data.items() if key in kept}
                shown = await _view_of(update, context, back, data)
                if shown is None:  # nothing to choose from any more: start again
                    back, shown = SwapStep.SHIFT, await _shift_view(update, context)
                if shown is None:
                    await draft_steps.end(update, context, SWAP)
                    await press.answer()
                    await edit(
                        press.query, tr._("You have no coming shift to swap."), parse_mode=None
                    )
                    return END
                return await _move(update, context, press, back, data, shown)
            case SwapShift(shift_id=shift_id) if step == SwapStep.SHIFT:
                shown = await _colleague_view(update, context, shift_id)
                if shown is None:
                    await press.answer(
                        tr._("Nobody in your unit is free at that time."), alert=True
                    )
                    return step
                data = {
                    "shift_id": shift_id,
                    "shift_label": await _label(update, context, shift_id),
                }
                return await _move(update, context, press, SwapStep.COLLEAGUE, data, shown)
            case SwapOffer() if step == SwapStep.COLLEAGUE and button.shift_id == data.get(
                "shift_id"
            ):
                name = await swaps.vet_offer(
                    runtime.db,
                    person_id=me.person_id,
                    shift_id=button.shift_id,
                    to_person_id=button.to_person_id,
                    now=runtime.clock.now(),
                    leader_roles=runtime.settings.rota.leader_roles,
                )
                data |= {"to_person_id": button.to_person_id, "to_name": name}
                shown = _confirm_view(tr, data)
                return await _move(update, context, press, SwapStep.CONFIRM, data, shown)
            case SwapConfirm():
                return await _ask(update, context, press, draft)
    except ZhibanError as error:
        await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
        return step
    await press.answer(tr._("That button belongs to another step of this swap."), alert=True)
    return step


async def on_swap_prompt(update: Update, context: ZhibanContext, press: Press[DraftChoice]) -> int:
    """Before the timeout: ask the colleague now, go on choosing, or discard the swap."""
    runtime = context.runtime
    tr = context.tr_for(update)
    draft = await draft_steps.load(update, context, SWAP)
    if draft is None or draft_steps.prompt_is_stale(draft, press):
        await press.answer(tr._(draft_steps.DRAFT_GONE), alert=True)
        return draft.state if draft is not None else END
    match press.button.action:
        case "send":
            try:
                return await _ask(update, context, press, draft)
            except ZhibanError as error:
                await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
                return draft.state
        case "go_on":
            await draft_steps.go_on(update, context, SWAP, draft.token)
            shown = await _view_of(update, context, SwapStep(draft.state), draft.data)
            if shown is None:
                await draft_steps.end(update, context, SWAP)
                await press.answer()
                await edit(press.query, tr._("You have no coming shift to swap."), parse_mode=None)
                return END
            await press.answer()
            await edit(press.query, shown[0], parse_mode=None, reply_markup=shown[1])
            return draft.state
    await draft_steps.end(update, context, SWAP)
    await press.answer()
    await edit(
        press.query, tr._("The swap request is discarded; nobody was asked."), parse_mode=None
    )
    return END


async def on_swap_input(update: Update, context: ZhibanContext) -> int:
    """A message while choosing a swap: the steps are buttons."""
    draft = await draft_steps.load(update, context, SWAP)
    tr = context.tr_for(update)
    if draft is None:
        return await draft_steps.no_longer_open(update, context, tr._(GONE))
    if update.effective_message is not None:
        await reply(
            update.effective_message,
            tr._("Choose with the buttons above, or send /cancel to stop the swap."),
            parse_mode=None,
        )
    return draft.state


async def swap_cancel_command(update: Update, context: ZhibanContext) -> int:
    """/cancel while choosing a swap."""
    return await draft_steps.cancel_command(
        update, context, SWAP, N_("Cancelled; nothing was changed.")
    )


async def on_stale_swap_step(
    update: Update, context: ZhibanContext, press: Press[SwapStepButton]
) -> None:
    """A /swap step's button pressed when no swap is being chosen."""
    await press.answer(context.tr_for(update)._(GONE), alert=True)


async def on_swap_answer(
    update: Update, context: ZhibanContext, press: Press[SwapAnswer | SwapDecision]
) -> None:
    """The colleague accepts or declines; the duty leader approves or refuses."""
    me, runtime = context.me, context.runtime
    if me is None:
        return
    tr = context.tr_for(update)
    now = runtime.clock.now()
    button = press.button
    try:
        if isinstance(button, SwapAnswer):
            await swaps.answer(
                runtime.db,
                person_id=me.person_id,
                swap_id=button.swap_id,
                accept=button.accept,
                now=now,
                ctx=runtime.paging,
            )
            text = tr._("Thank you; your answer was passed on.")
        else:
            await swaps.decide(
                runtime.db,
                person_id=me.person_id,
                swap_id=button.swap_id,
                approve=button.approve,
                now=now,
                ctx=runtime.paging,
                leader_roles=runtime.settings.rota.leader_roles,
            )
            text = tr._("Done; everyone involved has been told.")
    except ZhibanError as error:
        await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
        return
    runtime.wake()
    await press.answer()
    await edit(press.query, text, parse_mode=None)
