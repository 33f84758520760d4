"""The sender's overall window: never more than the limit in any one second."""

from __future__ import annotations

import asyncio
import time

from bot.delivery import SendWindow


async def test_send_window_never_lets_more_than_the_limit_into_one_second() -> None:
    window = SendWindow(per_second=4)
    started: list[float] = []

    async def call() -> None:
        async with window.slot():
            started.append(time.monotonic())

    await asyncio.gather(*(call() for _ in range(9)))
    started.sort()
    for index, moment in enumerate(started):
        in_second = [t for t in started[index:] if t - moment < 1.0]
        assert len(in_second) <= 4
    assert started[-1] - started[0] < 2.5  # and it keeps the pace: 9 calls in just over 2 s
