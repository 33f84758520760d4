"""Roster sheets: read CSV or XLSX, check every row, write exports and templates."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from zipfile import BadZipFile
from zoneinfo import ZoneInfo

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils.exceptions import InvalidFileException

from bot.clock import utc
from bot.config import MAX_MAIL_ADDRESS, is_mail_address
from bot.errors import InvalidInput, RosterError, RosterRejected, ZhibanError
from bot.i18n import LANGUAGES, N_
from bot.models import Role, ShiftKind, UnitKind

CSV_SUFFIXES = (".csv",)
XLSX_SUFFIXES = (".xlsx", ".xlsm")


class Table(StrEnum):
    """The three roster sheets; the value is the file stem and the sheet name."""

    UNITS = "units"
    PEOPLE = "people"
    SHIFTS = "shifts"


@dataclass(frozen=True)
class Column:
    """One column of a roster sheet, with its English and Chinese header."""

    key: str
    chinese: str
    meaning_en: str
    meaning_zh: str
    required: bool = True
    # Other headers read as this column (Chinese offices write 邮箱 as often as 电子邮箱).
    aliases: tuple[str, ...] = ()


COLUMNS: Mapping[Table, tuple[Column, ...]] = {
    Table.UNITS: (
        Column("code", "代码", "Unique unit code, e.g. SB01", "单位代码，唯一，如 SB01"),
        Column("name", "名称", "Unit name", "单位名称"),
        Column(
            "parent",
            "上级",
            "Code of the parent unit; empty only for the county bureau",
            "上级单位代码；仅县教育局留空",
        ),
        Column(
            "kind",
            "类型",
            "county, township, school or class (or 县, 乡镇, 学校, 班级)",
            "county、township、school、class（或 县、乡镇、学校、班级）",
        ),
        Column("latitude", "纬度", "Geofence centre latitude, -90..90", "签到范围中心纬度"),
        Column("longitude", "经度", "Geofence centre longitude, -180..180", "签到范围中心经度"),
        Column(
            "radius_m",
            "半径",
            "Geofence radius in metres; leave all three empty for no geofence",
            "签到范围半径（米）；三项都空表示不限位置",
        ),
    ),
    Table.PEOPLE: (
        Column("staff_no", "工号", "Unique staff number", "工号，唯一"),
        Column("name", "姓名", "Full name", "姓名"),
        Column("unit", "单位", "Code of the person's unit", "所在单位代码"),
        Column(
            "roles",
            "角色",
            "Roles separated by ';': staff, duty_leader, safety_officer, principal, officer, "
            "desk, admin; role@CODE holds it at another unit",
            "角色，用 ; 分隔：staff 值班人员、duty_leader 带班领导、safety_officer 安全员、"
            "principal 校长、officer 应急专干、desk 值班室、admin 管理员；role@代码 表示在其他单位",
        ),
        Column("phone", "电话", "Mobile phone, unique; may be empty", "手机号，唯一，可空"),
        Column(
            "language",
            "语言",
            "zh or en; empty means the configured default",
            "zh 或 en；留空使用默认语言",
        ),
        Column(
            "active",
            "在职",
            "yes or no (or 是, 否); no takes the person off the roster: account unlinked, "
            "future shifts left unfilled, history kept; empty means yes; the column is optional",
            "是 或 否；否 表示离开名册：解除账号绑定，未来班次改为缺人，历史保留；"
            "留空为是；此列可省略",
            required=False,
        ),
        Column(
            "email",
            "电子邮箱",
            "E-mail address pages are also mailed to; may be empty; the column is optional "
            "(without it, addresses already stored are kept)",
            "接收呼叫邮件的电子邮箱，可空；此列可省略（省略时保留已有邮箱）",
            required=False,
            aliases=("邮箱", "e-mail"),
        ),
    ),
    Table.SHIFTS: (
        Column("unit", "单位", "Code of the unit", "单位代码"),
        Column("post", "岗位", "Post, e.g. 值班室", "岗位，如 值班室"),
        Column("start", "开始", "Local start, YYYY-MM-DD HH:MM", "开始时间 YYYY-MM-DD HH:MM"),
        Column(
            "end",
            "结束",
            "Local end, YYYY-MM-DD HH:MM; after the start, at most 48 h later",
            "结束时间 YYYY-MM-DD HH:MM，晚于开始，最长 48 小时",
        ),
        Column(
            "staff_no", "工号", "Staff number; empty for an unfilled shift", "工号；留空表示缺人"
        ),
        Column(
            "kind",
            "类型",
            "staff or leader (or 值班, 带班); empty means staff",
            "staff 或 leader（或 值班、带班）；留空为 staff",
        ),
    ),
}

HELP_SHEET = "说明 (help)"
# Rows searched for the header row: an office often puts a title line or two above it.
HEADER_SEARCH = 10
# Header cells of one sheet a row must name to count as that sheet's header row.
MIN_HEADERS = 3
# A row whose first filled cell starts with this is a note (the templates' example row).
COMMENT = "#"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # Excel 97-2003 .xls


def _header_names(table: Table) -> dict[str, str]:
    """Column key by header as written, lower-cased, English and Chinese."""
    return (
        {c.key: c.key for c in COLUMNS[table]}
        | {c.chinese: c.key for c in COLUMNS[table]}
        | {alias: c.key for c in COLUMNS[table] for alias in c.aliases}
    )


_HEADER_NAMES = {table: _header_names(table) for table in Table}


@dataclass(frozen=True)
class SheetRow:
    """One data row: its number as a spreadsheet shows it and its trimmed cells by column key."""

    number: int
    cells: Mapping[str, str]

    def __getitem__(self, key: str) -> str:
        return self.cells.get(key, "")


@dataclass(frozen=True)
class Sheet:
    """A roster sheet read from a file, with the headers as they were written."""

    table: Table
    source: str
    headers: Mapping[str, str]
    rows: tuple[SheetRow, ...]

    def error(self, row: SheetRow, key: str | None, problem: ZhibanError) -> RosterError:
        """Name the file, row and column (as written in the file) of a problem."""
        column = None if key is None else self.headers.get(key, key)
        return RosterError(self.source, row.number, column, problem)

    def has(self, key: str) -> bool:
        """Whether the file has this (optional) column."""
        return key in self.headers

    def named(self, key: str) -> set[str]:
        """Every value written in a column, bad rows included (to name them only once)."""
        return {row[key] for row in self.rows if row[key]}


class Problems:
    """Every problem of an import, collected so that one run names all the bad rows."""

    def __init__(self) -> None:
        self.found: list[RosterError] = []

    def add(self, error: RosterError) -> None:
        """Note a problem and go on checking."""
        self.found.append(error)

    def check(self) -> None:
        """Refuse the import if anything was found."""
        if self.found:
            raise RosterRejected(sorted(self.found, key=lambda e: (e.file, e.row or 0)))


def read_roster_files(
    paths: Sequence[Path], problems: Problems | None = None
) -> dict[Table, Sheet]:
    """Read CSV files and workbooks, each sheet recognised by its header row, not its name.

    A file that cannot be read is noted in `problems` (so the rows of the others are still
    checked); without `problems` it is refused at once.
    """
    own = problems is None
    problems = Problems() if problems is None else problems
    sheets: dict[Table, Sheet] = {}
    for path in _expand(paths):
        try:
            found = _read_file(path)
        except RosterError as error:
            problems.add(error)
            continue
        for sheet in found:
            if sheet.table in sheets:
                problems.add(
                    RosterError(
                        sheet.source,
                        None,
                        None,
                        InvalidInput(
                            N_("a second {table} sheet; the first is {other}"),
                            table=sheet.table.value,
                            other=sheets[sheet.table].source,
                        ),
                    )
                )
                continue
            sheets[sheet.table] = sheet
    if own or not sheets:
        problems.check()
    if not sheets:
        raise RosterError(", ".join(p.name for p in paths) or "-", None, None, _unknown_file())
    return sheets


def _unknown_file() -> InvalidInput:
    return InvalidInput(
        N_(
            "no roster sheet found: a CSV file or workbook sheet whose first row holds the "
            "columns of units, people or shifts (see zhiban roster template)"
        )
    )


def _expand(paths: Sequence[Path]) -> list[Path]:
    """Replace a directory by its CSV files, or else by its single workbook."""
    result: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InvalidInput(N_("no such file: {file}"), file=str(path))
        if not path.is_dir():
            result.append(path)
            continue
        children = sorted(p for p in path.iterdir() if p.is_file())
        csvs = [p for p in children if p.suffix.lower() in CSV_SUFFIXES]
        books = [p for p in children if p.suffix.lower() in XLSX_SUFFIXES]
        # An export directory holds both; the CSV files are the ones an office edits.
        if not csvs and len(books) > 1:
            raise InvalidInput(
                N_("{folder} holds several workbooks; name the one to import"), folder=str(path)
            )
        if not csvs and not books:
            raise RosterError(str(path), None, None, _unknown_file())
        result.extend(csvs or books)
    return result


def _read_file(path: Path) -> list[Sheet]:
    data = path.read_bytes()
    if data.startswith(_ZIP_MAGIC):
        return _read_workbook(path)
    if data.startswith(_OLE_MAGIC):
        raise RosterError(
            path.name,
            None,
            None,
            InvalidInput(N_("an old Excel .xls workbook; save it as .xlsx or CSV and try again")),
        )
    if path.suffix.lower() in XLSX_SUFFIXES:
        raise RosterError(path.name, None, None, _not_a_workbook())
    return [_read_csv(path.name, data)]


def _not_a_workbook() -> InvalidInput:
    return InvalidInput(
        N_("not an XLSX workbook (damaged, or another file renamed); save it again from Excel")
    )


def decode_text(data: bytes) -> str | None:
    """CSV bytes as text: UTF-16 with BOM, UTF-8 with or without BOM, else GB18030 (GBK)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Chinese Excel saves "CSV" (not "CSV UTF-8") in GBK; GB18030 is its superset.
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        return None


