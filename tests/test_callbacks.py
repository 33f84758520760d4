"""Callback data: every button's data reads back as itself, and nothing else reads at all."""

from __future__ import annotations

import math

import pytest

from bot import callbacks, plausible
from bot.callbacks import (
    MAX_ID,
    BoardPage,
    ButtonData,
    CheckinNormal,
    CheckinProblem,
    ClockIn,
    ClockOut,
    DailyNothing,
    DailyOpen,
    DailyStep,
    DraftChoice,
    DrillEnd,
    DrillStart,
    DutyLogStep,
    FinalStep,
    FollowUpOpen,
    FollowUpStep,
    HeardChoice,
    InvalidButton,
    Language,
    PageButton,
    PhoneCallee,
    PhoneConfirm,
    PhoneWhen,
    ReportChoice,
    SwapAnswer,
    SwapBack,
    SwapCancel,
    SwapConfirm,
    SwapDecision,
    SwapOffer,
    SwapShift,
)
from bot.config import Severity, ShiftSettings
from bot.errors import InvalidInput
from bot.models import Unit
from bot.services.attendance import Location, check_location, distance_m
from bot.services.incidents import Category
from handlers.edge import clean_text

EVERY_KIND: list[ButtonData] = [
    Language("zh"),
    Language("en"),
    ClockIn(1),
    ClockOut(MAX_ID),
    DutyLogStep("done"),
    DutyLogStep("none"),
    DutyLogStep("back"),
    DutyLogStep("cancel"),
    DraftChoice("send", "0123456789ab"),
    DraftChoice("go_on", "ffffffffffff"),
    DraftChoice("discard", "a1b2c3d4e5f6"),
    SwapCancel(),
    SwapBack(),
    SwapConfirm(),
    SwapShift(7),
    SwapOffer(7, 8),
    SwapAnswer(9, accept=True),
    SwapAnswer(9, accept=False),
    SwapDecision(9, approve=True),
    SwapDecision(9, approve=False),
    *(PageButton(action, 12) for action in callbacks.PAGE_ACTIONS),
    PhoneCallee(3, 4),
    PhoneWhen(3, 4, 0),
    PhoneWhen(3, 4, 60),
    PhoneConfirm(5, received=True),
    PhoneConfirm(5, received=False),
    *(ReportChoice("cat", c) for c in callbacks.REPORT_CATEGORIES),
    *(ReportChoice("sev", s) for s in callbacks.REPORT_SEVERITIES),
    *(ReportChoice("ago", str(m)) for m in (0, *callbacks.REPORT_MINUTES_AGO)),
    *(
        ReportChoice(action)
        for action in ("here", "place", "done", "none", "unknown", "send", "direct", "back")
    ),
    ReportChoice("cancel"),
    *(DrillStart(MAX_ID, severity) for severity in callbacks.DRILL_SEVERITIES),
    DrillEnd(17),
    FollowUpOpen(MAX_ID),
    FollowUpStep("send"),
    FollowUpStep("cancel"),
    *(FinalStep(action) for action in ("send", "back", "cancel")),
    HeardChoice("unit", str(MAX_ID)),
    *(HeardChoice("cat", c) for c in callbacks.REPORT_CATEGORIES),
    *(HeardChoice("sev", s) for s in callbacks.REPORT_SEVERITIES),
    *(HeardChoice(action) for action in ("send", "back", "cancel")),
    DailyOpen(MAX_ID),
    DailyNothing(1),
    *(DailyStep(action) for action in ("send", "back", "cancel")),
    CheckinNormal(1),
    CheckinProblem(MAX_ID),
    BoardPage(MAX_ID, 0),
    BoardPage(1, callbacks.MAX_UNIT_PAGE),
]


def test_the_reports_words_are_the_services_categories_and_severities() -> None:
    assert tuple(c.value for c in Category) == callbacks.REPORT_CATEGORIES
    assert tuple(s.value for s in Severity) == callbacks.REPORT_SEVERITIES


@pytest.mark.parametrize("button", EVERY_KIND, ids=lambda b: b.data)
def test_every_button_reads_back_as_itself(button: ButtonData) -> None:
    assert len(button.data.encode()) <= 64
    assert callbacks.decode(button.data) == button


def test_drill_buttons_know_every_severity() -> None:
    assert tuple(severity.value for severity in Severity) == callbacks.DRILL_SEVERITIES


def test_the_data_other_services_write_reads_back() -> None:
    # bot/services/swaps.py and bot/services/escalation/phone.py write these by hand
    assert callbacks.decode("sw:a:3") == SwapAnswer(3, accept=True)
    assert callbacks.decode("sw:n:3") == SwapDecision(3, approve=False)
    assert callbacks.decode("phc:y:11") == PhoneConfirm(11, received=True)


