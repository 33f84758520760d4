"""The outbox: every outgoing message is a row written with the change that causes it.

A sender (bot/delivery.py) claims due rows, sends them and records the result. Delivery is
at-least-once: a row is marked sent only after the platform accepted it, so a process that
dies between the two has that row claimed again once its lease runs out and the message may
arrive twice; it is never lost. The window is one HTTP call per row.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.message_parts import split_html, truncate_html
from bot.models import OutboxMessage, OutboxStatus, Page, Person, Unit
from bot.services.sql import lock_for_update
from bot.uow import Database

_TABLE: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
_PAGES: sa.Table = Page.__table__  # type: ignore[attr-defined]
_INSERT = sa.insert(_TABLE)
_REPLIED_TO = _TABLE.alias("replied_to")
_EDITED = _TABLE.alias("edited")
# What a sender reads of a claimed row just before sending it, in one statement built once: the
# row, the status of the page it carries, the message id of the message it replies to, and for
# an edit the status and message id of the message it changes (named in its body).
_RECHECK = (
    sa.select(
        _TABLE.c.status,
        _TABLE.c.claimed_by,
        _TABLE.c.method,
        _TABLE.c.body,
        _TABLE.c.attempts,
        _PAGES.c.status,
        _REPLIED_TO.c.sent_message_id,
        _EDITED.c.id,
        _EDITED.c.status,
        _EDITED.c.sent_message_id,
    )
    .select_from(_TABLE)
    .outerjoin(_PAGES, sa.and_(_PAGES.c.id == _TABLE.c.page_id, _TABLE.c.kind == "page"))
    .outerjoin(_REPLIED_TO, _REPLIED_TO.c.id == _TABLE.c.reply_to_outbox_id)
    .outerjoin(
        _EDITED,
        sa.and_(
            _TABLE.c.method == "editMessageText",
            _EDITED.c.id == _TABLE.c.body["target"].as_integer(),
        ),
    )
    .where(_TABLE.c.id == sa.bindparam("row_id"))
)


@dataclass(frozen=True)
class Rechecked:
    """A claimed row as it stands just before it is sent."""

    status: str
    claimed_by: str | None
    method: str
    body: dict[str, Any]
    attempts: int
    page_status: str | None  # the page's, for a page message
    reply_to_message_id: int | None  # the message it replies to, once that was sent
    target_status: str | None  # the message an edit changes: its status and message id
    target_message_id: int | None


async def recheck(db: Database, row_id: int) -> Rechecked:
    """Read a claimed row again, in one statement on a bare connection.

    Every message sent reads this; through an ORM session it was a unit of work and two to
    four statements. Raises LookupError for a row (or an edit's target) that is gone.
    """
    rows = await db.rows(_RECHECK, {"row_id": row_id})
    if not rows:
        raise LookupError(f"outbox row {row_id} is gone")
    (status, claimed_by, method, body, attempts, page_status, replied_to, edited) = rows[0][:8]
    target_status, target_message_id = rows[0][8:]
    if method == "editMessageText" and edited is None:
        raise LookupError(f"the message outbox row {row_id} edits is gone")
    return Rechecked(
        status=status,
        claimed_by=claimed_by,
        method=method,
        body=dict(body),
        attempts=attempts,
        page_status=page_status,
        reply_to_message_id=replied_to,
        target_status=target_status,
        target_message_id=target_message_id,
    )


@dataclass(frozen=True)
class Button:
    """An inline button: its label and its (at most 64-byte) callback data."""

    label: str
    data: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.data.encode()) <= 64:
            raise ValueError("callback data must be 1 to 64 bytes")


def _keyboard(rows: list[list[Button]]) -> list[list[dict[str, str]]]:
    return [[{"text": b.label, "data": b.data} for b in row] for row in rows]


async def enqueue(
    session: AsyncSession,
    *,
    now: datetime,
    text: str,
    person_id: int | None = None,
    chat_id: int | None = None,
    buttons: list[list[Button]] | None = None,
    kind: str = "notice",
    page_id: int | None = None,
    reply_to: OutboxMessage | None = None,
    dedupe_key: str | None = None,
    late: bool = False,
    not_before: datetime | None = None,
) -> OutboxMessage:
    """Queue a text message (HTML) to a roster person or a chat; return its (first) row.

    A text longer than one Telegram message becomes several rows, cut by
    bot/message_parts.split_html and sent in order (a sender takes a chat's rows oldest first).
    The buttons ride on the last row, under the whole text; only the first row quotes
    `reply_to` and carries `dedupe_key`. A page is never split: its repeats quote it and its
    edits replace it as one message, so a page's text that could exceed is cut short with an
    ellipsis instead (page_text shortens the free text it carries before it comes to that).
    """
    if (person_id is None) == (chat_id is None):
        raise ValueError("address a message to exactly one of person_id and chat_id")
    parts = [truncate_html(text)] if kind == "page" else split_html(text)
    rows = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        message = OutboxMessage(
            created_at=now,
            not_before=not_before or now,
            person_id=person_id,
            chat_id=chat_id,
            kind=kind,
            page_id=page_id,
            method="sendMessage",
            body={"text": part, "buttons": _keyboard(buttons or []) if last else []},
            reply_to_outbox_id=reply_to.id if reply_to and index == 0 else None,
            dedupe_key=dedupe_key if index == 0 else None,
            late=late,
        )
        session.add(message)
        # One flush per row: ids, and so the order rows are sent in, follow the text.
        await session.flush()
        rows.append(message)
    return rows[0]


@dataclass(frozen=True)
class Notice:
    """One text of a batch to queue: to whom, what, and its dedupe key."""

    person_id: int
    text: str
    dedupe_key: str | None = None


async def enqueue_notices(
    session: AsyncSession,
    *,
    now: datetime,
    notices: Collection[Notice],
    kind: str = "notice",
    late: bool = False,
) -> int:
    """Queue many texts without buttons to people in one insert; return how many rows.

    For a fan-out (the daily digest to hundreds of leaders): one flush for the batch instead of
    one per row, sent in the order given. A text longer than one message goes through
    `enqueue`, so it is cut as any other.
    """
    rows: list[OutboxMessage] = []
    for notice in notices:
        if len(split_html(notice.text)) > 1:
            session.add_all(rows)  # the rows before it keep their place in the order
            await session.flush()
            rows = []
            await enqueue(
                session,
                now=now,
                text=notice.text,
                person_id=notice.person_id,
                kind=kind,
                dedupe_key=notice.dedupe_key,
                late=late,
            )
            continue
        rows.append(
            OutboxMessage(
                created_at=now,
                not_before=now,
                person_id=notice.person_id,
                kind=kind,
                method="sendMessage",
                body={"text": notice.text, "buttons": []},
                dedupe_key=notice.dedupe_key,
                late=late,
            )
        )
    session.add_all(rows)
    await session.flush()
    return len(notices)


# The methods that send a file again by its file id; the body names it under "file_id".
MEDIA_METHODS = ("sendPhoto", "sendVoice")


async def enqueue_media(
    session: AsyncSession,
    *,
    now: datetime,
    method: str,
    file_id: str,
    caption: str = "",
    person_id: int | None = None,
    chat_id: int | None = None,
) -> OutboxMessage:
    """Queue a photo or voice note, sent again by its Telegram file id (sendPhoto, sendVoice).

    `caption` is plain text (at most 1,024 characters), e.g. the incident's number.

    It goes after the rows queued before it to the same person or chat: a sender takes a
    chat's rows oldest first, so a follow-up's text arrives ahead of its files.
    """
    if method not in MEDIA_METHODS:
        raise ValueError(f"not a media method: {method!r}")
    if (person_id is None) == (chat_id is None):
        raise ValueError("address a message to exactly one of person_id and chat_id")
    message = OutboxMessage(
        created_at=now,
        not_before=now,
        person_id=person_id,
        chat_id=chat_id,
        kind="media",
        method=method,
        body={"file_id": file_id, "caption": caption[:1024]},
    )
    session.add(message)
    await session.flush()
    return message


async def enqueue_chart(
    session: AsyncSession,
    *,
    now: datetime,
    person_id: int,
    chart: str,
    language: str,
    payload: dict[str, Any],
    caption: str = "",
    dedupe_key: str | None = None,
    late: bool = False,
) -> OutboxMessage:
    """Queue a chart as a photo: the figures go in the row, the sender draws it when sending.

    Drawing takes a good part of a second; done by the sender (in a thread) it keeps the engine
    step that queues a fan-out short, and a row that is retried draws the same picture again.
    """
    message = OutboxMessage(
        created_at=now,
        not_before=now,
        person_id=person_id,
        kind="media",
        method="sendPhoto",
        body={"chart": chart, "language": language, "payload": payload, "caption": caption},
        dedupe_key=dedupe_key,
        late=late,
    )
    session.add(message)
    await session.flush()
    return message


async def enqueue_edit(
    session: AsyncSession,
    *,
    now: datetime,
    target: OutboxMessage,
    text: str,
    buttons: list[list[Button]] | None = None,
) -> int:
    """Queue an edit of a message the outbox sent (or will send) before; return the row's id.

    An edit replaces one message, so a text that could exceed is cut short with an ellipsis.
    The row is inserted by one Core statement, after the session's pending rows: every
    check-in answer and page acknowledged queues one, and the ORM object and its flush cost
    more CPU than the statement.
    """
    result = await session.execute(
        _INSERT,
        {
            "dedupe_key": None,
            "created_at": now,
            "not_before": now,
            "person_id": target.person_id,
            "chat_id": target.chat_id,
            "kind": "edit",
            "page_id": target.page_id,
            "method": "editMessageText",
            "body": {
                "text": truncate_html(text),
                "buttons": _keyboard(buttons or []),
                "target": target.id,
            },
            "reply_to_outbox_id": None,
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "last_error": None,
            "claimed_by": None,
            "claimed_at": None,
            "sent_at": None,
            "sent_message_id": None,
            "late": False,
            "channel": None,
        },
    )
    return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]


async def claim(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    worker: str,
    lease: timedelta,
    per_recipient: int | None = None,
    busy_chats: Collection[int] = (),
    busy_people: Collection[int] = (),
) -> list[OutboxMessage]:
    """Claim due rows (and rows whose sender's lease ran out) for sending.

    With `per_recipient`, at most that many rows per person (or per chat, for rows addressed
    to a chat) are claimed, oldest first, and none for the chats and people named busy: rows a
    sender cannot send soon stay pending, where any sender may take them later.
    """
    stale = now - lease
    wanted = [
        col(OutboxMessage.channel).is_(None),  # robot messages have a sender of their own
        sa.or_(
            sa.and_(
                col(OutboxMessage.status) == OutboxStatus.PENDING,
                col(OutboxMessage.not_before) <= now,
            ),
            sa.and_(
                col(OutboxMessage.status) == OutboxStatus.SENDING,
                col(OutboxMessage.claimed_at) < stale,
            ),
        ),
    ]
    if busy_chats:
        chat = col(OutboxMessage.chat_id)
        wanted.append(sa.or_(chat.is_(None), chat.not_in(list(busy_chats))))
    if busy_people:
        person = col(OutboxMessage.person_id)
        wanted.append(sa.or_(person.is_(None), person.not_in(list(busy_people))))
    statement = select(OutboxMessage).where(*wanted)
    if per_recipient is not None:
        recipient = (_TABLE.c.person_id, sa.case((_TABLE.c.person_id.is_(None), _TABLE.c.chat_id)))
        rank = sa.func.row_number().over(partition_by=recipient, order_by=_TABLE.c.id)
        ranked = sa.select(_TABLE.c.id, rank.label("rank")).where(*wanted).subquery()
        # The window runs in a subquery because PostgreSQL refuses FOR UPDATE next to one; the
        # outer query repeats the conditions so that a row changed meanwhile is re-checked.
        first = sa.select(ranked.c.id).where(ranked.c.rank <= per_recipient)
        statement = statement.where(col(OutboxMessage.id).in_(first))
    statement = statement.order_by(col(OutboxMessage.id)).limit(limit)
    rows = list((await session.exec(lock_for_update(statement, session, skip_locked=True))).all())
    for row in rows:
        row.status = OutboxStatus.SENDING
        row.claimed_by = worker
        row.claimed_at = now
        row.attempts += 1
    await session.flush()
    return rows


async def free_every_claim(session: AsyncSession) -> int:
    """Put every row being sent back to pending; return how many.

    Only for a start when no other sender can be alive: on SQLite one process serves the file
    (its `flock`), so rows still `sending` were left by a process that died mid-send. They go
    out again at once instead of after their lease; a message Telegram had already taken
    arrives twice, as it would after the lease.
    """
    result = await session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.status == OutboxStatus.SENDING)
        .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_at=None)
    )
    return int(getattr(result, "rowcount", 0))


async def renew(session: AsyncSession, *, ids: Collection[int], worker: str, now: datetime) -> int:
    """Extend this worker's claim on rows it still holds; return how many it still holds."""
    if not ids:
        return 0
    result = await session.execute(
        sa.update(_TABLE)
        .where(
            _TABLE.c.id.in_(list(ids)),
            _TABLE.c.claimed_by == worker,
            _TABLE.c.status == OutboxStatus.SENDING,
        )
        .values(claimed_at=now)
    )
    return int(getattr(result, "rowcount", 0))


async def release(session: AsyncSession, *, ids: Collection[int], worker: str) -> int:
    """Give back rows this worker claimed but did not try to send, as if never claimed."""
    if not ids:
        return 0
    result = await session.execute(
        sa.update(_TABLE)
        .where(
            _TABLE.c.id.in_(list(ids)),
            _TABLE.c.claimed_by == worker,
            _TABLE.c.status == OutboxStatus.SENDING,
        )
        .values(
            status=OutboxStatus.PENDING,
            claimed_by=None,
            claimed_at=None,
            attempts=sa.case((_TABLE.c.attempts > 0, _TABLE.c.attempts - 1), else_=0),
        )
    )
    return int(getattr(result, "rowcount", 0))


async def by_id(session: AsyncSession, message_id: int, *, lock: bool = False) -> OutboxMessage:
    """Load one outbox row."""
    statement = select(OutboxMessage).where(OutboxMessage.id == message_id)
    if lock:
        statement = lock_for_update(statement, session)
    return (await session.exec(statement)).one()


async def mark_sent(
    session: AsyncSession,
    message_id: int,
    *,
    now: datetime,
    sent_message_id: int | None,
    error: str | None = None,
) -> None:
    """Record that Telegram took a row, in one statement: whoever holds its claim now.

    A sent message is a fact even when our lease ran out meanwhile; reading the row first (as
    the other outcomes must, to see whose claim it is) would add a statement to every send.
    """
    await session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.id == message_id)
        .values(
            status=OutboxStatus.SENT,
            sent_at=now,
            sent_message_id=sent_message_id,
            last_error=error[:300] if error else None,
        )
    )


async def cancel_unsent(session: AsyncSession, *, page_ids: list[int], now: datetime) -> int:
    """Drop page messages not yet sent (their escalation was acknowledged or resolved)."""
    if not page_ids:
        return 0
    # Rows a sender holds are skipped (no lock waits, no deadlock); the sender drops a page
    # whose escalation has closed when it prepares it.
    unsent = (
        sa.select(_TABLE.c.id)
        .where(
            _TABLE.c.page_id.in_(page_ids),
            _TABLE.c.status == OutboxStatus.PENDING,
            _TABLE.c.kind == "page",
        )
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.id.in_(unsent.scalar_subquery()))
        .values(status=OutboxStatus.CANCELLED, sent_at=None, last_error=f"cancelled at {now}")
    )
    return int(getattr(result, "rowcount", 0))


