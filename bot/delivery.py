"""Drains the outbox through the Bot API: a queue per chat, Telegram's answers handled here.

Queues. The sender claims due rows into one in-memory queue per chat, and each chat is served
by its own task, so a chat that must wait (its 1-a-second pace, a 429) never holds back the
others. It claims at most `per_chat` rows per person or chat at a time, and none for a chat
that still has rows in memory: the rest of a burst stays pending in the database, where any
instance may take it, and memory stays bounded (`capacity` rows in all). Rows held in memory
have their claim renewed, so their lease does not run out while they wait.

Limits. This sender paces each private chat to 1 message a second and each group to 20 a minute
(`ChatPacer`), and keeps the overall rate (about 30 a second) in every sliding second
(`SendWindow`). Both wait on the injected clock, so tests move time instead of sleeping. It
sends through its own plain `telegram.Bot` (`outbox_bot`), without AIORateLimiter: that limiter
retries a 429 itself and pauses every request of the bot meanwhile, which would make one flooded
chat stop all paging. The Application's AIORateLimiter still guards direct replies.

Methods. A row says how it goes: sendMessage (text and buttons), editMessageText (a message it
sent before), or sendPhoto / sendVoice (a file sent again by its Telegram file id, e.g. a
follow-up's photos and voice notes, queued after its text). All share the chat's queue and pace.

Telegram's answers.
- 429: that chat waits `retry_after` (clock time) and the same row is sent again; nothing else
  waits, and the row keeps its claim.
- No connection at all (no route, connection refused or timed out, the proxy down or refusing):
  nothing is wrong with the chat, so the try does not count. The row goes back to pending for a
  pause that doubles while the outage lasts (2 s … 60 s), and waits there until Telegram is
  reachable again; one log line when the outage starts and one when it ends.
- 5xx (also a proxy's 502) and a pool timeout: the row goes back to pending with an exponential
  backoff (2 s, 4 s, … capped at 60 s), up to `[telegram] max_retries` retries; then it is
  failed and a page goes to the next contact.
- 403 (blocked, never started): the account is marked unreachable and a page goes to the next
  contact.
- No answer within the client's timeout (`TimedOut` after the request was written): Telegram may
  well have delivered the message, and sending the row again could page someone twice. The row
  is settled as sent but unconfirmed (status sent, no message id, last_error
  `UNCONFIRMED`), visible in `zhiban pages`; an edit of it is skipped, a repeat is sent
  without quoting it. Losing the message is the rarer case and the escalation's repeats and
  next steps still page.

Claims. Just before each call (before taking its slot in the overall window, a wait of at most
about a second, so that the slot is held by the call alone) the sender re-reads the row: it must
still be sending and claimed by this worker (another instance takes over rows whose lease ran
out), and a page must still be active. A clean stop finishes the call in hand and gives every
other claimed row back at once (pending, unclaimed), so the next sender sends it without waiting
out the lease. Delivery stays at-least-once for a process that dies mid-call (see
bot/services/outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import httpx
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ReplyParameters
from telegram._utils.types import JSONDict
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import BaseRateLimiter

from bot.clock import Clock
from bot.config import TelegramSettings
from bot.models import OutboxMessage, OutboxStatus, Page
from bot.network import bot_request, one_line
from bot.services import contacts, escalation, outbox
from bot.services.escalation import PagingContext
from bot.uow import Database

log = logging.getLogger(__name__)

# What a row settled as sent without Telegram's answer says in `zhiban pages`.
UNCONFIRMED = "timed out; delivery not confirmed"
# Rows a sender may hold in memory for one chat before it leaves the rest pending.
PER_CHAT = 3
# The longest backoff between two tries of a row that failed on a 5xx or a network error.
MAX_BACKOFF = timedelta(seconds=60)
# How long an edit waits for the message it edits to be sent first.
EDIT_WAIT = timedelta(seconds=2)


def worker_name() -> str:
    """A name for this process in claim columns ("host:pid:random")."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def outbox_bot(token: str, telegram: TelegramSettings) -> Bot:
    """The sender's own Bot: same server and proxy, no rate limiter retrying behind its back."""
    return Bot(
        token,
        base_url=telegram.api_base_url,
        base_file_url=telegram.api_file_url,
        request=bot_request(telegram),
        get_updates_request=bot_request(telegram),
    )


