"""Invites issued in the chat are capped per admin and per person, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from factories import District
from sqlmodel import col, select

from bot.authz import Grant
from bot.config import InviteSettings
from bot.errors import NotAllowed
from bot.models import AuditEntry, Invite, RoleGrant, Unit
from bot.services import accounts
from bot.uow import Database

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


async def an_admin(db: Database, district: District) -> accounts.Me:
    """The township officer, made admin of the township as well."""
    person_id = district.people["officer"]
    async with db.uow() as uow:
        uow.session.add(RoleGrant(person_id=person_id, role="admin", unit_id=district.units["T"]))
        path = (await uow.session.exec(select(Unit.path).where(Unit.code == "T"))).one()
        await uow.commit()
    return accounts.Me(
        person_id=person_id,
        staff_no="T004",
        name="赵专干",
        unit_id=district.units["T"],
        unit_name="石坝乡中心校",
        unit_path=path,
        language=None,
        roles=(),
        grants=(Grant("admin", district.units["T"], path),),
    )


async def test_an_admin_over_the_hourly_limit_is_refused_the_whole_batch(
    db: Database, district: District
) -> None:
    admin = await an_admin(db, district)
    limits = InviteSettings(per_admin_per_hour=3, per_person_per_hour=5)
    await accounts.issue_invites(
        db, staff_nos=["T000", "T001"], now=NOW, valid_for=WEEK, issued_by=admin, limits=limits
    )
    with pytest.raises(NotAllowed, match="at most 3 invites an hour"):
        await accounts.issue_invites(
            db,
            staff_nos=["T002", "T003"],
            now=NOW + timedelta(minutes=10),
            valid_for=WEEK,
            issued_by=admin,
            limits=limits,
        )
    # the window slides: an hour after the first two, the batch fits again
    issued = await accounts.issue_invites(
        db,
        staff_nos=["T002", "T003"],
        now=NOW + timedelta(hours=1, seconds=1),
        valid_for=WEEK,
        issued_by=admin,
        limits=limits,
    )
    assert [i.staff_no for i in issued] == ["T002", "T003"]
    async with db.uow() as uow:
        invites = (await uow.session.exec(select(Invite.person_id))).all()
        refused = (
            await uow.session.exec(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).one()
    assert len(invites) == 4
    assert refused.detail == {"limit": "per_admin", "issued": 2, "asked": 2}


async def test_the_command_line_is_not_limited(db: Database, district: District) -> None:
    for _ in range(8):
        await accounts.issue_invites(db, staff_nos=["T007"], now=NOW, valid_for=WEEK)
    async with db.uow() as uow:
        assert len((await uow.session.exec(select(Invite))).all()) == 8
