"""OAuth access tokens issued by the simulated Zoho and Constant Contact authorization servers."""

from __future__ import annotations

import threading
from collections import Counter

from sandbox.core import Clock


class TokenRegistry:
    """Live access tokens per provider with their expiry, plus how many grants each provider made.

    One registry serves both providers so ``Sandbox.expire_tokens()`` reaches every token at once.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._expiry: dict[tuple[str, str], float] = {}
        self._grants: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, provider: str, token: str, ttl: float) -> None:
        """Make ``token`` valid for ``ttl`` seconds from now."""
        with self._lock:
            self._expiry[(provider, token)] = self._clock.monotonic() + ttl

    def count_grant(self, provider: str) -> None:
        """Record one successful token grant."""
        with self._lock:
            self._grants[provider] += 1

    def grants(self, provider: str) -> int:
        """Successful token grants so far."""
        with self._lock:
            return self._grants[provider]

    def valid(self, provider: str, token: str) -> bool:
        """Whether ``token`` was issued by ``provider`` and has not expired or been revoked."""
        with self._lock:
            expiry = self._expiry.get((provider, token))
            return expiry is not None and self._clock.monotonic() < expiry

    def revoke(self, provider: str, token: str) -> None:
        """Invalidate one token."""
        with self._lock:
            self._expiry.pop((provider, token), None)

    def expire_all(self) -> None:
        """Invalidate every issued token."""
        with self._lock:
            self._expiry.clear()
