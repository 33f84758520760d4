"""The engine job: one JobQueue job that wakes at the earliest pending deadline.

The database decides what is due; the job only asks it. The first step runs as soon as the
job is attached (catching up what fell due while the bot was down). The job is re-armed after
every step and whenever a use case adds work (`wake`); there is never more than one armed job.
A slow safety poll catches work added by another instance on the same PostgreSQL database.
A planner that fails is logged and counted, and the step goes on to handle what is due.

The planners look hours ahead, so a burst of wakes (every check-in answer and every report
wakes the engine) need not run them at every step: a step the job runs within `PLAN_EVERY`
real seconds of the last planning leaves them out and arms a step for the moment planning is
owed again, so what a use case added is planned at most that much later. A step asked for
directly (`step`: the safety poll, the sandbox's settle, the tests) always plans. Before, each
woken step ran the four planners' transactions again: half the SQL of a check-in answer.

People first: a step the job runs (a wake, a deadline falling due) first waits for the updates in
hand to be answered (`updates_answered`, bot/updates.py), at most `ANSWER_FIRST`. A report wakes
the engine while other schools are still reporting; stepping at once put that report's pages
(their transaction, then their sends within Telegram's 30 a second) ahead of the next people's
answers, so a storm's reporters waited behind the pages of the reports before theirs. A page goes
out at most that moment later; a step asked for directly does not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from telegram.ext import Job, JobQueue

from bot.clock import Clock
from bot.services.engine import DeadlineHandler, StepResult, next_due, run_due
from bot.uow import Database

log = logging.getLogger(__name__)

JOB_NAME = "zhiban-engine"

# Schedules deadlines for what is coming up (shifts starting soon, check-in rounds, ...).
Planner = Callable[[datetime], Awaitable[object]]
# Real seconds within which a woken step leaves the planners to the last one that ran them.
PLAN_EVERY = 1.0
# Real seconds a step the job runs waits at most for the updates in hand to be answered.
ANSWER_FIRST = 1.0


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
        updates_answered: Callable[[float], Awaitable[object]] | None = None,
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
        self.updates_answered = updates_answered
        self.answer_first = ANSWER_FIRST
        self._queue: JobQueue[Any] | None = None
        # The one armed one-off job, the deadline it is for (None: "at once", a wake) and the
        # monotonic time it fires at.
        self._armed: Job[Any] | None = None
        self._armed_for: datetime | None = None
        self._fires_at = 0.0
        self.planner_failures = 0
        self._planned_at: float | None = None  # monotonic time of the last planning
        self._woken_meanwhile = False  # a wake or poll came while a step was running

    def attach(self, queue: JobQueue[Any]) -> None:
        """Run a first step at once (catching up after downtime) and start the safety poll."""
        self._queue = queue
        # Not `run_repeating(first=0)`: APScheduler rounds a start already past up to the next
        # interval, which put the catch-up a whole poll interval after the start.
        self._arm(0.0, None)
        queue.run_repeating(
            self._poll, interval=self.poll_every, first=self.poll_every, name=f"{JOB_NAME}-poll"
        )

    def detach(self) -> None:
        """Arm no more steps (the bot is stopping); a step under way finishes.

        python-telegram-bot stops its JobQueue only after the Application stopped running, and a
        job firing in between starts a task nobody awaits: the engine's jobs go first.
        """
        queue, self._queue = self._queue, None
        if queue is None:
            return
        for name in (JOB_NAME, f"{JOB_NAME}-poll"):
            for job in queue.get_jobs_by_name(name):
                with contextlib.suppress(LookupError):
                    job.schedule_removal()
        self._armed = None
        self._armed_for = None

    async def step(self) -> StepResult:
        """Plan what is coming, handle what is due now, then re-arm for the next deadline."""
        async with self._stepping:
            return await self._step(plan=True)

    def _planning_owed_in(self) -> float:
        """Real seconds until a woken step plans again (0: now)."""
        if self._planned_at is None:
            return 0.0
        return max(0.0, self._planned_at + PLAN_EVERY - time.monotonic())

    async def _step(self, *, plan: bool) -> StepResult:
        self._woken_meanwhile = False  # a wake before this step is covered by it
        if plan:
            self._planned_at = time.monotonic()
            for planner in self.planners:
                try:
                    await planner(self.clock.now())
                except Exception:  # a broken planner must not stop the paging of what is due
                    self.planner_failures += 1
                    name = getattr(planner, "__name__", planner)
                    log.exception("engine: planner %s failed", name)
        looked_at = self.clock.now()
        result = await run_due(
            self.db,
            now=looked_at,
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
        await self.rearm(
            minimum=0.0 if result.handled or result.failed else 1.0, looked_at=looked_at
        )
        if not plan and self.planners:
            self._owe_planning()
        if self._woken_meanwhile and self._queue is not None:
            self._woken_meanwhile = False
            self._arm(0.0, None)  # what was added during the step gets a step of its own
        return result

    def _owe_planning(self) -> None:
        """Make sure a step runs when planning is owed again, unless one runs before."""
        if self._queue is None:
            return
        wait = self._planning_owed_in()
        if self._is_armed() and self._fires_at <= time.monotonic() + wait:
            return  # that step comes first and plans, or owes it again
        self._arm(wait, self.clock.now() + timedelta(seconds=wait))

    async def rearm(self, minimum: float = 0.0, *, looked_at: datetime | None = None) -> None:
        """Arm the one-off job for the earliest pending deadline.

        `minimum` holds back only a look at work that was due already when the step looked at
        `looked_at` and that it did not get (another instance holds it). A deadline that fell
        due since (while the step finished) or is still to come is looked at when it falls due,
        not a moment later: a step that ran just before a deadline once held its page back that
        whole second (page lateness of 1.0-1.2 s in the benchmark, one run in three).
        """
        due = await next_due(self.db)
        if due is None or self._queue is None:
            return
        if self._is_armed() and (self._armed_for is None or self._armed_for <= due):
            return
        delay = self.clock.real_delay(due)
        if delay is None:
            return
        held = looked_at is None or due <= looked_at
        self._arm(delay if delay > 0 else (minimum if held else 0.0), due)

    def wake(self) -> None:
        """Something was scheduled: look again soon (from inside the event loop)."""
        if self._queue is None:
            return
        if self._is_armed() and self._fires_at <= time.monotonic():
            return  # the armed job fires at once anyway
        self._arm(0.0, None)

    def _is_armed(self) -> bool:
        return self._armed is not None and not self._armed.removed

    def _arm(self, delay: float, due: datetime | None) -> None:
        """Replace the armed job by one that fires in `delay` real seconds."""
        assert self._queue is not None
        if self._is_armed():
            assert self._armed is not None
            # It may be firing right now (the scheduler has let go of it and raises its
            # JobLookupError, a KeyError): then it steps once more, which is harmless.
            with contextlib.suppress(LookupError):
                self._armed.schedule_removal()
        self._armed_for = due
        self._fires_at = time.monotonic() + delay
        self._armed = self._queue.run_once(self._tick, when=delay, name=JOB_NAME)

    async def _tick(self, context: Any) -> None:
        if context.job is self._armed:
            self._armed = None
            self._armed_for = None
        if self._stepping.locked():
            # A step is running: wakes during it must not queue a step each behind it (a long
            # step, e.g. a check-in round of 1,500 prompts, gathered dozens, and each was a
            # cancelled job at shutdown); one more step after it covers them all.
            self._woken_meanwhile = True
            return
        async with self._stepping:
            if self.updates_answered is not None:
                # Wakes meanwhile are covered by this step (`_step` forgets them).
                await self.updates_answered(self.answer_first)
            await self._step(plan=not self.planners or self._planning_owed_in() == 0.0)

    async def _poll(self, _context: Any) -> None:
        if self._stepping.locked():
            self._woken_meanwhile = True  # the running step re-arms; no poll waiting behind it
            return
        await self.step()
