"""The callback data of every inline button: one typed codec per prefix, written and read here.

A button's data is `prefix:field:…`. Each prefix has one frozen dataclass per kind of press; its
`data` property writes the string that goes on the button, and `decode` reads a press back into
it, so the format and the parser cannot drift apart.

Callback data is input like any other: a client can send any string for any message of ours.
`decode` accepts exactly what the `data` properties write and raises `InvalidButton` (the
catalog's "This button is no longer valid.") for anything else:
- numbers are database ids written in ASCII digits without a leading zero, 1 to 2**31 - 1,
  the range of an INTEGER column on both SQLite and PostgreSQL (`str.isdigit` and a regex's
  digit class also take "²" and other Unicode digits; forty nines overflow SQLite, twelve
  digits PostgreSQL);
- words come from a fixed set (languages, page actions, swap steps); a draft's token is
  twelve lowercase hex digits;
- the whole is at most 64 bytes, Telegram's limit.

This module is a leaf, like the clock and the catalog: the services that put buttons on
outgoing messages and the handlers that read presses both use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.errors import InvalidInput
from bot.i18n import LANGUAGES

MAX_ID = 2**31 - 1
MAX_BYTES = 64
MAX_MINUTES_AGO = 99
MAX_UNIT_PAGE = 999
PAGE_ACTIONS = ("a", "u", "r", "d", "x", "p")


class InvalidButton(InvalidInput):
    """Callback data that no button of ours carries (forged, stale, or from an old version)."""

    def __init__(self) -> None:
        super().__init__("This button is no longer valid.")


def _number(text: str, high: int = MAX_ID, low: int = 1) -> int:
    # isdigit() is true for "²" and "٣" too; only ASCII digits are ours.
    if not text or len(text) > len(str(high)) or not all("0" <= c <= "9" for c in text):
        raise InvalidButton
    if text != "0" and text.startswith("0"):
        raise InvalidButton
    value = int(text)
    if not low <= value <= high:
        raise InvalidButton
    return value


@dataclass(frozen=True)
class Language:
    """`lang:<code>`: switch my language."""

    language: str

    @property
    def data(self) -> str:
        """The callback data."""
        return f"lang:{self.language}"


@dataclass(frozen=True)
class ClockIn:
    """`sh:in:<shift>`: the Clock in button on a shift reminder."""

    shift_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"sh:in:{self.shift_id}"


@dataclass(frozen=True)
class ClockOut:
    """`sh:out:<shift>`: the Clock out button on the end-of-shift reminder."""

    shift_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"sh:out:{self.shift_id}"


OutChoice = Literal["done", "none", "back", "cancel"]


@dataclass(frozen=True)
class DutyLogStep:
    """`out:<choice>`: Done, Nothing to report, Back or Cancel while writing the duty log."""

    choice: OutChoice

    @property
    def data(self) -> str:
        """The callback data."""
        return f"out:{self.choice}"


@dataclass(frozen=True)
class SwapCancel:
    """`sw:x`: stop choosing a swap."""

    @property
    def data(self) -> str:
        """The callback data."""
        return "sw:x"


@dataclass(frozen=True)
class SwapBack:
    """`sw:b`: one step back while choosing a swap."""

    @property
    def data(self) -> str:
        """The callback data."""
        return "sw:b"


@dataclass(frozen=True)
class SwapConfirm:
    """`sw:c`: ask the chosen colleague; the draft holds which shift and whom."""

    @property
    def data(self) -> str:
        """The callback data."""
        return "sw:c"


@dataclass(frozen=True)
class SwapShift:
    """`sw:s:<shift>`: the shift to hand over."""

    shift_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"sw:s:{self.shift_id}"


@dataclass(frozen=True)
class SwapOffer:
    """`sw:p:<shift>:<person>`: the colleague asked to take the shift."""

    shift_id: int
    to_person_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"sw:p:{self.shift_id}:{self.to_person_id}"


@dataclass(frozen=True)
class SwapAnswer:
    """`sw:a:<swap>` or `sw:d:<swap>`: the colleague accepts or declines."""

    swap_id: int
    accept: bool

    @property
    def data(self) -> str:
        """The callback data."""
        return f"sw:{'a' if self.accept else 'd'}:{self.swap_id}"


@dataclass(frozen=True)
class SwapDecision:
    """`sw:y:<swap>` or `sw:n:<swap>`: the duty leader approves or refuses."""

    swap_id: int
    approve: bool

    @property
    def data(self) -> str:
        """The callback data."""
        return f"sw:{'y' if self.approve else 'n'}:{self.swap_id}"


DraftAction = Literal["send", "go_on", "discard"]
_DRAFT_ACTIONS: dict[str, DraftAction] = {"s": "send", "g": "go_on", "d": "discard"}
DRAFT_TOKEN_LENGTH = 12


@dataclass(frozen=True)
class DraftChoice:
    """`cv:<s|g|d>:<token>`: send a draft as it is, go on with it, or discard it."""

    action: DraftAction
    token: str

    @property
    def data(self) -> str:
        """The callback data."""
        return f"cv:{self.action[0]}:{self.token}"


# Incident categories and severities as the report's buttons write them (the same words as
# bot.services.incidents.Category and bot.config.Severity; tests/test_callbacks.py checks it).
REPORT_CATEGORIES = (
    "fire",
    "building_facility",
    "food_poisoning",
    "crowd_crush",
    "traffic",
    "flood_weather",
    "public_order_violence",
    "student_injury_illness",
    "missing_student",
    "other",
)
REPORT_SEVERITIES = ("especially_serious", "serious", "large", "general")
REPORT_MINUTES_AGO = (10, 30, 60)
ReportAction = Literal[
    "cat",
    "sev",
    "here",
    "place",
    "done",
    "ago",
    "none",
    "unknown",
    "send",
    "direct",
    "back",
    "cancel",
]
# The actions without a value, and the one-letter form each is written as.
_REPORT_PLAIN: dict[str, ReportAction] = {
    "h": "here",
    "p": "place",
    "d": "done",
    "n": "none",
    "u": "unknown",
    "s": "send",
    "x": "direct",
    "b": "back",
    "c": "cancel",
}


@dataclass(frozen=True)
class ReportChoice:
    """`rp:<step>[:<value>]`: a press in /report (category, severity, place, time, confirm…).

    `value` is the category or severity for "cat" and "sev", minutes ago for "ago" (0: now),
    and empty for the others.
    """

    action: ReportAction
    value: str = ""

    @property
    def data(self) -> str:
        """The callback data."""
        match self.action:
            case "cat":
                return f"rp:c:{self.value}"
            case "sev":
                return f"rp:v:{self.value}"
            case "ago":
                return f"rp:a:{self.value}"
        letter = next(key for key, action in _REPORT_PLAIN.items() if action == self.action)
        return f"rp:{letter}"


# The asker's steps in /swap (a conversation), and the answers of the others (plain buttons).
SwapStepButton = SwapCancel | SwapBack | SwapConfirm | SwapShift | SwapOffer
SwapButton = SwapStepButton | SwapAnswer | SwapDecision


@dataclass(frozen=True)
class FollowUpOpen:
    """`fu:o:<incident>`: write a follow-up (续报) to this incident (confirmation, pages)."""

    incident_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"fu:o:{self.incident_id}"


FollowUpAction = Literal["send", "cancel"]


@dataclass(frozen=True)
class FollowUpStep:
    """`fu:s` or `fu:c`: send the follow-up being written, or cancel it."""

    action: FollowUpAction

    @property
    def data(self) -> str:
        """The callback data."""
        return f"fu:{self.action[0]}"


FinalAction = Literal["send", "back", "cancel"]
_FINAL_ACTIONS: dict[str, FinalAction] = {"s": "send", "b": "back", "c": "cancel"}


@dataclass(frozen=True)
class FinalStep:
    """`fr:<s|b|c>`: close with the final report (终报), go back a step, or cancel."""

    action: FinalAction

    @property
    def data(self) -> str:
        """The callback data."""
        return f"fr:{self.action[0]}"


@dataclass(frozen=True)
class DailyOpen:
    """`dy:o:<report>`: 📝 Submit on a daily report prompt (opens the short conversation)."""

    report_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"dy:o:{self.report_id}"


@dataclass(frozen=True)
class DailyNothing:
    """`dy:z:<report>`: ✅ Nothing to report (零报告) on a daily report prompt."""

    report_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"dy:z:{self.report_id}"


DailyAction = Literal["send", "back", "cancel"]
_DAILY_ACTIONS: dict[str, DailyAction] = {"s": "send", "b": "back", "c": "cancel"}


@dataclass(frozen=True)
class DailyStep:
    """`dy:<s|b|c>`: send the daily report being written, go back, or cancel."""

    action: DailyAction

    @property
    def data(self) -> str:
        """The callback data."""
        return f"dy:{self.action[0]}"


DailyButton = DailyOpen | DailyNothing | DailyStep


HeardAction = Literal["unit", "cat", "sev", "send", "back", "cancel"]
_HEARD_PLAIN: dict[str, HeardAction] = {"s": "send", "b": "back", "c": "cancel"}


@dataclass(frozen=True)
class HeardChoice:
    """`hd:<step>[:<value>]`: a press in /heard (the school, category, severity, confirm).

    `value` is a unit id for "unit", a category for "cat", a severity for "sev", else empty.
    """

    action: HeardAction
    value: str = ""

    @property
    def data(self) -> str:
        """The callback data."""
        match self.action:
            case "unit":
                return f"hd:u:{self.value}"
            case "cat":
                return f"hd:k:{self.value}"
            case "sev":
                return f"hd:v:{self.value}"
        letter = next(key for key, action in _HEARD_PLAIN.items() if action == self.action)
        return f"hd:{letter}"


@dataclass(frozen=True)
class PageButton:
    """`pg:<action>:<page>`: acknowledge, pass up, resolve, details, direct report, by phone."""

    action: str
    page_id: int

    def __post_init__(self) -> None:
        if self.action not in PAGE_ACTIONS:
            raise ValueError(f"unknown page action {self.action!r}")

    @property
    def data(self) -> str:
        """The callback data."""
        return f"pg:{self.action}:{self.page_id}"


@dataclass(frozen=True)
class PhoneCallee:
    """`ph:<page>:<person>`: whom at the level above the leader called."""

    page_id: int
    callee_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"ph:{self.page_id}:{self.callee_id}"


@dataclass(frozen=True)
class PhoneWhen:
    """`ph:<page>:<person>:<minutes>`: how long ago the call was made."""

    page_id: int
    callee_id: int
    minutes_ago: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"ph:{self.page_id}:{self.callee_id}:{self.minutes_ago}"


PhoneButton = PhoneCallee | PhoneWhen


@dataclass(frozen=True)
class PhoneConfirm:
    """`phc:y:<event>` or `phc:n:<event>`: the person phoned confirms the call or denies it."""

    event_id: int
    received: bool

    @property
    def data(self) -> str:
        """The callback data."""
        return f"phc:{'y' if self.received else 'n'}:{self.event_id}"


@dataclass(frozen=True)
class UnitPage:
    """`unit:<unit>:<page>`: turn to another page of /unit (pages count from 0)."""

    unit_id: int
    page: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"unit:{self.unit_id}:{self.page}"


@dataclass(frozen=True)
class BoardPage:
    """`bd:<unit>:<page>`: show (turn to, or refresh) a page of the unit's /board (from 0)."""

    unit_id: int
    page: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"bd:{self.unit_id}:{self.page}"


