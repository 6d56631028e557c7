from __future__ import annotations

import time

import httpx
import pytest

from sandbox import Fault, Sandbox

from .conftest import ALTA_AUTH, CC_AUTH, FERNAND_AUTH, MakeSandbox, http, zoho_headers

THREAD = "3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10"
ALTA_BODY = {
    "entityId": THREAD,
    "entityType": "emailThread",
    "tags": ["Hot Lead"],
}


def alta(client: httpx.Client) -> httpx.Response:
    return client.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json=ALTA_BODY)


def fernand(client: httpx.Client) -> httpx.Response:
    return client.get("/fernand/conversations/12345", headers=FERNAND_AUTH)


def test_status_fault_uses_provider_shape(sb: Sandbox, client: httpx.Client) -> None:
    sb.add_fault(Fault(provider="*", kind="status", status=503))
    assert alta(client).json() == {"error": "ServiceUnavailable", "message": "Service unavailable"}
    assert fernand(client).json()["error"] == "service_unavailable"
    cc = client.get("/cc/v3/contact_tags", headers=CC_AUTH)
    assert (cc.status_code, cc.json()[0]["error_key"]) == (503, "service_unavailable")
    assert sb.state.alta.tags_of(THREAD) == ["Hot Lead", "Follow Up"]
    assert [r.status for r in sb.requests] == [503, 503, 503]


def test_429_fault_uses_each_provider_signal(sb: Sandbox, client: httpx.Client) -> None:
    auth = zoho_headers(client)
    sb.add_fault(Fault(kind="status", status=429))
    a = alta(client)
    assert a.json()["error"] == "TooManyRequests" and int(a.headers["Retry-After"]) >= 1
    assert a.headers["RateLimit-Remaining"] == "0"
    f = fernand(client)
    assert f.json() == {"error": "too_many_requests", "message": "Rate limit exceeded"}
    assert "X-RateLimit-Reset" in f.headers and "Retry-After" not in f.headers
    z = client.get("/zoho/crm/v7/Leads/554023000000793002", headers=auth)
    assert (z.status_code, z.json()["code"]) == (429, "TOO_MANY_REQUESTS")
    cc = client.get("/cc/v3/contact_tags", headers=CC_AUTH)
    assert cc.json() == {"error_key": "throttled", "error_message": "Too Many Requests"}
    zt = client.post("/zoho-accounts/oauth/v2/token", data={})
    assert (zt.status_code, zt.json()["error"]) == (400, "Access Denied")


def test_drop_closes_without_response(sb: Sandbox, client: httpx.Client) -> None:
    sb.add_fault(Fault(provider="alta", kind="drop", count=1))
    with pytest.raises(httpx.RemoteProtocolError):
        alta(client)
    assert alta(client).status_code == 200
    assert [(r.provider, r.status) for r in sb.requests] == [("alta", None), ("alta", 200)]


def test_latency(sb: Sandbox, client: httpx.Client) -> None:
    sb.add_fault(Fault(provider="fernand", kind="latency", seconds=0.2))
    started = time.monotonic()
    r = fernand(client)
    assert r.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_probability_is_reproducible_with_seed(make_sandbox: MakeSandbox) -> None:
    patterns = []
    for _ in range(2):
        sb = make_sandbox(seed=42)
        sb.add_fault(Fault(provider="fernand", kind="status", status=500, probability=0.5))
        with http(sb) as c:
            patterns.append([fernand(c).status_code for _ in range(30)])
    assert patterns[0] == patterns[1]
    assert 0 < patterns[0].count(500) < 30
    assert set(patterns[0]) == {200, 500}


def test_count_limits_applications(sb: Sandbox, client: httpx.Client) -> None:
    sb.add_fault(Fault(kind="status", status=502, count=2))
    assert [fernand(client).status_code for _ in range(4)] == [502, 502, 200, 200]
    assert sb.faults[0][1] == 0


def test_filters(sb: Sandbox, client: httpx.Client) -> None:
    sb.add_fault(Fault(provider="fernand", method="DELETE", path_contains="/tags/", status=500))
    assert fernand(client).status_code == 200
    assert alta(client).status_code == 200
    r = client.delete("/fernand/conversations/12345/tags/urgent", headers=FERNAND_AUTH)
    assert r.status_code == 500
    sb.clear_faults()
    assert (
        client.delete("/fernand/conversations/12345/tags/urgent", headers=FERNAND_AUTH).status_code
        == 200
    )


def test_expire_token_fault(sb: Sandbox, client: httpx.Client) -> None:
    auth = zoho_headers(client)
    url = "/zoho/crm/v7/Leads/554023000000793002"
    sb.add_fault(Fault(provider="zoho", kind="expire_token", count=1))
    first = client.get(url, headers=auth)
    assert (first.status_code, first.json()["code"]) == (401, "INVALID_TOKEN")
    assert client.get(url, headers=auth).status_code == 401  # the token stays expired
    assert client.get(url, headers=zoho_headers(client)).status_code == 200

    sb.add_fault(Fault(provider="constantcontact", kind="expire_token", count=1))
    cc = client.get("/cc/v3/contact_tags", headers=CC_AUTH)
    assert cc.json() == [{"error_key": "unauthorized", "error_message": "Unauthorized"}]


def test_faults_never_touch_control_routes(sb: Sandbox, client: httpx.Client) -> None:
    sb.add_fault(Fault(kind="drop"))
    assert client.get("/_sandbox/health").status_code == 200


def test_invalid_faults_are_rejected() -> None:
    with pytest.raises(ValueError):
        Fault(kind="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Fault(provider="salesforce")
    with pytest.raises(ValueError):
        Fault(probability=1.5)
