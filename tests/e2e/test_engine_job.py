"""The engine job wakes by itself at the earliest deadline (real JobQueue, accelerated clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import District, build_district

from bot.clock import MovableClock, ScaledClock
from bot.config import EscalationStep, Level, settings_from_mapping
from bot.models import Shift
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.services import escalation
from bot.services.page_text import PageSubject
from jobs.engine import JOB_NAME

START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


async def principal_of(stack: LocalStack) -> tuple[District, SimUser]:
    """The small district, and its principal in a chat with the bot (Start pressed)."""
    assert stack.db is not None
    district = await build_district(stack.db)
    principal = stack.emulator.user(district.chats["principal"], "王校长")
    await principal.start()
    await principal.wait_for()
    return district, principal


async def post_unmanned(stack: LocalStack, district: District, now: datetime) -> None:
    """A matter whose one step pages the principal two minutes after `now`."""
    assert stack.db is not None
    step = EscalationStep(after=timedelta(minutes=2), roles=["principal"], level=Level.UNIT)
    async with stack.db.uow() as uow:
        await escalation.start(
            uow.session,
            policy="test",
            steps=[step],
            subject_type="test",
            subject_id=1,
            unit_id=district.units["S"],
            now=now,
            subject=PageSubject(what="Post unmanned", ask="Acknowledge."),
        )
        await uow.commit()


async def test_a_page_due_in_the_future_goes_out_when_its_time_comes(database_url: str) -> None:
    # 120 simulated seconds pass per real second: a step due in 2 minutes fires after ~1 s.
    clock = ScaledClock(START, speed=120)
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with LocalStack(settings, clock) as stack:
        assert stack.db is not None and stack.runtime is not None
        district, principal = await principal_of(stack)
        # The scaled clock ran on while the district was set up: the step is due 2 minutes
        # after the matter starts, not after START.
        started = clock.now()
        await post_unmanned(stack, district, started)
        stack.runtime.wake()
        page = await principal.wait_for(timeout=10)
        due = started + timedelta(minutes=2)
        received = datetime.fromtimestamp(page.date, tz=UTC)
        assert page.text.startswith("🚨 Post unmanned")
        assert due <= received + timedelta(seconds=1)  # not early
        # and on time: within 1.25 real seconds, however busy the machine
        assert received - due < timedelta(seconds=150)


def engine_jobs(stack: LocalStack) -> list[str]:
    """The names of the engine's jobs in the running Application's JobQueue."""
    assert stack.app is not None and stack.app.job_queue is not None
    return sorted(job.name or "" for job in stack.app.job_queue.jobs())


async def test_waking_the_engine_again_and_again_leaves_one_armed_job(
    stack: LocalStack, clock: MovableClock
) -> None:
    assert stack.app is not None and stack.app.bot_data.engine is not None
    engine = stack.app.bot_data.engine
    await stack.settle()
    for _ in range(11):
        engine.wake()
    assert engine_jobs(stack).count(JOB_NAME) == 1
    assert engine_jobs(stack) == [JOB_NAME, f"{JOB_NAME}-poll"]
    await asyncio.sleep(0.3)  # the armed job fires and the engine re-arms (or not: none due)
    assert engine_jobs(stack).count(JOB_NAME) <= 1


async def test_after_a_restart_what_fell_due_goes_out_at_once_not_at_the_next_poll(
    stack: LocalStack, clock: MovableClock
) -> None:
    district, principal = await principal_of(stack)
    await post_unmanned(stack, district, clock.now())  # the engine not woken, as before a crash
    clock.advance(timedelta(minutes=30))  # it fell due while the bot was down
    await stack.restart_bot()
    loop = asyncio.get_running_loop()
    taking_updates = loop.time()
    page = await principal.wait_for(timeout=10)
    assert page.text.startswith("🚨 Post unmanned")
    assert loop.time() - taking_updates < 2.0  # the safety poll comes only after 15 s


async def test_a_shift_added_between_two_plannings_is_reminded_within_seconds(
    stack: LocalStack, clock: MovableClock
) -> None:
    """What a use case adds between two plannings is planned within about a second.

    A woken step within a second of the last planning leaves the planners out; the step it
    arms for when planning is owed plans what was added, long before the 15 s safety poll.
    """
    assert stack.db is not None and stack.runtime is not None
    district = await build_district(stack.db)
    staff = stack.emulator.user(district.chats["staff"], "张老师")
    await staff.start()
    await staff.wait_for()
    await stack.settle()  # plans now, so the woken steps of the next second leave planning out
    remind_before = stack.runtime.settings.shifts.remind_before
    start = clock.now() + remind_before  # its reminder falls due now
    async with stack.db.uow() as uow:
        uow.session.add(
            Shift(
                unit_id=district.units["S"],
                post="门卫室",
                start=start,
                end=start + timedelta(hours=8),
                person_id=district.people["staff"],
            )
        )
        await uow.commit()
    stack.runtime.wake()
    loop = asyncio.get_running_loop()
    woken = loop.time()
    reminder = await staff.wait_for(timeout=10)
    assert "门卫室" in reminder.text
    assert loop.time() - woken < 5.0


async def test_wakes_during_a_long_step_make_one_more_step_not_one_each(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that takes long (a round of 1,500 check-ins) gathers no queue of steps behind it."""
    import jobs.engine

    assert stack.app is not None and stack.app.bot_data.engine is not None
    engine = stack.app.bot_data.engine
    await stack.settle()
    real_run_due = jobs.engine.run_due
    steps = 0

    async def slow_run_due(*args: Any, **kwargs: Any) -> Any:
        nonlocal steps
        steps += 1
        if steps == 1:
            await asyncio.sleep(1.0)  # the long step
        return await real_run_due(*args, **kwargs)

    monkeypatch.setattr(jobs.engine, "run_due", slow_run_due)
    engine.wake()
    await asyncio.sleep(0.1)
    assert steps == 1  # the long step is running
    for _ in range(10):  # use cases wake the engine meanwhile; each armed job fires
        engine.wake()
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)  # the long step ends; what woke it meanwhile gets its step
    assert steps == 2
    assert engine_jobs(stack).count(JOB_NAME) <= 1


