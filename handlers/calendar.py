"""/calendar: my shifts as an .ics file for the phone's calendar."""

from __future__ import annotations

from telegram import InputFile, Update

from handlers.context import ZhibanContext
from handlers.replies import reply


async def calendar_command(update: Update, context: ZhibanContext) -> None:
    """Send my shifts (from 30 days ago on) as an .ics document, or say there are none."""
    # icalendar loads with the first /calendar, not with every start of the bot
    from bot.services import calendar_feed

    message, me = update.effective_message, context.me
    if message is None or me is None:
        return
    runtime = context.runtime
    now = runtime.clock.now()
    tr = context.tr_for(update)
    feed = await calendar_feed.feed(runtime.db, person_id=me.person_id, now=now)
    if not feed.shifts:
        await reply(message, tr._("You have no shifts from 30 days ago on."), parse_mode=None)
        return
    data = calendar_feed.ics(feed, tr, runtime.settings.bot.tz, now=now)
    await message.reply_document(
        InputFile(data, filename=calendar_feed.file_name(feed)),
        caption=tr.n_(
            "📅 {count} shift from 30 days ago on: open the file to add it to your calendar.",
            "📅 {count} shifts from 30 days ago on: open the file to add them to your calendar.",
            len(feed.shifts),
        ),
    )
