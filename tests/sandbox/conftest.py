"""Fixtures: sandboxes on free loopback ports, stopped after each test, and httpx clients."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sandbox import Limits, ManualClock, Sandbox

NO_LIMITS = dict(
    alta_per_minute=None,
    fernand_reads_per_minute=None,
    fernand_writes_per_minute=None,
    cc_per_second=None,
    cc_per_day=None,
    zoho_concurrency=None,
    zoho_tokens_per_10_min=None,
)

ZOHO_FORM = {
    "grant_type": "refresh_token",
    "refresh_token": "zoho-demo-refresh",
    "client_id": "zoho-demo-client",
    "client_secret": "zoho-demo-secret",
}
ALTA_AUTH = {"Authorization": "Bearer alta-demo-token"}
FERNAND_AUTH = {"X-API-Key": "sk_demo_fernand"}
CC_AUTH = {"Authorization": "Bearer cc-demo-access"}

MakeSandbox = Callable[..., Sandbox]


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    """Start sandboxes with the given options (limits given as keywords; unset ones disabled)."""
    started: list[Sandbox] = []

    def make(*, limits: dict[str, Any] | None = None, **options: Any) -> Sandbox:
        sb = Sandbox(limits=Limits(**{**NO_LIMITS, **(limits or {})}), **options).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sb(make_sandbox: MakeSandbox) -> Sandbox:
    """A demo sandbox without rate limits, so behaviour tests can make as many calls as needed."""
    return make_sandbox()


def http(sb: Sandbox, **options: Any) -> httpx.Client:
    """A client for ``sb``; verify=False skips building a TLS context (40 ms) never used."""
    return httpx.Client(base_url=sb.url, timeout=5.0, verify=False, **options)


@pytest.fixture
def client(sb: Sandbox) -> Iterator[httpx.Client]:
    with http(sb) as c:
        yield c


def zoho_headers(client: httpx.Client) -> dict[str, str]:
    """Authorization header with a fresh Zoho access token."""
    token = client.post("/zoho-accounts/oauth/v2/token", data=ZOHO_FORM).json()["access_token"]
    return {"Authorization": f"Zoho-oauthtoken {token}"}


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll for a state the test itself set in motion, failing loudly if it never comes."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)
