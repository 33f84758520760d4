"""The roster: the unit tree, people and their roles, and shifts, imported and exported as sheets.

Import rules (SPEC §8), beyond what the spec fixes:

- Unit `kind` is `county`, `township`, `school` or `class`, or in Chinese 县, 乡镇, 学校, 班级.
  A unit sits below a unit of a higher level (a county-direct school sits under the county,
  a class under a school); this also makes cycles impossible. Exactly one top unit, a county.
- Shift `kind` is `staff` or `leader`, or in Chinese 值班, 带班; empty means `staff`.
- Times are local in the configured zone, `YYYY-MM-DD HH:MM` (Excel's `YYYY/M/D H:MM` and
  seconds are accepted; `24:00` is midnight at the end of the day).
- An empty `language` is stored as NULL, so the person follows the configured default even
  when it changes later. Phones are stored without spaces or dashes and may be empty.
- Rows are matched by unit `code`, `staff_no`, and unit + post + start. Units, people and
  shifts missing from the files are left as they are; the `roles` cell replaces all of a listed
  person's role grants. Nothing is deleted.
- CSV files are UTF-8 with or without BOM; GB18030 (Chinese Excel's plain "CSV") is accepted too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.errors import InvalidInput
from bot.i18n import LANGUAGES, N_, Translator
from bot.models import AuditEntry, Person, Role, RoleGrant, Shift, Unit, UnitKind
from bot.services import attendance
from bot.services.roster_files import (
    MAX_SHIFT,
    UNIT_LEVEL,
    PersonRecord,
    Sheet,
    ShiftRecord,
    Table,
    UnitRecord,
    parse_people,
    parse_shifts,
    parse_units,
    read_roster_files,
    write_csv,
    write_templates,
    write_workbook,
)
from bot.uow import Database

__all__ = [
    "MAX_SHIFT",
    "ImportCounts",
    "ImportSummary",
    "describe_summary",
    "export_roster",
    "import_roster",
    "is_within",
    "person_by_staff_no",
    "sample_district_files",
    "unit_by_code",
    "write_templates",
]

_ROLE_ORDER: dict[str, int] = {role.value: index for index, role in enumerate(Role)}


@dataclass(frozen=True)
class ImportCounts:
    """How many rows of one kind an import created, updated and left unchanged."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        """Whether any row of this kind was written."""
        return bool(self.created or self.updated)


@dataclass(frozen=True)
class ImportSummary:
    """What an import did, per kind of row."""

    units: ImportCounts = ImportCounts()
    people: ImportCounts = ImportCounts()
    shifts: ImportCounts = ImportCounts()

    @property
    def changed(self) -> bool:
        """Whether the import changed anything at all."""
        return self.units.changed or self.people.changed or self.shifts.changed


@dataclass
class _Counter:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def frozen(self) -> ImportCounts:
        return ImportCounts(self.created, self.updated, self.unchanged)


@dataclass
class _Roster:
    """The database's roster, loaded inside the import's transaction."""

    units: dict[str, Unit] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    grants: dict[int, list[RoleGrant]] = field(default_factory=dict)


async def import_roster(
    db: Database,
    paths: Sequence[Path],
    *,
    tz: ZoneInfo,
    default_language: str,
    now: datetime,
) -> ImportSummary:
    """Check roster files completely, then write them in one transaction, or raise RosterError."""
    if default_language not in LANGUAGES:
        raise ValueError(f"unknown default language {default_language!r}")
    sheets = await asyncio.to_thread(read_roster_files, paths)
    units = parse_units(sheets.get(Table.UNITS))
    people = parse_people(sheets.get(Table.PEOPLE))
    shifts = parse_shifts(sheets.get(Table.SHIFTS), tz)
    async with db.uow() as uow:
        session = uow.session
        existing = await _load_roster(session)
        _check_tree(sheets.get(Table.UNITS), units, existing)
        unit_codes = set(existing.units) | {u.code for u in units}
        _check_people(sheets.get(Table.PEOPLE), people, existing, unit_codes)
        staff_nos = set(existing.people) | {p.staff_no for p in people}
        _check_shifts(sheets.get(Table.SHIFTS), shifts, unit_codes, staff_nos)
        summary = ImportSummary(
            units=await _write_units(session, units, existing),
            people=await _write_people(session, people, existing),
            shifts=await _write_shifts(session, shifts, existing, now=utc(now)),
        )
        if summary.changed:
            session.add(
                AuditEntry(
                    at=utc(now),
                    action="roster_import",
                    detail={
                        "files": [sheet.source for sheet in sheets.values()],
                        **{
                            kind: [counts.created, counts.updated, counts.unchanged]
                            for kind, counts in (
                                ("units", summary.units),
                                ("people", summary.people),
                                ("shifts", summary.shifts),
                            )
                        },
                    },
                )
            )
            await uow.commit()
    return summary


# Checks against the whole roster: the files together with what the database already holds.


async def _load_roster(session: AsyncSession) -> _Roster:
    roster = _Roster()
    roster.units = {u.code: u for u in (await session.exec(select(Unit))).all()}
    roster.people = {p.staff_no: p for p in (await session.exec(select(Person))).all()}
    for grant in (await session.exec(select(RoleGrant))).all():
        roster.grants.setdefault(grant.person_id, []).append(grant)
    return roster


def _unknown_unit(code: str) -> InvalidInput:
    return InvalidInput(N_("unknown unit {code}"), code=code)


def _check_tree(sheet: Sheet | None, units: list[UnitRecord], existing: _Roster) -> None:
    if sheet is None:
        return
    by_id = {u.id: u.code for u in existing.units.values()}
    # The tree after the import: (kind, parent code) per unit code.
    tree: dict[str, tuple[UnitKind, str | None]] = {
        code: (UnitKind(u.kind), by_id.get(u.parent_id)) for code, u in existing.units.items()
    }
    tree.update({u.code: (u.kind, u.parent) for u in units})
    in_file = {u.code: u for u in units}
    for unit in units:
        if unit.parent is not None and unit.parent not in tree:
            raise sheet.error(unit.row, "parent", _unknown_unit(unit.parent))
        if unit.parent is None and unit.kind is not UnitKind.COUNTY:
            raise sheet.error(unit.row, "kind", InvalidInput(N_("the top unit must be a county")))
    # The database's top unit first, then the file's in row order: the second one is refused.
    tops = [c for c, (_, p) in tree.items() if p is None and c not in in_file]
    tops += [u.code for u in units if u.parent is None]
    if len(tops) > 1:
        raise sheet.error(
            in_file[tops[1]].row,
            "parent",
            InvalidInput(N_("there is already a top unit: {code}"), code=tops[0]),
        )
    # A child's level is strictly below its parent's, so no chain of parents can loop.
    for code, (kind, parent) in sorted(tree.items()):
        if parent is None or (code not in in_file and parent not in in_file):
            continue
        parent_kind = tree[parent][0]
        if UNIT_LEVEL[kind] > UNIT_LEVEL[parent_kind]:
            continue
        problem = InvalidInput(
            N_("{code} ({kind}) cannot be under {parent} ({parent_kind})"),
            code=code,
            kind=kind.value,
            parent=parent,
            parent_kind=parent_kind.value,
        )
        if code in in_file:
            raise sheet.error(in_file[code].row, "parent", problem)
        raise sheet.error(in_file[parent].row, "kind", problem)


def _check_people(
    sheet: Sheet | None, people: list[PersonRecord], existing: _Roster, unit_codes: set[str]
) -> None:
    if sheet is None:
        return
    listed = {p.staff_no for p in people}
    phones = {
        p.phone: p.staff_no
        for p in existing.people.values()
        if p.phone is not None and p.staff_no not in listed
    }
    for person in people:
        if person.unit not in unit_codes:
            raise sheet.error(person.row, "unit", _unknown_unit(person.unit))
        for _, code in sorted(person.roles):
            if code not in unit_codes:
                raise sheet.error(person.row, "roles", _unknown_unit(code))
        if person.phone is not None and person.phone in phones:
            raise sheet.error(
                person.row,
                "phone",
                InvalidInput(
                    N_("{value} already belongs to {staff_no}"),
                    value=person.phone,
                    staff_no=phones[person.phone],
                ),
            )


def _check_shifts(
    sheet: Sheet | None, shifts: list[ShiftRecord], unit_codes: set[str], staff_nos: set[str]
) -> None:
    if sheet is None:
        return
    for shift in shifts:
        if shift.unit not in unit_codes:
            raise sheet.error(shift.row, "unit", _unknown_unit(shift.unit))
        if shift.staff_no is not None and shift.staff_no not in staff_nos:
            raise sheet.error(
                shift.row,
                "staff_no",
                InvalidInput(N_("unknown staff number {staff_no}"), staff_no=shift.staff_no),
            )


def describe_summary(summary: ImportSummary, tr: Translator) -> str:
    """Say in the reader's language what an import created, updated and left unchanged."""
    if not summary.changed:
        return tr._("Nothing changed: the roster already matches the files.")
    lines = []
    for what, counts in (
        (tr._("Units"), summary.units),
        (tr._("People"), summary.people),
        (tr._("Shifts"), summary.shifts),
    ):
        lines.append(
            tr._(
                "{what}: {created} new, {updated} updated, {unchanged} unchanged",
                what=what,
                created=counts.created,
                updated=counts.updated,
                unchanged=counts.unchanged,
            )
        )
    return "\n".join(lines)