class ChatPacer:
    """Spaces messages to one chat on the clock: 1 a second to a person, 3 s apart to a group."""

    def __init__(self, clock: Clock, *, per_second: float, group_per_minute: float) -> None:
        self._clock = clock
        self._private_gap = timedelta(seconds=1.0 / per_second)
        self._group_gap = timedelta(seconds=60.0 / group_per_minute)
        self._next: dict[int, datetime] = {}

    def hold(self, chat_id: int, seconds: float) -> None:
        """Send nothing to this chat for `seconds` (a 429's retry_after)."""
        until = self._clock.now() + timedelta(seconds=seconds)
        self._next[chat_id] = max(self._next.get(chat_id, until), until)

    def sent(self, chat_id: int) -> None:
        """Book the chat's next turn one gap after Telegram answered."""
        now = self._clock.now()
        gap = self._group_gap if chat_id < 0 else self._private_gap
        self._next[chat_id] = max(self._next.get(chat_id, now), now + gap)
        if len(self._next) > 10_000:  # forget chats whose turn is long past
            self._next = {chat: at for chat, at in self._next.items() if at > now}

    async def wait_turn(self, chat_id: int) -> None:
        """Wait until the chat may receive its next message."""
        while (turn := self._next.get(chat_id)) is not None and turn > self._clock.now():
            await self._clock.sleep_until(turn)


