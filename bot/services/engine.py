"""The deadline engine's step: claim what is due and handle it, one transaction per batch.

Claiming and the work it causes (state changes, outbox rows) commit together, so a deadline is
handled exactly once: a crash before the commit leaves it pending, after it leaves it done.
A handler that fails is retried with backoff inside its own savepoint, without holding up
the rest of the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.models import Deadline, DeadlineStatus
from bot.services import deadlines
from bot.uow import Database

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Deadlines a transaction handles: small, so that a storm's first pages are committed (and can
# go out) within a fraction of a second, not after a batch of 100 (about a second on SQLite).
BATCH = 25
# After each batch, this long (real seconds) for what the batch woke to take its turn: on SQLite
# one writer goes at a time, and the next batch would otherwise take the write lock again before
# the sender had claimed the pages of the last one (measured by bench/run.py fanout: the sender
# claimed once per batch while a storm was being handled).
HAND_OVER = 0.005


# Handles one due deadline inside the engine's transaction: (session, deadline, now, late).
DeadlineHandler = Callable[[AsyncSession, Deadline, datetime, bool], Awaitable[None]]


@dataclass(frozen=True)
class StepResult:
    """What one engine step did."""

    handled: int
    late: int
    failed: int


async def run_due(
    db: Database,
    *,
    now: datetime,
    handlers: Mapping[str, DeadlineHandler],
    worker: str,
    batch: int = BATCH,
    late_after: timedelta = timedelta(minutes=2),
    after_batch: Callable[[], None] | None = None,
) -> StepResult:
    """Handle every deadline due by `now`, batch by batch, calling `after_batch` after each."""
    handled = late_count = failed = 0
    while True:
        async with db.uow() as uow:
            session = uow.session
            due = await deadlines.claim_due(session, now=now, limit=batch)
            done: dict[bool, list[int]] = {False: [], True: []}  # by lateness
            for deadline in due:
                late = now - deadline.due_at > late_after
                handler = handlers.get(deadline.kind)
                try:
                    async with session.begin_nested():
                        if handler is None:
                            raise LookupError(f"no handler for deadline kind {deadline.kind!r}")
                        await handler(session, deadline, now, late)
                except Exception as error:  # one bad deadline must not stop the others
                    log.exception("deadline %s failed", deadline.key)
                    deadline.attempts += 1
                    deadline.last_error = f"{type(error).__name__}: {error}"[:300]
                    if deadline.attempts >= MAX_ATTEMPTS:
                        deadline.status = DeadlineStatus.FAILED
                        deadline.handled_at = now
                        failed += 1
                    else:
                        deadline.due_at = now + timedelta(seconds=30 * 2**deadline.attempts)
                    continue
                # Marked done together after the batch: set here, each would be an UPDATE of its
                # own, flushed before the next deadline's savepoint.
                assert deadline.id is not None
                done[late].append(deadline.id)
                handled += 1
                late_count += int(late)
            for late, ids in done.items():
                await deadlines.mark_done(session, ids=ids, now=now, worker=worker, late=late)
            await uow.commit()
        if due and after_batch is not None:
            after_batch()  # the sender may start on this batch while the next one is handled
            await asyncio.sleep(HAND_OVER)
        if not due:
            # Handlers may add work that is due at once (an escalation's first step): keep
            # going until a claim comes back empty.
            return StepResult(handled, late_count, failed)


async def next_due(db: Database) -> datetime | None:
    """When the engine must next wake."""
    async with db.read() as uow:
        return await deadlines.next_due(uow.session)
