"""The summary's chart (PNG, Chinese labels in a CJK font or English without one) and its text."""

from __future__ import annotations

import io
import logging
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from bot.config import Level, Severity
from bot.i18n import translator
from bot.services.incidents.kinds import Category
from bot.services.reports import charts, summary
from bot.services.reports.figures import (
    Compliance,
    Drill,
    Figures,
    LevelAck,
    PeriodKind,
    Reporting,
    Shifts,
    days_between,
)

TZ = ZoneInfo("Asia/Shanghai")


def _figures() -> Figures:
    period = days_between(date(2026, 9, 1), date(2026, 12, 10), TZ)
    return Figures(
        unit_code="SB",
        unit_name="石坝乡中心校",
        period=period,
        now=period.end,
        by_category={Category.FIRE: 4, Category.STUDENT_INJURY_ILLNESS: 9},
        by_severity={Severity.SERIOUS: 5, Severity.GENERAL: 8},
        reporting=Reporting(with_deadline=5, on_time=4),
        acks=(
            LevelAck(Level.UNIT, 13, 12, timedelta(minutes=3, seconds=30)),
            LevelAck(Level.PARENT, 5, 5, timedelta(minutes=8)),
            LevelAck(Level.COUNTY, 5, 3, None),
        ),
        shifts=Shifts(on_time=800, late=40, missed=12, unfilled=3),
        checkins=Compliance(1500, 80, 40, 2),
        daily_reports=Compliance(180, 12, 6, 1),
        drills=(Drill("20261015-001", "石坝小学", Severity.SERIOUS, period.start, None),),
    )


def _image(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_summary_chart_is_a_png_with_its_panels_drawn() -> None:
    assert charts.cjk_font() is not None, "install fonts-wqy-microhei (see README)"
    for language in ("zh", "en"):
        image = _image(charts.summary_chart(translator(language), _figures(), period="x"))
        assert image.format == "PNG" and image.size == (1100, 800)
        # Bars in the four panels' colours: far more than a blank page's two or three.
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is not None and len(colours) > 50
        rgb = {colour for _count, colour in colours}
        assert {(0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28), (0x15, 0x65, 0xC0)} <= rgb


def test_without_a_cjk_font_the_chart_falls_back_to_english_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(charts, "CJK_FAMILIES", ("No Such Font SC",))
    charts.cjk_font.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            tr, family = charts.chart_translator(translator("zh"))
            charts.chart_translator(translator("zh"))
        assert (tr.language, family) == ("en", None)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "fonts-wqy-microhei" in warnings[0]
        image = _image(charts.summary_chart(translator("zh"), _figures(), period="x"))
        assert image.size == (1100, 800)
    finally:
        charts.cjk_font.cache_clear()


def test_summary_text_is_short_and_in_the_readers_language() -> None:
    zh = summary.summary_text(translator("zh"), _figures(), TZ, kind=PeriodKind.TERM)
    assert zh.splitlines()[0] == "📊 <b>统计汇总：石坝乡中心校</b>，本学期"
    assert "报告及时（1小时规定）：5起中4起（80%）；记为迟报/漏报：1起" in zh
    assert "县级–（5起中3起已接报）" in zh
    en = summary.summary_text(translator("en"), _figures(), TZ, kind=PeriodKind.TERM)
    assert "Check-ins: 1500 of 1620 in time (93%), 80 late, 40 missing" in en
    assert "Own unit 3 min (12 of 13)" in en
    assert max(len(zh), len(en)) < 4096