FORGED = [
    None,
    "",
    ":",
    "sh:in:",
    "sh:in:²",  # str.isdigit() says yes, int() says no
    "sh:in:１",  # a fullwidth one
    "sh:in:٣",  # an Arabic-Indic three: int() would take it
    "sh:in:" + "9" * 40,  # OverflowError on SQLite
    "sh:in:" + "9" * 12,  # out of int32 on PostgreSQL
    f"sh:in:{MAX_ID + 1}",
    "sh:in:0",
    "sh:in:-1",
    "sh:in:+1",
    "sh:in: 1",
    "sh:in:01",
    "bd:1",
    "bd:1:1000",
    "bd:0:0",
    "bd:1:-1",
    "bd:1:0:r",
    "sh:in:1:2",
    "sh:over:1",
    "lang:fr",
    "lang:",
    "lang:zh:en",
    "out:maybe",
    "out:done:1",
    "cv:s:0123456789AB",
    "cv:s:0123456789a",
    "cv:x:0123456789ab",
    "cv:s:0123456789ab:1",
    "sw:x:1",
    "sw:b:1",
    "sw:c:7:8",
    "sw:p:1",
    "sw:q:1",
    "pg:z:1",
    "pg:a:1:2",
    "ph:1",
    "ph:1:2:100",
    "ph:1:2:05",
    "phc:m:1",
    "nope:1",
    "SH:IN:1",
    "sh:in:1\x00",
    "pg:a:" + "1" * 70,
    "rp:c:arson",
    "rp:v:SERIOUS",
    "rp:a:15",
    "rp:a:010",
    "rp:a:-10",
    "rp:z",
    "rp:s:1",
    "dr:s:1:huge",
    "dr:s:1",
    "dr:e:0",
    "dr:e:1:2",
    "dr:x:1",
    "fu:o:",
    "fu:o:0",
    "fu:o:x1",
    "fu:o:1:2",
    "fu:s:1",
    "fu:x",
    "fr:z",
    "fr:s:1",
    "hd:u:01",
    "hd:u:abc",
    "hd:k:arson",
    "hd:v:huge",
    "hd:q",
    "dy:o:0",
    "dy:z:²",
    "dy:z:2147483648",
    "dy:o",
    "dy:s:1",
    "dy:x",
    "ck:n:",
    "ck:n:0",
    "ck:n:01",
    "ck:p:x",
    "ck:p:1:2",
    "ck:y:1",
    f"ck:n:{MAX_ID + 1}",
]


@pytest.mark.parametrize("data", FORGED, ids=repr)
def test_forged_data_is_refused_with_the_catalog_sentence(data: str | None) -> None:
    with pytest.raises(InvalidButton) as refused:
        callbacks.decode(data)
    assert refused.value.message == "This button is no longer valid."
    assert isinstance(refused.value, InvalidInput)


def test_the_largest_id_both_databases_hold_is_accepted() -> None:
    assert callbacks.decode(f"pg:a:{MAX_ID}") == PageButton("a", MAX_ID)


SCHOOL = Unit(code="S", name="S", kind="school", latitude=32.48, longitude=105.15, radius_m=400)


@pytest.mark.parametrize(
    ("latitude", "longitude", "accuracy"),
    [
        (math.nan, 105.15, None),
        (32.48, math.nan, 10.0),
        (math.inf, 105.15, None),
        (32.48, -math.inf, None),
        (90.5, 105.15, None),
        (32.48, 180.5, None),
        (32.48, 105.15, -1.0),
        (32.48, 105.15, math.nan),
        (32.48, 105.15, math.inf),
    ],
)
def test_the_geofence_refuses_a_location_no_phone_sends(
    latitude: float, longitude: float, accuracy: float | None
) -> None:
    assert not plausible.location(latitude, longitude, accuracy)
    with pytest.raises(InvalidInput) as refused:
        check_location(SCHOOL, Location(latitude, longitude, accuracy), ShiftSettings())
    assert refused.value.message.startswith("That location cannot be right.")
    with pytest.raises(ValueError, match="finite"):
        distance_m(32.48, 105.15, latitude if accuracy is None else math.nan, longitude)


def test_distance_holds_at_the_antipode_and_the_poles() -> None:
    assert distance_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * 6_371_000.0)
    assert distance_m(90.0, 0.0, -90.0, 0.0) == pytest.approx(math.pi * 6_371_000.0)


def test_storable_text_loses_only_nul_and_lone_surrogates() -> None:
    assert plausible.storable("东门\x00门锁\ud800坏了 😀") == "东门门锁坏了 😀"


def test_entities_move_with_the_text_when_characters_are_removed() -> None:
    text = "\x00😀\x00 @zhiban_bot /in\x00"
    entities = [
        {"type": "mention", "offset": 5, "length": 11},
        {"type": "bot_command", "offset": 17, "length": 4},
    ]
    cleaned, moved = clean_text(text, entities)
    assert cleaned == "😀 @zhiban_bot /in"
    assert [
        cleaned.encode("utf-16-le")[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode(
            "utf-16-le"
        )
        for e in moved
    ] == ["@zhiban_bot", "/in"]
