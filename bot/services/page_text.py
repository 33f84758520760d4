"""The words of a page: what, where, since when, what is asked; pure functions of their inputs."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.callbacks import FollowUpOpen, PageButton
from bot.i18n import N_, Translator
from bot.message_parts import MESSAGE_LIMIT, fits, truncate_html, visible_length
from bot.services.matter_clock import MatterClock, clock_text, holder_text
from bot.services.outbox import Button

# A page's own text stays this far below one message, for the line its edits add.
PAGE_LIMIT = MESSAGE_LIMIT - 256
# The least of a page's free text kept when the rest of the page is long.
MIN_WHAT = 64

ACK = "a"
PASS_UP = "u"
RESOLVE = "r"
DETAILS = "d"
DIRECT = "x"
PHONED = "p"


@dataclass(frozen=True)
class PageSubject:
    """What a page is about, as catalog ids and parameters (stored with the escalation)."""

    what: str
    ask: str
    what_params: dict[str, Any] = field(default_factory=dict)
    since: datetime | None = None
    # The resolve button's label, when "resolved" has a more precise meaning ("covered").
    resolve_label: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "what": self.what,
            "ask": self.ask,
            "what_params": self.what_params,
            "since": self.since.isoformat() if self.since else None,
            "resolve_label": self.resolve_label,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageSubject:
        """Read the stored form."""
        since = data.get("since")
        return cls(
            what=data["what"],
            ask=data["ask"],
            what_params=dict(data.get("what_params") or {}),
            since=datetime.fromisoformat(since) if since else None,
            resolve_label=data.get("resolve_label"),
        )


def _param(tr: Translator, value: Any) -> str:
    # A parameter may itself be a catalog id ({"msg": "..."}), e.g. a severity's name.
    if isinstance(value, dict) and "msg" in value:
        return html.escape(tr._(value["msg"]), quote=False)
    return html.escape(str(value), quote=False)


def page_text(
    tr: Translator,
    tz: ZoneInfo,
    *,
    subject: PageSubject,
    unit_name: str,
    started_at: datetime,
    now: datetime,
    drill: bool = False,
    reminder: int = 0,
    late_since: datetime | None = None,
    phones: list[tuple[str, str]] | None = None,
    clock: MatterClock | None = None,
) -> str:
    """The full text of a page in the reader's language (HTML parse mode).

    `phones` (name, number) are listed on pages to a level above, so that the reader can call
    the school first (先电话后文字). A matter that happened (an incident) shows its `clock`,
    as computed when the page is written, instead of the plain "since" line: time since it
    happened, time left to the report deadline or how late, and who has it now.
    """
    since = subject.since or started_at
    params = {key: _param(tr, value) for key, value in subject.what_params.items()}
    lines = []
    if drill:
        lines.append(tr._("【DRILL 演练】 This is an exercise."))
    if reminder:
        lines.append(tr._("⏰ Reminder {number}: still not acknowledged.", number=reminder))
    what_line = len(lines)
    lines.append("🚨 <b>" + tr._(subject.what, **params) + "</b>")
    lines.append(tr._("📍 Where: {unit}", unit=html.escape(unit_name, quote=False)))
    if clock is None:
        lines.append(
            tr._(
                "🕒 Since: {time} ({ago} ago)",
                time=tr.datetime_text(since, tz, "MM-dd HH:mm"),
                ago=tr.duration_text(max(now - since, now - now)),
            )
        )
    else:
        lines.append("🕒 " + html.escape(clock_text(tr, tz, clock), quote=False))
        holder = holder_text(tr, clock.holder)
        if holder:
            lines.append("📌 " + html.escape(holder, quote=False))
    if late_since is not None:
        lines.append(
            tr._(
                "⚠️ Sent late: it was due at {time}, while Zhiban was not running.",
                time=tr.time_text(late_since, tz),
            )
        )
    if phones:
        people = [
            f"{html.escape(name, quote=False)} {html.escape(number)}" for name, number in phones
        ]
        lines.append(tr._("☎ Call first: {people}", people=tr.list_text(people)))
    lines.append("👉 " + tr._(subject.ask))
    return _within_limit(lines, what_line)


def _within_limit(lines: list[str], what_line: int) -> str:
    """The page's lines, its free text (the "what" line) cut short if the page would not fit.

    A page is one message (its repeats quote it, its edits replace it), so it is never split:
    what a person wrote is shortened with an ellipsis, and the lines that say where, since when
    and what is asked stay whole. Room is left for the line an edit adds (who acknowledged).
    """
    text = "\n".join(lines)
    if fits(text, PAGE_LIMIT):
        return text
    over = visible_length(text) - PAGE_LIMIT
    if over > 0:
        what = lines[what_line]
        lines[what_line] = truncate_html(what, max(visible_length(what) - over, MIN_WHAT))
        text = "\n".join(lines)
    return text


def page_buttons(
    tr: Translator,
    page_id: int,
    *,
    can_pass_up: bool,
    can_report_direct: bool = False,
    under_deadline: bool = False,
    resolve_label: str | None = None,
    follow_up_incident: int | None = None,
) -> list[list[Button]]:
    """Acknowledge first; then pass up (by phone, straight to the county); resolve, details.

    The phone and skip-level buttons are for matters with a report deadline (serious and
    above), where reaching the levels above in time is what the regulation checks. A page
    about an incident ends with its follow-up (续报) button.
    """
    first = [Button(tr._("✅ Acknowledge"), PageButton(ACK, page_id).data)]
    if can_pass_up:
        first.append(Button(tr._("⬆️ Pass up"), PageButton(PASS_UP, page_id).data))
    rows = [first]
    if can_pass_up and under_deadline:
        second = [Button(tr._("📞 Reported by phone"), PageButton(PHONED, page_id).data)]
        if can_report_direct:
            second.append(
                Button(tr._("⏫ Report straight to the county"), PageButton(DIRECT, page_id).data)
            )
        rows.append(second)
    rows.append(
        [
            Button(tr._(resolve_label or RESOLVED_LABEL), PageButton(RESOLVE, page_id).data),
            Button(tr._("ℹ️ Details"), PageButton(DETAILS, page_id).data),
        ]
    )
    if follow_up_incident is not None:
        rows.append([Button(tr._(FOLLOW_UP_LABEL), FollowUpOpen(follow_up_incident).data)])
    return rows


def closed_text(
    tr: Translator, tz: ZoneInfo, *, original: str, outcome: str, by: str, at: datetime
) -> str:
    """A page after someone acknowledged or resolved it: the original plus who and when."""
    closing = tr._(outcome, name=html.escape(by, quote=False), time=tr.time_text(at, tz))
    # Who closed the page matters more than the end of a long original.
    room = MESSAGE_LIMIT - visible_length(closing) - 2
    return truncate_html(original, max(room, MIN_WHAT)) + "\n\n" + closing


RESOLVED_LABEL = N_("✔️ Resolved")
FOLLOW_UP_LABEL = N_("➕ Follow-up (续报)")
ACKNOWLEDGED_BY = N_("✅ Acknowledged by {name} at {time}.")
RESOLVED_BY = N_("✔️ Resolved by {name} at {time}.")
PASSED_UP_BY = N_("⬆️ Passed up by {name} at {time}.")
REPORTED_DIRECT_BY = N_("⏫ Reported straight to the county by {name} at {time}.")
