"""Fixtures for the Bot API emulator tests: the emulator, a movable clock, a real PTB bot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sandbox_support import TOKEN, MovableClock, build_application
from telegram import Bot
from telegram.ext import Application

from bot.sandbox import BotApiEmulator


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def emu(clock: MovableClock) -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as client:
        yield client


@pytest.fixture
async def polling_app(emu: BotApiEmulator) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    app = build_application(emu)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
