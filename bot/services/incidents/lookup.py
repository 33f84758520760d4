"""Finding an incident by number or id, and who may see it; helpers that take a session."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.authz import Grant, covers
from bot.errors import NotAllowed, NotFound
from bot.models import Incident, Unit
from bot.services import contacts
from bot.services.sql import lock_for_update

_NUMBER_RE = re.compile(r"^[0-9]{8}-[0-9]{3,}$")
MAX_ID_DIGITS = 9


async def find(session: AsyncSession, ref: int | str, *, lock: bool = False) -> Incident:
    """The incident with this number ("20261128-007") or id; NotFound otherwise."""
    text = str(ref).strip()
    statement = select(Incident)
    if _NUMBER_RE.match(text):
        statement = statement.where(Incident.number == text)
    elif text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
        # ASCII only: "²".isdigit() is true and int() refuses it; and ids fit an INTEGER.
        statement = statement.where(Incident.id == int(text))
    else:
        raise NotFound("There is no incident {ref}.", ref=text)
    if lock:
        statement = lock_for_update(statement, session)
    found = (await session.exec(statement.execution_options(populate_existing=True))).first()
    if found is None:
        raise NotFound("There is no incident {ref}.", ref=text)
    return found


def may_see(grants: Iterable[Grant], unit: Unit, *, person_id: int, incident: Incident) -> bool:
    """Its reporter, and anyone holding any role at its unit or above."""
    return incident.reporter_id == person_id or any(
        covers(grant.unit_path, unit.path) for grant in grants
    )


async def visible(
    session: AsyncSession, ref: int | str, *, person_id: int, lock: bool = False
) -> tuple[Incident, Unit]:
    """The incident and its unit, refused with one sentence outside the person's scope."""
    incident = await find(session, ref, lock=lock)
    unit = await contacts.unit(session, incident.unit_id)
    grants = await contacts.grants_of(session, person_id)
    if not may_see(grants, unit, person_id=person_id, incident=incident):
        raise NotAllowed("This incident is outside your area of responsibility.")
    return incident, unit
