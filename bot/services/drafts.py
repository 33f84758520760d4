"""Conversation drafts in the database: what a person has entered so far, and when it runs out.

A draft is the `conversation_drafts` row of one conversation, chat and person: the same row in
which bot/persistence.py keeps the conversation's state for python-telegram-bot, so the state
and what was entered commit together and a restart resumes both. One conversation at a time per
chat and person; starting one replaces any other.

A draft is never dropped silently (SPEC §3). Every step re-arms two deadlines in the engine,
in the step's own transaction: `[conversations] prompt_before` ahead of the timeout the person
gets the conversation's prompt with Send it as it is / Go on / Discard, and at `[conversations]
timeout` after the last step the draft is dropped with a polite word. They are rows like every
other deadline, so a restart of the bot loses neither. A deadline carries the arming it belongs
to; one that an older step armed finds the draft moved on and does nothing.

Starting a conversation drops the person's other draft in that chat; `open_conversations` says
beforehand which one that is, so that the person is told and the other ConversationHandler lets
go of them (handlers/conversations.py).

The prompt's buttons name the draft by a random token, not its row id: SQLite hands a deleted
row's id to the next row, and an old prompt's Discard must never reach a newer draft.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import DraftChoice
from bot.config import ConversationSettings
from bot.i18n import N_, Translator, translator
from bot.models import Account, ConversationDraft, Deadline, Person
from bot.services import deadlines, outbox
from bot.services.engine import DeadlineHandler
from bot.services.outbox import Button
from bot.services.sql import lock_for_update
from bot.uow import Database

KIND_WARN = "draft.warn"
KIND_EXPIRE = "draft.expire"
SUBJECT = "draft"
# The draft's own bookkeeping inside the row's data, apart from what the person entered.
_META = "_draft"

GO_ON_LABEL = N_("✏️ Go on")
DISCARD_LABEL = N_("🗑 Discard")


@dataclass(frozen=True)
class DraftPrompt:
    """What a conversation says before its draft times out, and when it does (catalog ids).

    `warning` and `timed_out` may use {time} (how long is left, how long it was left);
    `send` labels the button that finishes the conversation with what was entered so far;
    `discarded` tells the person the draft was dropped because they started another one.
    """

    warning: str
    send: str
    timed_out: str
    discarded: str


@dataclass(frozen=True)
class Draft:
    """A conversation in progress: its step, what was entered, and the token its prompt names."""

    conversation: str
    state: int
    data: dict[str, Any]
    token: str
    updated_at: datetime


@dataclass(frozen=True)
class DraftKey:
    """The draft a use case finishes: whose, of which conversation, and its token."""

    conversation: str
    chat_id: int
    user_id: int
    token: str


async def _row(
    session: AsyncSession, *, conversation: str, chat_id: int, user_id: int, lock: bool = False
) -> ConversationDraft | None:
    statement = select(ConversationDraft).where(
        ConversationDraft.conversation == conversation,
        ConversationDraft.chat_id == chat_id,
        ConversationDraft.user_id == user_id,
    )
    if lock:
        statement = lock_for_update(statement, session)
    return (await session.exec(statement)).first()


def _meta(row: ConversationDraft) -> dict[str, Any]:
    meta = (row.data or {}).get(_META)
    return dict(meta) if isinstance(meta, dict) else {}


def _draft(row: ConversationDraft) -> Draft:
    data = {k: v for k, v in (row.data or {}).items() if k != _META}
    return Draft(
        row.conversation, row.state or 0, data, str(_meta(row).get("token", "")), row.updated_at
    )


async def _arm(
    session: AsyncSession, row: ConversationDraft, *, now: datetime, limits: ConversationSettings
) -> None:
    """Store the step and schedule this arming's prompt and timeout, cancelling the last ones."""
    meta = _meta(row)
    token = str(meta.get("token") or secrets.token_hex(6))
    arming = int(meta.get("arming", 0)) + 1
    row.updated_at = now
    row.data = {**(row.data or {}), _META: {"token": token, "arming": arming}}
    session.add(row)
    await session.flush()
    prefix = f"draft:{token}:"
    await deadlines.cancel(session, now=now, prefix=prefix)
    expires_at = now + limits.timeout
    payload = {"arming": arming, "expires_at": expires_at.isoformat()}
    for kind, due_at in (
        (KIND_WARN, expires_at - limits.prompt_before),
        (KIND_EXPIRE, expires_at),
    ):
        await deadlines.schedule(
            session,
            key=f"{prefix}{arming}:{kind}",
            kind=kind,
            subject_type=SUBJECT,
            subject_id=row.id or 0,
            due_at=due_at,
            now=now,
            payload=payload,
        )


