"""The injected clock: real time in production, fixed or movable time in tests and the demo."""

from __future__ import annotations

import asyncio
import time as _time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current time in UTC."""
        ...

    def real_delay(self, moment: datetime) -> float | None:
        """Real seconds until the clock shows `moment`; None if only a test moves it."""
        ...

    async def sleep_until(self, moment: datetime) -> None:
        """Return once the clock shows `moment` or later."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """Return the real current time in UTC."""
        return datetime.fromtimestamp(_time.time(), tz=UTC)

    def real_delay(self, moment: datetime) -> float | None:
        """Real seconds until `moment`."""
        return max((moment - self.now()).total_seconds(), 0.0)

    async def sleep_until(self, moment: datetime) -> None:
        """Sleep in real time until `moment`."""
        await asyncio.sleep(max((moment - self.now()).total_seconds(), 0.0))


class _Sleepers:
    """Tasks waiting for a clock that can jump: each jump wakes them to look again."""

    def __init__(self) -> None:
        self._waiting: dict[asyncio.Future[None], datetime] = {}

    def earliest(self) -> datetime | None:
        """The earliest moment anyone waits for, or None when nobody waits."""
        return min(self._waiting.values(), default=None)

    async def wait(self, moment: datetime, real_seconds: float | None) -> None:
        """Wait until woken or `real_seconds` passed (forever when None)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[future] = moment
        try:
            await asyncio.wait_for(future, real_seconds)
        except TimeoutError:
            pass
        finally:
            del self._waiting[future]

    def wake_all(self) -> None:
        """Wake every waiter (the clock moved)."""
        for future in self._waiting:
            if not future.done():
                future.set_result(None)


class MovableClock:
    """A clock that stands still until a test or the demo moves it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._sleepers = _Sleepers()

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def real_delay(self, moment: datetime) -> float | None:
        """Wait for nothing: this clock moves only when a test or the demo moves it."""
        return 0.0 if moment <= self._now else None

    async def sleep_until(self, moment: datetime) -> None:
        """Wait until a test or the demo moves the clock to `moment` or past it."""
        while self._now < moment:
            await self._sleepers.wait(moment, None)

    def earliest_sleeper(self) -> datetime | None:
        """The earliest moment a `sleep_until` waits for, or None when nobody waits."""
        return self._sleepers.earliest()

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward and return the new time."""
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        self._now += delta
        self._sleepers.wake_all()
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to a moment (never backwards)."""
        moment = moment.astimezone(UTC)
        if moment < self._now:
            raise ValueError("time only moves forward")
        self._now = moment
        self._sleepers.wake_all()


class ScaledClock:
    """Accelerated time: `speed` simulated seconds pass for every real second."""

    def __init__(self, start: datetime, speed: float) -> None:
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._origin = _time.monotonic()
        self._skipped = timedelta(0)
        self._sleepers = _Sleepers()

    def now(self) -> datetime:
        """Return the simulated current time."""
        elapsed = (_time.monotonic() - self._origin) * self._speed
        return self._start + timedelta(seconds=elapsed) + self._skipped

    def real_delay(self, moment: datetime) -> float | None:
        """Real seconds until the simulated clock reaches `moment`."""
        return max((moment - self.now()).total_seconds() / self._speed, 0.0)

    async def sleep_until(self, moment: datetime) -> None:
        """Sleep the scaled real time until `moment`, or less if the clock skips ahead."""
        while (delay := self.real_delay(moment)) is not None and delay > 0:
            await self._sleepers.wait(moment, delay)

    def skip(self, delta: timedelta) -> None:
        """Jump forward at once (a quiet stretch of the day)."""
        self._skipped += delta
        self._sleepers.wake_all()


def utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; refuse naive ones."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: times must carry a zone")
    return value.astimezone(UTC)
