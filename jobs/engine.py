"""The engine job: one JobQueue job that wakes at the earliest pending deadline.

The database decides what is due; the job only asks it. It is re-armed after every step and
whenever a use case adds an earlier deadline (`wake`), and a slow safety poll catches work
added by another instance on the same PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from telegram.ext import Job, JobQueue

from bot.clock import Clock
from bot.services.engine import DeadlineHandler, StepResult, next_due, run_due
from bot.uow import Database

log = logging.getLogger(__name__)

JOB_NAME = "zhiban-engine"

# Schedules deadlines for what is coming up (shifts starting soon, check-in rounds, ...).
Planner = Callable[[datetime], Awaitable[object]]


class EngineJob:
    """Runs engine steps at the right (real) moments through PTB's JobQueue."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        handlers: Mapping[str, DeadlineHandler],
        worker: str,
        after_step: Callable[[], None] = lambda: None,
        planners: Sequence[Planner] = (),
        poll_every: float = 15.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.handlers = handlers
        self.worker = worker
        self.after_step = after_step
        self.planners = list(planners)
        # One step at a time in this process (a wake, the safety poll, a test's settle); other
        # instances share the work through the database's row locks.
        self._stepping = asyncio.Lock()
        self.poll_every = poll_every
        self._queue: JobQueue[Any] | None = None
        self._armed: Job[Any] | None = None
        self._armed_for: datetime | None = None

    def attach(self, queue: JobQueue[Any]) -> None:
        """Start the safety poll and run a first step at once (catching up after downtime)."""
        self._queue = queue
        queue.run_repeating(self._poll, interval=self.poll_every, first=0, name=f"{JOB_NAME}-poll")

    async def step(self) -> StepResult:
        """Plan what is coming, handle what is due now, then re-arm for the next deadline."""
        async with self._stepping:
            return await self._step()

    async def _step(self) -> StepResult:
        for planner in self.planners:
            await planner(self.clock.now())
        result = await run_due(
            self.db,
            now=self.clock.now(),
            handlers=self.handlers,
            worker=self.worker,
            after_batch=self.after_step,
        )
        if result.handled or result.failed:
            log.info(
                "engine: %s handled (%s late), %s failed",
                result.handled,
                result.late,
                result.failed,
            )
            self.after_step()
        # Due work that nothing here could claim is held by another instance: look again in a
        # moment rather than at once, over and over.
        await self.rearm(minimum=0.0 if result.handled or result.failed else 1.0)
        return result

    async def rearm(self, minimum: float = 0.0) -> None:
        """Arm the one-off job for the earliest pending deadline (not sooner than `minimum` s)."""
        due = await next_due(self.db)
        if due is None or self._queue is None:
            return
        armed = self._armed is not None and not self._armed.removed
        if armed and self._armed_for is not None and self._armed_for <= due:
            return
        delay = self.clock.real_delay(due)
        if delay is None:
            return
        delay = max(delay, minimum)
        if self._armed is not None and not self._armed.removed:
            self._armed.schedule_removal()
        self._armed_for = due
        self._armed = self._queue.run_once(self._tick, when=delay, name=JOB_NAME)

    def wake(self) -> None:
        """Something was scheduled: look again soon (from inside the event loop)."""
        if self._queue is not None:
            self._queue.run_once(self._tick, when=0, name=f"{JOB_NAME}-wake")

    async def _tick(self, _context: Any) -> None:
        self._armed = None
        self._armed_for = None
        await self.step()

    async def _poll(self, _context: Any) -> None:
        await self.step()
