from __future__ import annotations

import threading

import httpx
import pytest

from sandbox import Credentials, ManualClock, Sandbox

from .conftest import ALTA_AUTH, MakeSandbox, http

THREAD = "3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10"
LINKEDIN = "7d1e4c2a-9b3f-4a56-8e7d-1f2a3b4c5d6e"


def body(tags: list[str], entity: str = THREAD, kind: str = "emailThread") -> dict[str, object]:
    return {"entityId": entity, "entityType": kind, "tags": tags}


def test_unassign_then_assign_round_trip(sb: Sandbox, client: httpx.Client) -> None:
    r = client.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json=body(["Hot Lead"]))
    assert (r.status_code, r.content) == (200, b"")
    assert sb.state.alta.tags_of(THREAD) == ["Follow Up"]

    r = client.post("/alta/v1/tags/assign", headers=ALTA_AUTH, json=body(["Hot Lead"]))
    assert (r.status_code, r.content) == (200, b"")
    assert sb.state.alta.tags_of(THREAD) == ["Follow Up", "Hot Lead"]


def test_unassign_absent_tag_is_idempotent(sb: Sandbox, client: httpx.Client) -> None:
    payload = body(["Warm", "Never There"], LINKEDIN, "linkedinConversation")
    for _ in range(2):
        assert (
            client.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json=payload).status_code
            == 200
        )
    assert sb.state.alta.tags_of(LINKEDIN) == []


def test_tag_names_are_case_sensitive(sb: Sandbox, client: httpx.Client) -> None:
    client.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json=body(["hot lead"]))
    assert sb.state.alta.tags_of(THREAD) == ["Hot Lead", "Follow Up"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Token alta-demo-token"}],
)
def test_auth_refused(client: httpx.Client, headers: dict[str, str]) -> None:
    r = client.post("/alta/v1/tags/unassign", headers=headers, json=body(["Hot Lead"]))
    assert r.status_code == 401
    assert r.json() == {"error": "Unauthorized", "message": "Invalid API token"}


def test_account_id_required_when_configured(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(credentials=Credentials(alta_account_id="acct-7"))
    with http(sb) as c:
        missing = c.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json=body(["Hot Lead"]))
        wrong = c.post(
            "/alta/v1/tags/unassign",
            headers={**ALTA_AUTH, "x-account-id": "acct-8"},
            json=body(["Hot Lead"]),
        )
        ok = c.post(
            "/alta/v1/tags/unassign",
            headers={**ALTA_AUTH, "x-account-id": "acct-7"},
            json=body(["Hot Lead"]),
        )
    assert (missing.status_code, wrong.status_code, ok.status_code) == (401, 401, 200)
    assert sb.env()["ALTA_ACCOUNT_ID"] == "acct-7"


@pytest.mark.parametrize(
    "payload",
    [
        body(["x"], entity="not-a-uuid"),
        body(["x"], kind="slackThread"),
        body([]),
        {"entityId": THREAD, "entityType": "emailThread"},
        body([1]),  # type: ignore[list-item]
        ["not", "an", "object"],
    ],
)
def test_validation_errors(client: httpx.Client, payload: object) -> None:
    r = client.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json=payload)
    assert r.status_code == 400
    assert r.json()["error"] == "ValidationError"


def test_malformed_json_is_validation_error(client: httpx.Client) -> None:
    r = client.post("/alta/v1/tags/assign", headers=ALTA_AUTH, content=b"{nope")
    assert r.status_code == 400
    assert r.json() == {"error": "ValidationError", "message": "Invalid request body"}


def test_unknown_entity_or_wrong_type_is_not_found(client: httpx.Client) -> None:
    unknown = body(["x"], entity="00000000-0000-4000-8000-000000000000")
    wrong_type = body(["Warm"], LINKEDIN, "emailThread")
    for payload in (unknown, wrong_type):
        r = client.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json=payload)
        assert r.status_code == 404
        assert r.json()["error"] == "NotFound"


def test_unknown_route_is_not_found(client: httpx.Client) -> None:
    r = client.get("/alta/v1/tags/unassign", headers=ALTA_AUTH)
    assert r.status_code == 404
    assert r.json()["error"] == "NotFound"


def test_rate_limit_slides_per_minute(make_sandbox: MakeSandbox, clock: ManualClock) -> None:
    sb = make_sandbox(clock=clock, limits={"alta_per_minute": 4})
    with http(sb) as c:

        def call() -> httpx.Response:
            return c.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json=body(["x"]))

        first = call()
        assert first.status_code == 200 and "RateLimit-Limit" not in first.headers
        call()
        clock.advance(30)
        near = call()
        assert "RateLimit-Remaining" not in near.headers  # 1 of 4 left is above Alta's 10% mark
        last = call()
        assert last.status_code == 200 and last.headers["RateLimit-Remaining"] == "0"

        refused = call()
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "TooManyRequests",
            "message": "Rate limit exceeded. Please retry after 30 seconds.",
        }
        assert refused.headers["Retry-After"] == "30"
        assert refused.headers["RateLimit-Limit"] == "4"
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert refused.headers["RateLimit-Reset"] == "30"
        assert refused.headers["RateLimit-Policy"] == "4;w=60"

        clock.advance(30)  # the two hits at t=0 leave the window exactly now
        assert [call().status_code for _ in range(3)] == [200, 200, 429]


def test_limit_is_exact_under_concurrency(make_sandbox: MakeSandbox, clock: ManualClock) -> None:
    sb = make_sandbox(clock=clock, limits={"alta_per_minute": 50})
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with http(sb) as c:
            for _ in range(10):
                code = c.post(
                    "/alta/v1/tags/unassign", headers=ALTA_AUTH, json=body(["x"])
                ).status_code
                with lock:
                    statuses.append(code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 50 + [429] * 30
