"""The sender's pacing on the injected clock: the overall window and each chat's turn."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram.ext import BaseRateLimiter

from bot.clock import MovableClock
from bot.delivery import ChatPacer, SendWindow, SharedWindowLimiter, counts_as_message

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


async def run_moving_the_clock(clock: MovableClock, *tasks: asyncio.Task[None]) -> None:
    """Run the tasks, moving the clock to the next moment they wait for whenever all wait."""
    for _ in range(1000):
        await asyncio.sleep(0.001)
        if all(task.done() for task in tasks):
            return
        moment = clock.earliest_sleeper()
        if moment is not None:
            clock.set(moment)
    raise TimeoutError("the tasks did not finish")


async def test_send_window_never_lets_more_than_the_limit_into_one_second() -> None:
    clock = MovableClock(T0)
    window = SendWindow(clock, per_second=4)
    started: list[datetime] = []

    async def call() -> None:
        async with window.slot():
            started.append(clock.now())

    await run_moving_the_clock(clock, *(asyncio.create_task(call()) for _ in range(9)))
    for index, moment in enumerate(started):
        in_second = [t for t in started[index:] if t - moment < timedelta(seconds=1)]
        assert len(in_second) <= 4
    # and it keeps the pace: 4 at once, 4 a second later, the last one a second after that
    assert started == [T0] * 4 + [T0 + timedelta(seconds=1)] * 4 + [T0 + timedelta(seconds=2)]


async def test_pacer_spaces_one_chat_and_lets_another_go_at_once() -> None:
    clock = MovableClock(T0)
    pacer = ChatPacer(clock, per_second=1, group_per_minute=20)
    turns: list[tuple[int, datetime]] = []

    async def send(chat_id: int) -> None:
        await pacer.wait_turn(chat_id)
        turns.append((chat_id, clock.now()))
        pacer.sent(chat_id)

    async def burst() -> None:
        for _ in range(3):
            await send(1)

    async def group_twice() -> None:
        await send(-100)
        await send(-100)

    first = asyncio.create_task(burst())
    await asyncio.sleep(0.01)
    await send(2)
    await run_moving_the_clock(clock, first, asyncio.create_task(group_twice()))
    assert (2, T0) in turns
    assert [at for chat, at in turns if chat == 1] == [T0 + timedelta(seconds=s) for s in (0, 1, 2)]
    assert [at for chat, at in turns if chat == -100] == [T0, T0 + timedelta(seconds=3)]


async def test_a_hold_delays_only_its_chat() -> None:
    clock = MovableClock(T0)
    pacer = ChatPacer(clock, per_second=1, group_per_minute=20)
    pacer.hold(1, 30)
    await asyncio.wait_for(pacer.wait_turn(2), 1)
    waiting = asyncio.create_task(pacer.wait_turn(1))
    clock.advance(timedelta(seconds=29))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    clock.advance(timedelta(seconds=1))
    await asyncio.wait_for(waiting, 1)


async def test_direct_replies_count_in_the_senders_window_and_never_wait_in_it() -> None:
    """The bot's own calls take slots the sender then leaves free: the two share Telegram's 30."""
    clock = MovableClock(T0)
    window = SendWindow(clock, per_second=10)
    window.RESERVE_FOR = 0.3  # a short real-time reserve, so that the test runs quickly
    released = asyncio.Event()
    outside_started: list[int] = []

    async def direct_reply(index: int) -> None:
        async with window.outside_call():  # never waits while the second has room
            outside_started.append(index)
            await released.wait()

    replies = [asyncio.create_task(direct_reply(i)) for i in range(8)]
    await asyncio.sleep(0)
    assert outside_started == list(range(8))
    # 8 of 10 slots are the replies'; and while replies come, 3 more are kept for them
    taken = asyncio.create_task(window.take())
    await asyncio.sleep(0.05)
    assert not taken.done()
    released.set()
    await asyncio.gather(*replies)
    # the replies' slots free a second (real time) after their answers; the reserve lapses too
    await asyncio.wait_for(taken, timeout=3)
    window.release()


async def test_a_burst_of_replies_waits_for_the_second_instead_of_meeting_a_429() -> None:
    """Replies beyond the second's slots go out when the first ones' slots free, in order."""
    window = SendWindow(MovableClock(T0), per_second=4)
    started: list[tuple[int, float]] = []
    began = time.monotonic()

    async def direct_reply(index: int) -> None:
        async with window.outside_call():
            started.append((index, time.monotonic() - began))

    await asyncio.wait_for(asyncio.gather(*(direct_reply(i) for i in range(6))), timeout=5)
    assert [index for index, _at in started] == list(range(6))
    at = dict(started)
    assert max(at[i] for i in range(4)) < 0.5  # four at once, as the second allows
    assert at[4] >= 0.95 and at[5] >= 0.95  # the others a second after the first answers


async def test_a_reply_waits_for_the_senders_slots_only_as_long_as_they_take_to_free() -> None:
    """With the sender's slots filling the second, a reply waits a while, then goes anyway."""
    clock = MovableClock(T0)  # the sender's slots free on this clock, which stands still here
    window = SendWindow(clock, per_second=3)
    window.SENDER_PATIENCE = 0.2
    for _ in range(3):
        await window.take()
        window.release()
    began = time.monotonic()
    async with window.outside_call():
        waited = time.monotonic() - began
    assert 0.15 <= waited < 1.0
    clock.advance(timedelta(seconds=1))  # once the sender's slots are free, a reply goes at once
    began = time.monotonic()
    async with window.outside_call():
        assert time.monotonic() - began < 0.1


async def test_the_bots_messages_count_and_its_other_calls_do_not() -> None:
    assert counts_as_message("sendMessage") and counts_as_message("editMessageText")
    assert counts_as_message("sendPhoto") and counts_as_message("copyMessage")
    assert not counts_as_message("answerCallbackQuery")
    assert not counts_as_message("getUpdates") and not counts_as_message("sendChatAction")


async def test_the_bots_limiter_counts_a_message_in_the_window_while_it_runs() -> None:
    clock = MovableClock(T0)
    window = SendWindow(clock, per_second=2)
    seen: list[int] = []

    class Inner(BaseRateLimiter[dict[str, Any]]):
        async def initialize(self) -> None: ...

        async def shutdown(self) -> None: ...

        async def process_request(self, callback: Any, args: Any, kwargs: Any, *rest: Any) -> Any:
            seen.append(window._outside)
            return await callback(*args, **kwargs)

    async def call() -> bool:
        return True

    limiter = SharedWindowLimiter(Inner(), window)
    assert await limiter.process_request(call, (), {}, "sendMessage", {}, None) is True
    assert await limiter.process_request(call, (), {}, "answerCallbackQuery", {}, None) is True
    assert seen == [1, 0]  # the message ran counted; the press's answer did not
    assert len(window._outside_free_at) == 1  # and its slot stays taken a second after it