def _read_csv(name: str, data: bytes) -> Sheet:
    text = decode_text(data)
    if text is None or "\x00" in text:
        raise RosterError(
            name,
            None,
            None,
            InvalidInput(N_("not a text file in UTF-8 or GBK; save it from Excel as CSV UTF-8")),
        )
    first = next((line for line in text.splitlines() if line.strip()), "")
    # Excel's "Unicode text" is tab-separated.
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise RosterError(
            name, None, None, InvalidInput(N_("not a CSV file: {reason}"), reason=str(error))
        ) from None
    recognised = recognise(records)
    if recognised is None:
        raise RosterError(name, None, None, _unknown_file())
    table, header_row = recognised
    return _sheet(table, name, records, header_row)


def recognise(records: Sequence[Sequence[str]]) -> tuple[Table, int] | None:
    """Which sheet these rows are and where its header row is, judged by the header names."""
    for index, cells in enumerate(records[:HEADER_SEARCH]):
        written = {cell.strip().lower() for cell in cells if cell.strip()}
        if not written:
            continue
        scores = {
            table: len({names[w] for w in written if w in names})
            for table, names in _HEADER_NAMES.items()
        }
        best = max(scores.values())
        leaders = [table for table, score in scores.items() if score == best]
        if best >= MIN_HEADERS and len(leaders) == 1:
            return leaders[0], index
    return None


