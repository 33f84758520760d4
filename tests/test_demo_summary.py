"""The demo's closing summary as text (pure): the e2e demo test covers what it reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.demo_summary import DaySummary, IncidentStory, Named, Step, render
from bot.i18n import translator
from bot.services.checkins.compliance import Figures

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 30, 23, 50, tzinfo=UTC)  # 12-01 07:50 local


def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def _story(*, late: bool, by_system: tuple[Step, ...], closed: bool) -> IncidentStory:
    return IncidentStory(
        number="20261201-001",
        category="fire",
        severity="serious",
        unit="石坝小学",
        reporter="马俊",
        reported_at=_at(35),
        occurred_at=_at(35),
        deadline_at=_at(95),
        late=late,
        acknowledged=(Step("石坝小学", _at(37), "杨光明"),),
        passed_by_system=by_system,
        follow_ups=0,
        closed_at=_at(160) if closed else None,
        closed_by="杨光明" if closed else None,
    )


def _summary(**changes: object) -> DaySummary:
    base: dict[str, object] = {
        "scope": "青川县教育局",
        "start": START,
        "end": _at(735),
        "incidents": (),
        "missed_shifts": (),
        "late_clock_ins": (),
        "checkins": Figures(in_time=2),
        "late_answers": (),
        "reports_in_time": 5,
        "reports_late": 0,
        "reports_missing": (),
    }
    base.update(changes)
    return DaySummary(**base)  # type: ignore[arg-type]


def test_a_quiet_day_says_nothing_was_late_in_both_languages() -> None:
    en = render(translator("en"), TZ, _summary())
    assert en[0] == "Summary of the day at 青川县教育局, 12-01 07:50–20:05"
    assert en[en.index("What was late or missing") + 1] == "• Nothing."
    assert en[-2:] == ["The one-hour rule", "• Nothing."]
    zh = render(translator("zh"), TZ, _summary())
    assert zh[0] == "青川县教育局当日小结，12-01 07:50–20:05"
    assert "• 平安报告：已回复2/2，迟复0，未回复0" in zh


def test_an_open_incident_in_time_and_long_lists_cut_to_three_names() -> None:
    story = _story(late=False, by_system=(), closed=False)
    missing = ("木鱼小学", "木鱼镇青坪小学", "青川县中学", "石坝乡红岩小学", "石坝小学")
    lines = render(
        translator("en"),
        TZ,
        _summary(
            incidents=(story,),
            reports_missing=missing,
            late_clock_ins=(Named("唐磊", "石坝小学", _at(735), 5),),
        ),
    )
    assert "  acknowledged: 石坝小学 (杨光明, 08:27)" in lines
    assert "  follow-ups: 0; still open" in lines
    assert "• Daily reports missing: 木鱼小学, 木鱼镇青坪小学, 青川县中学 and 2 more" in lines
    assert "• Late clock-ins: 唐磊 20:05 (5 min)" in lines
    assert lines[-2:] == [
        "• 20261201-001: happened 08:25, due at the levels above by 09:25",
        "  every level above had it in time",
    ]
    assert len(lines) <= 20