class SendWindow:
    """At most `per_second` calls in any sliding second, the way Telegram counts its 30 a second.

    Telegram counts a message at some moment between our request and its answer, so each call
    holds a slot from its request until one second (on the clock) after its answer: whatever
    the latency, no second at Telegram's end sees more than the limit. AIORateLimiter's leaky
    bucket lets a full bucket out at once and keeps leaking meanwhile, so one second can carry
    nearly twice the limit (measured by bench/run.py fanout: 114 to 120 answers of 429 for 500
    pages).

    Calls made outside the sender (the bot's direct replies: a confirmation, the edit of a
    draft) count in the same window (`outside_call`, through `SharedWindowLimiter`): they never
    queue behind the sender, the person in front of the bot comes first, and the sender leaves
    their slots free, and `RESERVE` more while direct replies are coming, so that the two
    together stay within Telegram's limit. A reply waits only when the second is full: for the
    slots of earlier replies (up to `REPLY_PATIENCE`), for the sender's (up to
    `SENDER_PATIENCE`, the time one takes to free). A burst of 40 confirmations thus goes out
    as 30 and, a second later, 10, where sending at once met Telegram's 429 for the last ones
    and a retry after a whole second more (measured by bench/run.py throughput). An outside
    call's slot frees on the real clock (it happened in real time), the sender's on the
    injected one.
    """

    # While direct replies come (one in the last RESERVE_FOR seconds), the sender keeps free as
    # many slots as they took in the last second, and at least RESERVE: the next second's
    # replies find room without waiting.
    RESERVE = 3
    RESERVE_FOR = 2.0
    # How long (real seconds) a reply waits for a slot when the second is full, before it goes
    # out anyway and Telegram's answer decides (a 429 the wrapped limiter retries): for the
    # slots of earlier replies, and for the sender's (which free within a second of a call).
    REPLY_PATIENCE = 10.0
    SENDER_PATIENCE = 1.0
    REPLY_POLL = 0.05

    def __init__(self, clock: Clock, *, per_second: float) -> None:
        self._clock = clock
        self._slots = max(1, int(per_second))
        self._period = timedelta(seconds=max(1.0, self._slots / per_second))
        self._calling = 0
        self._free_at: deque[datetime] = deque()
        self._answered = asyncio.Event()
        # Waiters queue here in order; only the first one watches the clock.
        self._turn = asyncio.Lock()
        # Calls outside the sender: in flight, and when (monotonic) their slots free.
        self._outside = 0
        self._outside_free_at: deque[float] = deque()
        self._outside_last = -float("inf")
        self._outside_recent: deque[float] = deque()  # when they started, the last second's
        self._reply_turn = asyncio.Lock()  # replies waiting for room, in order

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the second's slots for the duration of a call, and a second after it."""
        await self.take()
        try:
            yield
        finally:
            self.release()

    def release(self) -> None:
        """End a call: its slot frees a second from now."""
        self._calling -= 1
        self._free_at.append(self._clock.now() + self._period)
        self._answered.set()

    @asynccontextmanager
    async def outside_call(self) -> AsyncIterator[None]:
        """Count a call made outside the sender for its duration and a second after it.

        It waits first while the second's slots are all taken (see the class).
        """
        await self._room_for_reply()
        self._outside += 1  # no await since the room was found: the slot is this call's
        self._outside_last = time.monotonic()
        self._outside_recent.append(self._outside_last)
        try:
            yield
        finally:
            self._outside -= 1
            self._outside_free_at.append(time.monotonic() + self._period.total_seconds())
            self._answered.set()

    async def _room_for_reply(self) -> None:
        """Return when a slot is free, or when waiting longer would not be worth it.

        Replies that wait go in the order they came (one waits at the front, the others in
        `_reply_turn`'s line); one that finds room and no line goes at once.
        """
        if not self._reply_turn.locked() and self._reply_has_room():
            return
        async with self._reply_turn:
            await self._wait_for_reply_room()

    def _reply_has_room(self) -> bool:
        replies = self._outside + len(self._outside_free_at)
        return replies + self._calling + len(self._free_at) < self._slots

    async def _wait_for_reply_room(self) -> None:
        began = time.monotonic()
        while True:
            real = time.monotonic()
            while self._outside_free_at and self._outside_free_at[0] <= real:
                self._outside_free_at.popleft()
            now = self._clock.now()
            while self._free_at and self._free_at[0] <= now:
                self._free_at.popleft()
            replies = self._outside + len(self._outside_free_at)
            senders = self._calling + len(self._free_at)
            if replies + senders < self._slots:
                return
            waited = real - began
            if replies >= self._slots:
                if waited >= self.REPLY_PATIENCE:
                    return
                # a slot frees a second after its call's answer: the first of those, if any
                until = (
                    self._outside_free_at[0] - real if self._outside_free_at else self.REPLY_POLL
                )
                delay = min(until, self.REPLY_PATIENCE - waited)
            else:  # the sender's slots fill the rest of the second
                if waited >= self.SENDER_PATIENCE:
                    return
                delay = min(self.REPLY_POLL, self.SENDER_PATIENCE - waited)
            await asyncio.sleep(max(delay, 0.001))

    def _wait_for_outside(self, real: float) -> float | None:
        """Seconds until an outside slot frees or the reserve lapses; None if neither binds."""
        moments = [self._outside_last + self.RESERVE_FOR] if self._reserving(real) else []
        if self._outside_free_at:
            moments.append(self._outside_free_at[0])
        return max(min(moments) - real, 0.001) if moments else None

    def _reserving(self, real: float) -> bool:
        return real - self._outside_last < self.RESERVE_FOR

    async def take(self) -> None:
        """Wait for a free slot and hold it for a call (end it with `release`)."""
        async with self._turn:
            while True:
                now = self._clock.now()
                while self._free_at and self._free_at[0] <= now:
                    self._free_at.popleft()
                real = time.monotonic()
                while self._outside_free_at and self._outside_free_at[0] <= real:
                    self._outside_free_at.popleft()
                busy = self._calling + len(self._free_at)
                busy += self._outside + len(self._outside_free_at)
                while self._outside_recent and self._outside_recent[0] <= real - 1.0:
                    self._outside_recent.popleft()
                reserve = 0
                if self._reserving(real):
                    reserve = min(max(self.RESERVE, len(self._outside_recent)), self._slots - 1)
                room = self._slots - reserve
                if busy < room:
                    self._calling += 1
                    return
                await self._wait(now, real)

    async def _wait(self, now: datetime, real: float) -> None:
        """Until a slot of the sender frees (clock), an outside one (real time), or a call ends."""
        self._answered.clear()
        waits: list[asyncio.Task[Any]] = [asyncio.ensure_future(self._answered.wait())]
        if self._free_at:
            waits.append(asyncio.ensure_future(self._clock.sleep_until(self._free_at[0])))
        outside = self._wait_for_outside(real)
        if outside is not None:
            waits.append(asyncio.ensure_future(asyncio.sleep(outside)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()


class SharedWindowLimiter(BaseRateLimiter[dict[str, Any]]):
    """python-telegram-bot's rate limiter for the bot's own calls, counted in the sender's window.

    Every call that sends or changes a message (Telegram's 30 a second) is counted in the
    `SendWindow` for as long as it runs and a second after; the calls themselves are limited by
    the wrapped limiter (AIORateLimiter) as before. Other calls (answering a button press,
    getUpdates, getMe) are not messages and pass straight to it.
    """

    def __init__(
        self,
        inner: BaseRateLimiter[Any],
        window: SendWindow,
        *,
        on_flood: Callable[[], None] | None = None,
    ) -> None:
        self.inner = inner
        self.window = window
        # Told of every 429 a call gets, also those the wrapped limiter retries itself.
        self.on_flood = on_flood

    async def initialize(self) -> None:
        """Prepare the wrapped limiter."""
        await self.inner.initialize()

    async def shutdown(self) -> None:
        """Shut the wrapped limiter down."""
        await self.inner.shutdown()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | JSONDict | list[JSONDict]:
        """Run the call through the wrapped limiter, counted in the window if it is a message."""
        if self.on_flood is not None:
            callback = self._noting_floods(callback, self.on_flood)
        if not counts_as_message(endpoint):
            return await self.inner.process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        async with self.window.outside_call():
            return await self.inner.process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )

    @staticmethod
    def _noting_floods(
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        on_flood: Callable[[], None],
    ) -> Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]:
        async def call(*args: Any, **kwargs: Any) -> bool | JSONDict | list[JSONDict]:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter:
                on_flood()
                raise

        return call


