"""Telegram's flood limits: 30 messages a second, 1 a second per chat, 20 a minute per group."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class FloodLimiter:
    """Decides whether a sending call fits Telegram's limits, else how long to wait."""

    monotonic: Callable[[], float] = time.monotonic
    overall_per_second: int = 30
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: int = 20
    _overall: deque[float] = field(default_factory=deque)
    _private: dict[int, _Bucket] = field(default_factory=dict)
    _groups: dict[int, deque[float]] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget every past call."""
        self._overall.clear()
        self._private.clear()
        self._groups.clear()

    def acquire(self, chat_id: int, *, is_group: bool) -> int | None:
        """Count one message to ``chat_id``; return None if allowed, else retry_after seconds."""
        now = self.monotonic()
        _trim(self._overall, now - 1.0)
        waits = [0.0]
        if len(self._overall) >= self.overall_per_second:
            waits.append(self._overall[0] + 1.0 - now)
        if is_group:
            sent = self._groups.setdefault(chat_id, deque())
            _trim(sent, now - 60.0)
            if len(sent) >= self.group_per_minute:
                waits.append(sent[0] + 60.0 - now)
        else:
            bucket = self._private.setdefault(chat_id, _Bucket(float(self.private_burst), now))
            bucket.tokens = min(
                float(self.private_burst),
                bucket.tokens + (now - bucket.updated) * self.private_per_second,
            )
            bucket.updated = now
            if bucket.tokens < 1.0:
                waits.append((1.0 - bucket.tokens) / self.private_per_second)
        wait = max(waits)
        if wait > 0:
            return max(1, math.ceil(wait))
        self._overall.append(now)
        if is_group:
            self._groups[chat_id].append(now)
        else:
            self._private[chat_id].tokens -= 1.0
        return None


def _trim(stamps: deque[float], horizon: float) -> None:
    while stamps and stamps[0] <= horizon:
        stamps.popleft()
