"""/board: the duty board of my area now, with ◀ ▶ pages and 🔄 Refresh that edit it in place.

The text is built by pure functions (`board_pages`, `board_buttons`) from the service's
`Board`, in the reader's language, without a parse mode (names are shown as written).
A school's board is a few lines; a township's or the county's is a summary header, then one
line per unit with something wrong, worst first, then how many units are all clear. Every
page repeats the header, so each stands alone, and none exceeds Telegram's 4,096 characters.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.callbacks import BoardPage
from bot.errors import ZhibanError
from bot.i18n import N_, Translator
from bot.message_parts import MESSAGE_LIMIT
from bot.models import UnitKind
from bot.services import board
from bot.services.board import Board, OpenIncident, ReportState, UnitBoard
from bot.services.incidents.kinds import CATEGORY_NAMES, SEVERITY_NAMES
from bot.services.matter_clock import clock_text, holder_text
from handlers.context import ZhibanContext
from handlers.render import role_name
from handlers.replies import edit, reply

if TYPE_CHECKING:
    from handlers.buttons import Press

REFRESH_LABEL = N_("🔄 Refresh")
# A unit line names at most this many incidents; the rest are counted.
LINE_INCIDENTS = 2


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _moment(tr: Translator, tz: tzinfo, moment: datetime, now: datetime) -> str:
    if moment.astimezone(tz).date() == now.astimezone(tz).date():
        return tr.time_text(moment, tz)
    return tr.datetime_text(moment, tz, "MM-dd HH:mm")


def _incident_head(tr: Translator, incident: OpenIncident) -> str:
    head = tr._(
        "{number} · {severity} · {category}",
        number=incident.number,
        severity=tr._(SEVERITY_NAMES[incident.severity]),
        category=tr._(CATEGORY_NAMES[incident.category]),
    )
    return (tr._("🎯 DRILL (演练)") + " " + head) if incident.drill else "🚨 " + head


def _incident_short(tr: Translator, incident: OpenIncident) -> str:
    """An incident in a unit's one line: severity, category, number and where its clock stands."""
    clock = incident.clock
    if clock.time_left is not None:
        state = tr._("{left} left", left=tr.duration_text(clock.time_left))
    elif clock.late_by is not None:
        state = tr._("{late} late", late=tr.duration_text(clock.late_by))
    else:
        state = tr._("{ago} ago", ago=tr.duration_text(clock.since))
    text = tr._(
        "{severity} {category} {number}, {state}",
        severity=tr._(SEVERITY_NAMES[incident.severity]),
        category=tr._(CATEGORY_NAMES[incident.category]),
        number=incident.number,
        state=state,
    )
    return (tr._("🎯 DRILL (演练)") + " " + text) if incident.drill else "🚨 " + text


def _report_text(tr: Translator, tz: tzinfo, unit: UnitBoard, now: datetime) -> str | None:
    report = unit.daily_report
    if report is None:
        return None
    due = _moment(tr, tz, report.deadline, now)
    if report.state == ReportState.MISSING:
        return tr._("📝 Daily report: missing (due {due})", due=due)
    if report.state == ReportState.DUE:
        return tr._("📝 Daily report: due {due}", due=due)
    assert report.submitted_at is not None
    at = _moment(tr, tz, report.submitted_at, now)
    if report.nothing_to_report:
        text = tr._("📝 Daily report: nothing to report ({at})", at=at)
    else:
        text = tr._("📝 Daily report: in ({at})", at=at)
    return text + (" · " + tr._("late") if report.state == ReportState.LATE else "")


def _unreachable_text(tr: Translator, tz: tzinfo, unit: UnitBoard, now: datetime) -> str:
    people = []
    for person in unit.unreachable:
        roles = tr.list_text([role_name(tr, role) for role in person.roles])
        if person.since is None:
            why = tr._("no account linked")
        else:
            why = tr._(
                "messages not delivered since {time}", time=_moment(tr, tz, person.since, now)
            )
        people.append(tr._("{name} ({roles}; {why})", name=person.name, roles=roles, why=why))
    return tr._("📵 Cannot be reached: {people}", people="; ".join(people))


def _title(tr: Translator, tz: tzinfo, found: Board) -> str:
    return tr._(
        "📋 Duty board: {unit} ({code}) · as of {time}",
        unit=found.name,
        code=found.code,
        time=tr.time_text(found.at, tz),
    )


