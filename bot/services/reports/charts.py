"""Charts of the leaders' reports as PNG bytes (matplotlib, Agg), with Chinese labels.

Chinese needs a CJK font: `cjk_font` finds one installed on the machine by family name (Debian:
`apt-get install fonts-wqy-microhei`). Without one, charts are drawn with English labels and the
unit's code instead of its name, and one warning names the package: never boxes for characters.
The figure is built with the object API (no pyplot state), so charts may be drawn in threads.
"""

from __future__ import annotations

import io
import logging
from functools import cache
from pathlib import Path
from typing import Any

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.i18n import Translator, translator
from bot.services.digest import CHART_NAME
from bot.services.incidents.kinds import CATEGORY_NAMES, Category
from bot.services.reports.figures import Compliance, Figures
from bot.services.reports.summary import LEVEL_NAMES, percent

log = logging.getLogger(__name__)

# Families tried in order; the first one installed is used.
CJK_FAMILIES = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Droid Sans Fallback",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
)
DEBIAN_PACKAGE = "fonts-wqy-microhei"

COLOURS = {"in_time": "#2e7d32", "late": "#f9a825", "missing": "#c62828", "bar": "#1565c0"}


# File names of the fonts above, looked for when matplotlib's font cache predates them.
CJK_FILES = ("wqy", "notosanscjk", "notosanssc", "sourcehansans", "droidsansfallback")


def _installed(family_names: tuple[str, ...]) -> str | None:
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((family for family in family_names if family in installed), None)


def _add_system_cjk_fonts() -> None:
    """Add CJK fonts installed after matplotlib built its font cache (it does not look again)."""
    for path in font_manager.findSystemFonts():
        name = Path(path).name.lower().replace("-", "").replace("_", "")
        if any(part in name for part in CJK_FILES):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue


