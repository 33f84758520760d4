"""The duty board's pure parts: grouping rows by unit, worst first, and its pages of text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import Severity
from bot.i18n import translator
from bot.message_parts import MESSAGE_LIMIT
from bot.models import DailyReport, Incident, Unit
from bot.services.board import (
    Board,
    DailyReportLine,
    OnDuty,
    OpenIncident,
    ReportState,
    Rows,
    UnitBoard,
    Unreachable,
    assemble,
    board_units,
)
from bot.services.incidents.kinds import Category
from bot.services.matter_clock import clock_of
from handlers.board import board_buttons, board_pages

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 9, 40, tzinfo=UTC)  # 17:40 in Shanghai
ZH, EN = translator("zh"), translator("en")


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def unit(uid: int, code: str, kind: str, parent: Unit | None = None) -> Unit:
    path = f"{parent.path if parent else '/'}{uid}/"
    return Unit(
        id=uid,
        code=code,
        name=f"{code}校",
        kind=kind,
        parent_id=parent.id if parent else None,
        path=path,
    )


def incident(uid: int, *, severity: str, drill: bool = False, minutes_ago: int = 10) -> Incident:
    return Incident(
        id=uid * 100,
        number=f"20261201-{uid:03d}",
        unit_id=uid,
        category="fire",
        severity=severity,
        occurred_at=NOW - timedelta(minutes=minutes_ago),
        reported_at=NOW - timedelta(minutes=minutes_ago),
        is_drill=drill,
    )


def test_classes_fold_into_their_school_and_the_worst_unit_comes_first() -> None:
    county = unit(1, "C", "county")
    town = unit(2, "T", "township", county)
    quiet, unmanned, serious, unreachable = (
        unit(3, "S3", "school", town),
        unit(4, "S4", "school", town),
        unit(5, "S5", "school", town),
        unit(6, "S6", "school", town),
    )
    klass = unit(7, "S5-C1", "class", serious)
    units = [county, town, quiet, unmanned, serious, unreachable, klass]
    assert board_units(units) == {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 5}
    rows = Rows(
        units=units,
        shifts=[
            (10, "值班室", "甲", "staff", NOW - timedelta(hours=9)),
            (11, "门卫", None, "staff", NOW - timedelta(minutes=25)),
            (12, "带班", "乙", "leader", NOW - timedelta(hours=9)),
            (13, "值班室", "丙", "staff", NOW - timedelta(hours=9)),
        ],
        shift_units={10: 3, 11: 4, 12: 4, 13: 6},
        clocked={10: {"in"}, 12: {"in"}, 13: {"in", "out"}},
        # the serious fire happened in a class: it counts for its school; a drill elsewhere
        incidents=[incident(7, severity="serious"), incident(3, severity="general", drill=True)],
        escalations=[],
        levels=[],
        round_at=NOW - timedelta(minutes=40),
        checkins=[(4, "乙", NOW - timedelta(minutes=10)), (3, "甲", NOW + timedelta(minutes=5))],
        reports=[
            DailyReport(unit_id=3, day=date(2026, 12, 1), deadline=NOW - timedelta(minutes=40)),
        ],
        leaders=[
            (6, 60, "丁校长", "principal", None, None),
            (6, 60, "丁校长", "duty_leader", None, None),
            (5, 61, "戊校长", "principal", 1, None),  # linked and reachable
            (4, 62, "己", "safety_officer", 2, NOW - timedelta(hours=2)),  # blocked the bot
        ],
    )
    found = assemble(county, rows, now=NOW, report_deadline=NOW - timedelta(minutes=40))
    assert [u.code for u in found.units] == ["S5", "S4", "S3", "S6", "C", "T"]
    serious, unmanned_board, quiet_board, unreachable_board = found.units[:4]
    assert [i.number for i in serious.incidents] == ["20261201-007"]
    assert serious.incidents[0].clock.since == timedelta(minutes=10)
    assert [d.post for d in unmanned_board.unmanned] == ["门卫"]
    assert unmanned_board.checkins_missed == ("乙",)
    assert unmanned_board.unreachable == (
        Unreachable("己", ("safety_officer",), NOW - timedelta(hours=2)),
    )
    assert quiet_board.checkins_waiting == ("甲",) and quiet_board.report_missing
    assert [i.drill for i in quiet_board.incidents] == [True]
    # clocked out: handed over, neither on duty nor unmanned
    assert unreachable_board.on_duty == ()
    assert unreachable_board.unreachable == (
        Unreachable("丁校长", ("principal", "duty_leader"), None),
    )
    totals = found.totals
    assert (totals.schools, totals.on_duty, totals.clocked_in, totals.unmanned) == (4, 2, 2, 1)
    assert (totals.incidents, totals.drills, totals.checkins_missed) == (1, 1, 1)
    assert (totals.reports_missing, totals.unreachable) == (1, 2)


def problem_unit(index: int) -> UnitBoard:
    return UnitBoard(
        unit_id=index + 10,
        code=f"QC{index:03d}",
        name=f"青川县第{index:03d}小学",
        kind="school",
        on_duty=(OnDuty("值班室", None, False, NOW - timedelta(minutes=index), False),),
        checkins_missed=("某某",),
        daily_report=DailyReportLine(ReportState.MISSING, NOW - timedelta(minutes=40)),
        unreachable=(Unreachable("某校长", ("principal",), None),),
    )


def county_board(count: int) -> Board:
    units = (
        *(problem_unit(i) for i in range(count)),
        UnitBoard(unit_id=1, code="QC", name="青川县教育局", kind="county"),
        UnitBoard(unit_id=2, code="SB", name="石坝乡中心校", kind="township"),
    )
    return Board(unit_id=1, code="QC", name="青川县教育局", kind="county", at=NOW, units=units)


def test_a_county_of_500_troubled_schools_pages_within_telegrams_limit() -> None:
    found = county_board(500)
    for tr in (ZH, EN):
        pages = board_pages(tr, TZ, found)
        assert len(pages) > 1
        head = pages[0].split("\n")[:2]
        for page in pages:
            assert utf16(page) <= MESSAGE_LIMIT
            assert page.split("\n")[:2] == head  # every page stands alone
        lines = [line for page in pages for line in page.split("\n")[3:]]
        schools = [line for line in lines if "小学" in line]
        assert len(schools) == 500 and len(set(schools)) == 500  # each once, none cut off
        assert lines[-1] in ("✅ 其余1个单位一切正常。", "✅ 1 more units all clear.")
    english = board_pages(EN, TZ, found)
    assert english[0].split("\n")[0] == "📋 Duty board: 青川县教育局 (QC) · as of 17:40"
    assert english[0].split("\n")[3] == (
        "🔴 青川县第000小学 (QC000): 🚫 unmanned 1 (0 min) · 🛡 check-ins missed 1 · "
        "📝 daily report missing · 📵 unreachable 1"
    )
    # the buttons: ◀ n/N ▶ round the ends, and Refresh on the page shown
    markup = board_buttons(ZH, 1, 0, len(english)).inline_keyboard
    assert [b.text for b in markup[0]] == ["◀", f"1/{len(english)}", "▶"]
    assert [b.callback_data for b in markup[0]] == [f"bd:1:{len(english) - 1}", "bd:1:0", "bd:1:1"]
    assert [(b.text, b.callback_data) for b in markup[1]] == [("🔄 刷新", "bd:1:0")]
    assert len(board_buttons(ZH, 1, 0, 1).inline_keyboard) == 1  # one page: Refresh only


def test_a_school_board_says_when_the_report_is_due_and_marks_a_drill() -> None:
    occurred = NOW - timedelta(minutes=12)
    clock = clock_of(
        occurred_at=occurred,
        reported_at=occurred,
        report_deadline=None,
        needed=set(),
        reached=[],
        now=NOW,
    )
    school = UnitBoard(
        unit_id=5,
        code="SB01",
        name="石坝小学",
        kind="school",
        on_duty=(OnDuty("值班室", "马俊", False, NOW - timedelta(hours=1), True),),
        incidents=(
            OpenIncident("20261201-002", Category.FIRE, Severity.GENERAL, True, False, clock),
        ),
        daily_report=DailyReportLine(ReportState.DUE, NOW + timedelta(minutes=20)),
    )
    found = Board(unit_id=5, code="SB01", name="石坝小学", kind="school", at=NOW, units=(school,))
    assert board_pages(EN, TZ, found) == [
        "\n".join(
            [
                "📋 Duty board: 石坝小学 (SB01) · as of 17:40",
                "👮 On duty: 马俊 (值班室) ✅",
                "🎯 DRILL (演练) 20261201-002 · General · Fire",
                "   🕒 Happened 12 min ago (17:28)",
                "📝 Daily report: due 18:00",
            ]
        )
    ]
    quiet = UnitBoard(unit_id=5, code="SB01", name="石坝小学", kind="school")
    found = Board(unit_id=5, code="SB01", name="石坝小学", kind="school", at=NOW, units=(quiet,))
    assert board_pages(ZH, TZ, found) == [
        "📋 值班看板：石坝小学（SB01）· 17:40\n👮 此刻无人值班。\n✅ 一切正常。"
    ]
