"""The holiday calendar: chinesecalendar's knowledge, overridden and extended by a district file.

The State Council publishes each year's days off and adjusted workdays (调休) in a notice around
November; the `chinesecalendar` package learns them only when a new release comes out (1.11.0
knows up to 2026). `[rota] holidays_file` lets a district enter them itself, as TOML:

    "2027" = { off = ["2027-01-01", "2027-02-06..2027-02-12"], work = ["2027-02-14"] }

`off` days are holidays, `work` days are workdays (调休上班), `A..B` is every day from A to B.
Other days of a year in the file follow the package when it knows the year, else the week
(Saturday and Sunday off). A year in neither is refused with the line to add.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar

from bot.errors import InvalidInput
from bot.i18n import N_

__all__ = ["HolidayCalendar", "load_holidays", "year_line"]

_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?$")
_MAX_RANGE = 60


def year_line(year: int) -> str:
    """The TOML line a district adds for a year, to fill in from the State Council notice."""
    return f'"{year}" = {{ off = [], work = [] }}'


@dataclass(frozen=True)
class HolidayCalendar:
    """Workday or holiday for a date; `file` is where the district's own days came from."""

    off: frozenset[date] = frozenset()
    work: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()
    file: str | None = None
    _package: dict[int, bool] = field(default_factory=dict, compare=False)

    def is_workday(self, day: date) -> bool:
        """Whether the day is a workday, or InvalidInput naming the line to add for its year."""
        if day in self.off:
            return False
        if day in self.work:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year in self.years:
                return day.weekday() < 5
        raise InvalidInput(
            N_(
                "The holiday calendar does not know the year {year} (needed for {day}): add "
                "the line {line} to {file} with the days off and adjusted workdays of the State "
                "Council's notice for {year}."
            ),
            year=day.year,
            day=day.isoformat(),
            line=year_line(day.year),
            file=self.file or "[rota] holidays_file",
        )


def load_holidays(path: Path | None) -> HolidayCalendar:
    """Read a holidays file (or none); a bad entry is one InvalidInput naming file and key."""
    if path is None:
        return HolidayCalendar()
    name = str(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise InvalidInput(N_("no such file: {file}"), file=name) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidInput(
            N_("{file}: not a valid TOML file ({reason})"), file=name, reason=str(error)
        ) from None
    off: set[date] = set()
    work: set[date] = set()
    years: set[int] = set()
    for key, entry in data.items():
        if not (key.isdigit() and len(key) == 4) or not isinstance(entry, Mapping):
            raise _bad(name, key, N_('write each year as "2027" with lists off and work'))
        unknown = set(entry) - {"off", "work"}
        if unknown:
            raise _bad(name, f"{key}.{sorted(unknown)[0]}", N_("unknown key; use off and work"))
        years.add(int(key))
        for kind, into in (("off", off), ("work", work)):
            for index, value in enumerate(_list(name, f"{key}.{kind}", entry.get(kind, []))):
                into.update(_days(name, f"{key}.{kind}[{index}]", value))
    both = sorted(off & work)
    if both:
        raise _bad(name, both[0].isoformat(), N_("a day cannot be both off and a workday"))
    return HolidayCalendar(frozenset(off), frozenset(work), frozenset(years), name)


def _bad(file: str, key: str, problem: str) -> InvalidInput:
    return InvalidInput(
        N_("{file}: {key}: {problem}"), file=file, key=key, problem=InvalidInput(problem)
    )


def _list(file: str, key: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(file, key, N_('a list of dates like "2027-01-01" or "2027-02-06..2027-02-12"'))
    return value


def _days(file: str, key: str, value: Any) -> list[date]:
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    match = _RANGE.match(text)
    try:
        if match is None:
            raise ValueError(text)
        first = date.fromisoformat(match.group(1))
        last = date.fromisoformat(match.group(2) or match.group(1))
    except ValueError:
        raise _bad(
            file, key, N_('a list of dates like "2027-01-01" or "2027-02-06..2027-02-12"')
        ) from None
    count = (last - first).days + 1
    if not 1 <= count <= _MAX_RANGE:
        raise _bad(file, key, N_("a range runs from its first day to its last, at most 60 days"))
    return [first + timedelta(days=offset) for offset in range(count)]
