"""End-to-end fixtures: the real Application against the local Bot API emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.sandbox.stack import LocalStack


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))


@pytest.fixture
async def stack(database_url: str, clock: MovableClock) -> AsyncIterator[LocalStack]:
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with LocalStack(settings, clock) as running:
        yield running