async def page_messages(session: AsyncSession, page_id: int) -> list[OutboxMessage]:
    """A page's messages that went out or may still go out, first one first."""
    statement = (
        select(OutboxMessage)
        .where(
            OutboxMessage.page_id == page_id,
            OutboxMessage.kind == "page",
            col(OutboxMessage.status).not_in([OutboxStatus.CANCELLED, OutboxStatus.FAILED]),
        )
        .order_by(col(OutboxMessage.id))
    )
    return list((await session.exec(statement)).all())


async def first_sent_for_page(session: AsyncSession, page_id: int) -> OutboxMessage | None:
    """The first message of a page (repeats reply to it, edits change it)."""
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.page_id == page_id, OutboxMessage.kind == "page")
        .order_by(col(OutboxMessage.id))
        .limit(1)
    )
    return (await session.exec(statement)).first()


@dataclass(frozen=True)
class PageRow:
    """One page message for the operator's listing."""

    id: int
    status: str
    created_at: datetime
    sent_at: datetime | None
    person: str
    unit: str
    attempts: int
    late: bool
    last_error: str | None


async def page_listing(
    session: AsyncSession, *, statuses: list[str] | None, limit: int
) -> list[PageRow]:
    """The newest page messages (optionally in some statuses), newest first."""
    statement = (
        select(OutboxMessage, Person.name, Unit.name)
        .join(Page, col(Page.id) == OutboxMessage.page_id)
        .join(Person, col(Person.id) == Page.person_id)
        .join(Unit, col(Unit.id) == Page.unit_id)
        .where(OutboxMessage.kind == "page")
        .order_by(col(OutboxMessage.id).desc())
        .limit(limit)
    )
    if statuses:
        statement = statement.where(col(OutboxMessage.status).in_(statuses))
    rows = await session.exec(statement)
    return [
        PageRow(
            id=message.id or 0,
            status=message.status,
            created_at=message.created_at,
            sent_at=message.sent_at,
            person=person,
            unit=unit,
            attempts=message.attempts,
            late=message.late,
            last_error=message.last_error,
        )
        for message, person, unit in rows
    ]


async def count_unsettled(session: AsyncSession, *, now: datetime) -> int:
    """How many rows are due and not yet settled (pending and due, or being sent)."""
    statement = (
        select(sa.func.count())
        .select_from(OutboxMessage)
        .where(
            sa.or_(
                sa.and_(
                    col(OutboxMessage.status) == OutboxStatus.PENDING,
                    col(OutboxMessage.not_before) <= now,
                ),
                col(OutboxMessage.status) == OutboxStatus.SENDING,
            )
        )
    )
    return int((await session.exec(statement)).one())
