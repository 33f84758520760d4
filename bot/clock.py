"""The injected clock: real time in production, fixed or movable time in tests and the demo."""

from __future__ import annotations

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


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """Return the real current time in UTC."""
        return datetime.fromtimestamp(_time.time(), tz=UTC)

    def real_delay(self, moment: datetime) -> float | None:
        """Real seconds until `moment`."""
        return max((moment - self.now()).total_seconds(), 0.0)


class MovableClock:
    """A clock that stands still until a test or the demo moves it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def real_delay(self, moment: datetime) -> float | None:
        """Wait for nothing: this clock moves only when a test or the demo moves it."""
        return 0.0 if moment <= self._now else None

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward and return the new time."""
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to a moment (never backwards)."""
        moment = moment.astimezone(UTC)
        if moment < self._now:
            raise ValueError("time only moves forward")
        self._now = moment


class ScaledClock:
    """Accelerated time: `speed` simulated seconds pass for every real second."""

    def __init__(self, start: datetime, speed: float) -> None:
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._origin = _time.monotonic()
        self._skipped = timedelta(0)

    def now(self) -> datetime:
        """Return the simulated current time."""
        elapsed = (_time.monotonic() - self._origin) * self._speed
        return self._start + timedelta(seconds=elapsed) + self._skipped

    def real_delay(self, moment: datetime) -> float | None:
        """Real seconds until the simulated clock reaches `moment`."""
        return max((moment - self.now()).total_seconds() / self._speed, 0.0)

    def skip(self, delta: timedelta) -> None:
        """Jump forward at once (a quiet stretch of the day)."""
        self._skipped += delta


def utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; refuse naive ones."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: times must carry a zone")
    return value.astimezone(UTC)