def _read_workbook(path: Path) -> list[Sheet]:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, BadZipFile, OSError, KeyError, ValueError, TypeError) as exc:
        raise RosterError(path.name, None, None, _not_a_workbook()) from exc
    try:
        sheets = []
        for worksheet in book.worksheets:
            records = [
                [_cell_text(value) for value in row]
                for row in worksheet.iter_rows(values_only=True)
            ]
            recognised = recognise(records)
            if recognised is None:
                continue  # the help sheet and anything else an office keeps alongside
            table, header_row = recognised
            sheets.append(_sheet(table, f"{path.name}:{worksheet.title}", records, header_row))
    except (BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise RosterError(path.name, None, None, _not_a_workbook()) from exc
    finally:
        book.close()
    if not sheets:
        raise RosterError(path.name, None, None, _unknown_file())
    return sheets


def _cell_text(value: Any) -> str:
    """Show a workbook cell as the text a CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phone numbers and staff numbers typed as numbers
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return str(value)


def _sheet(table: Table, source: str, records: list[list[str]], header_row: int) -> Sheet:
    by_header = _HEADER_NAMES[table]
    headers: dict[str, str] = {}
    positions: dict[int, str] = {}
    header_number = header_row + 1
    blank_positions: list[int] = []
    for position, raw in enumerate(records[header_row]):
        written = raw.strip()
        if not written:
            blank_positions.append(position)
            continue
        key = by_header.get(written.lower())
        if key is None:
            raise RosterError(
                source,
                header_number,
                written,
                InvalidInput(N_("unknown column {column}"), column=written),
            )
        if key in headers:
            raise RosterError(
                source,
                header_number,
                written,
                InvalidInput(N_("duplicate column {column}"), column=written),
            )
        headers[key] = written
        positions[position] = key
    for column in COLUMNS[table]:
        if column.required and column.key not in headers:
            raise RosterError(
                source,
                header_number,
                None,
                InvalidInput(
                    N_("missing column {column}"), column=f"{column.key} / {column.chinese}"
                ),
            )
    width = len(records[header_row])
    rows = []
    for index in range(header_row + 1, len(records)):
        record = records[index]
        filled = [cell.strip() for cell in record if cell.strip()]
        if not filled or filled[0].startswith(COMMENT):
            continue  # blank lines Excel leaves at the end, and notes such as the example row
        stray = [p for p in blank_positions if p < len(record) and record[p].strip()]
        stray += [p for p in range(width, len(record)) if record[p].strip()]
        row = SheetRow(
            index + 1,
            {
                key: record[position].strip() if position < len(record) else ""
                for position, key in positions.items()
            },
        )
        if stray:
            row = SheetRow(index + 1, {**row.cells, _STRAY: f"#{stray[0] + 1}"})
        rows.append(row)
    return Sheet(table, source, headers, tuple(rows))


# A value under no header: kept on the row so the row is named with the others.
_STRAY = "\x00stray"


def check_stray(sheet: Sheet, row: SheetRow) -> None:
    """Refuse a row with a value in a column that has no header."""
    if row[_STRAY]:
        raise RosterError(
            sheet.source,
            row.number,
            row[_STRAY],
            InvalidInput(N_("a value without a column header")),
        )


MAX_SHIFT = timedelta(hours=48)
_R = TypeVar("_R")

_UNIT_KINDS = {k.value: k for k in UnitKind} | {
    "县": UnitKind.COUNTY,
    "乡镇": UnitKind.TOWNSHIP,
    "学校": UnitKind.SCHOOL,
    "班级": UnitKind.CLASS,
}
UNIT_LEVEL = {UnitKind.COUNTY: 0, UnitKind.TOWNSHIP: 1, UnitKind.SCHOOL: 2, UnitKind.CLASS: 3}
_SHIFT_KINDS = {"": ShiftKind.STAFF, "值班": ShiftKind.STAFF, "带班": ShiftKind.LEADER} | {
    k.value: k for k in ShiftKind
}
_TIME_RE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")
_PHONE_RE = re.compile(r"^\+?\d{5,20}$")
_LIMITS = {
    "code": 32,
    "staff_no": 32,
    "unit": 32,
    "parent": 32,
    "name": 80,
    "post": 60,
    "email": MAX_MAIL_ADDRESS,
}
_UNIT_NAME_LIMIT = 120


# One row at a time: the values checked and typed, each problem naming its file, row, column.


@dataclass(frozen=True)
class UnitRecord:
    """A valid row of units.csv; `parent` is a unit code."""

    row: SheetRow
    code: str
    name: str
    kind: UnitKind
    parent: str | None
    geofence: tuple[float, float, float] | None


@dataclass(frozen=True)
class PersonRecord:
    """A valid row of people.csv; each role is held at a unit code."""

    row: SheetRow
    staff_no: str
    name: str
    unit: str
    roles: frozenset[tuple[Role, str]]
    phone: str | None
    language: str | None
    # None when the sheet has no `active` column: the person's standing is left as it is.
    active: bool | None = None
    email: str | None = None
    # False when the sheet has no `email` column: the stored address is left as it is.
    email_given: bool = False


@dataclass(frozen=True)
class ShiftRecord:
    """A valid row of shifts.csv, with times in UTC."""

    row: SheetRow
    unit: str
    post: str
    start: datetime
    end: datetime
    staff_no: str | None
    kind: ShiftKind


def _text(sheet: Sheet, row: SheetRow, key: str, *, required: bool = True) -> str:
    value = row[key]
    if required and not value:
        raise sheet.error(row, key, InvalidInput(N_("a value is required")))
    limit = _UNIT_NAME_LIMIT if (sheet.table is Table.UNITS and key == "name") else _LIMITS.get(key)
    if limit is not None and len(value) > limit:
        raise sheet.error(
            row, key, InvalidInput(N_("too long: at most {limit} characters"), limit=limit)
        )
    return value


def _number(sheet: Sheet, row: SheetRow, key: str, low: float, high: float) -> float:
    value = row[key]
    try:
        number = float(value)
    except ValueError:
        raise sheet.error(
            row, key, InvalidInput(N_("{value} is not a number"), value=value)
        ) from None
    if not low <= number <= high:
        raise sheet.error(
            row, key, InvalidInput(N_("must be between {low} and {high}"), low=low, high=high)
        )
    return number


def _first_seen(
    sheet: Sheet, row: SheetRow, key: str, value: object, seen: dict[object, int]
) -> None:
    """Refuse a value that an earlier row of the same sheet already used."""
    if value in seen:
        raise sheet.error(
            row,
            key,
            InvalidInput(N_("{value} is also on row {row}"), value=row[key], row=seen[value]),
        )
    seen[value] = row.number


def _each_row(
    sheet: Sheet | None, problems: Problems | None, parse: Callable[[Sheet, SheetRow], _R]
) -> list[_R]:
    """Parse every row; a bad row is noted and the others still checked."""
    if sheet is None:
        return []
    own = problems is None
    collected = Problems() if problems is None else problems
    records = []
    for row in sheet.rows:
        try:
            check_stray(sheet, row)
            records.append(parse(sheet, row))
        except RosterError as error:
            collected.add(error)
    if own:
        collected.check()
    return records


def parse_units(sheet: Sheet | None, problems: Problems | None = None) -> list[UnitRecord]:
    """Check and type every row of the units sheet."""
    seen: dict[object, int] = {}

    def parse(sheet: Sheet, row: SheetRow) -> UnitRecord:
        code = _text(sheet, row, "code")
        _first_seen(sheet, row, "code", code, seen)
        kind = _UNIT_KINDS.get(row["kind"].lower())
        if kind is None:
            raise sheet.error(
                row,
                "kind",
                InvalidInput(
                    N_("unknown unit kind {value}; use county, township, school or class"),
                    value=row["kind"],
                ),
            )
        geofence_keys = ("latitude", "longitude", "radius_m")
        given = [bool(row[key]) for key in geofence_keys]
        geofence = None
        if any(given) and not all(given):
            missing = geofence_keys[given.index(False)]
            raise sheet.error(
                row,
                missing,
                InvalidInput(
                    N_("give latitude, longitude and radius together, or leave all three empty")
                ),
            )
        if all(given):
            geofence = (
                _number(sheet, row, "latitude", -90, 90),
                _number(sheet, row, "longitude", -180, 180),
                _number(sheet, row, "radius_m", 0, 1e6),
            )
            if geofence[2] <= 0:
                raise sheet.error(row, "radius_m", InvalidInput(N_("must be greater than 0")))
        parent = _text(sheet, row, "parent", required=False) or None
        return UnitRecord(row, code, _text(sheet, row, "name"), kind, parent, geofence)

    return _each_row(sheet, problems, parse)


_YES = {"", "yes", "y", "true", "1", "是", "在职", "√"}
_NO = {"no", "n", "false", "0", "否", "离职", "×"}


def parse_people(sheet: Sheet | None, problems: Problems | None = None) -> list[PersonRecord]:
    """Check and type every row of the people sheet (phones and staff numbers unique in it)."""
    seen_staff: dict[object, int] = {}
    seen_phone: dict[object, int] = {}

    def parse(sheet: Sheet, row: SheetRow) -> PersonRecord:
        staff_no = _text(sheet, row, "staff_no")
        _first_seen(sheet, row, "staff_no", staff_no, seen_staff)
        unit = _text(sheet, row, "unit")
        roles: set[tuple[Role, str]] = set()
        for item in row["roles"].replace("；", ";").split(";"):
            name, _, at = (part.strip() for part in item.partition("@"))
            if not name and not at:
                continue
            try:
                role = Role(name.lower())
            except ValueError:
                raise sheet.error(
                    row, "roles", InvalidInput(N_("unknown role {role}"), role=name)
                ) from None
            roles.add((role, at or unit))
        phone = re.sub(r"[\s\-()]", "", row["phone"]) or None
        if phone is not None:
            if not _PHONE_RE.match(phone):
                raise sheet.error(
                    row, "phone", InvalidInput(N_("{value} is not a phone number"), value=phone)
                )
            _first_seen(sheet, row, "phone", phone, seen_phone)
        language = row["language"].lower() or None
        if language is not None and language not in LANGUAGES:
            raise sheet.error(
                row,
                "language",
                InvalidInput(
                    N_("unknown language {value}; use zh or en, or leave it empty"),
                    value=row["language"],
                ),
            )
        active: bool | None = None
        if sheet.has("active"):
            answer = row["active"].lower()
            if answer not in _YES | _NO:
                raise sheet.error(
                    row,
                    "active",
                    InvalidInput(N_("{value} is not yes or no"), value=row["active"]),
                )
            active = answer in _YES
        email = _text(sheet, row, "email", required=False) or None
        if email is not None and not is_mail_address(email):
            raise sheet.error(
                row,
                "email",
                InvalidInput(
                    N_("{value} is not an e-mail address (one address, like desk@example.edu.cn)"),
                    value=email,
                ),
            )
        return PersonRecord(
            row,
            staff_no,
            _text(sheet, row, "name"),
            unit,
            frozenset(roles),
            phone,
            language,
            active,
            email,
            sheet.has("email"),
        )

    return _each_row(sheet, problems, parse)


def _parse_time(sheet: Sheet, row: SheetRow, key: str, tz: ZoneInfo) -> datetime:
    value = row[key]
    match = _TIME_RE.match(value)
    try:
        if match is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
        extra = timedelta(0)
        if (hour, minute, second) == (24, 0, 0):
            hour, extra = 0, timedelta(days=1)
        local = datetime(year, month, day, hour, minute, second, tzinfo=tz) + extra
    except ValueError:
        raise sheet.error(
            row,
            key,
            InvalidInput(
                N_("{value} is not a local time; write it like 2026-11-30 08:00"), value=value
            ),
        ) from None
    return utc(local)


def parse_shifts(
    sheet: Sheet | None, tz: ZoneInfo, problems: Problems | None = None
) -> list[ShiftRecord]:
    """Check and type every row of the shifts sheet, reading times in the local zone."""
    seen: dict[object, int] = {}

    def parse(sheet: Sheet, row: SheetRow) -> ShiftRecord:
        unit = _text(sheet, row, "unit")
        post = _text(sheet, row, "post")
        start = _parse_time(sheet, row, "start", tz)
        end = _parse_time(sheet, row, "end", tz)
        if end <= start:
            raise sheet.error(row, "end", InvalidInput(N_("the end must be after the start")))
        if end - start > MAX_SHIFT:
            raise sheet.error(
                row,
                "end",
                InvalidInput(
                    N_("a shift may last at most {hours} hours"),
                    hours=int(MAX_SHIFT.total_seconds() // 3600),
                ),
            )
        _first_seen(sheet, row, "start", (unit, post, start), seen)
        kind = _SHIFT_KINDS.get(row["kind"].lower())
        if kind is None:
            raise sheet.error(
                row,
                "kind",
                InvalidInput(
                    N_("unknown shift kind {value}; use staff or leader"), value=row["kind"]
                ),
            )
        staff_no = _text(sheet, row, "staff_no", required=False) or None
        return ShiftRecord(row, unit, post, start, end, staff_no, kind)

    return _each_row(sheet, problems, parse)


def write_csv(path: Path, table: Table, rows: Iterable[Sequence[object]], *, chinese: bool) -> Path:
    """Write one sheet as CSV in UTF-8 with a BOM, so Excel shows Chinese correctly."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(_headers(table, chinese=chinese))
        for row in rows:
            writer.writerow(["" if value is None else value for value in row])
    return path


def write_workbook(
    path: Path,
    tables: Mapping[Table, Iterable[Sequence[object]]],
    *,
    chinese: bool,
    with_help: bool,
) -> Path:
    """Write the sheets into one workbook, optionally with the help sheet that explains them."""
    book = Workbook()
    default = book.active
    if default is not None:
        book.remove(default)
    for table in Table:
        worksheet = book.create_sheet(table.value)
        worksheet.append(_headers(table, chinese=chinese))
        for cell in worksheet[1]:
            cell.font = Font(bold=True)
        for row in tables.get(table, ()):
            worksheet.append(list(row))
        for index, column in enumerate(COLUMNS[table]):
            letter = worksheet.cell(row=1, column=index + 1).column_letter
            worksheet.column_dimensions[letter].width = 20 if column.key != "roles" else 36
    if with_help:
        _help_sheet(book)
    book.save(path)
    return path


def _headers(table: Table, *, chinese: bool) -> list[str]:
    return [c.chinese if chinese else c.key for c in COLUMNS[table]]


def _help_sheet(book: Workbook) -> None:
    worksheet = book.create_sheet(HELP_SHEET)
    worksheet.append(["工作表 sheet", "中文表头", "English header", "说明", "Meaning"])
    for cell in worksheet[1]:
        cell.font = Font(bold=True)
    for table in Table:
        for column in COLUMNS[table]:
            worksheet.append(
                [table.value, column.chinese, column.key, column.meaning_zh, column.meaning_en]
            )
    worksheet.append([])
    worksheet.append(
        [
            "",
            "",
            "",
            "表头可用中文或英文，列的顺序不限；时间为本地时间；以 # 开头的行（如示例行）"
            "和本页在导入时忽略。",
            "Headers may be Chinese or English, in any order; times are local; rows starting "
            "with # (like the example row) and this sheet are ignored on import.",
        ]
    )
    for letter, width in zip("ABCDE", (14, 10, 16, 60, 70), strict=True):
        worksheet.column_dimensions[letter].width = width


EXAMPLES: Mapping[Table, tuple[str, ...]] = {
    Table.UNITS: ("#QC", "青川县教育局", "", "县", "", "", ""),
    Table.PEOPLE: (
        "#QC001",
        "王德明",
        "QC",
        "admin;staff",
        "13800000001",
        "",
        "是",
        "wangdm@example.edu.cn",
    ),
    Table.SHIFTS: ("#QC", "值班室", "2027-03-01 08:00", "2027-03-01 20:00", "QC001", "值班"),
}


def template_paths(directory: Path) -> list[Path]:
    """The files `write_templates` writes into a folder."""
    return [directory / f"{t.value}.csv" for t in Table] + [directory / "roster_template.xlsx"]


def write_templates(directory: Path, *, force: bool = False) -> list[Path]:
    """Write CSV templates with Chinese headers and one workbook with a help sheet.

    Each sheet has one example row starting with "#": import skips such rows, so an untouched
    template imports nothing. A file already there is refused unless `force`, so a filled-in
    roster is never overwritten by accident.
    """
    paths = template_paths(directory)
    if not force:
        for path in paths:
            if path.exists():
                raise InvalidInput(
                    N_("{file} already exists; add --force to overwrite it"), file=str(path)
                )
    directory.mkdir(parents=True, exist_ok=True)
    written = [
        write_csv(path, table, [EXAMPLES[table]], chinese=True)
        for path, table in zip(paths, Table, strict=False)
    ]
    examples = {t: [EXAMPLES[t]] for t in Table}
    written.append(write_workbook(paths[-1], examples, chinese=True, with_help=True))
    return written
