"""The one HTTP client every provider talks through.

This is the only module of ``bot``, ``commands`` and ``storage`` that imports
httpx: providers see :class:`ApiResponse`, our own small value type, so a test
can swap the transport (``httpx.MockTransport``) or point everything at the
sandbox by changing one object, and a future switch of HTTP library touches
one file.

One :class:`HttpClient` owns one ``httpx.Client``.  Each provider gets a
:class:`ProviderSession` from it, which adds, per request and in this order:

1. the dry-run guard (anything but GET is refused before it leaves);
2. stamina retries around each attempt, for 429, 502/503/504 and transport
   errors, waiting what the provider asked for (``Retry-After``, a reset epoch,
   an error key) when it said, exponential backoff when it did not;
3. client-side pacing inside each attempt (pyrate-limiter rates and a
   concurrency cap), so that retries are paced too;
4. auth headers, with one token refresh and one resend on a 401.

Writes are retried too: every write untag makes is effect-idempotent (removing
an absent tag or adding a present one is a no-op at every provider).  A write
whose answer was lost (a timeout or a dropped connection after the request went
out) may have been applied, so when such a request finally fails its error is
marked ``in_doubt`` and says so: the failure never reads as "nothing changed".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import httpx
import stamina
from pyrate_limiter import Limiter, Rate

from commands.errors import (
    AuthenticationFailed,
    DryRunRefused,
    ProviderError,
    ProviderStatusError,
    ProviderUnavailable,
    ProviderUnreachable,
    QuotaExceeded,
    RateLimited,
)

__all__ = [
    "IN_DOUBT_NOTE",
    "ApiResponse",
    "Auth",
    "DailyQuota",
    "HttpClient",
    "Pacer",
    "ProviderSession",
    "RetryPolicy",
    "StaticAuth",
    "concurrency_cap",
    "mark_in_doubt",
    "rate_limit",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
IN_DOUBT_NOTE = (
    "an attempt was sent but its answer was lost, so {provider} may have applied it; "
    "Retry failed checks and finishes it"
)


@dataclass(frozen=True)
class ApiResponse:
    """A provider's answer, detached from the HTTP library."""

    status_code: int
    headers: Mapping[str, str]  # lower-cased names
    content: bytes
    method: str
    path: str  # path and query, never the host: safe to show in messages

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        """The decoded JSON body, or ``None`` for an empty or non-JSON body."""
        import json

        if not self.content:
            return None
        try:
            return json.loads(self.content)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Auth(Protocol):
    """Puts credentials on a request; may refresh them once after a 401."""

    def headers(self) -> dict[str, str]:
        """Headers to send now (may block while a token is fetched)."""
        ...

    def refresh(self, rejected: Mapping[str, str]) -> bool:
        """Get fresh credentials after ``rejected`` were refused; False if it cannot."""
        ...


@dataclass(frozen=True)
class StaticAuth:
    """Fixed headers (API keys, personal tokens): nothing to refresh."""

    fixed: Mapping[str, str]

    def headers(self) -> dict[str, str]:
        return dict(self.fixed)

    def refresh(self, rejected: Mapping[str, str]) -> bool:
        return False

    def __repr__(self) -> str:  # the headers are credentials
        return "StaticAuth(<redacted>)"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``max_wait`` caps a provider-requested wait: longer fails fast."""

    attempts: int = 4
    timeout: float = 180.0
    max_wait: float = 120.0
    wait_initial: float = 0.5
    wait_max: float = 8.0


class Pacer(Protocol):
    """Client-side rate limiting: a context held for the duration of one attempt."""

    def __call__(self, method: str) -> AbstractContextManager[None]: ...


def rate_limit(
    limit: int,
    per_seconds: float,
    *,
    name: str,
    writes_only: bool = False,
    reads_only: bool = False,
) -> Pacer:
    """At most ``limit`` requests in any ``per_seconds`` window (sliding log), blocking until free.

    The window is widened by a margin so that network jitter between our clock
    and the provider's cannot push a request into a window the provider has
    full: 2 % of the window, at most 250 ms, plus 20 ms.  Jitter does not grow
    with the window, so the cap matters for minute-long windows: a flat 2 %
    left 1.2 s of every minute unused (measured by ``bench.throughput``).
    """
    if limit <= 0:
        return _no_pacing
    window_ms = int(per_seconds * 1000 + min(per_seconds * 1000 * 0.02, 250.0)) + 20
    limiter = Limiter(Rate(limit, window_ms))

    @contextmanager
    def pace(method: str) -> Iterator[None]:
        is_read = method.upper() == "GET"
        if (writes_only and is_read) or (reads_only and not is_read):
            yield
            return
        limiter.try_acquire(name, blocking=True)
        yield

    return pace


def concurrency_cap(limit: int) -> Pacer:
    """At most ``limit`` requests in flight at once (Zoho counts concurrency, not rate)."""
    if limit <= 0:
        return _no_pacing
    slots = threading.BoundedSemaphore(limit)

    @contextmanager
    def pace(method: str) -> Iterator[None]:
        with slots:
            yield

    return pace


@contextmanager
def _no_pacing(method: str) -> Iterator[None]:
    yield


Claim = Callable[[str, date, int, int], int]
"""``(provider, day, wanted, limit) -> granted``: requests taken from a day's quota."""