# A drill's severities: bot.config.Severity's values (a test holds them equal).
DRILL_SEVERITIES = ("especially_serious", "serious", "large", "general")


@dataclass(frozen=True)
class DrillStart:
    """`dr:s:<unit>:<severity>`: start a drill of this severity at this unit."""

    unit_id: int
    severity: str

    def __post_init__(self) -> None:
        if self.severity not in DRILL_SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    @property
    def data(self) -> str:
        """The callback data."""
        return f"dr:s:{self.unit_id}:{self.severity}"


@dataclass(frozen=True)
class DrillEnd:
    """`dr:e:<incident>`: end a drill now, before its set end."""

    incident_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"dr:e:{self.incident_id}"


DrillButton = DrillStart | DrillEnd


@dataclass(frozen=True)
class CheckinNormal:
    """`ck:n:<checkin>`: ✅ All normal on a check-in prompt (平安报告)."""

    checkin_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"ck:n:{self.checkin_id}"


@dataclass(frozen=True)
class CheckinProblem:
    """`ck:p:<checkin>`: 🚨 Report a problem on a check-in prompt (opens /report)."""

    checkin_id: int

    @property
    def data(self) -> str:
        """The callback data."""
        return f"ck:p:{self.checkin_id}"


CheckinButton = CheckinNormal | CheckinProblem

