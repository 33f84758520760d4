"""Builders for small districts in tests, written straight to the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.models import Account, Person, RoleGrant, Unit
from bot.uow import Database

LINKED_AT = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class District:
    """Ids of a small district: county C → township T → schools S and S2."""

    units: dict[str, int] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)
    chats: dict[str, int] = field(default_factory=dict)


# code, name, kind, parent
UNITS = [
    ("C", "青川县教育局", "county", None),
    ("T", "石坝乡中心校", "township", "C"),
    ("T2", "木鱼镇中心校", "township", "C"),
    ("S", "石坝小学", "school", "T"),
    ("S2", "木鱼小学", "school", "T2"),
]
# key, name, unit, roles (role@unit), language, linked
PEOPLE = [
    ("leader", "李带班", "S", ["duty_leader@S"], None, True),
    ("leader2", "周带班", "S", ["duty_leader@S"], None, True),
    ("safety", "孙安全", "S", ["safety_officer@S"], None, True),
    ("principal", "王校长", "S", ["principal@S"], None, True),
    ("officer", "赵专干", "T", ["officer@T"], None, True),
    ("officer2", "钱专干", "T2", ["officer@T2"], None, True),
    ("desk", "Desk Chen", "C", ["desk@C"], "en", True),
    ("staff", "张老师", "S", ["staff@S"], None, True),
    ("nolink", "刘老师", "S", ["staff@S"], None, False),
]


async def build_district(db: Database, *, skip: set[str] | None = None) -> District:
    """Write the small district; people in `skip` are left out."""
    district = District()
    async with db.uow() as uow:
        session = uow.session
        for code, name, kind, parent in UNITS:
            unit = Unit(
                code=code,
                name=name,
                kind=kind,
                parent_id=district.units[parent] if parent else None,
            )
            session.add(unit)
            await session.flush()
            assert unit.id is not None
            parent_path = (
                "/" if parent is None else (await session.get(Unit, district.units[parent])).path
            )  # type: ignore[union-attr]
            unit.path = f"{parent_path}{unit.id}/"
            district.units[code] = unit.id
        for index, (key, name, unit_code, roles, language, linked) in enumerate(PEOPLE):
            if skip and key in skip:
                continue
            person = Person(
                staff_no=f"T{index:03d}",
                name=name,
                unit_id=district.units[unit_code],
                phone=f"1380000{index:04d}",
                language=language,
            )
            session.add(person)
            await session.flush()
            assert person.id is not None
            district.people[key] = person.id
            for grant in roles:
                role, at = grant.split("@")
                session.add(RoleGrant(person_id=person.id, role=role, unit_id=district.units[at]))
            if linked:
                chat = 5000 + index
                session.add(
                    Account(
                        person_id=person.id, external_id=chat, chat_id=chat, linked_at=LINKED_AT
                    )
                )
                district.chats[key] = chat
        await uow.commit()
    return district
