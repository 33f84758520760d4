"""Refusals at the door, audited: presses refused before any use case saw them."""

from __future__ import annotations

from datetime import datetime

from bot.services import audit, contacts
from bot.uow import Database


async def press_refused(
    db: Database, *, external_id: int, data: str | None, reason: str, now: datetime
) -> None:
    """Audit a button press refused for its data (forged, stale) or its chat (a group)."""
    async with db.uow() as uow:
        person = await contacts.person_by_account(uow.session, external_id=external_id)
        await audit.record(
            uow.session,
            at=now,
            action="button.refused",
            actor_person_id=person.id if person is not None else None,
            actor_account=None if person is not None else f"telegram:{external_id}",
            allowed=False,
            detail={"data": (data or "")[:64], "reason": reason},
        )
        await uow.commit()
