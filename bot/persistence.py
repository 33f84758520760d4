"""python-telegram-bot persistence on the database: where each conversation stands, per person.

Only conversation states are kept (SPEC §3: conversations are `ConversationHandler`s whose state
lives in the database); user, chat and bot data are not, since domain facts never live in
persistence. A state is a row of `conversation_drafts` keyed by conversation, chat and user, the
same row in which `bot.services.drafts` keeps the draft itself, so a restart (or another
instance taking over) resumes each person at the step they were at, with what they had entered.

python-telegram-bot writes conversation states in its persistence job every `update_interval`
seconds and at shutdown; the interval is kept short (1 s) so that a crash loses at most the last
second's step, and that step's draft is in the database already.

A conversation named in `drafted` keeps a draft through bot/services/drafts.py, which creates
its row, writes its state and time in each step's own transaction, and deletes it. For those,
this class only reads: python-telegram-bot's write comes up to a second late and carries the
state it held in memory at that moment, which lags the database while a step is running (the
step has committed its new state but not yet returned it). Written then, it would put a person
back one step (their next message read as an answer to the step before), bring back a draft
that timed out, push a draft's timeout, or delete a draft just begun again.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from bot.clock import Clock
from bot.models import ConversationDraft
from bot.uow import Database

NOTHING = PersistenceInput(bot_data=False, chat_data=False, user_data=False, callback_data=False)


class DatabasePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Conversation states in `conversation_drafts`; nothing else is persisted."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        update_interval: float = 1.0,
        max_age: timedelta | None = None,
        drafted: Collection[str] = (),
    ) -> None:
        super().__init__(store_data=NOTHING, update_interval=update_interval)
        self._drafted = frozenset(drafted)
        self._db = db
        self._clock = clock
        self._max_age = max_age

    async def get_conversations(self, name: str) -> ConversationDict:
        """Where every person stands in conversation `name` (stale ones are left out)."""
        statement = select(ConversationDraft).where(
            ConversationDraft.conversation == name, col(ConversationDraft.state).is_not(None)
        )
        if self._max_age is not None:
            oldest = self._clock.now() - self._max_age
            statement = statement.where(col(ConversationDraft.updated_at) >= oldest)
        async with self._db.read() as uow:
            rows = (await uow.session.exec(statement)).all()
        return {(row.chat_id, row.user_id): row.state for row in rows}

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        """Store a person's new state (None: the conversation ended, its draft goes too)."""
        if name in self._drafted:
            return  # its draft's own steps keep the row (see the module's docstring)
        chat_id, user_id = _ids(key)
        async with self._db.uow() as uow:
            session = uow.session
            where = (
                col(ConversationDraft.chat_id) == chat_id,
                col(ConversationDraft.user_id) == user_id,
            )
            if new_state is None:
                await session.execute(
                    sa.delete(ConversationDraft).where(
                        col(ConversationDraft.conversation) == name, *where
                    )
                )
                await uow.commit()
                return
            if not isinstance(new_state, int):
                raise TypeError(f"conversation {name!r}: states must be integers (an IntEnum)")
            row = (
                await session.exec(
                    select(ConversationDraft).where(ConversationDraft.conversation == name, *where)
                )
            ).first()
            now = self._clock.now()
            if row is None:
                # One conversation at a time per person and chat: a new one replaces the old.
                await session.execute(sa.delete(ConversationDraft).where(*where))
                session.add(
                    ConversationDraft(
                        conversation=name,
                        chat_id=chat_id,
                        user_id=user_id,
                        state=int(new_state),
                        data={},
                        updated_at=now,
                    )
                )
            else:
                row.state = int(new_state)
                row.updated_at = now
            await uow.commit()

    # Nothing but conversations is persisted: the other hooks keep nothing.

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        """Not persisted."""
        return {}

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        """Not persisted."""
        return {}

    async def get_bot_data(self) -> dict[Any, Any]:
        """Not persisted."""
        return {}

    async def get_callback_data(self) -> CDCData | None:
        """Not persisted."""
        return None

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        """Not persisted."""

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        """Not persisted."""

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        """Not persisted."""

    async def update_callback_data(self, data: CDCData) -> None:
        """Not persisted."""

    async def drop_chat_data(self, chat_id: int) -> None:
        """Not persisted."""

    async def drop_user_data(self, user_id: int) -> None:
        """Not persisted."""

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        """Not persisted."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        """Not persisted."""

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        """Not persisted."""

    async def flush(self) -> None:
        """Every write is committed at once; nothing is buffered."""


def _ids(key: ConversationKey) -> tuple[int, int]:
    """(chat, user) from a conversation key; conversations here are per chat and per user."""
    if len(key) != 2:
        raise ValueError("conversations are kept per chat and per user")
    return int(key[0]), int(key[1])
