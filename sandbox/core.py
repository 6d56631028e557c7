"""Types shared by every simulator: requests, responses, configuration, time and JSON helpers."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus


class Clock:
    """Real time. Windows use ``monotonic``; epoch values in headers and bodies use ``time``."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        return time.monotonic()

    def time(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()


class ManualClock(Clock):
    """A clock that moves only when told to, so tests cross rate-limit windows without sleeping."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """The current manual time."""
        with self._lock:
            return self._now

    def time(self) -> float:
        """The current manual time, read as Unix epoch seconds (default start 2026-01-01T00:00Z)."""
        return self.monotonic()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        with self._lock:
            self._now += seconds


@dataclass
class Credentials:
    """Secrets the simulators accept; defaults are the demo credentials (see ``Sandbox.env``)."""

    alta_token: str = "alta-demo-token"
    alta_account_id: str | None = None
    fernand_key: str = "sk_demo_fernand"
    zoho_client_id: str = "zoho-demo-client"
    zoho_client_secret: str = "zoho-demo-secret"
    zoho_refresh_token: str = "zoho-demo-refresh"
    cc_client_id: str = "cc-demo-client"
    cc_client_secret: str = "cc-demo-secret"
    cc_refresh_token: str = "cc-demo-refresh"
    cc_access_token: str = "cc-demo-access"
    cc_rotating: bool = True


@dataclass
class Limits:
    """Provider rate limits; read on every request, so they may be changed while serving.

    ``0`` or ``None`` disables a limit.
    """

    alta_per_minute: int | None = 100
    fernand_reads_per_minute: int | None = 20
    fernand_writes_per_minute: int | None = 5
    cc_per_second: int | None = 4
    cc_per_day: int | None = 10_000
    zoho_concurrency: int | None = 10
    zoho_tokens_per_10_min: int | None = 10

    def update(self, values: Mapping[str, Any]) -> None:
        """Set the named limits; unknown names raise ``KeyError`` so typos do not pass silently."""
        for name, value in values.items():
            if name not in self.__dataclass_fields__:
                raise KeyError(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} must be an integer or null")
            setattr(self, name, value)


def active_limit(value: int | None) -> int | None:
    """The limit to enforce, or ``None`` when it is disabled (0 or None)."""
    return value if value else None


@dataclass(frozen=True)
class Request:
    """A request as a simulator sees it; ``path`` is relative to the provider prefix, encoded."""

    method: str
    raw_path: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    arrived: float

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def params(self) -> dict[str, str]:
        """Query parameters decoded form-style (``+`` is a space); the first occurrence wins."""
        return first_values(self.query)

    def raw_params(self) -> dict[str, str]:
        """Query parameters with values exactly as sent, for APIs that split before decoding."""
        found: dict[str, str] = {}
        for pair in self.query.split("&"):
            if not pair:
                continue
            name, _, value = pair.partition("=")
            found.setdefault(unquote_plus(name), value)
        return found

    def segments(self) -> list[str]:
        """The encoded path split on ``/``, without the empty leading piece."""
        return self.path.split("/")[1:] if self.path.startswith("/") else [self.path]


def first_values(encoded: str) -> dict[str, str]:
    """Decode a query string or form body, keeping the first value of repeated names."""
    found: dict[str, str] = {}
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        found.setdefault(name, value)
    return found


@dataclass
class Response:
    """What a simulator answers. A 204 or empty body is sent without a content type."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON (for in-process callers and tests)."""
        return json.loads(self.body)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response with compact encoding."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    merged = {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
    return Response(status, body, merged)


def iso(ts: float) -> str:
    """ISO-8601 UTC timestamp with second precision, as the providers print them."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class IdSource:
    """Deterministic random ids and tokens, so a given seed reproduces the same run."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def uuid4(self) -> str:
        """A version-4 UUID string."""
        with self._lock:
            bits = self._rng.getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))

    def hex(self, length: int) -> str:
        """``length`` random lowercase hex digits."""
        with self._lock:
            bits = self._rng.getrandbits(length * 4)
        return f"{bits:0{length}x}"


@dataclass
class Context:
    """Everything a simulator needs from the sandbox besides its own store."""

    clock: Clock
    credentials: Credentials
    limits: Limits
    ids: IdSource
    base_url: Callable[[], str]


class ProviderApi:
    """Base class for a simulated provider; the server calls these hooks around each request."""

    def handle(self, req: Request) -> Response:
        """Answer a request that passed fault injection and admission."""
        raise NotImplementedError

    def error(self, status: int, req: Request) -> Response:
        """This provider's error answer for ``status`` (its own 429 signal for 429)."""
        raise NotImplementedError

    def expired(self, req: Request) -> Response:
        """This provider's answer to an expired credential; token providers also revoke it."""
        return self.error(401, req)

    @contextmanager
    def admit(self, req: Request) -> Iterator[Response | None]:
        """Hold the request's place while it is served; yield a refusal instead to reject it."""
        yield None