# Writing, once everything has been checked.


async def _write_units(
    session: AsyncSession, units: list[UnitRecord], existing: _Roster
) -> ImportCounts:
    counter = _Counter()
    # Parents have a lower level than their children, so this order creates parents first.
    for record in sorted(units, key=lambda u: UNIT_LEVEL[u.kind]):
        parent_id = None if record.parent is None else existing.units[record.parent].id
        lat, lon, radius = record.geofence or (None, None, None)
        values = {
            "name": record.name,
            "kind": record.kind.value,
            "parent_id": parent_id,
            "latitude": lat,
            "longitude": lon,
            "radius_m": radius,
        }
        unit = existing.units.get(record.code)
        if unit is None:
            unit = Unit(code=record.code, name=record.name, kind=record.kind.value, path="")
            _assign(unit, values)
            session.add(unit)
            await session.flush()
            existing.units[record.code] = unit
            counter.created += 1
        elif _assign(unit, values):
            counter.updated += 1
        else:
            counter.unchanged += 1
    if counter.created or counter.updated:
        _refresh_paths(existing.units.values())
        await session.flush()
    return counter.frozen()


def _refresh_paths(units: Iterable[Unit]) -> None:
    """Recompute every unit's materialised path ("/1/4/9/") from its chain of parents."""
    by_id = {u.id: u for u in units}
    for unit in by_id.values():
        chain: list[int] = []
        current: Unit | None = unit
        while current is not None and current.id is not None and len(chain) <= len(by_id):
            chain.append(current.id)
            current = None if current.parent_id is None else by_id.get(current.parent_id)
        path = "/" + "".join(f"{i}/" for i in reversed(chain))
        if unit.path != path:
            unit.path = path