async def _drop(session: AsyncSession, row: ConversationDraft, *, now: datetime) -> None:
    token = _meta(row).get("token")
    if token:
        await deadlines.cancel(session, now=now, prefix=f"draft:{token}:")
    await session.delete(row)


async def begin(
    db: Database,
    *,
    conversation: str,
    chat_id: int,
    user_id: int,
    state: int,
    data: dict[str, Any],
    now: datetime,
    limits: ConversationSettings,
) -> Draft:
    """Start (or restart) a conversation, replacing any other of this person in this chat."""
    async with db.uow() as uow:
        session = uow.session
        others = await session.exec(
            select(ConversationDraft).where(
                ConversationDraft.chat_id == chat_id, ConversationDraft.user_id == user_id
            )
        )
        for other in others.all():
            await _drop(session, other, now=now)
        await session.flush()
        row = ConversationDraft(
            conversation=conversation,
            chat_id=chat_id,
            user_id=user_id,
            state=state,
            data=dict(data),
            updated_at=now,
        )
        await _arm(session, row, now=now, limits=limits)
        draft = _draft(row)
        await uow.commit()
    return draft


async def open_conversations(db: Database, *, chat_id: int, user_id: int) -> list[str]:
    """The conversations this person has a draft of in this chat (at most one, by `begin`)."""
    async with db.read() as uow:
        rows = await uow.session.exec(
            select(ConversationDraft.conversation).where(
                ConversationDraft.chat_id == chat_id, ConversationDraft.user_id == user_id
            )
        )
        return list(rows.all())


async def current(db: Database, *, conversation: str, chat_id: int, user_id: int) -> Draft | None:
    """The person's draft of this conversation in this chat, if it is still open."""
    async with db.read() as uow:
        row = await _row(uow.session, conversation=conversation, chat_id=chat_id, user_id=user_id)
        return None if row is None else _draft(row)


async def save(
    db: Database,
    *,
    conversation: str,
    chat_id: int,
    user_id: int,
    state: int,
    data: dict[str, Any],
    now: datetime,
    limits: ConversationSettings,
) -> Draft | None:
    """Store the draft's new step and data and give it its full time again (None: it is gone)."""
    async with db.uow() as uow:
        row = await _row(uow.session, conversation=conversation, chat_id=chat_id, user_id=user_id)
        if row is None:
            return None
        row.state = state
        row.data = {**dict(data), _META: _meta(row)}
        await _arm(uow.session, row, now=now, limits=limits)
        draft = _draft(row)
        await uow.commit()
    return draft


async def go_on(
    db: Database,
    *,
    conversation: str,
    chat_id: int,
    user_id: int,
    token: str,
    now: datetime,
    limits: ConversationSettings,
) -> Draft | None:
    """Keep the draft named by a prompt's token open for another full timeout (None: gone)."""
    async with db.uow() as uow:
        row = await _row(uow.session, conversation=conversation, chat_id=chat_id, user_id=user_id)
        if row is None or _meta(row).get("token") != token:
            return None
        await _arm(uow.session, row, now=now, limits=limits)
        draft = _draft(row)
        await uow.commit()
    return draft


async def end(
    db: Database, *, conversation: str, chat_id: int, user_id: int, now: datetime
) -> bool:
    """Drop the person's draft of this conversation and its deadlines; tell if there was one."""
    async with db.uow() as uow:
        row = await _row(uow.session, conversation=conversation, chat_id=chat_id, user_id=user_id)
        if row is None:
            return False
        await _drop(uow.session, row, now=now)
        await uow.commit()
    return True