class DailyQuota:
    """Counts requests per UTC day and refuses past the provider's daily quota.

    A sliding window would not match a quota that resets at 00:00 UTC, so this
    is a count keyed by date.  Refusing client-side saves the request and tells
    the user when the quota resets.  The count lives where ``claim`` keeps it
    (:class:`storage.QuotaLedger`: shared by every process on the database);
    requests are claimed ``block`` at a time so that the ledger is written once
    per block, not once per request.  Without ``claim`` the count is this
    process's own.
    """

    def __init__(
        self,
        provider: str,
        limit: int,
        *,
        claim: Claim | None = None,
        block: int = 20,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._provider = provider
        self._limit = limit
        self._claim = claim or _InMemoryCount().claim
        self._block = max(1, block)
        self._clock = clock
        self._lock = threading.Lock()
        self._day = clock().date()
        self._allowance = 0  # claimed for today and not used yet

    def __call__(self, method: str) -> AbstractContextManager[None]:
        if self._limit <= 0:
            return nullcontext()
        with self._lock:
            now = self._clock()
            if now.date() != self._day:
                self._day, self._allowance = now.date(), 0
            if self._allowance == 0:
                self._allowance = self._claim(self._provider, self._day, self._block, self._limit)
            if self._allowance == 0:
                raise QuotaExceeded(
                    self._provider,
                    f"daily quota of {self._limit} requests is spent; it resets at 00:00 UTC",
                    resets_at=next_utc_midnight(now),
                )
            self._allowance -= 1
        return nullcontext()


class _InMemoryCount:
    """A :data:`Claim` over this process's own count, for tests and throwaway use."""

    def __init__(self) -> None:
        self._used: dict[tuple[str, date], int] = {}

    def claim(self, provider: str, day: date, wanted: int, limit: int) -> int:
        used = self._used.get((provider, day), 0)
        granted = max(0, min(wanted, limit - used))
        self._used = {(provider, day): used + granted}  # yesterday's count is of no use
        return granted


def next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse ``Retry-After`` (seconds or an HTTP date); ``None`` when absent or nonsense."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # nan or inf
        return None
    return max(seconds, 0.0)


Classifier = Callable[[ApiResponse], ProviderError | None]
"""Turns a response into the retryable error it means (429, 5xx), or ``None`` to return it."""


def default_classifier(provider: str) -> Classifier:
    """429 honouring ``Retry-After``, and 502/503/504 as unavailable."""

    def classify(response: ApiResponse) -> ProviderError | None:
        if response.status_code == 429:
            wait = retry_after_seconds(response.header("retry-after"))
            return RateLimited(provider, "rate limited (429)", retry_after=wait)
        if response.status_code in RETRYABLE_STATUSES:
            return ProviderUnavailable(
                provider, f"temporarily unavailable ({response.status_code})"
            )
        return None

    return classify


@dataclass
class ProviderSession:
    """One provider's view of the shared client: its base URL, auth, pacing and retry rules."""

    client: HttpClient
    provider: str
    base_url: Callable[[], str]
    auth: Auth
    pacers: tuple[Pacer, ...] = ()
    classify: Classifier | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("DELETE", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> ApiResponse:
        """Send with retries, pacing and auth; return any answer that is not retryable.

        ``path`` is appended to the base URL as given, so a provider that must
        control percent-encoding (Fernand's tag in the path, Bigin's comma
        separated query) builds it itself.  Non-2xx answers that are not
        retryable are returned for the provider to read (Zoho's per-record
        errors live in 207 and 400 bodies); use :meth:`raise_for_status`.
        """
        method = method.upper()
        if self.client.dry_run and method != "GET":
            raise DryRunRefused(self.provider, f"dry run: refused {method} {_path_only(path)}")
        classify = self.classify or default_classifier(self.provider)
        sent_blind = False  # some attempt's answer was lost after the request went out
        try:
            for attempt in stamina.retry_context(
                on=self._retry_hook,
                attempts=self.policy.attempts,
                timeout=self.policy.timeout,
                wait_initial=self.policy.wait_initial,
                wait_max=self.policy.wait_max,
            ):
                with attempt:
                    try:
                        response = self._send_authenticated(method, path, params, json)
                    except ProviderError as exc:
                        sent_blind = sent_blind or exc.in_doubt
                        raise
                    problem = classify(response)
                    if problem is not None:
                        raise problem
                    return response
        except ProviderError as exc:
            # The last attempt's error is not the whole story: an earlier one may have
            # been applied although we never saw its answer.
            if sent_blind:
                raise mark_in_doubt(exc, IN_DOUBT_NOTE.format(provider=self.provider)) from None
            raise
        raise AssertionError(
            "unreachable: stamina raises when attempts run out"
        )  # pragma: no cover

    def raise_for_status(self, response: ApiResponse, *, code: str | None = None) -> None:
        """Raise :class:`ProviderStatusError` for a non-2xx answer, with the provider's code."""
        if response.ok:
            return
        raise ProviderStatusError(
            self.provider,
            f"{response.method} {_path_only(response.path)} answered {response.status_code}"
            + (f" {code}" if code else ""),
            status_code=response.status_code,
            code=code,
        )

    def _retry_hook(self, exc: Exception) -> bool | float:
        if isinstance(exc, QuotaExceeded):
            return False
        if isinstance(exc, RateLimited):
            if exc.retry_after is None:
                return True
            if exc.retry_after > self.policy.max_wait:
                return False
            return max(exc.retry_after, 0.05)
        return isinstance(exc, ProviderUnavailable)

    def _send_authenticated(
        self, method: str, path: str, params: Mapping[str, str] | None, json: Any
    ) -> ApiResponse:
        with self._paced(method):
            headers = self.auth.headers()
            response = self.client.send(
                self.provider, method, self._url(path), headers, params, json
            )
        if response.status_code == 401 and self.auth.refresh(headers):
            log.info("%s: access token refused, refreshed once and retrying", self.provider)
            with self._paced(method):
                headers = self.auth.headers()
                response = self.client.send(
                    self.provider, method, self._url(path), headers, params, json
                )
        if response.status_code in (401, 403) and _is_auth_failure(response):
            raise AuthenticationFailed(
                self.provider, f"credentials refused ({response.status_code}); check the token"
            )
        return response

    @contextmanager
    def _paced(self, method: str) -> Iterator[None]:
        with _enter_all(self.pacers, method):
            yield

    def _url(self, path: str) -> str:
        return self.base_url().rstrip("/") + path


def _is_auth_failure(response: ApiResponse) -> bool:
    # A 403 can also mean "no permission on this record", which is a per-record
    # outcome, not a credentials problem; only a 401 is always about credentials.
    return response.status_code == 401


@contextmanager
def _enter_all(pacers: tuple[Pacer, ...], method: str) -> Iterator[None]:
    if not pacers:
        yield
        return
    with pacers[0](method), _enter_all(pacers[1:], method):
        yield


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]


class HttpClient:
    """Owns the single ``httpx.Client``; hands out :class:`ProviderSession` objects.

    ``transport`` is the test seam (``httpx.MockTransport``); ``dry_run``
    refuses every non-GET request of every session, so a dry run provably
    changes nothing.  Token requests go through :meth:`token_request`, which
    dry-run lets through, because reading a preview needs a valid token.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        dry_run: bool = False,
        transport: Any = None,
        user_agent: str = "untag/0.1",
    ) -> None:
        self.dry_run = dry_run
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            headers={"User-Agent": user_agent},
            follow_redirects=False,
        )
        # The request line of httpx's INFO log carries query strings, where
        # some OAuth examples put secrets: keep these loggers quiet.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)

    def session(
        self,
        provider: str,
        *,
        base_url: str | Callable[[], str],
        auth: Auth,
        pacers: tuple[Pacer, ...] = (),
        classify: Classifier | None = None,
        policy: RetryPolicy | None = None,
    ) -> ProviderSession:
        base = base_url if callable(base_url) else _constant(base_url)
        return ProviderSession(
            client=self,
            provider=provider,
            base_url=base,
            auth=auth,
            pacers=pacers,
            classify=classify,
            policy=policy or RetryPolicy(),
        )

    def send(
        self,
        provider: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> ApiResponse:
        """One HTTP exchange; transport failures become :class:`ProviderUnavailable`."""
        try:
            response = self._client.request(
                method, url, headers=dict(headers), params=params, json=json
            )
        except _UNREACHABLE as exc:
            raise _unreachable(provider, exc) from None
        except httpx.TimeoutException as exc:
            error = ProviderUnavailable(provider, f"timed out ({type(exc).__name__})")
            raise _lost_answer(error, exc, method) from None
        except httpx.TransportError as exc:
            error = ProviderUnavailable(provider, f"connection failed ({type(exc).__name__})")
            raise _lost_answer(error, exc, method) from None
        return _detach(response, method)

    def token_request(
        self,
        provider: str,
        url: str,
        *,
        form: Mapping[str, str],
        basic: tuple[str, str] | None = None,
        attempts: int = 3,
    ) -> ApiResponse:
        """POST an OAuth form (secrets in the body, never the URL), retrying transport errors only.

        A token endpoint must never be hammered (Zoho blocks a refresh token
        after ten grants in ten minutes), so only failures where the request
        cannot have been granted, or the server said it is down, are retried.
        """
        extra: dict[str, Any] = {"auth": httpx.BasicAuth(*basic)} if basic else {}
        for attempt in stamina.retry_context(on=ProviderUnavailable, attempts=attempts, timeout=60):
            with attempt:
                try:
                    response = self._client.post(url, data=dict(form), **extra)
                except _UNREACHABLE as exc:
                    raise _unreachable(provider, exc, what="the token endpoint") from None
                except httpx.TimeoutException:
                    raise ProviderUnavailable(provider, "token endpoint timed out") from None
                except httpx.TransportError as exc:
                    raise ProviderUnavailable(
                        provider, f"token endpoint unreachable ({type(exc).__name__})"
                    ) from None
                if response.status_code in (502, 503, 504):
                    raise ProviderUnavailable(
                        provider, f"token endpoint unavailable ({response.status_code})"
                    )
                return _detach(response, "POST")
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._client.close()


# Failures before any byte of the request left: the provider cannot have seen it.
_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


# No connection at all: the service is down, or its URL is wrong.
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout)


def _unreachable(
    provider: str, cause: httpx.TransportError, *, what: str = ""
) -> ProviderUnreachable:
    target = f" to {what}" if what else ""
    return ProviderUnreachable(
        provider,
        f"could not connect{target} ({type(cause).__name__}): the service is down or its "
        "URL is wrong; nothing was sent",
    )


def _lost_answer(error: ProviderError, cause: httpx.TransportError, method: str) -> ProviderError:
    """Mark a write whose request may have reached the provider as in doubt."""
    if method != "GET" and not isinstance(cause, _NEVER_SENT):
        error.in_doubt = True
    return error


def mark_in_doubt(error: ProviderError, why: str) -> ProviderError:
    """``error``, marked in doubt, with ``why`` the change may have been applied.

    Used when a request fails for good after an earlier attempt of it (or an accepted
    activity) may have taken effect: the failure must not read as "nothing was changed".
    """
    error.in_doubt = True
    error.doubt = error.doubt or why
    return error


def _constant(value: str) -> Callable[[], str]:
    return lambda: value


def _detach(response: httpx.Response, method: str) -> ApiResponse:
    url = response.request.url
    path = url.raw_path.decode("ascii", "replace")
    return ApiResponse(
        status_code=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        content=response.read(),
        method=method,
        path=path,
    )