def _assign(row: Unit | Person | Shift, values: Mapping[str, object]) -> bool:
    """Set the values that differ and tell whether any did."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


async def _write_people(
    session: AsyncSession, people: list[PersonRecord], existing: _Roster
) -> ImportCounts:
    counter = _Counter()
    # Phones are unique: release the ones that move first, so two people may swap numbers.
    moving = [
        existing.people[p.staff_no]
        for p in people
        if p.staff_no in existing.people and existing.people[p.staff_no].phone != p.phone
    ]
    for person in moving:
        person.phone = None
    if moving:
        await session.flush()
    moved = {person.staff_no for person in moving}
    for record in people:
        values = {
            "name": record.name,
            "unit_id": existing.units[record.unit].id,
            "phone": record.phone,
            "language": record.language,
        }
        found = existing.people.get(record.staff_no)
        created = found is None
        if found is None:
            unit_id = existing.units[record.unit].id
            assert unit_id is not None
            person = Person(staff_no=record.staff_no, name=record.name, unit_id=unit_id)
            _assign(person, values)
            session.add(person)
            await session.flush()
            existing.people[record.staff_no] = person
        else:
            person = found
        changed = _assign(person, values) or record.staff_no in moved
        assert person.id is not None
        wanted = {(role.value, existing.units[code].id) for role, code in record.roles}
        grants = existing.grants.get(person.id, [])
        held = {(g.role, g.unit_id) for g in grants}
        for grant in grants:
            if (grant.role, grant.unit_id) not in wanted:
                await session.delete(grant)
        for role, unit_id in sorted(wanted - held, key=lambda item: (str(item[0]), item[1] or 0)):
            assert unit_id is not None
            session.add(RoleGrant(person_id=person.id, role=role, unit_id=unit_id))
        changed = changed or wanted != held
        if created:
            counter.created += 1
        elif changed:
            counter.updated += 1
        else:
            counter.unchanged += 1
    await session.flush()
    return counter.frozen()


async def _write_shifts(
    session: AsyncSession, shifts: list[ShiftRecord], existing: _Roster, *, now: datetime
) -> ImportCounts:
    counter = _Counter()
    if not shifts:
        return counter.frozen()
    unit_ids = {existing.units[s.unit].id for s in shifts}
    found = (
        await session.exec(
            select(Shift).where(
                col(Shift.unit_id).in_(unit_ids),
                col(Shift.start) >= min(s.start for s in shifts),
                col(Shift.start) <= max(s.start for s in shifts),
            )
        )
    ).all()
    by_key = {(s.unit_id, s.post, utc(s.start)): s for s in found}
    for record in shifts:
        unit_id = existing.units[record.unit].id
        assert unit_id is not None
        values: dict[str, object] = {
            "end": record.end,
            "kind": record.kind.value,
            "person_id": None if record.staff_no is None else existing.people[record.staff_no].id,
        }
        # Imported hours after its start: seen now and not chased, even if the bot is down
        # and its planning mark is old (attendance.chase could not tell it from a shift that
        # was there before the outage).
        seen = now if attendance.too_late_to_chase(record.start, now=now) else None
        shift = by_key.get((unit_id, record.post, record.start))
        if shift is None:
            shift = Shift(unit_id=unit_id, post=record.post, start=record.start, end=record.end)
            _assign(shift, values)
            shift.planned_at = seen
            session.add(shift)
            counter.created += 1
        elif _assign(shift, values):
            shift.planned_at = seen  # its reminders and pages are planned again, moved
            counter.updated += 1
        else:
            counter.unchanged += 1
    await session.flush()
    return counter.frozen()


# Export, templates and the packaged sample district.


async def export_roster(db: Database, directory: Path, *, tz: ZoneInfo) -> list[Path]:
    """Write units.csv, people.csv, shifts.csv (UTF-8 with BOM) and roster.xlsx into a folder."""
    async with db.uow() as uow:
        tables = await _export_tables(uow.session, tz)
    return await asyncio.to_thread(_write_export, directory, tables)


async def _export_tables(session: AsyncSession, tz: ZoneInfo) -> dict[Table, list[list[object]]]:
    units = list((await session.exec(select(Unit))).all())
    people = list((await session.exec(select(Person))).all())
    grants = list((await session.exec(select(RoleGrant))).all())
    shifts = list((await session.exec(select(Shift))).all())
    codes = {u.id: u.code for u in units}
    order = {code: index for index, code in enumerate(_tree_order(units))}
    staff_nos = {p.id: p.staff_no for p in people}
    held: dict[int, list[RoleGrant]] = {}
    for grant in grants:
        held.setdefault(grant.person_id, []).append(grant)
    tables: dict[Table, list[list[object]]] = {
        Table.UNITS: [
            [
                u.code,
                u.name,
                codes.get(u.parent_id, ""),
                u.kind,
                _plain(u.latitude),
                _plain(u.longitude),
                _plain(u.radius_m),
            ]
            for u in sorted(units, key=lambda u: order[u.code])
        ],
        Table.PEOPLE: [
            [
                p.staff_no,
                p.name,
                codes[p.unit_id],
                _roles_cell(p, held.get(p.id or 0, []), codes),
                p.phone or "",
                p.language or "",
            ]
            for p in sorted(people, key=lambda p: (order[codes[p.unit_id]], p.staff_no))
        ],
        Table.SHIFTS: [
            [
                codes[s.unit_id],
                s.post,
                _local(s.start, tz),
                _local(s.end, tz),
                staff_nos.get(s.person_id, ""),
                s.kind,
            ]
            for s in sorted(shifts, key=lambda s: (s.start, order[codes[s.unit_id]], s.post))
        ],
    }
    return tables


def _write_export(directory: Path, tables: Mapping[Table, list[list[object]]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = [
        write_csv(directory / f"{table.value}.csv", table, rows, chinese=False)
        for table, rows in tables.items()
    ]
    book = write_workbook(directory / "roster.xlsx", tables, chinese=False, with_help=False)
    written.append(book)
    return written


def _tree_order(units: list[Unit]) -> list[str]:
    """Unit codes depth first, children by code, so a parent always comes before its children."""
    children: dict[int | None, list[Unit]] = {}
    for unit in units:
        children.setdefault(unit.parent_id, []).append(unit)
    result: list[str] = []
    stack = sorted(children.get(None, []), key=lambda u: u.code, reverse=True)
    while stack:
        unit = stack.pop()
        result.append(unit.code)
        stack.extend(sorted(children.get(unit.id, []), key=lambda u: u.code, reverse=True))
    # Units not reachable from the top (a broken tree) still get exported.
    result.extend(sorted({u.code for u in units} - set(result)))
    return result


def _plain(value: float | None) -> object:
    if value is None:
        return ""
    return int(value) if value.is_integer() else value


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _roles_cell(person: Person, grants: list[RoleGrant], codes: dict[int | None, str]) -> str:
    def sort_key(grant: RoleGrant) -> tuple[int, str]:
        return (_ROLE_ORDER.get(grant.role, 99), codes[grant.unit_id])

    return ";".join(
        grant.role if grant.unit_id == person.unit_id else f"{grant.role}@{codes[grant.unit_id]}"
        for grant in sorted(grants, key=sort_key)
    )


def sample_district_files() -> list[Path]:
    """The packaged sample district (units.csv, people.csv, shifts.csv) as paths on disk."""
    folder = resources.files("bot").joinpath("data", "sample")
    paths = [Path(str(folder.joinpath(f"{table.value}.csv"))) for table in Table]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"the sample district is not installed as files: {missing}")
    return paths


# The read side other services use.


async def unit_by_code(session: AsyncSession, code: str) -> Unit | None:
    """The unit with this code, if any."""
    return (await session.exec(select(Unit).where(Unit.code == code))).first()


async def person_by_staff_no(session: AsyncSession, staff_no: str) -> Person | None:
    """The person with this staff number, if any."""
    return (await session.exec(select(Person).where(Person.staff_no == staff_no))).first()


def is_within(unit_path: str, scope_path: str) -> bool:
    """Whether a unit (by materialised path) is the scope's unit or below it."""
    return bool(unit_path) and bool(scope_path) and unit_path.startswith(scope_path)