async def test_a_woken_step_waits_for_the_updates_in_hand_then_pages(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """People first: a step the job runs waits while someone's update is being answered."""
    import jobs.engine
    from bot.updates import PerPersonUpdates
    from tests.test_updates import _update

    assert stack.app is not None and stack.app.bot_data.engine is not None
    engine = stack.app.bot_data.engine
    processor = stack.app.update_processor
    assert isinstance(processor, PerPersonUpdates)
    await stack.settle()
    real_run_due = jobs.engine.run_due
    steps = 0

    async def counted_run_due(*args: Any, **kwargs: Any) -> Any:
        nonlocal steps
        steps += 1
        return await real_run_due(*args, **kwargs)

    monkeypatch.setattr(jobs.engine, "run_due", counted_run_due)
    answering = asyncio.Event()
    in_hand = asyncio.create_task(processor.process_update(_update(1, 101), answering.wait()))
    await asyncio.sleep(0.01)
    engine.wake()
    await asyncio.sleep(0.3)
    assert steps == 0  # the update is still being answered
    answering.set()
    await in_hand
    await asyncio.sleep(0.3)
    assert steps >= 1  # answered: the step ran at once, not after ANSWER_FIRST

    # An update that takes long holds the step back ANSWER_FIRST at most.
    await asyncio.sleep(1.5)  # the step owed for planning (PLAN_EVERY) has run too
    before = steps
    engine.answer_first = 0.2
    stuck = asyncio.Event()
    in_hand = asyncio.create_task(processor.process_update(_update(2, 101), stuck.wait()))
    await asyncio.sleep(0.01)
    engine.wake()
    await asyncio.sleep(0.1)
    assert steps == before
    await asyncio.sleep(0.5)
    assert steps > before
    stuck.set()
    await in_hand


async def test_a_deadline_that_falls_due_during_an_idle_step_is_handled_at_once(
    stack: LocalStack, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that found nothing due looks again in a second only at work it saw due.

    Work due when the step looked and not claimed is another instance's; a deadline that fell
    due while the step was finishing is nobody's yet and must not wait that second.
    """
    import jobs.engine

    assert stack.app is not None
    engine = stack.app.bot_data.engine
    assert engine is not None
    district, principal = await principal_of(stack)
    await post_unmanned(stack, district, clock.now())
    await stack.settle()  # the matter's first look; its step is two minutes away
    real_run_due = jobs.engine.run_due
    steps = 0

    async def run_due_then_time_passes(*args: Any, **kwargs: Any) -> Any:
        nonlocal steps
        steps += 1
        result = await real_run_due(*args, **kwargs)
        if steps == 1:
            clock.advance(timedelta(minutes=2, seconds=1))  # it fell due as the step ended
        return result

    monkeypatch.setattr(jobs.engine, "run_due", run_due_then_time_passes)
    loop = asyncio.get_running_loop()
    woken = loop.time()
    engine.wake()
    page = await principal.wait_for(timeout=5)
    assert page.text.startswith("🚨 Post unmanned")
    assert steps >= 2
    assert loop.time() - woken < 0.8  # not held back the second meant for others' work


async def test_a_stopping_bot_arms_no_more_engine_steps(stack: LocalStack) -> None:
    """The engine's jobs leave the JobQueue before the Application stops running."""
    assert stack.app is not None and stack.app.bot_data.engine is not None
    engine = stack.app.bot_data.engine
    await stack.settle()
    engine.wake()
    assert JOB_NAME in engine_jobs(stack)
    engine.detach()
    assert JOB_NAME not in engine_jobs(stack) and f"{JOB_NAME}-poll" not in engine_jobs(stack)
    engine.wake()  # a use case finishing during the stop
    await engine.step()  # a step under way finishes, and arms nothing after it
    assert engine_jobs(stack) == []


async def test_stopping_the_workers_detaches_the_engine(stack: LocalStack) -> None:
    """`serve` stops its workers before the Application: the engine goes with them."""
    from bot.app import Workers

    class Sender:
        async def close(self) -> None:
            pass

        def wake(self) -> None:
            pass

    assert stack.app is not None and stack.app.bot_data.engine is not None
    await stack.settle()
    stack.app.bot_data.engine.wake()
    assert JOB_NAME in engine_jobs(stack)
    sending = asyncio.create_task(asyncio.sleep(0))
    workers = Workers(Sender(), sending, asyncio.Event(), None, stack.app.bot_data.engine)
    await workers.stop()
    assert engine_jobs(stack) == []
