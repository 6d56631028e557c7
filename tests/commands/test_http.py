"""The shared client: retries, Retry-After, 401 refresh, dry run, pacing guards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import stamina
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from commands.errors import (
    AuthenticationFailed,
    DryRunRefused,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from commands.http import (
    DailyQuota,
    HttpClient,
    ProviderSession,
    RetryPolicy,
    StaticAuth,
    concurrency_cap,
    retry_after_seconds,
)
from commands.oauth import Grant, TokenManager
from storage import QuotaLedger, open_database

Handler = Callable[[httpx.Request], httpx.Response]


def session_for(handler: Handler, **kwargs: object) -> tuple[ProviderSession, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = HttpClient(
        transport=httpx.MockTransport(record), dry_run=bool(kwargs.pop("dry_run", False))
    )
    session = client.session(
        "demo",
        base_url="https://api.example.test/v1",
        auth=kwargs.pop("auth", StaticAuth({"Authorization": "Bearer t0k"})),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    return session, seen


def replies(*responses: httpx.Response | Exception) -> Handler:
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


@pytest.fixture
def retry_waits() -> Iterator[list[float]]:
    """The waits stamina actually scheduled, captured through its instrumentation hook."""
    waits: list[float] = []

    def hook(details: RetryDetails) -> None:
        waits.append(details.wait_for)

    set_on_retry_hooks([hook])
    yield waits
    set_on_retry_hooks(None)


def test_429_with_retry_after_is_waited_out_and_retried(retry_waits: list[float]) -> None:
    session, seen = session_for(
        replies(
            httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json={"ok": 1})
        )
    )
    started = time.monotonic()
    response = session.get("/things")
    elapsed = time.monotonic() - started

    assert response.status_code == 200 and response.json() == {"ok": 1}
    assert len(seen) == 2
    assert retry_waits == [1.0]  # exactly what the provider asked, not our backoff
    assert elapsed >= 1.0


def test_a_wait_longer_than_the_cap_fails_fast_instead_of_hanging() -> None:
    session, seen = session_for(
        replies(httpx.Response(429, headers={"Retry-After": "3600"})),
        policy=RetryPolicy(max_wait=120),
    )
    with pytest.raises(RateLimited) as caught:
        session.get("/things")
    assert caught.value.retry_after == 3600
    assert len(seen) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried(status: int) -> None:
    session, seen = session_for(replies(httpx.Response(status), httpx.Response(200)))
    with stamina.set_testing(True, attempts=4):
        assert session.get("/x").status_code == 200
    assert len(seen) == 2


def test_transport_errors_are_retried_then_reported_without_the_url() -> None:
    session, seen = session_for(replies(httpx.ConnectError("refused")))
    with stamina.set_testing(True, attempts=3), pytest.raises(ProviderUnavailable) as caught:
        session.get("/secret-path?token=abc")
    assert len(seen) == 3
    assert "abc" not in str(caught.value) and "secret-path" not in str(caught.value)


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422, 500])
def test_other_errors_are_never_retried(status: int) -> None:
    session, seen = session_for(replies(httpx.Response(status, json={"error": "x"})))
    with stamina.set_testing(True, attempts=4):
        response = session.post("/x", json={})
    assert response.status_code == status
    assert len(seen) == 1


def test_dry_run_refuses_every_write_before_it_leaves() -> None:
    session, seen = session_for(replies(httpx.Response(200)), dry_run=True)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        with pytest.raises(DryRunRefused):
            session.request(method, "/x")
    assert session.get("/x").status_code == 200
    assert [r.method for r in seen] == ["GET"]


def test_401_without_a_way_to_refresh_is_an_authentication_failure() -> None:
    session, seen = session_for(replies(httpx.Response(401, json={"error": "Unauthorized"})))
    with pytest.raises(AuthenticationFailed):
        session.get("/x")
    assert len(seen) == 1


def test_a_401_triggers_exactly_one_refresh_with_8_concurrent_callers() -> None:
    fetches: list[int] = []
    fetch_lock = threading.Lock()

    def fetch() -> Grant:
        with fetch_lock:
            fetches.append(1)
            return Grant(f"fresh-{len(fetches)}", None)

    tokens = TokenManager(
        provider="demo", scheme="Bearer", fetch=fetch, initial=Grant("stale", None)
    )
    all_refused = threading.Barrier(8, timeout=10)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer stale":
            all_refused.wait()  # every caller is refused before any refresh happens
            return httpx.Response(401, json={"error": "expired"})
        return httpx.Response(200, json={"token": request.headers["Authorization"]})

    session, seen = session_for(handler, auth=tokens)
    results: list[int] = []

    def call() -> None:
        results.append(session.get("/x").status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert results == [200] * 8
    assert len(fetches) == 1
    assert sum(r.headers["Authorization"] == "Bearer fresh-1" for r in seen) == 8


def test_a_refused_refreshed_token_is_not_refreshed_again() -> None:
    fetches: list[int] = []

    def fetch() -> Grant:
        fetches.append(1)
        return Grant(f"fresh-{len(fetches)}", None)

    tokens = TokenManager(
        provider="demo", scheme="Bearer", fetch=fetch, initial=Grant("stale", None)
    )
    session, seen = session_for(replies(httpx.Response(401)), auth=tokens)
    with pytest.raises(AuthenticationFailed):
        session.get("/x")
    assert len(fetches) == 1  # one refresh, one resend, then give up: never a loop
    assert len(seen) == 2


def test_daily_quota_refuses_client_side_and_says_when_it_resets() -> None:
    now = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    quota = DailyQuota("cc", 2, clock=lambda: now)
    session, seen = session_for(replies(httpx.Response(200)), pacers=(quota,))
    session.get("/a")
    session.get("/b")
    with pytest.raises(QuotaExceeded) as caught:
        session.get("/c")
    assert len(seen) == 2
    assert caught.value.resets_at == datetime(2026, 11, 23, tzinfo=UTC)


def test_daily_quota_claims_blocks_from_its_ledger_and_starts_afresh_each_day() -> None:
    now = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    claims: list[tuple[str, date, int, int]] = []
    left = {now.date(): 7, (now + timedelta(days=1)).date(): 100}

    def claim(provider: str, day: date, wanted: int, limit: int) -> int:
        claims.append((provider, day, wanted, limit))
        granted = min(wanted, left[day])
        left[day] -= granted
        return granted

    quota = DailyQuota("cc", 10, claim=claim, block=3, clock=lambda: now)
    session, seen = session_for(replies(*[httpx.Response(200)] * 9), pacers=(quota,))
    for n in range(7):
        session.get(f"/{n}")
    with pytest.raises(QuotaExceeded):
        session.get("/refused")
    assert len(seen) == 7
    assert [c[2] for c in claims] == [3, 3, 3, 3]  # granted 3, 3, 1, then 0
    now += timedelta(days=1)
    session.get("/tomorrow")
    assert claims[-1] == ("cc", now.date(), 3, 10)
    assert len(seen) == 8


def test_daily_quotas_on_one_ledger_share_one_count(tmp_path: Path) -> None:
    """Two processes' quotas (and a restarted one) on one database: 5 requests in all."""
    now = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    sent = 0
    refused = 0
    for _process in range(3):
        with open_database(tmp_path / "untag.db") as db:
            quota = DailyQuota("cc", 5, claim=QuotaLedger(db).claim, block=2, clock=lambda: now)
            session, seen = session_for(replies(*[httpx.Response(200)] * 5), pacers=(quota,))
            for n in range(2):
                try:
                    session.get(f"/{n}")
                except QuotaExceeded:
                    refused += 1
            sent += len(seen)
    assert (sent, refused) == (5, 1)


