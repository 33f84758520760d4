"""Drains the outbox through the Bot API within Telegram's limits, retrying what may succeed.

Limits: the Application's AIORateLimiter keeps the group rate (20 a minute) and, loosely, the
overall rate; this sender adds the per-chat pace (1 a second to a private chat), which
AIORateLimiter does not enforce, holds the overall rate (about 30 messages a second) in every
sliding second, which AIORateLimiter's leaky bucket does not (see `SendWindow`), and honours
429 retry_after per chat. Network errors and 5xx answers are retried with backoff up to
`[telegram] max_retries`. A 403 marks the account unreachable and passes a page to the next
contact. Delivery is at-least-once (see bot/services/outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.clock import Clock
from bot.config import TelegramSettings
from bot.models import OutboxMessage, OutboxStatus, Page
from bot.services import contacts, escalation, outbox
from bot.services.escalation import PagingContext
from bot.uow import Database

log = logging.getLogger(__name__)


def worker_name() -> str:
    """A name for this process in claim columns ("host:pid:random")."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ChatPacer:
    """Spaces messages to one chat: 1 a second to a person, 3 seconds apart to a group."""

    def __init__(self, per_second: float, group_per_minute: float) -> None:
        self._private_gap = 1.0 / per_second
        self._group_gap = 60.0 / group_per_minute
        self._next: dict[int, float] = defaultdict(float)

    def hold(self, chat_id: int, seconds: float) -> None:
        """Send nothing to this chat for `seconds` (a 429 retry_after)."""
        self._next[chat_id] = max(self._next[chat_id], time.monotonic() + seconds)

    async def wait_turn(self, chat_id: int) -> None:
        """Wait until the chat may receive the next message, and book the slot after it."""
        gap = self._group_gap if chat_id < 0 else self._private_gap
        delay = self._next[chat_id] - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._next[chat_id] = time.monotonic() + gap


class SendWindow:
    """At most `per_second` calls in any sliding second, the way Telegram counts its 30 a second.

    Telegram counts a message at some moment between our request and its answer, so each call
    holds a slot from its request until one second after its answer: whatever the latency, no
    second at Telegram's end sees more than the limit. AIORateLimiter's leaky bucket lets a full
    bucket out at once and keeps leaking meanwhile, so one second can carry nearly twice the
    limit (measured by bench/run.py fanout: 114 to 120 answers of 429 for 500 pages).
    """

    def __init__(self, per_second: float) -> None:
        slots = max(1, math.floor(per_second))
        self._period = max(1.0, slots / per_second)
        self._slots = asyncio.Semaphore(slots)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the second's slots for the duration of a call, and a second after it."""
        await self._slots.acquire()
        try:
            yield
        finally:
            asyncio.get_running_loop().call_later(self._period, self._slots.release)


@dataclass(frozen=True)
class _Ready:
    """A claimed row with everything needed to send it."""

    row_id: int
    chat_id: int
    method: str
    body: dict[str, Any]
    reply_to_message_id: int | None
    target_message_id: int | None
    attempts: int
    page_id: int | None


def _markup(body: dict[str, Any]) -> InlineKeyboardMarkup | None:
    rows = body.get("buttons") or []
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["text"], callback_data=b["data"]) for b in row] for row in rows]
    )


