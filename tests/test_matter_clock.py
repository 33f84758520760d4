"""The clock on pages, /incidents and /incident: one pure computation, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import Level
from bot.i18n import translator
from bot.services.matter_clock import Reached, clock_of, clock_text, holder_text
from bot.services.page_text import PageSubject, page_text

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 0, 3, tzinfo=UTC)  # 08:03 in Shanghai
HOUR = timedelta(hours=1)
ABOVE = (Level.PARENT, Level.COUNTY)


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


SCHOOL = Reached(Level.UNIT, "红星小学", T0)
SCHOOL_ACK = Reached(Level.UNIT, "红星小学", T0, acknowledged_by="王老师", acknowledged_at=T0)


def township(at: datetime, *, late: bool = False, by: str | None = None) -> Reached:
    return Reached(Level.PARENT, "城关镇", at, late=late, acknowledged_by=by)


def county(at: datetime, *, late: bool = False) -> Reached:
    return Reached(Level.COUNTY, "青川县教育局", at, late=late)


@pytest.mark.parametrize(
    ("deadline", "reached", "now", "english", "chinese"),
    [
        (  # no deadline (a general incident): the time since it happened alone
            None,
            [SCHOOL_ACK],
            T0 + minutes(12),
            "Happened 12 min ago (08:03)",
            "发生于12分钟前（08:03）",
        ),
        (
            HOUR,
            [SCHOOL_ACK],
            T0 + minutes(12),
            "Happened 12 min ago (08:03) · report due by 09:03, 48 min left",
            "发生于12分钟前（08:03） · 须于09:03前上报，还剩48分钟",
        ),
        (  # one level above still missing after the deadline
            HOUR,
            [SCHOOL, township(T0 + minutes(30))],
            T0 + minutes(67),
            "Happened 1 h 7 min ago (08:03) · report due by 09:03, 7 min late",
            "发生于1小时7分钟前（08:03） · 须于09:03前上报，已超时7分钟",
        ),
        (  # the county reached after the deadline stays late by that much
            HOUR,
            [SCHOOL, township(T0 + minutes(30)), county(T0 + minutes(75))],
            T0 + minutes(120),
            "Happened 2 h ago (08:03) · report due by 09:03, 15 min late",
            "发生于2小时前（08:03） · 须于09:03前上报，已超时15分钟",
        ),
        (  # the system passed it up at deadline − margin: in time, but the school was late
            HOUR,
            [
                SCHOOL_ACK,
                township(T0 + minutes(50), late=True),
                county(T0 + minutes(50), late=True),
            ],
            T0 + minutes(50),
            "Happened 50 min ago (08:03) · report due by 09:03; passed up by the system, "
            "recorded late (迟报)",
            "发生于50分钟前（08:03） · 须于09:03前上报；系统已代为上报，记为迟报",
        ),
        (  # passed up by people in time
            HOUR,
            [SCHOOL_ACK, township(T0 + minutes(5)), county(T0 + minutes(9))],
            T0 + minutes(20),
            "Happened 20 min ago (08:03) · report due by 09:03; it reached every level in time",
            "发生于20分钟前（08:03） · 须于09:03前上报；已按时报到各级",
        ),
        (  # on another day, the dates are shown
            HOUR,
            [SCHOOL],
            T0 + timedelta(days=1),
            "Happened 24 h ago (12-01 08:03) · report due by 12-01 09:03, 23 h late",
            "发生于24小时前（12-01 08:03） · 须于12-01 09:03前上报，已超时23小时",
        ),
    ],
)
def test_the_clock_line(
    deadline: timedelta | None,
    reached: list[Reached],
    now: datetime,
    english: str,
    chinese: str,
) -> None:
    clock = clock_of(
        occurred_at=T0,
        reported_at=T0,
        report_deadline=deadline,
        needed=ABOVE if deadline else (),
        reached=reached,
        now=now,
    )
    assert clock_text(translator("en"), TZ, clock) == english
    assert clock_text(translator("zh"), TZ, clock) == chinese


def test_a_report_made_after_the_deadline_is_late_even_when_every_level_has_it() -> None:
    at = T0 + minutes(70)
    clock = clock_of(
        occurred_at=T0,
        reported_at=at,
        report_deadline=HOUR,
        needed=ABOVE,
        reached=[SCHOOL, township(T0 + minutes(50)), county(T0 + minutes(50))],
        now=at,
    )
    assert (clock.late_by, clock.time_left) == (minutes(10), None)


def test_a_clock_before_the_occurrence_never_counts_backwards() -> None:
    clock = clock_of(
        occurred_at=T0, reported_at=T0, report_deadline=None, needed=(), reached=[], now=T0
    )
    assert (clock.since, clock.holder) == (timedelta(0), None)
    assert holder_text(translator("en"), clock.holder) == ""


@pytest.mark.parametrize(
    ("reached", "english", "chinese"),
    [
        (
            [SCHOOL_ACK],
            "Now with: 红星小学 (acknowledged by 王老师)",
            "当前在：红星小学（王老师已接报）",
        ),
        (
            [SCHOOL_ACK, township(T0 + minutes(50))],
            "Now with: 城关镇 (not yet acknowledged)",
            "当前在：城关镇（尚未接报）",
        ),
        (  # the highest level wins, whatever order the rows come in
            [county(T0 + minutes(50)), SCHOOL_ACK, township(T0 + minutes(50), by="赵专干")],
            "Now with: 青川县教育局 (not yet acknowledged)",
            "当前在：青川县教育局（尚未接报）",
        ),
    ],
)
def test_who_has_it_now(reached: list[Reached], english: str, chinese: str) -> None:
    clock = clock_of(
        occurred_at=T0, reported_at=T0, report_deadline=HOUR, needed=ABOVE, reached=reached, now=T0
    )
    assert holder_text(translator("en"), clock.holder) == english
    assert holder_text(translator("zh"), clock.holder) == chinese


def test_a_page_shows_the_clock_in_place_of_since_with_names_escaped() -> None:
    clock = clock_of(
        occurred_at=T0,
        reported_at=T0,
        report_deadline=HOUR,
        needed=ABOVE,
        reached=[Reached(Level.UNIT, "<b>小学</b> & 分校", T0, acknowledged_by="王<i>")],
        now=T0 + minutes(12),
    )
    text = page_text(
        translator("en"),
        TZ,
        subject=PageSubject(what="Fire", ask="Acknowledge it."),
        unit_name="红星小学",
        started_at=T0,
        now=T0 + minutes(12),
        clock=clock,
    )
    assert text.splitlines()[2:] == [
        "🕒 Happened 12 min ago (08:03) · report due by 09:03, 48 min left",
        "📌 Now with: &lt;b&gt;小学&lt;/b&gt; &amp; 分校 (acknowledged by 王&lt;i&gt;)",
        "👉 Acknowledge it.",
    ]