@cache
def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None (warned once)."""
    family = _installed(CJK_FAMILIES)
    if family is None:
        _add_system_cjk_fonts()
        family = _installed(CJK_FAMILIES)
    if family is not None:
        return family
    log.warning(
        "no CJK font found (tried %s): charts use English labels; install the Debian package %s",
        ", ".join(CJK_FAMILIES),
        DEBIAN_PACKAGE,
    )
    return None


def chart_translator(tr: Translator) -> tuple[Translator, str | None]:
    """The translator charts are labelled with, and the font family to draw them in."""
    family = cjk_font()
    if family is None and tr.language != "en":
        return translator("en"), None
    return tr, family


def _shares(figures: Compliance) -> tuple[float, float, float]:
    owed = figures.owed or 1
    return figures.in_time / owed, figures.late / owed, figures.missing / owed


def summary_chart(tr: Translator, figures: Figures, *, period: str) -> bytes:
    """The summary as a PNG of four panels: incidents, on-time reporting, acks, compliance.

    Incidents by category; on-time reporting against the one-hour rule; the median time to
    acknowledge per level; the compliance of shifts, check-ins and daily reports.
    """
    tr, family = chart_translator(tr)
    fonts = {"family": [family, "DejaVu Sans"]} if family else {"family": ["DejaVu Sans"]}
    figure = Figure(figsize=(11, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    # Without a CJK font a Chinese unit name would be boxes: its code stands in.
    title_unit = figures.unit_name if family or figures.unit_name.isascii() else figures.unit_code
    figure.suptitle(
        tr._("Summary: {unit}", unit=title_unit) + f"  ({period})", fontsize=15, **fonts
    )
    (categories, reporting), (acks, compliance) = figure.subplots(2, 2)

    # Incidents by category (drills left out), every category shown so a zero reads as one.
    names = [tr._(CATEGORY_NAMES[c]) for c in Category]
    counts = [figures.by_category.get(c, 0) for c in Category]
    categories.barh(names[::-1], counts[::-1], color=COLOURS["bar"])
    categories.set_title(tr._("Incidents by category ({count})", count=figures.incidents), **fonts)
    categories.xaxis.get_major_locator().set_params(integer=True)
    for label in categories.get_yticklabels():
        label.set_fontfamily(fonts["family"])
    for index, count in enumerate(counts[::-1]):
        if count:
            categories.text(count, index, f" {count}", va="center", fontsize=9)

    # On-time reporting against the one-hour rule.
    report = figures.reporting
    labels = [tr._("On time"), tr._("Late")]
    values = [report.on_time, report.late]
    bars = reporting.bar(labels, values, color=[COLOURS["in_time"], COLOURS["missing"]])
    reporting.set_title(
        tr._("On-time reporting (one-hour rule): {rate}", rate=percent(report.rate)), **fonts
    )
    reporting.yaxis.get_major_locator().set_params(integer=True)
    reporting.set_ylim(0, max([*values, 1]) * 1.15)
    reporting.bar_label(bars, fontsize=10)
    for label in reporting.get_xticklabels():
        label.set_fontfamily(fonts["family"])

    # Median time to acknowledge per level, in minutes.
    level_names = [tr._(LEVEL_NAMES[ack.level]) for ack in figures.acks]
    minutes = [
        ack.median.total_seconds() / 60 if ack.median is not None else 0 for ack in figures.acks
    ]
    bars = acks.bar(level_names, minutes, color=COLOURS["bar"])
    acks.bar_label(
        bars,
        labels=[
            f"{m:.1f}\n({ack.acknowledged}/{ack.reached})"
            if ack.median is not None
            else f"–\n(0/{ack.reached})"
            for m, ack in zip(minutes, figures.acks, strict=True)
        ],
        fontsize=9,
    )
    acks.set_title(tr._("Median time to acknowledge (minutes)"), **fonts)
    acks.set_ylim(0, max([*minutes, 1]) * 1.35)
    for label in acks.get_xticklabels():
        label.set_fontfamily(fonts["family"])

    # Compliance: shares in time, late, missing of what was owed.
    shifts = figures.shifts
    rows = [
        (tr._("Shifts"), Compliance(shifts.on_time, shifts.late, shifts.missed)),
        (tr._("Check-ins"), figures.checkins),
        (tr._("Daily reports"), figures.daily_reports),
    ]
    row_names = [name for name, _ in rows]
    shares = [_shares(c) for _, c in rows]
    left = [0.0] * len(rows)
    for index, (key, label) in enumerate(
        (("in_time", tr._("In time")), ("late", tr._("Late")), ("missing", tr._("Missing")))
    ):
        widths = [share[index] * 100 for share in shares]
        compliance.barh(
            row_names[::-1], widths[::-1], left=left[::-1], color=COLOURS[key], label=label
        )
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for position, (_, figures_row) in enumerate(rows[::-1]):
        compliance.text(
            101,
            position,
            f"{figures_row.in_time}/{figures_row.owed}",
            va="center",
            fontsize=9,
        )
    compliance.set_xlim(0, 125)
    compliance.set_title(tr._("Compliance (% of owed)"), **fonts)
    compliance.legend(
        loc="lower center",
        bbox_to_anchor=(0.5, -0.3),
        ncols=3,
        prop={"family": fonts["family"]},
        frameon=False,
    )
    for label in compliance.get_yticklabels():
        label.set_fontfamily(fonts["family"])

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# --- the daily digest's chart ------------------------------------------------------------------
#
# The digest's chart is drawn by the sender when it sends the photo, not by the engine step
# that queues the digest: the outbox row carries the few figures below (JSON), so the step's
# transaction stays short and a restart redraws the same picture.


def digest_chart(tr: Translator, payload: dict[str, Any]) -> bytes:
    """A township's or the county's day as a PNG: check-ins and problems per unit below it.

    `payload` is what `digest.chart_payload` wrote: a title, the window, and per group (a school
    of a township, a township of the county) its check-ins in time, late and missing, missed
    shifts, late clock-ins, missing daily reports and incidents (of which reported late).
    """
    tr, family = chart_translator(tr)
    fonts = {"family": [family, "DejaVu Sans"]} if family else {"family": ["DejaVu Sans"]}
    groups = list(payload["groups"])
    names = [
        str(g["name"]) if family or str(g["name"]).isascii() else f"#{index + 1}"
        for index, g in enumerate(groups)
    ]
    height = 2.2 + 0.32 * len(groups)
    figure = Figure(figsize=(11, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    title = str(payload["title"]) if family or str(payload["title"]).isascii() else ""
    figure.suptitle(
        tr._("Daily digest: {unit}", unit=title) + f"  ({payload['window']})", fontsize=14, **fonts
    )
    checkins, problems = figure.subplots(1, 2, sharey=True)
    positions = list(range(len(groups)))[::-1]  # the first group at the top

    # Check-ins: shares in time, late and missing of those owed, per group.
    left = [0.0] * len(groups)
    for key, label in (
        ("in_time", tr._("In time")),
        ("late", tr._("Late")),
        ("missing", tr._("Missing")),
    ):
        widths = []
        for group in groups:
            owed = group["in_time"] + group["late"] + group["missing"]
            widths.append(100 * group[key] / owed if owed else 0.0)
        checkins.barh(positions, widths, left=left, color=COLOURS[key], label=label)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    checkins.set_xlim(0, 100)
    checkins.set_yticks(positions, names)
    for label in checkins.get_yticklabels():
        label.set_fontfamily(fonts["family"])
    checkins.set_title(tr._("Check-ins (% of owed)"), **fonts)
    checkins.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.04 - 0.6 / height),
        ncols=3,
        prop={"family": fonts["family"]},
        frameon=False,
    )

    # Problems: counts side by side per group.
    kinds = (
        ("incidents", tr._("Incidents"), COLOURS["bar"]),
        ("late_incidents", tr._("Reported late"), COLOURS["missing"]),
        ("missed_shifts", tr._("Missed shifts"), "#6a1b9a"),
        ("late_clock_ins", tr._("Late clock-ins"), COLOURS["late"]),
        ("daily_missing", tr._("Daily reports missing"), "#5d4037"),
    )
    bar = 0.8 / len(kinds)
    for index, (key, label, colour) in enumerate(kinds):
        offset = 0.4 - bar * (index + 0.5)
        values = [group[key] for group in groups]
        problems.barh(
            [p + offset for p in positions], values, height=bar, color=colour, label=label
        )
    problems.xaxis.get_major_locator().set_params(integer=True)
    problems.set_title(tr._("Problems (count)"), **fonts)
    problems.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.04 - 0.6 / height),
        ncols=3,
        prop={"family": fonts["family"]},
        frameon=False,
    )

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def draw(name: str, language: str, payload: dict[str, Any]) -> bytes:
    """Draw the chart an outbox row names, in its reader's language."""
    if name != CHART_NAME:
        raise ValueError(f"no chart named {name!r}")
    return digest_chart(translator(language), payload)
