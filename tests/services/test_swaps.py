"""Shift swaps: a shift changes hands once, through one approved swap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import District
from sqlmodel import col, select

from bot.config import DatabaseSettings
from bot.db import create_engine
from bot.errors import InvalidInput
from bot.models import AuditEntry, RoleGrant, Shift, ShiftKind, ShiftSwap
from bot.services import swaps
from bot.services.escalation import PagingContext
from bot.uow import Database

NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
CTX = PagingContext(tz=ZoneInfo("Asia/Shanghai"), default_language="zh")


async def a_shift(db: Database, district: District, who: str) -> int:
    async with db.uow() as uow:
        shift = Shift(
            unit_id=district.units["S"],
            post="值班室",
            start=NOW + timedelta(hours=12),
            end=NOW + timedelta(hours=24),
            person_id=district.people[who],
        )
        uow.session.add(shift)
        await uow.commit()
    assert shift.id is not None
    return shift.id


async def test_two_offers_for_one_shift_cannot_both_be_approved(
    db: Database, district: District
) -> None:
    shift_id = await a_shift(db, district, "staff")
    for taker in ("safety", "nolink"):
        await swaps.offer(
            db,
            person_id=district.people["staff"],
            shift_id=shift_id,
            to_person_id=district.people[taker],
            now=NOW,
            ctx=CTX,
        )
    async with db.uow() as uow:
        ids = [s.id or 0 for s in (await uow.session.exec(select(ShiftSwap))).all()]
    for swap_id, taker in zip(ids, ("safety", "nolink"), strict=True):
        await swaps.answer(
            db, person_id=district.people[taker], swap_id=swap_id, accept=True, now=NOW, ctx=CTX
        )
    assert (
        await swaps.decide(
            db, person_id=district.people["leader"], swap_id=ids[0], approve=True, now=NOW, ctx=CTX
        )
        == "approved"
    )
    with pytest.raises(InvalidInput, match="out of date"):
        await swaps.decide(
            db, person_id=district.people["leader"], swap_id=ids[1], approve=True, now=NOW, ctx=CTX
        )
    async with db.uow() as uow:
        shift = (await uow.session.exec(select(Shift).where(Shift.id == shift_id))).one()
        statuses = [s.status for s in (await uow.session.exec(select(ShiftSwap))).all()]
    assert shift.person_id == district.people["safety"]
    assert statuses == ["approved", "superseded"]


async def test_a_leader_cannot_approve_a_swap_of_their_own_shift(
    db: Database, district: District
) -> None:
    shift_id = await a_shift(db, district, "leader")
    await swaps.offer(
        db,
        person_id=district.people["leader"],
        shift_id=shift_id,
        to_person_id=district.people["staff"],
        now=NOW,
        ctx=CTX,
    )
    async with db.uow() as uow:
        swap_id = (await uow.session.exec(select(ShiftSwap))).one().id or 0
    await swaps.answer(
        db, person_id=district.people["staff"], swap_id=swap_id, accept=True, now=NOW, ctx=CTX
    )
    with pytest.raises(InvalidInput, match="Another leader"):
        await swaps.decide(
            db, person_id=district.people["leader"], swap_id=swap_id, approve=True, now=NOW, ctx=CTX
        )
    assert (
        await swaps.decide(
            db,
            person_id=district.people["leader2"],
            swap_id=swap_id,
            approve=True,
            now=NOW,
            ctx=CTX,
        )
        == "approved"
    )


async def a_leader_shift(db: Database, district: District) -> int:
    async with db.uow() as uow:
        shift = Shift(
            unit_id=district.units["S"],
            post="带班",
            start=NOW + timedelta(hours=12),
            end=NOW + timedelta(hours=36),
            person_id=district.people["leader"],
            kind=ShiftKind.LEADER,
        )
        uow.session.add(shift)
        await uow.commit()
    assert shift.id is not None
    return shift.id


async def test_a_leader_shift_goes_to_the_rota_leader_roles_or_a_principal(
    db: Database, district: District
) -> None:
    shift_id = await a_leader_shift(db, district)
    people = district.people
    takers = await swaps.colleagues(db, person_id=people["leader"], shift_id=shift_id, now=NOW)
    assert sorted(c.id for c in takers) == sorted([people["leader2"], people["principal"]])
    # a rota whose leaders are the safety officers widens the pool to them
    wider = await swaps.colleagues(
        db,
        person_id=people["leader"],
        shift_id=shift_id,
        now=NOW,
        leader_roles=["duty_leader", "safety_officer"],
    )
    assert people["safety"] in [c.id for c in wider]
    with pytest.raises(InvalidInput, match="no leader role"):
        await swaps.offer(
            db,
            person_id=people["leader"],
            shift_id=shift_id,
            to_person_id=people["staff"],
            now=NOW,
            ctx=CTX,
        )


async def test_approval_checks_again_that_the_taker_may_lead(
    db: Database, district: District
) -> None:
    shift_id = await a_leader_shift(db, district)
    people = district.people
    offered = await swaps.offer(
        db,
        person_id=people["leader"],
        shift_id=shift_id,
        to_person_id=people["leader2"],
        now=NOW,
        ctx=CTX,
    )
    await swaps.answer(
        db, person_id=people["leader2"], swap_id=offered.swap_id, accept=True, now=NOW, ctx=CTX
    )
    async with db.uow() as uow:
        grant = (
            await uow.session.exec(
                select(RoleGrant).where(RoleGrant.person_id == people["leader2"])
            )
        ).one()
        await uow.session.delete(grant)
        await uow.commit()
    with pytest.raises(InvalidInput, match="no leader role"):
        await swaps.decide(
            db,
            person_id=people["principal"],
            swap_id=offered.swap_id,
            approve=True,
            now=NOW,
            ctx=CTX,
        )
    async with db.uow() as uow:
        shift = (await uow.session.exec(select(Shift).where(Shift.id == shift_id))).one()
    assert shift.person_id == people["leader"]


async def test_offers_pressed_at_once_make_one_offer(
    db: Database, district: District, database_url: str
) -> None:
    shift_id = await a_shift(db, district, "staff")
    other = Database(create_engine(DatabaseSettings(url=database_url)))
    try:
        results = await asyncio.gather(
            *(
                swaps.offer(
                    database,
                    person_id=district.people["staff"],
                    shift_id=shift_id,
                    to_person_id=district.people["nolink"],
                    now=NOW,
                    ctx=CTX,
                )
                for database in (db, other, db)
            )
        )
    finally:
        await other.dispose()
    assert sorted(r.already for r in results) == [False, True, True]
    assert len({r.swap_id for r in results}) == 1
    async with db.uow() as uow:
        assert len((await uow.session.exec(select(ShiftSwap))).all()) == 1


async def test_vetting_a_colleague_writes_nothing_but_the_audit_of_a_refusal(
    db: Database, district: District
) -> None:
    shift_id = await a_shift(db, district, "staff")
    staff = district.people["staff"]
    name = await swaps.vet_offer(
        db, person_id=staff, shift_id=shift_id, to_person_id=district.people["safety"], now=NOW
    )
    assert name
    with pytest.raises(InvalidInput):
        await swaps.vet_offer(db, person_id=staff, shift_id=shift_id, to_person_id=staff, now=NOW)
    async with db.uow() as uow:
        assert (await uow.session.exec(select(ShiftSwap))).all() == []
        refused = (
            await uow.session.exec(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).all()
    assert [entry.action for entry in refused] == ["swap.offer"]