def counts_as_message(endpoint: str) -> bool:
    """Whether a Bot API method sends or changes a message (what Telegram's 30 a second count)."""
    return endpoint.startswith(("send", "edit", "copy", "forward")) and endpoint != "sendChatAction"


@dataclass(frozen=True)
class _Claimed:
    """A row this sender holds in memory, waiting for its chat's turn."""

    row_id: int
    chat_id: int
    person_id: int | None


@dataclass(frozen=True)
class _Ready:
    """A claimed row, re-checked just now, with everything needed to send it."""

    row_id: int
    chat_id: int
    method: str
    body: dict[str, Any]
    reply_to_message_id: int | None
    target_message_id: int | None
    attempts: int


class _Next(Enum):
    """What a chat's task does with the row at the head of its queue after one try."""

    DONE = "done"  # settled or no longer ours: drop it from memory
    AGAIN = "again"  # a 429: keep it and send it once the chat's hold is over


def _markup(body: dict[str, Any]) -> InlineKeyboardMarkup | None:
    rows = body.get("buttons") or []
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["text"], callback_data=b["data"]) for b in row] for row in rows]
    )


def _no_connection(error: NetworkError) -> bool:
    """Whether no connection to the Bot API (or to the proxy) could be made at all."""
    return isinstance(error.__cause__, httpx.ConnectError | httpx.ConnectTimeout | httpx.ProxyError)


