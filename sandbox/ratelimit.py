"""Exact, thread-safe counters behind the simulated rate limits."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowResult:
    """Outcome of one hit on a sliding window."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # when the oldest counted hit leaves the window (same clock as ``at``)

    def seconds_to_reset(self, now: float) -> int:
        """Whole seconds until a slot frees, at least 1 (what Retry-After style headers carry)."""
        return max(1, math.ceil(self.reset_at - now))


class SlidingWindow:
    """Counts hits per key over the last ``seconds``, by arrival time.

    A hit at ``t`` stops counting at exactly ``t + seconds``, so a client that spaces its calls by
    the window never sees a refusal. Refused hits are not counted: a throttled client is not
    punished twice.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._hits: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, at: float) -> WindowResult:
        """Try to count a hit arriving at ``at`` against ``limit``."""
        with self._lock:
            hits = self._live_hits(key, at)
            if len(hits) >= limit:
                return WindowResult(False, limit, 0, hits[0] + self.seconds)
            # Concurrent handlers may reach the lock slightly out of arrival order.
            bisect.insort(hits, at)
            return WindowResult(True, limit, limit - len(hits), hits[0] + self.seconds)

    def _live_hits(self, key: str, at: float) -> list[float]:
        hits = self._hits.setdefault(key, [])
        del hits[: bisect.bisect_right(hits, at - self.seconds)]
        return hits

    def clear(self) -> None:
        """Forget every hit."""
        with self._lock:
            self._hits.clear()


class DailyCounter:
    """Counts hits per UTC calendar day (Constant Contact's quota resets at 00:00 UTC)."""

    def __init__(self) -> None:
        self._day = ""
        self._count = 0

    def exhausted(self, limit: int, wall: float) -> bool:
        """Whether ``limit`` hits were already counted today. Callers hold their own lock."""
        self._roll(wall)
        return self._count >= limit

    def add(self, wall: float) -> None:
        """Count one hit today."""
        self._roll(wall)
        self._count += 1

    def _roll(self, wall: float) -> None:
        day = time.strftime("%Y-%m-%d", time.gmtime(wall))
        if day != self._day:
            self._day, self._count = day, 0

    def clear(self) -> None:
        """Forget today's hits."""
        self._day, self._count = "", 0


class InFlight:
    """Counts requests being served at once, per key, and the most there were at once."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        # Kept at admission, under the lock: a client sampling ``count`` misses short peaks.
        self._peaks: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def enter(self, key: str, limit: int | None) -> Iterator[bool]:
        """Yield whether the request fits under ``limit``; only admitted ones count as in flight."""
        with self._lock:
            current = self._counts.get(key, 0)
            admitted = limit is None or current < limit
            if admitted:
                self._counts[key] = current + 1
                self._peaks[key] = max(self._peaks.get(key, 0), current + 1)
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self._counts[key] -= 1

    def count(self, key: str) -> int:
        """Requests in flight for ``key`` right now."""
        with self._lock:
            return self._counts.get(key, 0)

    def peak(self, key: str) -> int:
        """The most requests ``key`` had in flight at once since the last ``reset_peaks``."""
        with self._lock:
            return self._peaks.get(key, 0)

    def reset_peaks(self) -> None:
        """Start every peak again from the requests in flight now."""
        with self._lock:
            self._peaks = dict(self._counts)
