"""Onboarding and identity: one-time invites, linked accounts, who a person is, their language.

An invite is a random code of 32 URL-safe characters (192 bits), single use, expiring after
`[invites] valid_for`. Issuing a new invite for a person revokes their unused older ones.
Redeeming it links the messaging account to the roster person; a person has at most one linked
account (a new invite on a new phone unlinks the old one) and an account belongs to at most one
person.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Action, Grant, allowed, covers
from bot.config import InviteSettings
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import LANGUAGES, N_
from bot.models import Account, Invite, Person, Role, RoleGrant, Unit
from bot.services import audit, contacts
from bot.services.sql import lock_for_update
from bot.uow import Database, UnitOfWork

_ROLE_ORDER = {role.value: index for index, role in enumerate(Role)}
# One sentence for unknown and out-of-scope staff numbers and units: nothing leaks about other
# areas (whether a code exists, who is linked there).
OUTSIDE_AREA = N_("There is no staff number {staff_no} in your area of responsibility.")
OUTSIDE_UNITS = N_("There is no unit {code} in your area of responsibility.")
ADMINS_ONLY = N_("Only an administrator can issue invites.")
ADMIN_RATE = N_("You may issue at most {limit} invites an hour; please try again later.")
PERSON_RATE = N_(
    "At most {limit} invites an hour may be issued for {staff_no}; please try again later."
)


@dataclass(frozen=True)
class IssuedInvite:
    """An invite ready to hand out."""

    staff_no: str
    name: str
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class RoleAt:
    """A role and the unit it is held at."""

    role: str
    unit_code: str
    unit_name: str


@dataclass(frozen=True)
class Me:
    """A linked person as the bot knows them."""

    person_id: int
    staff_no: str
    name: str
    unit_id: int
    unit_name: str
    unit_path: str
    language: str | None
    roles: tuple[RoleAt, ...]
    grants: tuple[Grant, ...]
    unreachable: bool = False

    def can(self, action: Action, unit_path: str) -> bool:
        """Tell whether this person may do `action` at the unit with `unit_path`."""
        return allowed(self.grants, action, unit_path)

    def can_anywhere(self, action: Action) -> bool:
        """Tell whether any of this person's roles allows `action` somewhere."""
        return any(allowed([grant], action, grant.unit_path) for grant in self.grants)


def new_code() -> str:
    """An unguessable invite code (32 characters of [A-Za-z0-9_-])."""
    return secrets.token_urlsafe(24)


