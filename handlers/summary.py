"""/summary: the figures of my area for this week, month or term, as text, chart and workbook."""

from __future__ import annotations

import asyncio

from telegram import InputFile, Update

from bot.errors import ZhibanError
from bot.services.reports import summary
from handlers.context import ZhibanContext
from handlers.replies import reply


async def summary_command(update: Update, context: ZhibanContext) -> None:
    """Answer `/summary [week|month|term] [UNIT]` with the text, then the chart and the XLSX."""
    message = update.effective_message
    if message is None or context.me is None:
        return
    tr = context.tr_for(update)
    runtime = context.runtime
    tz = runtime.settings.bot.tz
    try:
        found = await summary.leader_summary(
            runtime.db,
            person_id=context.me.person_id,
            args=context.args or [],
            now=runtime.clock.now(),
            settings=runtime.settings,
        )
    except ZhibanError as error:
        await reply(message, error.render(tr), parse_mode=None)
        return
    figures = found.figures
    await reply(message, summary.summary_text(tr, figures, tz, kind=found.kind))
    # matplotlib and openpyxl load with the first summary, not when the bot starts (they are
    # about 0.5 s and 50 MB of a start; bench/startup.py, bench/memory.py).
    from bot.services.reports import charts, workbook

    # Drawing and writing take a moment of CPU: off the event loop, so other updates go on.
    period = summary.period_text(tr, figures, tz)
    png = await asyncio.to_thread(charts.summary_chart, tr, figures, period=period)
    xlsx = await asyncio.to_thread(workbook.summary_workbook, tr, figures, tz)
    stem = summary.file_stem(figures)
    await message.reply_photo(InputFile(png, filename=f"{stem}.png"))
    await message.reply_document(InputFile(xlsx, filename=f"{stem}.xlsx"))