def test_concurrency_cap_bounds_requests_in_flight() -> None:
    in_flight, peak = 0, 0
    lock = threading.Lock()
    gate = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        gate.wait(0.05)
        with lock:
            in_flight -= 1
        return httpx.Response(200)

    session, _ = session_for(handler, pacers=(concurrency_cap(3),))
    threads = [threading.Thread(target=session.get, args=("/x",)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert peak == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1.0),
        ("2.5", 2.5),
        ("0", 0.0),
        ("-5", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("Sun, 22 Nov 2026 12:00:30 GMT", 30.0),
    ],
)
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(value, now=now) == expected


def test_paths_keep_their_percent_encoding_and_raw_queries_keep_commas() -> None:
    session, seen = session_for(replies(httpx.Response(200)))
    session.delete("/conversations/1/tags/VIP%20Customer%2Fx")
    session.post("/Contacts/actions/remove_tags?ids=1,2&tag_names=Hot%20Deal,a%2Cb")
    assert seen[0].url.raw_path == b"/v1/conversations/1/tags/VIP%20Customer%2Fx"
    assert seen[1].url.query == b"ids=1,2&tag_names=Hot%20Deal,a%2Cb"


def test_only_this_module_imports_httpx() -> None:
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    importers = sorted(
        str(path.relative_to(root))
        for package in ("bot", "commands", "storage")
        for path in (root / package).rglob("*.py")
        if any(
            line.strip().startswith(("import httpx", "from httpx"))
            for line in path.read_text().splitlines()
        )
    )
    assert importers == ["commands/http.py"]
