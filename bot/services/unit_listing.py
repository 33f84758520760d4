"""A unit's listing as `/unit` shows it, found by code or by id, scope checked on every look."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from bot.authz import Action
from bot.errors import NotAllowed
from bot.models import Unit
from bot.services import accounts, audit
from bot.services.accounts import Me, UnitView
from bot.uow import Database


@dataclass(frozen=True)
class UnitListing:
    """A unit's view and its id (what the page buttons carry)."""

    unit_id: int
    view: UnitView


async def by_code(db: Database, *, me: Me, code: str, now: datetime) -> UnitListing:
    """The unit with this code, if it lies in the person's area (refusals are audited)."""
    view = await accounts.view_unit(db, me=me, code=code, now=now)
    async with db.read() as uow:
        unit_id = (await uow.session.exec(select(Unit.id).where(Unit.code == view.code))).one()
    return UnitListing(unit_id or 0, view)


async def by_id(db: Database, *, me: Me, unit_id: int, now: datetime) -> UnitListing:
    """The unit with this id (from a page button), if it still lies in the person's area.

    The refusal names no code: an id from forged button data must not tell whether, or which,
    unit it belongs to.
    """
    async with db.uow() as uow:
        unit = await uow.session.get(Unit, unit_id)
        if unit is None or not me.can(Action.BOARD_VIEW, unit.path):
            await audit.record(
                uow.session,
                at=now,
                action="unit.view",
                actor_person_id=me.person_id,
                subject_type="unit",
                subject_id=unit_id,
                allowed=False,
                detail={"unit_id": unit_id},
            )
            await uow.commit()
            raise NotAllowed("This unit is not in your area of responsibility.")
        code = unit.code
    return UnitListing(unit_id, await accounts.view_unit(db, me=me, code=code, now=now))
