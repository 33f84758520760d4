"""A summary as XLSX (openpyxl): one sheet per table, headers in the reader's language.

Numbers are written as numbers (counts as integers, shares as fractions formatted as
percentages, times as minutes with one decimal), so a bureau can add and chart them in Excel.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.config import Severity
from bot.i18n import N_, Translator
from bot.services.incidents.kinds import CATEGORY_NAMES, SEVERITY_NAMES, Category
from bot.services.reports.figures import Compliance, Figures, Shifts
from bot.services.reports.summary import LEVEL_NAMES

Cell = str | int | float | datetime | None

# Sheet titles, in the order of the workbook (Excel allows 31 characters, no []:*?/\).
SHEETS = (
    N_("Incidents by category"),
    N_("Incidents by severity"),
    N_("Reporting on time"),
    N_("Acknowledgement"),
    N_("Shifts"),
    N_("Check-ins"),
    N_("Daily reports"),
    N_("Drills"),
)
PERCENT = "0.0%"
MINUTES = "0.0"


def _minutes(value: object) -> float | None:
    if not isinstance(value, timedelta):
        return None
    return round(value.total_seconds() / 60, 1)


def _sheet(
    book: Workbook,
    tr: Translator,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    formats: dict[int, str] | None = None,
) -> Worksheet:
    sheet: Worksheet = book.create_sheet(tr._(title)[:31])
    sheet.append([tr._(header) for header in headers])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    for column, number_format in (formats or {}).items():
        for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
            cell.number_format = number_format
    for index, column_cells in enumerate(sheet.iter_cols(), start=1):
        width = max(_width(cell.value) for cell in column_cells)
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 8), 60)
    sheet.freeze_panes = "A2"
    return sheet


def _width(value: object) -> int:
    """Characters Excel needs for a value: a Chinese character takes two columns."""
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _compliance_row(label: str, figures: Compliance) -> list[Cell]:
    return [
        label,
        figures.owed,
        figures.in_time,
        figures.late,
        figures.missing,
        figures.open,
        figures.rate,
    ]


COMPLIANCE_HEADERS = (
    N_("Unit"),
    N_("Owed"),
    N_("In time"),
    N_("Late"),
    N_("Missing"),
    N_("Still open"),
    N_("In time, share of owed"),
)


def summary_workbook(tr: Translator, figures: Figures, tz: ZoneInfo) -> bytes:
    """The workbook of a summary, as XLSX bytes."""
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    scope = f"{figures.unit_name} ({figures.unit_code})"
    categories: list[list[Cell]] = [
        [tr._(CATEGORY_NAMES[c]), figures.by_category.get(c, 0)] for c in Category
    ]
    categories.append([tr._("Total"), figures.incidents])
    _sheet(book, tr, SHEETS[0], (N_("Category"), N_("Incidents")), categories)
    severities: list[list[Cell]] = [
        [tr._(SEVERITY_NAMES[s]), figures.by_severity.get(s, 0)] for s in Severity
    ]
    severities.append([tr._("Total"), figures.incidents])
    _sheet(book, tr, SHEETS[1], (N_("Severity"), N_("Incidents")), severities)
    reporting = figures.reporting
    _sheet(
        book,
        tr,
        SHEETS[2],
        (
            N_("Scope"),
            N_("Incidents with a report deadline"),
            N_("Reported on time"),
            N_("Recorded late (迟报/漏报)"),
            N_("On-time rate"),
        ),
        [[scope, reporting.with_deadline, reporting.on_time, reporting.late, reporting.rate]],
        formats={5: PERCENT},
    )
    _sheet(
        book,
        tr,
        SHEETS[3],
        (
            N_("Level"),
            N_("Incidents that reached it"),
            N_("Acknowledged there"),
            N_("Never acknowledged"),
            N_("Median minutes to acknowledge"),
        ),
        [
            [
                tr._(LEVEL_NAMES[ack.level]),
                ack.reached,
                ack.acknowledged,
                ack.never,
                _minutes(ack.median),
            ]
            for ack in figures.acks
        ],
        formats={5: MINUTES},
    )

    def unit_label(ref: tuple[str, str]) -> str:
        return f"{ref[1]} ({ref[0]})"

    def shift_row(label: str, shifts: Shifts) -> list[Cell]:
        return [
            label,
            shifts.owed,
            shifts.on_time,
            shifts.late,
            shifts.missed,
            shifts.unfilled,
            shifts.on_time / shifts.owed if shifts.owed else None,
        ]

    total = tr._("Total")
    _sheet(
        book,
        tr,
        SHEETS[4],
        (
            N_("Unit"),
            N_("Shifts owed"),
            N_("Clocked in on time"),
            N_("Clocked in late"),
            N_("Missed (no clock-in)"),
            N_("Nobody assigned"),
            N_("On time, share of owed"),
        ),
        [
            *(shift_row(unit_label(ref), part) for ref, part in figures.shifts_by_unit),
            shift_row(total, figures.shifts),
        ],
        formats={7: PERCENT},
    )
    for title, parts, whole in (
        (SHEETS[5], figures.checkins_by_unit, figures.checkins),
        (SHEETS[6], figures.daily_reports_by_unit, figures.daily_reports),
    ):
        _sheet(
            book,
            tr,
            title,
            COMPLIANCE_HEADERS,
            [
                *(_compliance_row(unit_label(ref), part) for ref, part in parts),
                _compliance_row(total, whole),
            ],
            formats={7: PERCENT},
        )
    _sheet(
        book,
        tr,
        SHEETS[7],
        (
            N_("Number"),
            N_("Started"),
            N_("Unit"),
            N_("Severity"),
            N_("Minutes to first acknowledgement"),
        ),
        [
            [
                drill.number,
                # Excel keeps no time zone: the local time, as a date-time cell.
                drill.started_at.astimezone(tz).replace(tzinfo=None),
                drill.unit,
                tr._(SEVERITY_NAMES[drill.severity]),
                _minutes(drill.first_ack_after),
            ]
            for drill in figures.drills
        ],
        formats={2: "yyyy-mm-dd hh:mm", 5: MINUTES},
    )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
