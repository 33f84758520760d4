"""The board reads the database in a fixed number of statements, whatever the size of the area."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from factories import District
from sqlalchemy import event

from bot.config import settings_from_mapping
from bot.errors import NotAllowed
from bot.models import Checkin, ClockEvent, Person, RoleGrant, Shift, ShiftKind, Unit
from bot.services import accounts, board, incidents
from bot.services.escalation import PagingContext
from bot.services.incidents import ReportDraft
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 9, 40, tzinfo=UTC)  # 17:40 in Shanghai
SETTINGS = settings_from_mapping({}, environ={})
CTX = PagingContext(tz=TZ, default_language="zh")


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def grow(db: Database, district: District, schools: int, prefix: str) -> None:
    """More schools under 石坝乡, each with someone on shift, clocked in and owing a check-in."""
    async with db.uow() as uow:
        session = uow.session
        town = await session.get(Unit, district.units["T"])
        assert town is not None
        for index in range(schools):
            school = Unit(
                code=f"{prefix}{index}",
                name=f"新校{prefix}{index}",
                kind="school",
                parent_id=town.id,
            )
            session.add(school)
            await session.flush()
            school.path = f"{town.path}{school.id}/"
            person = Person(
                staff_no=f"{prefix}{index}", name=f"值班{prefix}{index}", unit_id=school.id or 0
            )
            session.add(person)
            await session.flush()
            session.add(
                RoleGrant(person_id=person.id or 0, role="principal", unit_id=school.id or 0)
            )
            shift = Shift(
                unit_id=school.id or 0,
                post="值班室",
                start=NOW - timedelta(hours=2),
                end=NOW + timedelta(hours=2),
                person_id=person.id,
                kind=ShiftKind.STAFF,
                planned_at=NOW,
            )
            session.add(shift)
            await session.flush()
            session.add(
                ClockEvent(shift_id=shift.id or 0, person_id=person.id or 0, kind="in", at=NOW)
            )
            session.add(
                Checkin(
                    person_id=person.id or 0,
                    unit_id=school.id or 0,
                    shift_id=shift.id,
                    due_at=NOW - timedelta(minutes=40),
                    deadline=NOW - timedelta(minutes=10),
                )
            )
        await uow.commit()
    for _ in range(schools // 10):
        await incidents.report(
            db,
            person_id=district.people["staff"],
            draft=ReportDraft(
                category="fire", severity="serious", description="起火", occurred_at=NOW
            ),
            now=NOW,
            policies=SETTINGS.escalation,
            ctx=CTX,
        )


async def test_the_board_costs_the_same_statements_for_3_schools_and_for_43(
    db: Database, district: District
) -> None:
    desk = await accounts.identify(db, external_id=district.chats["desk"])
    assert desk is not None

    async def look() -> tuple[board.Board, int]:
        with statements(db) as seen:
            found = await board.for_code(
                db, me=desk, code=None, now=NOW, daily=SETTINGS.daily_report, tz=TZ
            )
        return found, len(seen)

    await grow(db, district, 1, "A")  # a check-in round held, so both looks read one
    small, before = await look()
    await grow(db, district, 40, "B")
    large, after = await look()
    assert small.totals.schools == 3 and large.totals.schools == 43
    assert large.totals.incidents == 4 and large.totals.checkins_missed == 41
    assert large.totals.clocked_in == 41 and large.totals.unreachable == 41
    assert after == before <= 14


async def test_a_code_outside_the_area_and_staff_are_refused(
    db: Database, district: District
) -> None:
    officer = await accounts.identify(db, external_id=district.chats["officer2"])
    staff = await accounts.identify(db, external_id=district.chats["staff"])
    assert officer is not None and staff is not None
    args: dict[str, Any] = {"now": NOW, "daily": SETTINGS.daily_report, "tz": TZ}
    found = await board.for_code(db, me=officer, code="S2", **args)
    assert found.code == "S2" and found.single
    for code in ("S", "NOSUCH"):
        with pytest.raises(NotAllowed) as refused:
            await board.for_code(db, me=officer, code=code, **args)
        assert refused.value.message == board.NOT_IN_AREA and refused.value.params == {"code": code}
    with pytest.raises(NotAllowed) as refused:
        await board.for_unit(db, me=officer, unit_id=district.units["T"], **args)
    assert refused.value.message == board.NOT_IN_AREA_BUTTON
    with pytest.raises(NotAllowed) as refused:
        await board.for_code(db, me=staff, code=None, **args)
    assert refused.value.message == board.NOT_FOR_YOU
