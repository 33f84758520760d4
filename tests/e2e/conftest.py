"""End-to-end fixtures: the real Application against the local Bot API emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.clock import MovableClock
from bot.config import settings_from_mapping
from bot.sandbox import SimUser
from bot.sandbox.stack import LocalStack
from bot.services import accounts, roster

AFTER_SAMPLE_WEEK = datetime(2026, 12, 10, 0, 0, tzinfo=UTC)
# The sample district's time zone, in which its shifts and the tests' moments are written.
TZ = ZoneInfo("Asia/Shanghai")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of December 2026 in the sample district's time, as UTC."""
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ).astimezone(UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))


@pytest.fixture
async def stack(database_url: str, clock: MovableClock) -> AsyncIterator[LocalStack]:
    # No daily digest: the sample fixture's clock stands at 08:00 local, the digest's time, and
    # leaders would read a digest where a test waits for its answer (test_leader_digest turns
    # it on).
    settings = settings_from_mapping(
        {"database": {"url": database_url}, "digest": {"enabled": False}}, environ={}
    )
    async with LocalStack(settings, clock) as running:
        yield running


@pytest.fixture
async def sample(stack: LocalStack, clock: MovableClock) -> LocalStack:
    """The running stack with the packaged sample district imported.

    The clock moves past the sample week of shifts, so no shift reminder interrupts a test
    about something else.
    """
    assert stack.db is not None
    clock.set(AFTER_SAMPLE_WEEK)
    await roster.import_roster(
        stack.db,
        roster.sample_district_files(),
        tz=TZ,
        default_language="zh",
        now=clock.now(),
    )
    return stack


@pytest.fixture
async def day(database_url: str, clock: MovableClock) -> AsyncIterator[LocalStack]:
    """The running stack with the sample district imported at the clock's time (not moved).

    A test module sets the moment with its own `clock` fixture; the sample week's shifts then
    fall due as the clock is moved.
    """
    settings = settings_from_mapping({"database": {"url": database_url}}, environ={})
    async with LocalStack(settings, clock) as stack:
        assert stack.db is not None
        await roster.import_roster(
            stack.db, roster.sample_district_files(), tz=TZ, default_language="zh", now=clock.now()
        )
        await stack.settle()
        yield stack


async def at(stack: LocalStack, clock: MovableClock, moment: datetime) -> None:
    """Move the clock to a moment and let the bot do what falls due."""
    clock.set(moment)
    await stack.settle()


async def invite(stack: LocalStack, clock: MovableClock, staff_no: str) -> str:
    """Issue an invite code as `zhiban invite` would."""
    assert stack.db is not None
    issued = await accounts.issue_invites(
        stack.db, staff_nos=[staff_no], now=clock.now(), valid_for=timedelta(days=7)
    )
    return issued[0].code


async def linked(
    stack: LocalStack,
    clock: MovableClock,
    staff_no: str,
    user_id: int,
    name: str,
    language: str = "zh",
) -> SimUser:
    """A sample person who opened their invite link on their phone."""
    user = stack.emulator.user(user_id, name, language_code=language)
    await user.start(await invite(stack, clock, staff_no))
    await user.wait_for()
    return user