ButtonData = (
    Language
    | ClockIn
    | ClockOut
    | DutyLogStep
    | DraftChoice
    | SwapButton
    | PageButton
    | PhoneButton
    | PhoneConfirm
    | UnitPage
    | BoardPage
    | ReportChoice
    | DrillButton
    | FollowUpOpen
    | FollowUpStep
    | FinalStep
    | HeardChoice
    | DailyButton
    | CheckinButton
)


def _language(fields: list[str]) -> ButtonData:
    match fields:
        case [code] if code in LANGUAGES:
            return Language(code)
    raise InvalidButton


def _shift(fields: list[str]) -> ButtonData:
    match fields:
        case ["in", shift]:
            return ClockIn(_number(shift))
        case ["out", shift]:
            return ClockOut(_number(shift))
    raise InvalidButton


def _duty_log(fields: list[str]) -> ButtonData:
    match fields:
        case ["done"]:
            return DutyLogStep("done")
        case ["none"]:
            return DutyLogStep("none")
        case ["back"]:
            return DutyLogStep("back")
        case ["cancel"]:
            return DutyLogStep("cancel")
    raise InvalidButton


def _draft(fields: list[str]) -> ButtonData:
    match fields:
        case [action, token] if (
            action in _DRAFT_ACTIONS
            and len(token) == DRAFT_TOKEN_LENGTH
            and all(c in "0123456789abcdef" for c in token)
        ):
            return DraftChoice(_DRAFT_ACTIONS[action], token)
    raise InvalidButton