def _never_reached_telegram(error: NetworkError) -> bool:
    """Whether the request surely was not delivered (so sending it again cannot double it)."""
    if isinstance(error, TimedOut):
        return isinstance(error.__cause__, httpx.ConnectTimeout | httpx.PoolTimeout)
    return True


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


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
        per_chat: int = PER_CHAT,
        capacity: int = 100,
        window: SendWindow | None = None,
        on_flood: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        # Told of every 429 the sender gets (the ops port counts them).
        self.on_flood = on_flood
        self.bot = bot
        self.clock = clock
        self.paging = paging
        self.worker = worker or worker_name()
        self.lease = lease
        self.batch = batch
        self.per_chat = per_chat
        self.capacity = capacity
        self.max_retries = telegram.max_retries
        # Rows in a row that found no connection to Telegram at all (network, proxy down).
        self._unconnected = 0
        self.pacer = ChatPacer(
            clock,
            per_second=telegram.chat_messages_per_second,
            group_per_minute=telegram.group_messages_per_minute,
        )
        # Shared with the bot's direct replies where the Application counts them in it.
        self.window = window or SendWindow(clock, per_second=telegram.messages_per_second)
        self._wake = asyncio.Event()
        self._queues: dict[int, deque[_Claimed]] = {}
        self._chat_tasks: dict[int, asyncio.Task[None]] = {}
        self._in_flight: set[int] = set()
        self._starting: set[int] = set()
        self._checking: set[int] = set()
        self._claiming = False
        self._stopping = False
        # Chats that may have rows left pending (left out of a claim, or given their full
        # share in one), and whether the last claim was cut short by memory: only then does a
        # sent message call for another claim.
        self._maybe_more: set[int] = set()
        self._cut_short = False

    async def open(self) -> None:
        """Open the sender's HTTP client (and check the token, as the Application does)."""
        await self.bot.initialize()

    async def close(self) -> None:
        """Close the sender's HTTP client."""
        await self.bot.shutdown()

    def wake(self) -> None:
        """Ask the sender to look at the outbox now."""
        self._wake.set()

    def idle(self) -> bool:
        """Whether nothing is under way but waits on the clock (a test may move it then)."""
        return not (
            self._claiming
            or self._wake.is_set()
            or self._in_flight
            or self._starting
            or self._checking
        )

    def held(self) -> int:
        """How many claimed rows wait in memory or are being sent."""
        return sum(len(queue) for queue in self._queues.values())

    async def run(self, stop: asyncio.Event, *, poll_every: float = 2.0) -> None:
        """Send until `stop` is set, then give back the rows not sent.

        Looks at the outbox on `wake()`, when a chat's queue has room again, or every
        `poll_every` seconds.
        """
        self._stopping = False
        renewed = self.clock.now()
        try:
            while not stop.is_set():
                self._wake.clear()  # a wake during the claim below is not lost
                more = False
                try:
                    more = await self._claim()
                    if self.clock.now() - renewed >= self.lease / 4:
                        renewed = self.clock.now()
                        await self._renew(renewed)
                except Exception:  # the loop must survive a database hiccup
                    log.exception("outbox claim failed")
                if more:
                    await asyncio.sleep(0)  # let the chats start on what was claimed
                    continue
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=poll_every, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                stopper.cancel()
        finally:
            await self._stop_chats()

    async def _claim(self) -> bool:
        """Claim what fits in memory; tell whether more may be waiting."""
        room = self.capacity - self.held()
        if room <= 0:
            return False
        # A chat with rows in memory gets no more until they are sent: it waits for its pace
        # anyway, and what it leaves pending any sender may take.
        queues = [queue for queue in self._queues.values() if queue]
        busy_chats = {queue[0].chat_id for queue in queues}
        busy_people = {item.person_id for queue in queues for item in queue if item.person_id}
        limit = min(self.batch, room)
        self._claiming = True
        try:
            async with self.db.uow() as uow:
                session = uow.session
                rows = await outbox.claim(
                    session,
                    now=self.clock.now(),
                    limit=limit,
                    worker=self.worker,
                    lease=self.lease,
                    per_recipient=self.per_chat,
                    busy_chats=busy_chats,
                    busy_people=busy_people,
                )
                claimed = [item for row in rows if (item := await self._prepare(session, row))]
                await uow.commit()
        finally:
            self._claiming = False
        self._maybe_more |= busy_chats
        self._cut_short = len(rows) == limit
        counts: dict[int, int] = {}
        for item in claimed:
            counts[item.chat_id] = counts.get(item.chat_id, 0) + 1
            if counts[item.chat_id] >= self.per_chat:
                self._maybe_more.add(item.chat_id)
            self._queues.setdefault(item.chat_id, deque()).append(item)
            if item.chat_id not in self._chat_tasks:
                self._starting.add(item.chat_id)
                self._chat_tasks[item.chat_id] = asyncio.create_task(
                    self._serve_chat(item.chat_id), name=f"outbox-chat-{item.chat_id}"
                )
        return len(rows) == limit

    async def _prepare(self, session: Any, row: OutboxMessage) -> _Claimed | None:
        """Find the chat a row goes to; settle rows that cannot go."""
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
        return _Claimed(row_id=row.id, chat_id=row.chat_id, person_id=row.person_id)

    async def _renew(self, now: datetime) -> None:
        ids = [item.row_id for queue in self._queues.values() for item in queue]
        if ids:
            async with self.db.uow() as uow:
                await outbox.renew(uow.session, ids=ids, worker=self.worker, now=now)
                await uow.commit()

    async def _stop_chats(self) -> None:
        """Let calls in flight finish, stop the waiting chats and give back their rows."""
        self._stopping = True
        tasks = list(self._chat_tasks.values())
        for chat_id, task in list(self._chat_tasks.items()):
            if chat_id not in self._in_flight:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        unsent = [item.row_id for queue in self._queues.values() for item in queue]
        self._queues.clear()
        self._chat_tasks.clear()
        if not unsent:
            return
        try:
            async with self.db.uow() as uow:
                await outbox.release(uow.session, ids=unsent, worker=self.worker)
                await uow.commit()
        except Exception:  # they go out after their lease instead
            log.exception("could not give back %d claimed outbox rows", len(unsent))

    async def _serve_chat(self, chat_id: int) -> None:
        """Send one chat's queue in order, at the chat's pace."""
        queue = self._queues[chat_id]
        self._starting.discard(chat_id)
        try:
            while queue and not self._stopping:
                await self.pacer.wait_turn(chat_id)
                after = await self._try(chat_id, queue[0])
                if after is _Next.DONE:
                    queue.popleft()
                    if not queue and chat_id in self._maybe_more:
                        self._maybe_more.discard(chat_id)
                        self.wake()
                    elif self._cut_short and self.held() <= self.capacity // 2:
                        self._cut_short = False
                        self.wake()
        finally:
            self._starting.discard(chat_id)
            if not self._stopping:
                self._queues.pop(chat_id, None)
                self._chat_tasks.pop(chat_id, None)

    async def _try(self, chat_id: int, item: _Claimed) -> _Next:
        """Re-check the claim, send the row once and record what Telegram answered."""
        self._checking.add(chat_id)
        try:
            ready = await self._recheck(item)
        except Exception:
            # Its claim stays; another try comes when the lease runs out.
            log.exception("outbox row %s could not be checked", item.row_id)
            return _Next.DONE
        finally:
            self._checking.discard(chat_id)
        if ready is None:
            return _Next.DONE
        # Waiting for the window is the last point where a stop may interrupt this row.
        await self.window.take()
        if self._stopping:
            self.window.release()
            return _Next.AGAIN
        self._in_flight.add(chat_id)
        try:
            return await self._send(item, ready)
        except Exception:
            log.exception("outbox row %s could not be sent", item.row_id)
            return _Next.DONE
        finally:
            self._in_flight.discard(chat_id)

    async def _send(self, item: _Claimed, ready: _Ready) -> _Next:
        """Make the call (holding a window slot only for it) and record the answer."""
        try:
            try:
                message_id = await self._call(ready)
            finally:
                self.window.release()
        except RetryAfter as error:
            if self.on_flood is not None:
                self.on_flood()
            wait = _seconds(error.retry_after)
            self.pacer.hold(item.chat_id, wait)
            await self._settle(item, status=OutboxStatus.SENDING, error=f"429: retry after {wait}s")
            return _Next.AGAIN
        except Forbidden as error:
            await self._settle(item, status=OutboxStatus.UNREACHABLE, error=error.message)
        except BadRequest as error:
            if "message is not modified" in error.message.lower():
                await self._settle(item, status=OutboxStatus.SENT, error=None)
            elif "chat not found" in error.message.lower():
                await self._settle(item, status=OutboxStatus.UNREACHABLE, error=error.message)
            else:
                log.error("outbox row %s refused: %s", item.row_id, error.message)
                await self._settle(item, status=OutboxStatus.FAILED, error=error.message)
        except NetworkError as error:
            if _no_connection(error):
                await self._wait_for_connection(item, error)
                return _Next.DONE
            if _never_reached_telegram(error):
                await self._retry_later(item, ready.attempts, str(error))
            else:
                log.warning("outbox row %s: %s", item.row_id, UNCONFIRMED)
                await self._settle(item, status=OutboxStatus.SENT, error=UNCONFIRMED)
        except TelegramError as error:  # 5xx and whatever else Telegram may answer
            await self._retry_later(item, ready.attempts, str(error))
        else:
            await self._settle(item, status=OutboxStatus.SENT, error=None, message_id=message_id)
        if self._unconnected:
            self._unconnected = 0
            log.info("outbox: Telegram reachable again; sending what waited")
        self.pacer.sent(item.chat_id)
        return _Next.DONE

    async def _wait_for_connection(self, item: _Claimed, error: NetworkError) -> None:
        """Put the row back, not counting the try: no route to Telegram says nothing of its chat.

        Its page stays active and goes out when the network (or the proxy) is back, rather than
        failing and paging the next contact through the same dead route. One log line an outage.
        """
        self._unconnected += 1
        if self._unconnected == 1:
            log.warning(
                "outbox: Telegram not reachable (%s); messages wait in the outbox", one_line(error)
            )
        pause = min(timedelta(seconds=2 ** min(self._unconnected, 6)), MAX_BACKOFF)
        await self._settle(item, status=OutboxStatus.PENDING, error=str(error), wait=pause)

    async def _recheck(self, item: _Claimed) -> _Ready | None:
        """Read the row again just before sending; None if it is not ours to send now."""
        row = await outbox.recheck(self.db, item.row_id)
        if row.status != OutboxStatus.SENDING or row.claimed_by != self.worker:
            return None  # our lease ran out and another sender took it over
        if row.page_status is not None and row.page_status != "active":
            await self._settle(item, status=OutboxStatus.CANCELLED, error=None)
            return None
        if row.method == "editMessageText":
            if row.target_status in (OutboxStatus.PENDING, OutboxStatus.SENDING):
                await self._settle(item, status=OutboxStatus.PENDING, error=None, wait=EDIT_WAIT)
                return None
            if row.target_status != OutboxStatus.SENT or row.target_message_id is None:
                reason = (
                    "the message to edit was not confirmed"
                    if row.target_status == OutboxStatus.SENT
                    else f"the message to edit is {row.target_status}"
                )
                await self._settle(item, status=OutboxStatus.CANCELLED, error=reason)
                return None
        return _Ready(
            row_id=item.row_id,
            chat_id=item.chat_id,
            method=row.method,
            body=row.body,
            reply_to_message_id=row.reply_to_message_id,
            target_message_id=row.target_message_id,
            attempts=row.attempts,
        )

    async def _call(self, item: _Ready) -> int | None:
        if item.method in outbox.MEDIA_METHODS:
            return await self._send_media(item)
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

    async def _send_media(self, item: _Ready) -> int:
        """Send a photo or voice note again by its file id (a follow-up's attachments).

        A chart row holds figures instead: it is drawn here, in a thread, and uploaded.
        """
        caption = str(item.body.get("caption") or "") or None
        if "chart" in item.body:
            # matplotlib loads on the first chart, not at start.
            from bot.services.reports import charts

            png = await asyncio.to_thread(
                charts.draw,
                str(item.body["chart"]),
                str(item.body.get("language") or "zh"),
                dict(item.body["payload"]),
            )
            sent = await self.bot.send_photo(
                item.chat_id,
                photo=InputFile(png, filename=f"{item.body['chart']}.png"),
                caption=caption,
            )
            return sent.message_id
        file_id = str(item.body["file_id"])
        if item.method == "sendPhoto":
            sent = await self.bot.send_photo(item.chat_id, photo=file_id, caption=caption)
        else:
            sent = await self.bot.send_voice(item.chat_id, voice=file_id, caption=caption)
        return sent.message_id

    async def _retry_later(self, item: _Claimed, attempts: int, error: str) -> None:
        """Back off and try the row again, or give up once it has had its retries."""
        if attempts > self.max_retries:
            await self._settle(item, status=OutboxStatus.FAILED, error=error)
            return
        backoff = min(timedelta(seconds=2**attempts), MAX_BACKOFF)
        await self._settle(item, status=OutboxStatus.PENDING, error=error, backoff=backoff)

    async def _settle(
        self,
        item: _Claimed,
        *,
        status: OutboxStatus,
        error: str | None,
        message_id: int | None = None,
        backoff: timedelta | None = None,
        wait: timedelta | None = None,
    ) -> None:
        """Record the outcome of a try (or of the re-check) on a row this sender holds.

        `backoff` puts a failed try back to pending; `wait` puts back a row that was not tried
        (its claim does not count as an attempt); status SENDING only notes the error.
        """
        async with self.db.uow() as uow:
            session = uow.session
            now = self.clock.now()
            if status == OutboxStatus.SENT:
                await outbox.mark_sent(
                    session, item.row_id, now=now, sent_message_id=message_id, error=error
                )
                await uow.commit()
                return
            row = await outbox.by_id(session, item.row_id, lock=True)
            if row.claimed_by != self.worker:
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
                if status == OutboxStatus.PENDING:
                    row.not_before = now + (backoff or wait or timedelta(0))
                    row.claimed_by = None
                    if wait is not None:
                        row.attempts = max(row.attempts - 1, 0)
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