def school_lines(tr: Translator, tz: tzinfo, found: Board, unit: UnitBoard) -> list[str]:
    """A school's own board, a few lines: duty, unmanned posts, incidents, check-ins, report."""
    now = found.at
    lines = []
    if unit.on_duty:
        people = []
        for duty in unit.on_duty:
            who = duty.person or tr._("nobody assigned")
            post = tr._("{post}, leader on duty", post=duty.post) if duty.leader else duty.post
            mark = "✅" if duty.clocked_in else "❌"
            people.append(tr._("{name} ({post})", name=who, post=post) + " " + mark)
        lines.append(tr._("👮 On duty: {people}", people=tr.list_text(people)))
    else:
        lines.append(tr._("👮 Nobody is on duty now."))
    for duty in unit.unmanned:
        lines.append(
            tr._(
                "🚫 Unmanned: {post} ({who}) for {duration}",
                post=duty.post,
                who=duty.person or tr._("nobody assigned"),
                duration=tr.duration_text(duty.unmanned_for(now) or timedelta(0)),
            )
        )
    for incident in unit.incidents:
        lines.append(_incident_head(tr, incident))
        lines.append("   🕒 " + clock_text(tr, tz, incident.clock))
        holder = holder_text(tr, incident.clock.holder)
        if holder:
            lines.append("   📌 " + holder)
    if unit.checkins_missed and found.round_at is not None:
        lines.append(
            tr._(
                "🛡 Check-in {time} not answered: {people}",
                time=_moment(tr, tz, found.round_at, now),
                people=tr.list_text(list(unit.checkins_missed)),
            )
        )
    if unit.checkins_waiting and found.round_at is not None and found.round_deadline:
        lines.append(
            tr._(
                "🛡 Check-in {time}: waiting for {people} (answer by {deadline})",
                time=_moment(tr, tz, found.round_at, now),
                people=tr.list_text(list(unit.checkins_waiting)),
                deadline=_moment(tr, tz, found.round_deadline, now),
            )
        )
    report = _report_text(tr, tz, unit, now)
    if report:
        lines.append(report)
    if unit.unreachable:
        lines.append(_unreachable_text(tr, tz, unit, now))
    if unit.clear:
        lines.append(tr._("✅ All clear."))
    return lines


def unit_line(tr: Translator, tz: tzinfo, unit: UnitBoard, now: datetime) -> str:
    """One unit with something wrong, on one line: what is wrong, worst first."""
    parts = [_incident_short(tr, i) for i in unit.incidents[:LINE_INCIDENTS]]
    if len(unit.incidents) > LINE_INCIDENTS:
        parts.append(tr._("+{count} more", count=len(unit.incidents) - LINE_INCIDENTS))
    unmanned = unit.unmanned
    if unmanned:
        longest = unmanned[0].unmanned_for(now)
        assert longest is not None
        parts.append(
            tr._(
                "🚫 unmanned {count} ({duration})",
                count=len(unmanned),
                duration=tr.duration_text(longest),
            )
        )
    if unit.checkins_missed:
        parts.append(tr._("🛡 check-ins missed {count}", count=len(unit.checkins_missed)))
    if unit.report_missing:
        parts.append(tr._("📝 daily report missing"))
    if unit.unreachable:
        parts.append(tr._("📵 unreachable {count}", count=len(unit.unreachable)))
    mark = "🔴" if unit.real_incidents or unmanned else "🟡" if unit.weight else "🟢"
    head = tr._("{name} ({code}):", name=unit.name, code=unit.code)
    return f"{mark} {head}" + ("" if tr.language == "zh" else " ") + " · ".join(parts)


def _summary(tr: Translator, found: Board) -> str:
    totals = found.totals
    incidents = tr._("🚨 open incidents {count}", count=totals.incidents)
    if totals.drills:
        incidents += " " + tr._("(+{count} drills)", count=totals.drills)
    return " · ".join(
        [
            tr._("🏫 schools {count}", count=totals.schools),
            tr._(
                "👮 on duty {count}, clocked in {clocked}",
                count=totals.on_duty,
                clocked=totals.clocked_in,
            ),
            tr._("🚫 unmanned {count}", count=totals.unmanned),
            incidents,
            tr._("🛡 check-ins missed {count}", count=totals.checkins_missed),
            tr._("📝 daily reports missing {count}", count=totals.reports_missing),
            tr._("📵 leaders unreachable {count}", count=totals.unreachable),
        ]
    )


