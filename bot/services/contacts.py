"""Who to reach: people by role at a unit, the duty leader of the day, linked accounts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Grant
from bot.config import Level
from bot.models import Account, Person, Role, RoleGrant, Shift, ShiftKind, Unit

_Row = TypeVar("_Row")
# Where `remembering_holders` keeps its answers: the session's own info dict.
_HOLDERS = "zhiban.contacts.holders"
# Units and people loaded through this module, held for the session (see `_kept`).
_KEPT = "zhiban.contacts.kept"


async def unit(session: AsyncSession, unit_id: int) -> Unit:
    """Load a unit by id (from the session's identity map when it is loaded already)."""
    return _kept(session, await session.get(Unit, unit_id), "unit", unit_id)


def _kept(session: AsyncSession, row: _Row | None, what: str, key: int) -> _Row:
    """The row, held for as long as the session lives.

    The identity map holds rows weakly, so a unit that only a finished call had used was
    forgotten and read again by the next; a look at a matter asks for the same few units and
    people many times. Holding them changes nothing else: the session hands out the same
    object as before, refreshed after a commit as before.
    """
    if row is None:
        raise NoResultFound(f"no {what} {key}")
    session.info.setdefault(_KEPT, {})[(what, key)] = row
    return row


def keep_unit(session: AsyncSession, row: Unit) -> Unit:
    """Hold a unit that a statement of the caller's read, so that `unit` finds it unread."""
    assert row.id is not None
    return _kept(session, row, "unit", row.id)


async def units_above(session: AsyncSession, base: Unit) -> None:
    """Read the parent and the county of `base` in one SELECT instead of one each.

    `unit_at_level` then finds them in the session; units it holds already are not read again.
    """
    wanted = {base.parent_id, _top_id(base)} - {None, base.id}
    missing = [i for i in wanted if i is not None and _held(session, i) is None]
    if not missing:
        return
    for row in await session.exec(select(Unit).where(col(Unit.id).in_(missing))):
        keep_unit(session, row)


def _held(session: AsyncSession, unit_id: int) -> object | None:
    return session.identity_map.get(identity_key(Unit, unit_id))


def _top_id(base: Unit) -> int | None:
    return int(base.path.strip("/").split("/")[0]) if base.path else base.id


async def unit_at_level(session: AsyncSession, base: Unit, level: Level) -> Unit | None:
    """The unit itself, its parent, or the county at the top of its tree."""
    if level == Level.UNIT:
        return base
    if level == Level.PARENT:
        return None if base.parent_id is None else await unit(session, base.parent_id)
    top_id = _top_id(base)
    return await unit(session, top_id) if top_id is not None else None


async def grants_of(session: AsyncSession, person_id: int) -> list[Grant]:
    """Every role a person holds, with the unit path it covers."""
    rows = await session.exec(
        select(RoleGrant.role, RoleGrant.unit_id, Unit.path)
        .join(Unit, col(Unit.id) == RoleGrant.unit_id)
        .where(RoleGrant.person_id == person_id)
    )
    return [Grant(role=role, unit_id=unit_id, unit_path=path) for role, unit_id, path in rows]


async def people_with_role(session: AsyncSession, *, role: str, unit_id: int) -> list[Person]:
    """Active people holding `role` at exactly this unit, in roster order."""
    statement = (
        select(Person)
        .join(RoleGrant, col(RoleGrant.person_id) == Person.id)
        .where(RoleGrant.role == role, RoleGrant.unit_id == unit_id, col(Person.active))
        .order_by(col(Person.staff_no))
    )
    return list((await session.exec(statement)).all())


async def leaders_on_duty(session: AsyncSession, *, unit_id: int, now: datetime) -> list[Person]:
    """The leader-on-duty (带班领导) whose leader shift covers `now` at this unit."""
    statement = (
        select(Person)
        .join(Shift, col(Shift.person_id) == Person.id)
        .where(
            Shift.unit_id == unit_id,
            Shift.kind == ShiftKind.LEADER,
            col(Shift.start) <= now,
            col(Shift.end) > now,
            col(Person.active),
        )
        .order_by(col(Shift.start))
    )
    return list((await session.exec(statement)).all())


def _duty_leaders_statement() -> Any:
    """`leaders_on_duty` (rank 0) and `people_with_role` for duty_leader (rank 1) as one union.

    Built once: constructing the union and its aliased entity cost more CPU than the second
    round trip it saves. Parameters: `unit_id`, `now`.
    """
    unit_id: sa.BindParameter[int] = sa.bindparam("unit_id")
    now: sa.BindParameter[datetime] = sa.bindparam("now")
    on_duty: sa.Select[Person, int, datetime] = (
        sa.select(Person, sa.literal(0).label("rank"), col(Shift.start).label("since"))
        .join(Shift, col(Shift.person_id) == Person.id)
        .where(
            col(Shift.unit_id) == unit_id,
            col(Shift.kind) == ShiftKind.LEADER,
            col(Shift.start) <= now,
            col(Shift.end) > now,
            col(Person.active),
        )
    )
    by_role = (
        sa.select(Person, sa.literal(1).label("rank"), sa.null().label("since"))
        .join(RoleGrant, col(RoleGrant.person_id) == Person.id)
        .where(
            col(RoleGrant.role) == Role.DUTY_LEADER,
            col(RoleGrant.unit_id) == unit_id,
            col(Person.active),
        )
    )
    both = sa.union_all(on_duty, by_role).subquery()
    return select(aliased(Person, both), both.c.rank).order_by(
        both.c.rank, both.c.since, both.c.staff_no
    )


_DUTY_LEADERS = _duty_leaders_statement()


async def _duty_leaders(session: AsyncSession, *, unit_id: int, now: datetime) -> list[Person]:
    """`leaders_on_duty`, else the unit's duty leaders by role: both asked in one statement.

    Rank 0 rows are the leaders on duty in `leaders_on_duty`'s order, rank 1 rows the role's
    holders in `people_with_role`'s; the second are used only when there are no first.
    """
    rows = await session.exec(_DUTY_LEADERS, params={"unit_id": unit_id, "now": now})
    ranked: list[tuple[Person, int]] = list(rows.all())
    on_shift = [found for found, rank in ranked if rank == 0]
    return on_shift or [found for found, rank in ranked if rank == 1]


async def holders(session: AsyncSession, *, role: str, unit_id: int, now: datetime) -> list[Person]:
    """Who answers for `role` at a unit now: for duty_leader, the leader of the day first."""
    memo: dict[tuple[str, int, datetime], list[Person]] | None = session.info.get(_HOLDERS)
    if memo is not None and (role, unit_id, now) in memo:
        return list(memo[(role, unit_id, now)])
    if role == Role.DUTY_LEADER:
        found = await _duty_leaders(session, unit_id=unit_id, now=now)
    else:
        found = await people_with_role(session, role=role, unit_id=unit_id)
    if memo is not None:
        memo[(role, unit_id, now)] = list(found)
    return found


@contextmanager
def remembering_holders(session: AsyncSession) -> Iterator[None]:
    """Within the block, `holders` answers a question it was asked before from memory.

    For the engine's look at a matter, which asks who holds the same roles at the same unit for
    the pages it writes and again for the phones those pages list. Nothing inside such a block
    may change who holds a role (role grants, leader shifts, people's active flag).
    """
    if _HOLDERS in session.info:  # an outer block remembers already
        yield
        return
    session.info[_HOLDERS] = {}
    try:
        yield
    finally:
        session.info.pop(_HOLDERS, None)


async def account_of(session: AsyncSession, person_id: int) -> Account | None:
    """The person's linked account, if any."""
    statement = (
        select(Account)
        .where(Account.person_id == person_id, col(Account.unlinked_at).is_(None))
        .order_by(col(Account.linked_at).desc())
        .limit(1)
    )
    return (await session.exec(statement)).first()


async def person(session: AsyncSession, person_id: int) -> Person:
    """Load a person by id (from the session's identity map when it is loaded already)."""
    return _kept(session, await session.get(Person, person_id), "person", person_id)


def _person_at_unit_statement() -> Any:
    """A person, their unit, and each role they hold with its unit's path (one row per role).

    Built once, with the person's id bound as `person_id` (see `_duty_leaders_statement`).
    """
    person_id: sa.BindParameter[int] = sa.bindparam("person_id")
    granted = aliased(Unit)
    return (
        sa.select(Person, Unit, col(RoleGrant.role), col(RoleGrant.unit_id), col(granted.path))
        .join(Unit, col(Unit.id) == Person.unit_id)
        .outerjoin(RoleGrant, col(RoleGrant.person_id) == Person.id)
        .outerjoin(granted, col(granted.id) == RoleGrant.unit_id)
        .where(col(Person.id) == person_id)
    )


_PERSON_AT_UNIT = _person_at_unit_statement()


async def person_at_unit(session: AsyncSession, person_id: int) -> tuple[Person, Unit, list[Grant]]:
    """Load a person, the unit they belong to and their roles (`grants_of`) in one SELECT."""
    rows = (await session.exec(_PERSON_AT_UNIT, params={"person_id": person_id})).all()
    found, home = (rows[0][0], rows[0][1]) if rows else (None, None)
    who = _kept(session, found, "person", person_id)
    grants = [
        Grant(role=role, unit_id=unit_id, unit_path=path)
        for _person, _unit, role, unit_id, path in rows
        if role is not None
    ]
    return who, _kept(session, home, "unit", who.unit_id), grants


# Built once: every press acting for its person asks it (escalation.actions.on_behalf).
_PERSON_BY_ACCOUNT = (
    select(Person)
    .join(Account, col(Account.person_id) == Person.id)
    .where(
        col(Account.channel) == sa.bindparam("channel"),
        col(Account.external_id) == sa.bindparam("external_id"),
        col(Account.unlinked_at).is_(None),
    )
)


async def person_by_account(
    session: AsyncSession, *, external_id: int, channel: str = "telegram"
) -> Person | None:
    """The roster person linked to a messaging account."""
    found = await session.exec(
        _PERSON_BY_ACCOUNT, params={"channel": channel, "external_id": external_id}
    )
    return found.first()