class OutboxSender:
    """Claims due outbox rows and sends them; any number may run on one PostgreSQL database."""

    def __init__(
        self,
        *,
        db: Database,
        bot: Bot,
        clock: Clock,
        telegram: TelegramSettings,
        paging: PagingContext,
        worker: str | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 50,
    ) -> None:
        self.db = db
        self.bot = bot
        self.clock = clock
        self.paging = paging
        self.worker = worker or worker_name()
        self.lease = lease
        self.batch = batch
        self.max_retries = telegram.max_retries
        self.pacer = ChatPacer(
            telegram.chat_messages_per_second, telegram.group_messages_per_minute
        )
        self.window = SendWindow(telegram.messages_per_second)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask the sender to look at the outbox now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, *, poll_every: float = 2.0) -> None:
        """Drain the outbox until `stop` is set, waking on `wake()` or every `poll_every`."""
        while not stop.is_set():
            self._wake.clear()  # a wake during the drain below is not lost
            try:
                await self.drain()
            except Exception:  # the loop must survive a database hiccup
                log.exception("outbox drain failed")
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=poll_every, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            stopper.cancel()

    async def drain(self) -> int:
        """Send everything due now; return how many rows were handled."""
        total = 0
        while True:
            ready = await self._claim()
            if not ready:
                return total
            by_chat: dict[int, list[_Ready]] = defaultdict(list)
            for item in ready:
                by_chat[item.chat_id].append(item)
            await asyncio.gather(*(self._send_chat(items) for items in by_chat.values()))
            total += len(ready)

    async def _claim(self) -> list[_Ready]:
        async with self.db.uow() as uow:
            session = uow.session
            now = self.clock.now()
            rows = await outbox.claim(
                session, now=now, limit=self.batch, worker=self.worker, lease=self.lease
            )
            ready = [item for row in rows if (item := await self._prepare(session, row))]
            await uow.commit()
        return ready

    async def _prepare(self, session: Any, row: OutboxMessage) -> _Ready | None:
        """Resolve the chat and the messages a row refers to; settle rows that cannot go."""
        now = self.clock.now()
        if row.chat_id is None and row.person_id is not None:
            account = await contacts.account_of(session, row.person_id)
            if account is None:
                await self._unreachable(session, row, "no linked account")
                return None
            row.chat_id = account.chat_id
        assert row.id is not None and row.chat_id is not None
        if row.kind == "page" and row.page_id is not None:
            page = await session.get(Page, row.page_id)
            if page is not None and page.status != "active":
                row.status = OutboxStatus.CANCELLED  # acknowledged or resolved meanwhile
                return None
        target_message_id = reply_to_message_id = None
        if row.method == "editMessageText":
            target = await outbox.by_id(session, int(row.body["target"]))
            if target.status in (OutboxStatus.PENDING, OutboxStatus.SENDING):
                row.status = OutboxStatus.PENDING
                row.not_before = now + timedelta(seconds=2)
                return None
            if target.status != OutboxStatus.SENT or target.sent_message_id is None:
                row.status = OutboxStatus.CANCELLED
                return None
            target_message_id = target.sent_message_id
        if row.reply_to_outbox_id is not None:
            first = await outbox.by_id(session, row.reply_to_outbox_id)
            reply_to_message_id = first.sent_message_id
        return _Ready(
            row_id=row.id,
            chat_id=row.chat_id,
            method=row.method,
            body=dict(row.body),
            reply_to_message_id=reply_to_message_id,
            target_message_id=target_message_id,
            attempts=row.attempts,
            page_id=row.page_id,
        )

    async def _send_chat(self, items: list[_Ready]) -> None:
        for item in items:
            await self.pacer.wait_turn(item.chat_id)
            await self._send_one(item)

    async def _send_one(self, item: _Ready) -> None:
        try:
            async with self.window.slot():
                message_id = await self._call(item)
        except RetryAfter as error:
            seconds = error.retry_after
            wait = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
            self.pacer.hold(item.chat_id, wait)
            await self._settle(item, status=OutboxStatus.PENDING, error=f"429: retry after {wait}s")
        except Forbidden as error:
            await self._settle(item, status=OutboxStatus.UNREACHABLE, error=error.message)
        except BadRequest as error:
            if "message is not modified" in error.message:
                await self._settle(item, status=OutboxStatus.SENT, error=None)
            elif "chat not found" in error.message.lower():
                await self._settle(item, status=OutboxStatus.UNREACHABLE, error=error.message)
            else:
                log.error("outbox row %s refused: %s", item.row_id, error.message)
                await self._settle(item, status=OutboxStatus.FAILED, error=error.message)
        except (NetworkError, TelegramError) as error:
            retry = item.attempts <= self.max_retries
            status = OutboxStatus.PENDING if retry else OutboxStatus.FAILED
            backoff = timedelta(seconds=min(2**item.attempts, 60)) if retry else None
            await self._settle(item, status=status, error=str(error), backoff=backoff)
        else:
            await self._settle(item, status=OutboxStatus.SENT, error=None, message_id=message_id)

    async def _call(self, item: _Ready) -> int | None:
        text = str(item.body["text"])
        markup = _markup(item.body)
        if item.method == "editMessageText":
            assert item.target_message_id is not None
            edited = await self.bot.edit_message_text(
                text,
                chat_id=item.chat_id,
                message_id=item.target_message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
            return item.target_message_id if edited is True else getattr(edited, "message_id", None)
        reply = (
            ReplyParameters(item.reply_to_message_id, allow_sending_without_reply=True)
            if item.reply_to_message_id
            else None
        )
        sent = await self.bot.send_message(
            item.chat_id,
            text,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            reply_parameters=reply,
        )
        return sent.message_id

    async def _settle(
        self,
        item: _Ready,
        *,
        status: OutboxStatus,
        error: str | None,
        message_id: int | None = None,
        backoff: timedelta | None = None,
    ) -> None:
        async with self.db.uow() as uow:
            session = uow.session
            now = self.clock.now()
            row = await outbox.by_id(session, item.row_id, lock=True)
            if row.claimed_by != self.worker and status != OutboxStatus.SENT:
                return  # our lease ran out and another sender has the row now
            row.last_error = error[:300] if error else None
            if status == OutboxStatus.UNREACHABLE:
                await self._unreachable(session, row, error or "unreachable")
            elif status == OutboxStatus.FAILED and row.page_id is not None:
                row.status = status
                await escalation.mark_undeliverable(
                    session,
                    page_id=row.page_id,
                    reason=error or "failed",
                    now=now,
                    ctx=self.paging,
                )
            else:
                row.status = status
                if status == OutboxStatus.SENT:
                    row.sent_at = now
                    row.sent_message_id = message_id
                elif status == OutboxStatus.PENDING:
                    row.not_before = now + (backoff or timedelta(0))
                    row.claimed_by = None
            await uow.commit()

    async def _unreachable(self, session: Any, row: OutboxMessage, reason: str) -> None:
        """Mark the row and the account unreachable; a page goes to the next contact."""
        now = self.clock.now()
        row.status = OutboxStatus.UNREACHABLE
        row.last_error = reason[:300]
        if row.person_id is not None:
            account = await contacts.account_of(session, row.person_id)
            if account is not None and account.unreachable_since is None:
                account.unreachable_since = now
                account.unreachable_reason = reason[:200]
        if row.page_id is not None and row.kind == "page":
            await escalation.mark_undeliverable(
                session, page_id=row.page_id, reason=reason, now=now, ctx=self.paging
            )