def _swap(fields: list[str]) -> ButtonData:
    match fields:
        case ["x"]:
            return SwapCancel()
        case ["b"]:
            return SwapBack()
        case ["c"]:
            return SwapConfirm()
        case ["s", shift]:
            return SwapShift(_number(shift))
        case ["p", shift, person]:
            return SwapOffer(_number(shift), _number(person))
        case ["a" | "d" as kind, swap]:
            return SwapAnswer(_number(swap), accept=kind == "a")
        case ["y" | "n" as kind, swap]:
            return SwapDecision(_number(swap), approve=kind == "y")
    raise InvalidButton


def _page(fields: list[str]) -> ButtonData:
    match fields:
        case [action, page] if action in PAGE_ACTIONS:
            return PageButton(action, _number(page))
    raise InvalidButton


def _phone(fields: list[str]) -> ButtonData:
    match fields:
        case [page, callee]:
            return PhoneCallee(_number(page), _number(callee))
        case [page, callee, minutes]:
            return PhoneWhen(
                _number(page), _number(callee), _number(minutes, MAX_MINUTES_AGO, low=0)
            )
    raise InvalidButton


def _phone_confirm(fields: list[str]) -> ButtonData:
    match fields:
        case ["y" | "n" as answer, event]:
            return PhoneConfirm(_number(event), received=answer == "y")
    raise InvalidButton


