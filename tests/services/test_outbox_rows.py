"""Rows the outbox writes by Core statements hold what the ORM would have stored."""

from __future__ import annotations

from datetime import UTC, datetime

from factories import District
from sqlmodel import col, select

from bot.models import OutboxMessage
from bot.services import outbox
from bot.uow import Database

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)


async def test_a_queued_edit_is_the_pending_row_the_orm_would_have_stored(
    db: Database, district: District
) -> None:
    async with db.uow() as uow:
        sent = await outbox.enqueue(
            uow.session, now=NOW, text="🛡 Check-in", person_id=district.people["staff"]
        )
        await outbox.enqueue_edit(
            uow.session,
            now=NOW,
            target=sent,
            text="✅ All normal",
            buttons=[[outbox.Button("OK", "ok:1")]],
        )
        await uow.commit()
    async with db.read() as uow:
        found = await uow.session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))
        stored = found.all()[-1]
    # Every column as an ORM row with the same arguments would hold it (defaults included).
    expected = OutboxMessage(
        created_at=NOW,
        not_before=NOW,
        person_id=sent.person_id,
        chat_id=sent.chat_id,
        kind="edit",
        page_id=sent.page_id,
        method="editMessageText",
        body={
            "text": "✅ All normal",
            "buttons": [[{"text": "OK", "data": "ok:1"}]],
            "target": sent.id,
        },
    )
    columns = [column.key for column in OutboxMessage.__table__.columns if column.key != "id"]
    assert {name: getattr(stored, name) for name in columns} == {
        name: getattr(expected, name) for name in columns
    }
