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
- Sheets are recognised by their header row (roster_files.recognise), whatever the file or
  workbook sheet is called. CSV files are UTF-8 with or without BOM; GB18030 (Chinese Excel's
  plain "CSV", a superset of GBK) and UTF-16 with BOM (Excel's tab-separated "Unicode text") are
  accepted too. Rows whose first cell starts with "#" are notes (the templates' example row).
- Every problem is collected and the import refused with all of them (RosterRejected); a file
  that cannot be read at all stops the checks between sheets, which would otherwise call the
  codes of the missing sheet unknown.
- An `active` (在职) column is optional: "no"/"否" deactivates the person (accounts unlinked,
  unused invites revoked, shifts not yet begun left unfilled), "yes"/"是"/empty reactivates;
  a shift sheet may not give a future shift to someone inactive. Nobody is ever deleted.
- An `email` (电子邮箱, 邮箱) column is optional: one address per person, checked for its shape
  only (no mail is sent); an empty cell clears it; a sheet without the column keeps the stored
  addresses. Addresses need not be unique (a desk's shared mailbox may serve several people).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.errors import InvalidInput, NotFound, RosterError
from bot.i18n import LANGUAGES, N_, Translator
from bot.models import (
    Account,
    AuditEntry,
    Invite,
    Person,
    Role,
    RoleGrant,
    Shift,
    Unit,
    UnitKind,
)
from bot.services import attendance
from bot.services.roster_files import (
    MAX_SHIFT,
    UNIT_LEVEL,
    PersonRecord,
    Problems,
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
    "Departure",
    "EndedShift",
    "ImportCounts",
    "ImportSummary",
    "deactivate",
    "describe_departures",
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
    departures: tuple[Departure, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the import changed anything at all."""
        return self.units.changed or self.people.changed or self.shifts.changed


@dataclass(frozen=True)
class EndedShift:
    """A future shift of someone who left, now an unfilled post."""

    unit: str
    post: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Departure:
    """What deactivating one person did."""

    staff_no: str
    name: str
    accounts_unlinked: int
    invites_revoked: int
    ended: tuple[EndedShift, ...]
    already: bool = False


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
    only_into_empty: bool = False,
) -> ImportSummary:
    """Check roster files completely, then write them in one transaction, or raise RosterError.

    Every bad row is named (RosterRejected) before anything is written. With `only_into_empty`
    a database that already has people is refused (the sample district is not for live data).
    """
    if default_language not in LANGUAGES:
        raise ValueError(f"unknown default language {default_language!r}")
    problems = Problems()
    sheets = await asyncio.to_thread(read_roster_files, paths, problems)
    unreadable = bool(problems.found)
    units = parse_units(sheets.get(Table.UNITS), problems)
    people = parse_people(sheets.get(Table.PEOPLE), problems)
    shifts = parse_shifts(sheets.get(Table.SHIFTS), tz, problems)
    if unreadable:
        # Without every sheet, references between them would be named wrongly as unknown.
        problems.check()
    units_sheet, people_sheet = sheets.get(Table.UNITS), sheets.get(Table.PEOPLE)
    async with db.uow() as uow:
        session = uow.session
        existing = await _load_roster(session)
        if only_into_empty and existing.people:
            raise InvalidInput(
                N_(
                    "The database already holds {count} people; the sample district goes only "
                    "into an empty database."
                ),
                count=len(existing.people),
            )
        _check_tree(units_sheet, units, existing, problems)
        # Codes of bad rows count as known, so a bad unit row is named once, not at each use.
        unit_codes = set(existing.units) | (units_sheet.named("code") if units_sheet else set())
        _check_people(people_sheet, people, existing, unit_codes, problems)
        staff_nos = set(existing.people) | (
            people_sheet.named("staff_no") if people_sheet else set()
        )
        leaving = {p.staff_no for p in existing.people.values() if not p.active}
        leaving = (leaving | {p.staff_no for p in people if p.active is False}) - {
            p.staff_no for p in people if p.active
        }
        _check_shifts(
            sheets.get(Table.SHIFTS), shifts, unit_codes, staff_nos, leaving, utc(now), problems
        )
        problems.check()
        written_units = await _write_units(session, units, existing)
        written_people, departing = await _write_people(session, people, existing, now=utc(now))
        summary = ImportSummary(
            units=written_units,
            people=written_people,
            shifts=await _write_shifts(session, shifts, existing, now=utc(now)),
        )
        departures = [
            await _depart(session, existing.people[staff_no], now=utc(now), tz=tz)
            for staff_no in departing
        ]
        summary = replace(summary, departures=tuple(departures))
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


def _check_tree(
    sheet: Sheet | None, units: list[UnitRecord], existing: _Roster, problems: Problems
) -> None:
    if sheet is None:
        return
    try:
        _check_tree_rows(sheet, units, existing, problems)
    except RosterError as error:
        problems.add(error)


def _check_tree_rows(
    sheet: Sheet, units: list[UnitRecord], existing: _Roster, problems: Problems
) -> None:
    by_id = {u.id: u.code for u in existing.units.values()}
    # The tree after the import: (kind, parent code) per unit code.
    tree: dict[str, tuple[UnitKind, str | None]] = {
        code: (UnitKind(u.kind), by_id.get(u.parent_id)) for code, u in existing.units.items()
    }
    tree.update({u.code: (u.kind, u.parent) for u in units})
    in_file = {u.code: u for u in units}
    named = sheet.named("code")
    for unit in units:
        if unit.parent is not None and unit.parent not in tree:
            if unit.parent not in named:  # else its own bad row is named already
                problems.add(sheet.error(unit.row, "parent", _unknown_unit(unit.parent)))
            tree.pop(unit.code, None)
            in_file.pop(unit.code, None)
        if unit.parent is None and unit.kind is not UnitKind.COUNTY:
            problems.add(
                sheet.error(unit.row, "kind", InvalidInput(N_("the top unit must be a county")))
            )
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
        if parent is None or parent not in tree or (code not in in_file and parent not in in_file):
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
            problems.add(sheet.error(in_file[code].row, "parent", problem))
        else:
            problems.add(sheet.error(in_file[parent].row, "kind", problem))


def _check_people(
    sheet: Sheet | None,
    people: list[PersonRecord],
    existing: _Roster,
    unit_codes: set[str],
    problems: Problems,
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
            problems.add(sheet.error(person.row, "unit", _unknown_unit(person.unit)))
            continue
        unknown = [code for _, code in sorted(person.roles) if code not in unit_codes]
        if unknown:
            problems.add(sheet.error(person.row, "roles", _unknown_unit(unknown[0])))
            continue
        if person.phone is not None and person.phone in phones:
            problems.add(
                sheet.error(
                    person.row,
                    "phone",
                    InvalidInput(
                        N_("{value} already belongs to {staff_no}"),
                        value=person.phone,
                        staff_no=phones[person.phone],
                    ),
                )
            )


def _check_shifts(
    sheet: Sheet | None,
    shifts: list[ShiftRecord],
    unit_codes: set[str],
    staff_nos: set[str],
    leaving: set[str],
    now: datetime,
    problems: Problems,
) -> None:
    if sheet is None:
        return
    for shift in shifts:
        if shift.unit not in unit_codes:
            problems.add(sheet.error(shift.row, "unit", _unknown_unit(shift.unit)))
        elif shift.staff_no is not None and shift.staff_no not in staff_nos:
            problems.add(
                sheet.error(
                    shift.row,
                    "staff_no",
                    InvalidInput(N_("unknown staff number {staff_no}"), staff_no=shift.staff_no),
                )
            )
        elif shift.staff_no in leaving and shift.start > now:
            # Past shifts of someone who left are history and import as they are.
            problems.add(
                sheet.error(
                    shift.row,
                    "staff_no",
                    InvalidInput(
                        N_("{staff_no} is not active: give the shift to someone else"),
                        staff_no=shift.staff_no,
                    ),
                )
            )


def describe_summary(summary: ImportSummary, tr: Translator, tz: ZoneInfo | None = None) -> str:
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
    if summary.departures:
        lines.append(describe_departures(summary.departures, tr, tz or ZoneInfo("UTC")))
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
    session: AsyncSession, people: list[PersonRecord], existing: _Roster, *, now: datetime
) -> tuple[ImportCounts, list[str]]:
    """Write the people; return the counts and the staff numbers of those now leaving."""
    counter = _Counter()
    departing: list[str] = []
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
        if record.email_given:
            values["email"] = record.email
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
        if record.active is False and (created or person.active):
            person.active = False
            departing.append(record.staff_no)
            changed = True
        elif record.active and not person.active:
            person.active = True  # back on the roster; a new invite links an account again
            session.add(
                AuditEntry(
                    at=now,
                    actor_account="cli",
                    action="person.reactivate",
                    subject_type="person",
                    subject_id=person.id,
                    unit_id=person.unit_id,
                )
            )
            changed = True
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
    return counter.frozen(), departing


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


# Leaving the roster: deactivated, never deleted.


async def deactivate(
    db: Database, staff_nos: Sequence[str], *, now: datetime, tz: ZoneInfo
) -> list[Departure]:
    """Take people off the roster in one transaction: all of them, or none if one is unknown."""
    async with db.uow() as uow:
        session = uow.session
        people = []
        for staff_no in dict.fromkeys(staff_nos):
            person = await person_by_staff_no(session, staff_no)
            if person is None:
                raise NotFound(N_("unknown staff number {staff_no}"), staff_no=staff_no)
            people.append(person)
        departures = []
        for person in people:
            if not person.active:
                departures.append(Departure(person.staff_no, person.name, 0, 0, (), already=True))
                continue
            person.active = False
            departures.append(await _depart(session, person, now=utc(now), tz=tz))
        await uow.commit()
    return departures


async def _depart(
    session: AsyncSession, person: Person, *, now: datetime, tz: ZoneInfo
) -> Departure:
    """Unlink the accounts, revoke the invites and leave the future shifts of someone leaving.

    A shift already begun stays theirs (it is history in the making, and if they are absent the
    missed-shift pages still go to the duty leader); later ones become unfilled posts, which
    page the unit's duty leader at their start unless someone is put on them.
    """
    assert person.id is not None
    person.active = False
    accounts = (
        await session.exec(
            select(Account).where(
                Account.person_id == person.id, col(Account.unlinked_at).is_(None)
            )
        )
    ).all()
    for account in accounts:
        account.unlinked_at = now
    invites = (
        await session.exec(
            select(Invite).where(
                Invite.person_id == person.id,
                col(Invite.used_at).is_(None),
                col(Invite.revoked_at).is_(None),
            )
        )
    ).all()
    for invite in invites:
        invite.revoked_at = now
    rows = (
        await session.exec(
            select(Shift, Unit.code)
            .join(Unit, col(Unit.id) == Shift.unit_id)
            .where(Shift.person_id == person.id, col(Shift.start) > now)
            .order_by(col(Shift.start), col(Shift.post))
        )
    ).all()
    ended = []
    for shift, code in rows:
        shift.person_id = None
        shift.planned_at = None  # planned again: an unfilled post pages at its start
        ended.append(EndedShift(code, shift.post, shift.start, shift.end))
    session.add(
        AuditEntry(
            at=now,
            actor_account="cli",
            action="person.deactivate",
            subject_type="person",
            subject_id=person.id,
            unit_id=person.unit_id,
            detail={
                "staff_no": person.staff_no,
                "accounts_unlinked": len(accounts),
                "invites_revoked": len(invites),
                "shifts_left_unfilled": [f"{e.unit} {e.post} {_local(e.start, tz)}" for e in ended],
            },
        )
    )
    await session.flush()
    return Departure(person.staff_no, person.name, len(accounts), len(invites), tuple(ended))


def describe_departures(departures: Iterable[Departure], tr: Translator, tz: ZoneInfo) -> str:
    """One line per person who left, and one per future shift of theirs now unfilled."""
    lines = []
    for departure in departures:
        if departure.already:
            lines.append(
                tr._(
                    "{staff_no} {name}: already inactive; nothing changed",
                    staff_no=departure.staff_no,
                    name=departure.name,
                )
            )
            continue
        lines.append(
            tr._(
                "{staff_no} {name}: deactivated; accounts unlinked: {accounts}; "
                "future shifts now unfilled: {shifts}",
                staff_no=departure.staff_no,
                name=departure.name,
                accounts=departure.accounts_unlinked,
                shifts=len(departure.ended),
            )
        )
        for shift in departure.ended:
            lines.append(
                "  "
                + tr._(
                    "{unit} {post} {start}–{end}: now unfilled",
                    unit=shift.unit,
                    post=shift.post,
                    start=_local(shift.start, tz),
                    end=_local(shift.end, tz)[-5:],
                )
            )
    return "\n".join(lines)


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
                "yes" if p.active else "no",
                p.email or "",
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