async def _issue(
    session: AsyncSession,
    person: Person,
    *,
    issued_by: int | None,
    now: datetime,
    valid_for: timedelta,
) -> IssuedInvite:
    assert person.id is not None
    await session.execute(
        sa.update(Invite)
        .where(
            col(Invite.person_id) == person.id,
            col(Invite.used_at).is_(None),
            col(Invite.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    invite = Invite(
        code=new_code(),
        person_id=person.id,
        created_by_id=issued_by,
        created_at=now,
        expires_at=now + valid_for,
    )
    session.add(invite)
    await audit.record(
        session,
        at=now,
        action="invite.issue",
        actor_person_id=issued_by,
        actor_account=None if issued_by else "cli",
        subject_type="person",
        subject_id=person.id,
        unit_id=person.unit_id,
    )
    return IssuedInvite(person.staff_no, person.name, invite.code, invite.expires_at)


async def _refuse_invite(
    uow: UnitOfWork,
    *,
    me: Me,
    now: datetime,
    subject_type: str | None = None,
    subject_id: int | None = None,
    unit_id: int | None = None,
    **detail: Any,
) -> None:
    """Record a refused /invite; nothing else of the use case was written."""
    await audit.record(
        uow.session,
        at=now,
        action="invite.issue",
        actor_person_id=me.person_id,
        subject_type=subject_type,
        subject_id=subject_id,
        unit_id=unit_id,
        allowed=False,
        detail=detail or None,
    )
    await uow.commit()


async def _check_rate(
    uow: UnitOfWork, *, me: Me, people: list[Person], now: datetime, limits: InviteSettings
) -> None:
    """Refuse the whole batch if it would go over the hourly limits per admin or per person."""
    session = uow.session
    since = now - timedelta(hours=1)
    by_admin = (
        await session.exec(
            select(sa.func.count())
            .select_from(Invite)
            .where(Invite.created_by_id == me.person_id, col(Invite.created_at) > since)
        )
    ).one()
    if by_admin + len(people) > limits.per_admin_per_hour:
        await _refuse_invite(
            uow, me=me, now=now, limit="per_admin", issued=by_admin, asked=len(people)
        )
        raise NotAllowed(ADMIN_RATE, limit=limits.per_admin_per_hour)
    counts = dict(
        (
            await session.exec(
                select(Invite.person_id, sa.func.count())
                .where(
                    col(Invite.person_id).in_([person.id for person in people]),
                    col(Invite.created_at) > since,
                )
                .group_by(col(Invite.person_id))
            )
        ).all()
    )
    for person in people:
        if counts.get(person.id or 0, 0) >= limits.per_person_per_hour:
            await _refuse_invite(
                uow,
                me=me,
                now=now,
                subject_type="person",
                subject_id=person.id,
                unit_id=person.unit_id,
                limit="per_person",
            )
            raise NotAllowed(
                PERSON_RATE, limit=limits.per_person_per_hour, staff_no=person.staff_no
            )


async def issue_invites(
    db: Database,
    *,
    staff_nos: Sequence[str] = (),
    unit_code: str | None = None,
    now: datetime,
    valid_for: timedelta,
    issued_by: Me | None = None,
    limits: InviteSettings | None = None,
) -> list[IssuedInvite]:
    """Issue invites for the named people, or for everyone unlinked in a unit and below.

    With `issued_by` (an admin in the chat) every person and unit must lie in the admin's scope,
    and `limits` caps how many an hour; unknown and foreign staff numbers and units get the same
    sentence, so a refusal tells nothing about other areas. The command line (`issued_by=None`)
    may invite anyone.
    """
    async with db.uow() as uow:
        session = uow.session
        if issued_by is not None and not issued_by.can_anywhere(Action.INVITE_ISSUE):
            # Refused before any lookup: the answer cannot depend on what exists elsewhere.
            await _refuse_invite(uow, me=issued_by, now=now, reason="not an administrator")
            raise NotAllowed(ADMINS_ONLY)
        people: list[tuple[Person, str]] = []
        if unit_code is not None:
            unit = (await session.exec(select(Unit).where(Unit.code == unit_code))).first()
            if issued_by is not None and (
                unit is None or not issued_by.can(Action.INVITE_ISSUE, unit.path)
            ):
                await _refuse_invite(
                    uow,
                    me=issued_by,
                    now=now,
                    subject_type="unit",
                    subject_id=unit.id if unit else None,
                    code=unit_code,
                )
                raise NotAllowed(OUTSIDE_UNITS, code=unit_code)
            if unit is None:
                raise NotFound("unknown unit {code}", code=unit_code)
            linked = select(Account.person_id).where(col(Account.unlinked_at).is_(None))
            rows = await session.exec(
                select(Person, Unit.path)
                .join(Unit, col(Unit.id) == Person.unit_id)
                .where(
                    col(Unit.path).startswith(unit.path),
                    col(Person.active),
                    col(Person.id).not_in(linked),
                )
                .order_by(col(Person.staff_no))
            )
            people = [(person, path) for person, path in rows]
        for staff_no in staff_nos:
            row = (
                await session.exec(
                    select(Person, Unit.path)
                    .join(Unit, col(Unit.id) == Person.unit_id)
                    .where(Person.staff_no == staff_no)
                )
            ).first()
            if row is None:
                if issued_by is not None:  # the same sentence as for someone elsewhere
                    await _refuse_invite(uow, me=issued_by, now=now, staff_no=staff_no)
                    raise NotAllowed(OUTSIDE_AREA, staff_no=staff_no)
                raise NotFound("unknown staff number {staff_no}", staff_no=staff_no)
            people.append((row[0], row[1]))
        if issued_by is not None:
            for person, path in people:
                if not issued_by.can(Action.INVITE_ISSUE, path):
                    await _refuse_invite(
                        uow,
                        me=issued_by,
                        now=now,
                        subject_type="person",
                        subject_id=person.id,
                        unit_id=person.unit_id,
                    )
                    raise NotAllowed(OUTSIDE_AREA, staff_no=person.staff_no)
            if limits is not None and people:
                await _check_rate(
                    uow,
                    me=issued_by,
                    people=[person for person, _path in people],
                    now=now,
                    limits=limits,
                )
        # After the scope check, so nobody learns who left a unit outside their own.
        for person, _path in people:
            if not person.active:
                raise InvalidInput(
                    "{staff_no} has left the roster (deactivated) and cannot be invited.",
                    staff_no=person.staff_no,
                )
        issued = [
            await _issue(
                session,
                person,
                issued_by=issued_by.person_id if issued_by else None,
                now=now,
                valid_for=valid_for,
            )
            for person, _path in people
        ]
        await uow.commit()
    return issued


async def redeem(
    db: Database,
    *,
    code: str,
    external_id: int,
    chat_id: int,
    username: str | None,
    now: datetime,
) -> Me:
    """Link a messaging account with the invite's person; the old account, if any, is unlinked."""
    async with db.uow() as uow:
        session = uow.session
        # Locked until the commit: two accounts redeeming one invite at once take turns, and
        # the second reads it used (on SQLite the write lock already does this).
        statement = lock_for_update(select(Invite).where(Invite.code == code), session)
        invite: Invite | None = (await session.exec(statement)).first()
        if invite is None:
            raise InvalidInput("This invite link is not valid. Ask your administrator for one.")
        if invite.used_at is not None or invite.revoked_at is not None:
            raise InvalidInput(
                "This invite link has already been used. Ask your administrator for a new one."
            )
        if invite.expires_at <= now:
            raise InvalidInput(
                "This invite link has expired. Ask your administrator for a new one."
            )
        linked = await session.exec(
            select(Account).where(
                col(Account.unlinked_at).is_(None),
                sa.or_(
                    col(Account.person_id) == invite.person_id,
                    sa.and_(
                        col(Account.channel) == "telegram", col(Account.external_id) == external_id
                    ),
                ),
            )
        )
        for old in linked.all():
            old.unlinked_at = now
            await audit.record(
                session,
                at=now,
                action="account.unlink",
                actor_account=f"telegram:{external_id}",
                subject_type="person",
                subject_id=old.person_id,
                detail={"account": old.external_id},
            )
        await session.flush()
        # The (channel, external_id) pair is unique: an unlinked row is reused on relinking.
        account = (
            await session.exec(
                select(Account).where(
                    Account.channel == "telegram", Account.external_id == external_id
                )
            )
        ).first()
        if account is None:
            account = Account(
                person_id=invite.person_id, external_id=external_id, chat_id=chat_id, linked_at=now
            )
            session.add(account)
        account.person_id = invite.person_id
        account.chat_id = chat_id
        account.username = username
        account.linked_at = now
        account.unlinked_at = None
        account.unreachable_since = None
        account.unreachable_reason = None
        await session.flush()
        invite.used_at = now
        invite.used_by_account_id = account.id
        await audit.record(
            session,
            at=now,
            action="account.link",
            actor_person_id=invite.person_id,
            actor_account=f"telegram:{external_id}",
            subject_type="person",
            subject_id=invite.person_id,
        )
        me = await _me(session, invite.person_id)
        await uow.commit()
    return me


async def _me(session: AsyncSession, person_id: int, *, unreachable: bool = False) -> Me:
    person = await contacts.person(session, person_id)
    unit = await contacts.unit(session, person.unit_id)
    rows = await session.exec(
        select(RoleGrant.role, Unit)
        .join(Unit, col(Unit.id) == RoleGrant.unit_id)
        .where(RoleGrant.person_id == person_id)
        .order_by(col(RoleGrant.id))
    )
    # Roles at the highest unit first, then in the order of SPEC §2.
    held = sorted(rows.all(), key=lambda row: (row[1].path.count("/"), _ROLE_ORDER.get(row[0], 99)))
    roles, grants = [], []
    for role, at in held:
        roles.append(RoleAt(role, at.code, at.name))
        grants.append(Grant(role=role, unit_id=at.id or 0, unit_path=at.path))
    return Me(
        person_id=person_id,
        staff_no=person.staff_no,
        name=person.name,
        unit_id=unit.id or 0,
        unit_name=unit.name,
        unit_path=unit.path,
        language=person.language,
        roles=tuple(roles),
        grants=tuple(grants),
        unreachable=unreachable,
    )


# What `identify` reads, built once: constructing a 14-column select with its joins took
# about a third of the gate's time per update (pyinstrument).
_HELD_AT = aliased(Unit)
_IDENTIFY_COLUMNS: list[Any] = [
    Person.id,
    Person.staff_no,
    Person.name,
    Person.language,
    Person.active,
    Account.unreachable_since,
    Unit.id,
    Unit.name,
    Unit.path,
    RoleGrant.role,
    _HELD_AT.id,
    _HELD_AT.code,
    _HELD_AT.name,
    _HELD_AT.path,
]
_IDENTIFY = (
    sa.select(*_IDENTIFY_COLUMNS)
    .select_from(Account)
    .join(Person, col(Person.id) == Account.person_id)
    .join(Unit, col(Unit.id) == Person.unit_id)
    .outerjoin(RoleGrant, col(RoleGrant.person_id) == Person.id)
    .outerjoin(_HELD_AT, col(_HELD_AT.id) == RoleGrant.unit_id)
    .where(
        col(Account.channel) == "telegram",
        col(Account.external_id) == sa.bindparam("external_id"),
        col(Account.unlinked_at).is_(None),
    )
    .order_by(col(RoleGrant.id))
)


async def identify(db: Database, *, external_id: int) -> Me | None:
    """The linked person behind a messaging account, or None for a stranger.

    Every update asks this first (handlers/gate.py), so it is one statement: the account, its
    person, their unit and each role with the unit it is held at (one row per role, or one
    row with no role). Nothing is cached: a roster change or an unlink on another instance
    counts from the next update on.
    """
    rows = await db.rows(_IDENTIFY, {"external_id": external_id})
    if not rows or rows[0][0] is None or not rows[0][4]:
        return None
    person_id, staff_no, name, language, _active, unreachable_since = rows[0][:6]
    unit_id, unit_name, unit_path = rows[0][6:9]
    # Roles at the highest unit first, then in the order of SPEC §2 (as `_me` orders them).
    held = sorted(
        (row[9:] for row in rows if row[9] is not None and row[10] is not None),
        key=lambda role: (role[4].count("/"), _ROLE_ORDER.get(role[0], 99)),
    )
    return Me(
        person_id=person_id,
        staff_no=staff_no,
        name=name,
        unit_id=unit_id or 0,
        unit_name=unit_name,
        unit_path=unit_path,
        language=language,
        roles=tuple(RoleAt(role, code, at_name) for role, _id, code, at_name, _path in held),
        grants=tuple(
            Grant(role=role, unit_id=at_id or 0, unit_path=path)
            for role, at_id, _code, _name, path in held
        ),
        unreachable=unreachable_since is not None,
    )


async def set_reachable(db: Database, *, external_id: int, reachable: bool, now: datetime) -> None:
    """Record that an account can (again) or cannot receive messages."""
    async with db.uow() as uow:
        account = (
            await uow.session.exec(
                select(Account).where(
                    Account.channel == "telegram",
                    Account.external_id == external_id,
                    col(Account.unlinked_at).is_(None),
                )
            )
        ).first()
        if account is None or (account.unreachable_since is None) == reachable:
            return
        account.unreachable_since = None if reachable else now
        account.unreachable_reason = None if reachable else "blocked the bot"
        await audit.record(
            uow.session,
            at=now,
            action="account.reachable" if reachable else "account.unreachable",
            actor_account=f"telegram:{external_id}",
            subject_type="person",
            subject_id=account.person_id,
        )
        await uow.commit()


async def set_language(db: Database, *, me: Me, language: str, now: datetime) -> Me:
    """Choose the language a person reads the bot in."""
    if language not in LANGUAGES:
        raise InvalidInput("Choose 中文 (zh) or English (en).")
    async with db.uow() as uow:
        person = await contacts.person(uow.session, me.person_id)
        person.language = language
        await audit.record(
            uow.session,
            at=now,
            action="person.language",
            actor_person_id=me.person_id,
            subject_type="person",
            subject_id=me.person_id,
            detail={"language": language},
        )
        updated = await _me(uow.session, me.person_id)
        await uow.commit()
    return updated


@dataclass(frozen=True)
class UnitMember:
    """A person of a unit with their roles there, for a leader's view."""

    staff_no: str
    name: str
    phone: str | None
    roles: tuple[str, ...]
    linked: bool


@dataclass(frozen=True)
class UnitView:
    """A unit, the units directly below it, and its people."""

    code: str
    name: str
    kind: str
    children: tuple[tuple[str, str], ...]
    members: tuple[UnitMember, ...]


async def view_unit(db: Database, *, me: Me, code: str, now: datetime) -> UnitView:
    """A unit's people and sub-units, for someone whose roles cover it (refusals are audited)."""
    async with db.uow() as uow:
        session = uow.session
        unit = (await session.exec(select(Unit).where(Unit.code == code))).first()
        if unit is None or not me.can(Action.BOARD_VIEW, unit.path):
            await audit.record(
                session,
                at=now,
                action="unit.view",
                actor_person_id=me.person_id,
                subject_type="unit",
                subject_id=unit.id if unit else None,
                allowed=False,
                detail={"code": code},
            )
            await uow.commit()
            # The same sentence for unknown and foreign units: nothing leaks about other areas.
            raise NotAllowed(OUTSIDE_UNITS, code=code)
        children = await session.exec(
            select(Unit.code, Unit.name).where(Unit.parent_id == unit.id).order_by(col(Unit.code))
        )
        people = await session.exec(
            select(Person)
            .where(Person.unit_id == unit.id, col(Person.active))
            .order_by(col(Person.staff_no))
        )
        members = []
        for person in people.all():
            held = await session.exec(
                select(RoleGrant.role).where(
                    RoleGrant.person_id == person.id, RoleGrant.unit_id == unit.id
                )
            )
            grants = sorted(held.all(), key=lambda role: _ROLE_ORDER.get(role, 99))
            account = await contacts.account_of(session, person.id or 0)
            members.append(
                UnitMember(
                    person.staff_no,
                    person.name,
                    person.phone,
                    tuple(grants),
                    account is not None,
                )
            )
        return UnitView(unit.code, unit.name, unit.kind, tuple(children.all()), tuple(members))


async def scope_units(db: Database, *, me: Me) -> list[tuple[str, str, int]]:
    """The units a person's roles cover: (code, name, depth below the role's unit)."""
    async with db.read() as uow:
        units = (await uow.session.exec(select(Unit).order_by(col(Unit.path)))).all()
    result = []
    for unit in units:
        tops = [g.unit_path for g in me.grants if covers(g.unit_path, unit.path)]
        if tops:
            depth = unit.path.count("/") - max(tops, key=len).count("/")
            result.append((unit.code, unit.name, depth))
    return result


@dataclass(frozen=True)
class BoundGroup:
    """The unit a group now serves, and the unit it served before if the bind moved it."""

    unit_name: str
    moved_from: str | None


async def bind_group(
    db: Database, *, me: Me, chat_id: int, code: str | None, now: datetime
) -> BoundGroup:
    """Make a group chat the duty group of a unit in the admin's scope (one unit per group).

    Binding a group that already serves another unit moves it: a group's messages and buttons
    act for one unit only, so two units sharing a group would answer for each other.
    """
    async with db.uow() as uow:
        session = uow.session
        admin_units = [g for g in me.grants if g.role == "admin"]
        if code is None:
            if len(admin_units) != 1:
                raise InvalidInput("Name the unit: /bindgroup CODE")
            unit: Unit | None = await contacts.unit(session, admin_units[0].unit_id)
        else:
            unit = (await session.exec(select(Unit).where(Unit.code == code))).first()
        if unit is None or not me.can(Action.ROSTER_MANAGE, unit.path):
            await audit.record(
                session,
                at=now,
                action="group.bind",
                actor_person_id=me.person_id,
                subject_type="unit",
                subject_id=unit.id if unit else None,
                allowed=False,
                detail={"chat": chat_id, "code": code},
            )
            await uow.commit()
            raise NotAllowed(OUTSIDE_UNITS, code=code or (unit.code if unit else ""))
        bound = await session.exec(
            lock_for_update(
                select(Unit).where(Unit.duty_chat_id == chat_id, Unit.id != unit.id), session
            )
        )
        previous = bound.all()
        if any(not me.can(Action.ROSTER_MANAGE, other.path) for other in previous):
            # Moving the group takes it from its unit: only someone who manages that unit too.
            await audit.record(
                session,
                at=now,
                action="group.bind",
                actor_person_id=me.person_id,
                subject_type="unit",
                subject_id=unit.id,
                unit_id=unit.id,
                allowed=False,
                detail={"chat": chat_id, "held_by": [other.id for other in previous]},
            )
            await uow.commit()
            raise NotAllowed(
                "This group is the duty group of a unit outside your area; "
                "an administrator there has to move it."
            )
        for other in previous:
            other.duty_chat_id = None
        unit.duty_chat_id = chat_id
        await audit.record(
            session,
            at=now,
            action="group.bind",
            actor_person_id=me.person_id,
            subject_type="unit",
            subject_id=unit.id,
            unit_id=unit.id,
            detail={"chat": chat_id, "moved_from": [other.id for other in previous] or None},
        )
        await uow.commit()
        return BoundGroup(unit.name, ", ".join(other.name for other in previous) or None)


async def bound_unit(db: Database, *, chat_id: int) -> Unit | None:
    """The unit whose duty group this chat is."""
    async with db.read() as uow:
        return (await uow.session.exec(select(Unit).where(Unit.duty_chat_id == chat_id))).first()