def _unit(fields: list[str]) -> ButtonData:
    match fields:
        case [unit, page]:
            return UnitPage(_number(unit), _number(page, MAX_UNIT_PAGE, low=0))
    raise InvalidButton


def _board(fields: list[str]) -> ButtonData:
    match fields:
        case [unit, page]:
            return BoardPage(_number(unit), _number(page, MAX_UNIT_PAGE, low=0))
    raise InvalidButton


def _report(fields: list[str]) -> ButtonData:
    match fields:
        case ["c", category] if category in REPORT_CATEGORIES:
            return ReportChoice("cat", category)
        case ["v", severity] if severity in REPORT_SEVERITIES:
            return ReportChoice("sev", severity)
        case ["a", minutes] if minutes == "0" or _number(minutes, 60) in REPORT_MINUTES_AGO:
            return ReportChoice("ago", minutes)
        case [letter] if letter in _REPORT_PLAIN:
            return ReportChoice(_REPORT_PLAIN[letter])
    raise InvalidButton


def _drill(fields: list[str]) -> ButtonData:
    match fields:
        case ["s", unit, severity] if severity in DRILL_SEVERITIES:
            return DrillStart(_number(unit), severity)
        case ["e", incident]:
            return DrillEnd(_number(incident))
    raise InvalidButton


def _follow_up(fields: list[str]) -> ButtonData:
    match fields:
        case ["o", incident]:
            return FollowUpOpen(_number(incident))
        case ["s"]:
            return FollowUpStep("send")
        case ["c"]:
            return FollowUpStep("cancel")
    raise InvalidButton


def _final(fields: list[str]) -> ButtonData:
    match fields:
        case [letter] if letter in _FINAL_ACTIONS:
            return FinalStep(_FINAL_ACTIONS[letter])
    raise InvalidButton


def _heard(fields: list[str]) -> ButtonData:
    match fields:
        case ["u", unit]:
            return HeardChoice("unit", str(_number(unit)))
        case ["k", category] if category in REPORT_CATEGORIES:
            return HeardChoice("cat", category)
        case ["v", severity] if severity in REPORT_SEVERITIES:
            return HeardChoice("sev", severity)
        case [letter] if letter in _HEARD_PLAIN:
            return HeardChoice(_HEARD_PLAIN[letter])
    raise InvalidButton


def _daily(fields: list[str]) -> ButtonData:
    match fields:
        case ["o", report]:
            return DailyOpen(_number(report))
        case ["z", report]:
            return DailyNothing(_number(report))
        case [letter] if letter in _DAILY_ACTIONS:
            return DailyStep(_DAILY_ACTIONS[letter])
    raise InvalidButton


def _checkin(fields: list[str]) -> ButtonData:
    match fields:
        case ["n", checkin]:
            return CheckinNormal(_number(checkin))
        case ["p", checkin]:
            return CheckinProblem(_number(checkin))
    raise InvalidButton


# One reader per prefix; a prefix not listed here is not ours.
_READERS: dict[str, Callable[[list[str]], ButtonData]] = {
    "lang": _language,
    "sh": _shift,
    "out": _duty_log,
    "cv": _draft,
    "sw": _swap,
    "pg": _page,
    "ph": _phone,
    "phc": _phone_confirm,
    "unit": _unit,
    "bd": _board,
    "rp": _report,
    "dr": _drill,
    "fu": _follow_up,
    "fr": _final,
    "hd": _heard,
    "dy": _daily,
    "ck": _checkin,
}


def decode(data: str | None) -> ButtonData:
    """Read a press's callback data; raise InvalidButton unless one of our buttons wrote it."""
    if not data or len(data.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InvalidButton
    prefix, *fields = data.split(":")
    reader = _READERS.get(prefix)
    if reader is None:
        raise InvalidButton
    return reader(fields)
