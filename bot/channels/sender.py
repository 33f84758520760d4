"""Sends the outbox's robot messages through the configured channels, each at its own pace.

Every instance runs one, like the Telegram sender (bot/delivery.py): rows are claimed with a
lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL) within each channel's per-minute budget
(bot/services/channel_outbox.py), re-read just before the call, and settled after it. A
channel's messages go out one at a time, oldest first; channels do not wait for each other.

What a channel answers:
- accepted: the row is sent.
- `ChannelError(retry=True)` (a rate limit, a 5xx, a timeout), or anything unexpected: the row
  goes back to pending after 2 s, 4 s, … (at most 60 s), up to `max_retries` retries; then it is
  failed.
- `ChannelError(retry=False)` (a bad signature, a robot removed from its group): failed at once.
A failed row keeps the platform's code and reason in `last_error`, shown by `zhiban pages`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.channels import Channel, ChannelError, ChannelMessage
from bot.clock import Clock
from bot.models import OutboxStatus
from bot.services import channel_outbox, outbox
from bot.uow import Database

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(seconds=60)


def message_of(body: Mapping[str, Any]) -> ChannelMessage:
    """The ChannelMessage a robot row carries."""
    return ChannelMessage(
        title=str(body.get("title") or ""),
        text=str(body.get("text") or ""),
        link=body.get("link"),
        mention_phones=tuple(str(p) for p in body.get("mention_phones") or ()),
        emails=tuple(str(e) for e in body.get("emails") or ()),
        language=str(body.get("language") or "zh"),
    )


@dataclass(frozen=True)
class _Outcome:
    status: OutboxStatus
    error: str | None = None
    backoff: timedelta | None = None


class ChannelSender:
    """Claims robot rows per channel and sends them; any number may run on one database."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        channels: Mapping[str, Channel],
        worker: str,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 5,
        max_retries: int = 5,
        send_timeout: float = 20.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.channels = dict(channels)
        self.worker = worker
        self.lease = lease
        # Rows claimed per channel at a time: with `send_timeout` each, well inside the lease.
        self.batch = batch
        self.max_retries = max_retries
        self.send_timeout = send_timeout
        self._wake = asyncio.Event()
        self._busy = False

    async def open(self) -> None:
        """Nothing to open: each channel opens its HTTP client per call."""

    async def close(self) -> None:
        """Nothing to close."""

    def wake(self) -> None:
        """Look at the outbox now."""
        self._wake.set()

    def idle(self) -> bool:
        """Whether nothing is under way (without channels, nothing ever is after the start)."""
        return not (self._busy or (self.channels and self._wake.is_set()))

    async def run(self, stop: asyncio.Event, *, poll_every: float = 2.0) -> None:
        """Send until `stop` is set; a claimed row not sent goes out after its lease.

        With no channel configured it only fails what earlier configurations left, and ends.
        """
        if not self.channels:
            try:
                await self.step()
            except Exception:
                log.exception("channel rows left by an earlier configuration were not failed")
            return
        while not stop.is_set():
            self._wake.clear()
            more = False
            try:
                more = await self.step()
            except Exception:  # the loop must survive a database hiccup
                log.exception("channel claim failed")
            if more:
                continue
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=poll_every, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            stopper.cancel()

    async def step(self) -> bool:
        """Claim and send one batch per channel; tell whether a channel may have more due now."""
        self._busy = True
        try:
            now = self.clock.now()
            claimed: dict[str, list[tuple[int, ChannelMessage]]] = {}
            async with self.db.uow() as uow:
                await channel_outbox.fail_unconfigured(
                    uow.session, configured=self.channels.keys(), now=now
                )
                # In name order: two instances take the channels' advisory locks alike.
                for name, channel in sorted(self.channels.items()):
                    rows = await channel_outbox.claim(
                        uow.session,
                        channel=name,
                        per_minute=channel.per_minute,
                        now=now,
                        limit=self.batch,
                        worker=self.worker,
                        lease=self.lease,
                    )
                    claimed[name] = [(row.id or 0, message_of(row.body)) for row in rows]
                await uow.commit()
            await asyncio.gather(
                *(self._send_all(self.channels[name], items) for name, items in claimed.items())
            )
            return any(len(items) == self.batch for items in claimed.values())
        finally:
            self._busy = False

    async def _send_all(self, channel: Channel, items: list[tuple[int, ChannelMessage]]) -> None:
        for row_id, message in items:
            try:
                await self._send_one(channel, row_id, message)
            except Exception:  # one row must not hold up the channel's others
                log.exception("channel %s: row %s could not be settled", channel.name, row_id)

    async def _send_one(self, channel: Channel, row_id: int, message: ChannelMessage) -> None:
        async with self.db.read() as uow:
            row = await outbox.by_id(uow.session, row_id)
            attempts = row.attempts
            if row.status != OutboxStatus.SENDING or row.claimed_by != self.worker:
                return  # our lease ran out and another sender took it over
        outcome = await self._try(channel, message, attempts)
        if outcome.status == OutboxStatus.FAILED:
            log.warning("channel %s: row %s failed: %s", channel.name, row_id, outcome.error)
        async with self.db.uow() as uow:
            row = await outbox.by_id(uow.session, row_id, lock=True)
            if row.claimed_by != self.worker and outcome.status != OutboxStatus.SENT:
                return
            now = self.clock.now()
            row.status = outcome.status
            row.last_error = outcome.error[:300] if outcome.error else None
            if outcome.status == OutboxStatus.SENT:
                row.sent_at = now
            elif outcome.status == OutboxStatus.PENDING:
                row.not_before = now + (outcome.backoff or timedelta(0))
                row.claimed_by = None
            await uow.commit()

    async def _try(self, channel: Channel, message: ChannelMessage, attempts: int) -> _Outcome:
        try:
            await asyncio.wait_for(channel.send(message), timeout=self.send_timeout)
        except ChannelError as error:
            reason = f"{error.code}: {error.reason}" if error.code else error.reason
            if not error.retry:
                return _Outcome(OutboxStatus.FAILED, reason)
            return self._again(attempts, reason)
        except TimeoutError:
            return self._again(attempts, f"no answer within {self.send_timeout:g} s")
        except Exception as error:
            log.exception("channel %s: send raised", channel.name)
            return self._again(attempts, f"{type(error).__name__}: {error}")
        return _Outcome(OutboxStatus.SENT)

    def _again(self, attempts: int, reason: str) -> _Outcome:
        if attempts > self.max_retries:
            return _Outcome(OutboxStatus.FAILED, reason)
        backoff = min(timedelta(seconds=2**attempts), MAX_BACKOFF)
        return _Outcome(OutboxStatus.PENDING, reason, backoff)
