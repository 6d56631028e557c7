"""Injected failures: error statuses, dropped connections, latency and expired credentials."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

FaultKind = Literal["status", "drop", "latency", "expire_token"]
FAULT_KINDS: tuple[FaultKind, ...] = ("status", "drop", "latency", "expire_token")
PROVIDERS = (
    "alta",
    "fernand",
    "zoho",
    "bigin",
    "zoho-accounts",
    "constantcontact",
    "constantcontact-token",
)


@dataclass(frozen=True)
class Fault:
    """A failure to inject into matching provider requests (never into ``/_sandbox`` routes).

    ``kind``: ``status`` answers ``status`` with the provider's own error body (its own 429
    signal for 429); ``drop`` closes the connection without a response; ``latency`` waits
    ``seconds`` and then answers normally; ``expire_token`` answers the provider's
    expired-credential error and revokes the presented access token.

    ``provider`` is a provider name or ``"*"``; ``method`` and ``path_contains`` (matched against
    the full received path, without the query) narrow it further. ``probability`` draws from the
    sandbox's seeded generator, once per otherwise matching request; ``count`` caps how many
    requests the fault is applied to.
    """

    provider: str = "*"
    kind: FaultKind = "status"
    status: int = 500
    seconds: float = 0.0
    probability: float = 1.0
    count: int | None = None
    method: str | None = None
    path_contains: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if self.provider != "*" and self.provider not in PROVIDERS:
            raise ValueError(f"provider must be '*' or one of {PROVIDERS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        if self.seconds < 0:
            raise ValueError("seconds must be >= 0")
        if not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")

    def matches(self, provider: str, method: str, raw_path: str) -> bool:
        """Whether the filters select this request (probability and count aside)."""
        return (
            self.provider in ("*", provider)
            and (self.method is None or self.method.upper() == method)
            and (self.path_contains is None or self.path_contains in raw_path)
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build from the control API's JSON; unknown keys and wrong types raise ``ValueError``."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        try:
            return cls(
                provider=str(data.get("provider", "*")),
                kind=cast(FaultKind, str(data.get("kind", "status"))),
                status=int(data.get("status", 500)),
                seconds=float(data.get("seconds", 0.0)),
                probability=float(data.get("probability", 1.0)),
                count=None if data.get("count") is None else int(data["count"]),
                method=None if data.get("method") is None else str(data["method"]),
                path_contains=None
                if data.get("path_contains") is None
                else str(data["path_contains"]),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from exc

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


class FaultBook:
    """Active faults in the order they were added; the first one that fires wins."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._entries: list[tuple[Fault, list[int | None]]] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Activate a fault."""
        with self._lock:
            self._entries.append((fault, [fault.count]))

    def clear(self) -> None:
        """Deactivate every fault."""
        with self._lock:
            self._entries.clear()

    def active(self) -> list[tuple[Fault, int | None]]:
        """Faults with how many applications each has left (None = unlimited)."""
        with self._lock:
            return [(fault, left[0]) for fault, left in self._entries]

    def pick(self, provider: str, method: str, raw_path: str) -> Fault | None:
        """The fault to apply to this request, consuming one of its ``count``."""
        with self._lock:
            for fault, left in self._entries:
                if left[0] == 0 or not fault.matches(provider, method, raw_path):
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                if left[0] is not None:
                    left[0] -= 1
                return fault
        return None