def _paginate(header: str, entries: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Whole entries packed into pages under `limit`, each page starting with the header."""
    pages: list[str] = []
    current = header
    for entry in entries:
        if _utf16(entry) > limit - _utf16(header) - 1:
            entry = entry[: max(limit - _utf16(header) - 2, 0)] + "…"
        candidate = f"{current}\n{entry}"
        if _utf16(candidate) > limit and current != header:
            pages.append(current)
            candidate = f"{header}\n{entry}"
        current = candidate
    pages.append(current)
    return pages


def board_pages(tr: Translator, tz: tzinfo, found: Board, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The board as one or more pages of text, each within Telegram's limit."""
    title = _title(tr, tz, found)
    if found.single:
        lines: list[str] = []
        for unit in found.units:
            if len(found.units) > 1:
                lines.append(tr._("{name} ({post})", name=unit.name, post=unit.code))
            lines.extend(school_lines(tr, tz, found, unit))
        return _paginate(title, lines, limit)
    header = f"{title}\n{_summary(tr, found)}\n"
    troubled = [u for u in found.units if not u.clear]
    entries = [unit_line(tr, tz, u, found.at) for u in troubled]
    clear = sum(1 for u in found.units if u.clear and u.kind != UnitKind.COUNTY)
    if not troubled:
        entries.append(tr._("✅ All clear: {count} units.", count=clear))
    elif clear:
        entries.append(tr._("✅ {count} more units all clear.", count=clear))
    return _paginate(header, entries, limit)


def board_buttons(tr: Translator, unit_id: int, page: int, count: int) -> InlineKeyboardMarkup:
    """◀ page ▶ (round the end) when there is more than one page, and 🔄 Refresh."""
    rows = []
    if count > 1:
        back, here, forth = (BoardPage(unit_id, p % count).data for p in (page - 1, page, page + 1))
        rows.append(
            [
                InlineKeyboardButton("◀", callback_data=back),
                InlineKeyboardButton(f"{page + 1}/{count}", callback_data=here),
                InlineKeyboardButton("▶", callback_data=forth),
            ]
        )
    rows.append(
        [InlineKeyboardButton(tr._(REFRESH_LABEL), callback_data=BoardPage(unit_id, page).data)]
    )
    return InlineKeyboardMarkup(rows)


async def board_command(update: Update, context: ZhibanContext) -> None:
    """/board [CODE]: my area's board now, or a unit's in it."""
    message, me = update.effective_message, context.me
    if message is None or me is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    tz = runtime.settings.bot.tz
    args = context.args or []
    try:
        found = await board.for_code(
            runtime.db,
            me=me,
            code=" ".join(args) if args else None,
            now=runtime.clock.now(),
            daily=runtime.settings.daily_report,
            tz=tz,
        )
    except ZhibanError as error:
        await reply(message, error.render(tr, tz), parse_mode=None)
        return
    pages = board_pages(tr, tz, found)
    await reply(
        message,
        pages[0],
        parse_mode=None,
        reply_markup=board_buttons(tr, found.unit_id, 0, len(pages)),
    )


async def on_board_button(update: Update, context: ZhibanContext, press: Press[BoardPage]) -> None:
    """Turn a page or refresh: the presser's area is checked again, the message edited in place."""
    me = context.me
    if me is None:
        return
    runtime = context.runtime
    tr = context.tr_for(update)
    tz = runtime.settings.bot.tz
    try:
        found = await board.for_unit(
            runtime.db,
            me=me,
            unit_id=press.button.unit_id,
            now=runtime.clock.now(),
            daily=runtime.settings.daily_report,
            tz=tz,
        )
    except ZhibanError as error:
        await press.answer(error.render(tr, tz), alert=True)
        return
    pages = board_pages(tr, tz, found)
    page = min(press.button.page, len(pages) - 1)  # the board may have shrunk since
    await press.answer()
    await edit(
        press.query,
        pages[page],
        parse_mode=None,
        reply_markup=board_buttons(tr, found.unit_id, page, len(pages)),
    )