async def finish(session: AsyncSession, key: DraftKey, *, now: datetime) -> bool:
    """Drop the draft in the transaction of the use case it ends; False if it is gone already.

    The draft is what says a report (or the like) has not been made yet: dropped in the same
    commit as the incident is stored, a process that dies between the two cannot leave the
    draft open for a second press to store the incident again.
    """
    row = await _row(
        session,
        conversation=key.conversation,
        chat_id=key.chat_id,
        user_id=key.user_id,
        lock=True,
    )
    if row is None or _meta(row).get("token") != key.token:
        return False
    await _drop(session, row, now=now)
    return True


def prompt_buttons(tr: Translator, prompt: DraftPrompt, token: str) -> list[list[Button]]:
    """Send it as it is / Go on / Discard, for the draft with this token."""
    return [
        [Button(tr._(prompt.send), DraftChoice("send", token).data)],
        [
            Button(tr._(GO_ON_LABEL), DraftChoice("go_on", token).data),
            Button(tr._(DISCARD_LABEL), DraftChoice("discard", token).data),
        ],
    ]


async def _reader(session: AsyncSession, user_id: int, default_language: str) -> Translator:
    """The language of the person behind a chat account."""
    person = (
        await session.exec(
            select(Person)
            .join(Account, col(Account.person_id) == col(Person.id))
            .where(Account.external_id == user_id, col(Account.unlinked_at).is_(None))
        )
    ).first()
    return translator((person.language if person else None) or default_language, default_language)


async def _fresh(session: AsyncSession, deadline: Deadline) -> tuple[ConversationDraft, str] | None:
    """The draft a deadline was armed for, if no later step re-armed it."""
    row = await session.get(ConversationDraft, deadline.subject_id)
    if row is None:
        return None
    meta = _meta(row)
    token = str(meta.get("token", ""))
    if not deadline.key.startswith(f"draft:{token}:"):
        return None  # the id belongs to a newer draft now
    if meta.get("arming") != (deadline.payload or {}).get("arming"):
        return None
    return row, token


def _expires_at(deadline: Deadline, fallback: datetime) -> datetime:
    """When the draft a deadline was armed for runs out (older rows did not say)."""
    stored = (deadline.payload or {}).get("expires_at")
    return datetime.fromisoformat(stored) if isinstance(stored, str) else fallback


def deadline_handlers(
    prompts: Mapping[str, DraftPrompt], *, default_language: str, limits: ConversationSettings
) -> dict[str, DeadlineHandler]:
    """The engine handlers of drafts: the prompt before the timeout, and the timeout."""

    async def warn(session: AsyncSession, deadline: Deadline, now: datetime, late: bool) -> None:
        fresh = await _fresh(session, deadline)
        if fresh is None:
            return
        row, token = fresh
        prompt = prompts.get(row.conversation)
        expires_at = _expires_at(deadline, deadline.due_at + limits.prompt_before)
        if prompt is None or now >= expires_at:
            return  # the bot was down past the timeout: the timeout itself speaks
        tr = await _reader(session, row.user_id, default_language)
        left = max(expires_at - now, timedelta(minutes=1))
        await outbox.enqueue(
            session,
            now=now,
            text=html.escape(tr._(prompt.warning, time=tr.duration_text(left)), quote=False),
            chat_id=row.chat_id,
            buttons=prompt_buttons(tr, prompt, token),
        )

    async def expire(session: AsyncSession, deadline: Deadline, now: datetime, late: bool) -> None:
        fresh = await _fresh(session, deadline)
        if fresh is None:
            return
        row, _token = fresh
        prompt = prompts.get(row.conversation)
        tr = await _reader(session, row.user_id, default_language)
        await session.execute(
            sa.delete(ConversationDraft).where(col(ConversationDraft.id) == row.id)
        )
        if prompt is not None:
            await outbox.enqueue(
                session,
                now=now,
                text=html.escape(
                    tr._(prompt.timed_out, time=tr.duration_text(limits.timeout)), quote=False
                ),
                chat_id=row.chat_id,
            )

    return {KIND_WARN: warn, KIND_EXPIRE: expire}
