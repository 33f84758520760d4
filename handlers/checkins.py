"""The two buttons of a check-in prompt (平安报告): ✅ All normal, and 🚨 Report a problem.

All normal is a plain press (handlers/buttons.py routes it here). Report a problem is an entry
point of the /report conversation (handlers/conversations.py): it opens a report prefilled with
the check-in's unit, and sending that report answers the check-in.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from telegram import Update
from telegram.error import BadRequest

from bot.errors import ZhibanError
from bot.services import checkins
from handlers import incidents
from handlers.context import ZhibanContext

if TYPE_CHECKING:
    from bot.callbacks import CheckinNormal, CheckinProblem
    from handlers.buttons import Press


async def on_normal_button(
    update: Update, context: ZhibanContext, press: Press[CheckinNormal]
) -> None:
    """✅ All normal: record the answer and say so on the prompt."""
    runtime = context.runtime
    tr = context.tr_for(update)
    tz = runtime.settings.bot.tz
    try:
        answered = await checkins.answer_normal(
            runtime.db,
            external_id=press.query.from_user.id,
            checkin_id=press.button.checkin_id,
            now=runtime.clock.now(),
            times=runtime.settings.checkins.times,
            ctx=runtime.paging,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr, tz), alert=True)
        return
    # The prompt loses its buttons through the outbox, at Telegram's pace; an answer plans no
    # deadline (a late one only closes its matter), so the engine need not look.
    runtime.wake_senders()
    # In a burst of answers a press may wait in line past Telegram's answer window; it is
    # recorded all the same and its prompt's edit says so, so no apology follows.
    with suppress(BadRequest):
        await press.answer(checkins.answered_text(tr, answered, tz))


async def on_problem_button(
    update: Update, context: ZhibanContext, press: Press[CheckinProblem]
) -> int | None:
    """🚨 Report a problem: open /report at the check-in's unit (it answers the check-in)."""
    message = update.effective_message
    if message is None or context.me is None:
        return None
    runtime = context.runtime
    tr = context.tr_for(update)
    try:
        target = await checkins.problem_target(
            runtime.db,
            external_id=press.query.from_user.id,
            checkin_id=press.button.checkin_id,
            now=runtime.clock.now(),
            times=runtime.settings.checkins.times,
            tz=runtime.settings.bot.tz,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr, runtime.settings.bot.tz), alert=True)
        return None
    await press.answer()
    return await incidents.begin_report(
        update, context, message, unit_name=target.unit_name, checkin_id=target.checkin_id
    )
