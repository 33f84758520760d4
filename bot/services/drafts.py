"""Conversation drafts in the database: a conversation survives a restart of the bot.

One draft at a time per chat and person; starting one replaces any other. A draft older than
its timeout is dropped when next touched, and the person is told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from bot.models import ConversationDraft
from bot.uow import Database

TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Draft:
    """A conversation in progress."""

    conversation: str
    state: int
    data: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class Expired:
    """A conversation that was left too long and has been dropped."""

    conversation: str


async def begin(
    db: Database,
    *,
    conversation: str,
    chat_id: int,
    user_id: int,
    state: int,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Start (or restart) a conversation, replacing any other of this person in this chat."""
    async with db.uow() as uow:
        await uow.session.execute(
            sa.delete(ConversationDraft).where(
                col(ConversationDraft.chat_id) == chat_id, col(ConversationDraft.user_id) == user_id
            )
        )
        uow.session.add(
            ConversationDraft(
                conversation=conversation,
                chat_id=chat_id,
                user_id=user_id,
                state=state,
                data=data,
                updated_at=now,
            )
        )
        await uow.commit()


async def current(
    db: Database, *, chat_id: int, user_id: int, now: datetime, max_age: timedelta = TIMEOUT
) -> Draft | Expired | None:
    """The person's conversation in this chat, if any (dropped and reported if too old)."""
    async with db.uow() as uow:
        row = (
            await uow.session.exec(
                select(ConversationDraft).where(
                    ConversationDraft.chat_id == chat_id, ConversationDraft.user_id == user_id
                )
            )
        ).first()
        if row is None:
            return None
        if now - row.updated_at > max_age:
            await uow.session.delete(row)
            await uow.commit()
            return Expired(row.conversation)
        return Draft(row.conversation, row.state or 0, dict(row.data or {}), row.updated_at)


async def save(
    db: Database,
    *,
    chat_id: int,
    user_id: int,
    state: int,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Store the conversation's new state and data."""
    async with db.uow() as uow:
        row = (
            await uow.session.exec(
                select(ConversationDraft).where(
                    ConversationDraft.chat_id == chat_id, ConversationDraft.user_id == user_id
                )
            )
        ).first()
        if row is None:
            return
        row.state = state
        row.data = data
        row.updated_at = now
        await uow.commit()


async def end(db: Database, *, chat_id: int, user_id: int) -> None:
    """Drop the person's conversation in this chat."""
    async with db.uow() as uow:
        await uow.session.execute(
            sa.delete(ConversationDraft).where(
                col(ConversationDraft.chat_id) == chat_id, col(ConversationDraft.user_id) == user_id
            )
        )
        await uow.commit()
