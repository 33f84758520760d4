"""What /shifts shows a leader about today at their unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.i18n import translator
from bot.services.attendance import ShiftLine
from handlers.attendance import shifts_text

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=TZ).astimezone(UTC)


def line(shift_id: int, name: str, start: datetime, hours: int, clock_in: datetime | None = None):
    return ShiftLine(
        shift_id=shift_id,
        unit_name="石坝小学",
        post="值班室",
        kind="staff",
        start=start,
        end=start + timedelta(hours=hours),
        person_name=name,
        clock_in_at=clock_in,
        late_minutes=0,
        clock_out_at=None,
    )


def today_lines(now: datetime, day: list[ShiftLine]) -> list[str]:
    text = shifts_text(translator("en"), [], [("石坝小学", day)], TZ, now)
    return [row for row in text.splitlines() if row.startswith("•")]


def test_last_nights_shift_that_ended_this_morning_is_not_listed_as_today() -> None:
    night = line(1, "夜班", at(1, 20), 12)  # 20:00 → 08:00, never clocked in
    morning = line(2, "早班", at(2, 8), 12, clock_in=at(2, 8))
    evening = line(3, "晚班", at(2, 20), 12)
    rows = today_lines(at(2, 10), [night, morning, evening])
    assert rows == [
        "• 12-02 08:00–20:00 值班室: 早班 — ✅ in 08:00",
        "• 12-02 20:00–08:00 值班室: 晚班",
    ]


def test_a_shift_under_way_since_yesterday_is_listed_and_waiting() -> None:
    night = line(1, "夜班", at(1, 20), 12)
    rows = today_lines(at(2, 6), [night])
    assert rows == ["• 12-01 20:00–08:00 值班室: 夜班 — ⏳ not clocked in"]


def test_a_shift_of_today_that_ended_without_a_clock_in_is_missed_not_waiting() -> None:
    early = line(1, "早班", at(2, 0), 8)
    rows = today_lines(at(2, 10), [early])
    assert rows == ["• 12-02 00:00–08:00 值班室: 早班 — ❌ never clocked in"]
