"""Updates of different people at once, each person's in the order they sent them.

python-telegram-bot handles one update at a time by default: a county-wide storm of 100 reports
then waits in one line, each press paying for the previous presses' database work and calls to
Telegram (bench/storm.py measured 140–180 ms a press, the last school paged 15–18 s after the
taps). Its `concurrent_updates` runs updates side by side, but with no order per person, and the
conversations (handlers/conversations.py) read and write one draft per person: two messages of
one person handled at once could both read the same step.

`PerPersonUpdates` keeps one line per chat (a private chat is one person's; an update with no
chat, such as an inline query, waits in its person's line) and runs the lines side by side, at
most `workers` updates doing work at once. An update waiting behind an earlier one of the same
chat takes no worker, so one person flooding the bot cannot hold up everyone else.
python-telegram-bot's own limit (`max_concurrent_updates`, which counts waiting updates too) is
set far above `workers`.

`answered` tells the engine when the updates in hand are done (jobs/engine.py): a page woken by a
report waits for the people still tapping, at most a moment, so that answering them is not queued
behind the paging's database work and sends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# python-telegram-bot's own limit on updates in flight, waiting ones included.
IN_FLIGHT = 4096


def line_of(update: object) -> int | None:
    """Whose line an update waits in: its chat, else its person; None for neither.

    A private chat is its person's. A group keeps one line for everyone in it, so the group's
    messages are answered in the order they were written there; a person's presses in a group
    act on their own matters through their private chat (handlers/buttons.py).
    """
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None


class PerPersonUpdates(BaseUpdateProcessor):
    """One line per chat, the lines side by side, `workers` updates at work at most."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        super().__init__(max_concurrent_updates=IN_FLIGHT)
        self.workers = workers
        self._work = asyncio.Semaphore(workers)
        self._lines: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}
        self.in_hand = 0  # updates taken and not yet handled, waiting ones included
        self._none_in_hand = asyncio.Event()
        self._none_in_hand.set()

    async def answered(self, within: float) -> bool:
        """Wait until no update is in hand, at most `within` real seconds; False if time ran out.

        Real seconds, like Telegram's pace the wait is for: a test's clock standing still must
        not hold the engine for ever.
        """
        if self.in_hand:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._none_in_hand.wait(), within)
        return not self.in_hand

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the chat's earlier updates, then for a worker, then handle it."""
        self.in_hand += 1
        self._none_in_hand.clear()
        try:
            await self._process(update, coroutine)
        finally:
            self.in_hand -= 1
            if not self.in_hand:
                self._none_in_hand.set()

    async def _process(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = line_of(update)
        if key is None:
            async with self._work:
                await coroutine
            return
        line = self._lines.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with line, self._work:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:  # nobody else in this person's line: forget it
                del self._waiting[key]
                del self._lines[key]

    async def initialize(self) -> None:
        """Nothing to prepare."""

    async def shutdown(self) -> None:
        """Nothing to release."""
