"""Leaving the roster: deactivated, account unlinked, future shifts unfilled, history kept."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.errors import InvalidInput, NotFound, RosterRejected
from bot.i18n import translator
from bot.models import Account, Invite, Person, Shift, Unit
from bot.services import accounts, contacts
from bot.services.roster import (
    deactivate,
    describe_summary,
    import_roster,
    sample_district_files,
)
from bot.uow import Database

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
# 11:00 local on 2 December: 何丽 (SB01-02) is leader of the day since 08:00.
LATER = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
HEADER = ["工号", "姓名", "单位", "角色", "电话", "语言", "在职"]
HE_LI = ["SB01-02", "何丽", "SB01", "duty_leader", "15900000012", ""]


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


async def holders_now(db: Database) -> list[str]:
    async with db.uow() as uow:
        unit = (await uow.session.exec(select(Unit).where(Unit.code == "SB01"))).one()
        assert unit.id is not None
        people = await contacts.holders(uow.session, role="duty_leader", unit_id=unit.id, now=LATER)
        return [p.staff_no for p in people]


async def her_shifts(db: Database) -> list[tuple[str, str | None]]:
    """Every SB01 leader shift: local start and who holds it."""
    async with db.uow() as uow:
        rows = await uow.session.exec(
            select(Shift, Person.staff_no)
            .join(Unit, col(Unit.id) == Shift.unit_id)
            .outerjoin(Person, col(Person.id) == Shift.person_id)
            .where(Unit.code == "SB01", Shift.post == "带班")
            .order_by(col(Shift.start))
        )
        return [(s.start.astimezone(TZ).strftime("%m-%d %H:%M"), no) for s, no in rows]


async def test_an_inactive_row_unlinks_the_account_and_unfills_future_shifts_only(
    db: Database, tmp_path: Path
) -> None:
    await import_roster(db, sample_district_files(), tz=TZ, default_language="zh", now=NOW)
    async with db.uow() as uow:
        person = (await uow.session.exec(select(Person).where(Person.staff_no == "SB01-02"))).one()
        assert person.id is not None
        uow.session.add(Account(person_id=person.id, external_id=7002, chat_id=7002, linked_at=NOW))
        await uow.commit()
    await accounts.issue_invites(db, staff_nos=["SB01-02"], now=NOW, valid_for=timedelta(days=7))
    assert (await holders_now(db))[0] == "SB01-02"
    leaving = write_rows(tmp_path / "离职.csv", [HEADER, [*HE_LI, "否"]])

    summary = await import_roster(db, [leaving], tz=TZ, default_language="zh", now=LATER)

    assert describe_summary(summary, translator("en"), TZ).splitlines()[3:] == [
        "SB01-02 何丽: deactivated; accounts unlinked: 1; future shifts now unfilled: 2",
        "  SB01 带班 2026-12-04 08:00–08:00: now unfilled",
        "  SB01 带班 2026-12-06 08:00–08:00: now unfilled",
    ]
    # History and the shift under way stay hers; nothing is deleted.
    assert await her_shifts(db) == [
        ("11-30 08:00", "SB01-02"),
        ("12-01 08:00", "SB01-01"),
        ("12-02 08:00", "SB01-02"),
        ("12-03 08:00", "SB01-01"),
        ("12-04 08:00", None),
        ("12-05 08:00", "SB01-01"),
        ("12-06 08:00", None),
    ]
    async with db.uow() as uow:
        session = uow.session
        person = (await session.exec(select(Person).where(Person.staff_no == "SB01-02"))).one()
        account = (await session.exec(select(Account))).one()
        invite = (await session.exec(select(Invite))).one()
        assert (person.active, account.unlinked_at, invite.revoked_at) == (False, LATER, LATER)
    # Not paged (the other duty leader is), not invited again.
    assert "SB01-02" not in await holders_now(db)
    with pytest.raises(InvalidInput):
        await accounts.issue_invites(
            db, staff_nos=["SB01-02"], now=LATER, valid_for=timedelta(days=7)
        )
    # The same file again changes nothing; a future shift for her is refused.
    again = await import_roster(db, [leaving], tz=TZ, default_language="zh", now=LATER)
    assert not again.changed
    stale = write_rows(
        tmp_path / "shifts.csv",
        [
            ["单位", "岗位", "开始", "结束", "工号", "类型"],
            ["SB01", "带班", "2026-11-30 08:00", "2026-12-01 08:00", "SB01-02", "带班"],
            ["SB01", "带班", "2026-12-04 08:00", "2026-12-05 08:00", "SB01-02", "带班"],
        ],
    )
    with pytest.raises(RosterRejected) as refused:
        await import_roster(db, [stale], tz=TZ, default_language="zh", now=LATER)
    assert str(refused.value) == (
        "shifts.csv row 3, column 工号: SB01-02 is not active: give the shift to someone else"
    )
    # Back on the roster: active again, but the old account stays unlinked (a new invite).
    back = write_rows(tmp_path / "回来.csv", [HEADER, [*HE_LI, "是"]])
    assert (await import_roster(db, [back], tz=TZ, default_language="zh", now=LATER)).changed
    async with db.uow() as uow:
        person = (await uow.session.exec(select(Person).where(Person.staff_no == "SB01-02"))).one()
        account = (await uow.session.exec(select(Account))).one()
        assert (person.active, account.unlinked_at) == (True, LATER)


async def test_deactivate_is_all_or_nothing_and_says_who_was_already_gone(db: Database) -> None:
    await import_roster(db, sample_district_files(), tz=TZ, default_language="zh", now=NOW)

    with pytest.raises(NotFound):
        await deactivate(db, ["SB01-05", "NOPE"], now=LATER, tz=TZ)
    async with db.uow() as uow:
        person = (await uow.session.exec(select(Person).where(Person.staff_no == "SB01-05"))).one()
        assert person.active

    first = await deactivate(db, ["SB01-05"], now=LATER, tz=TZ)
    second = await deactivate(db, ["SB01-05"], now=LATER, tz=TZ)

    assert (first[0].already, len(first[0].ended) > 0) == (False, True)
    assert all(shift.start > LATER for shift in first[0].ended)
    assert (second[0].already, second[0].ended) == (True, ())
