from __future__ import annotations

import math

import httpx
import pytest

from sandbox import ManualClock, Sandbox

from .conftest import FERNAND_AUTH, MakeSandbox, http


def test_get_conversation_matches_documented_shape(client: httpx.Client) -> None:
    r = client.get("/fernand/conversations/12345", headers=FERNAND_AUTH)
    assert r.status_code == 200
    assert r.json() == {
        "id": 12345,
        "contact_id": 789,
        "subject": "Question about billing",
        "status": "OPENED",
        "last_update": "2026-01-21T14:30:00Z",
        "tags": [1, 5, 12],
        "recipients": [],
        "agent_id": 42,
        "channel_id": 1,
        "snooze_until": None,
        "cursor": "cur_12345",
    }


def test_catalogue_lists_tags_with_slugs_and_counts(client: httpx.Client) -> None:
    tags = {t["name"]: t for t in client.get("/fernand/tags", headers=FERNAND_AUTH).json()}
    assert tags["VIP Customer"]["slug"] == "vip-customer"
    assert tags["Needs Follow-up"] == {
        "id": 7,
        "slug": "needs-follow-up",
        "name": "Needs Follow-up",
        "color": "#F76B15",
        "count_conversations": 1,
        "is_system": False,
    }
    assert tags["billing"]["count_conversations"] == 2


def test_delete_by_percent_encoded_name(sb: Sandbox, client: httpx.Client) -> None:
    r = client.delete("/fernand/conversations/12345/tags/VIP%20Customer", headers=FERNAND_AUTH)
    assert r.status_code == 200
    assert r.json()["tags"] == [5, 12]
    assert sb.state.fernand.tags_of(12345) == ["billing", "urgent"]
    assert sb.requests[-1].path == "/conversations/12345/tags/VIP%20Customer"


@pytest.mark.parametrize("ref", ["needs-follow-up", "NEEDS%20FOLLOW-UP"])
def test_delete_by_slug_or_case_insensitive_name(
    sb: Sandbox, client: httpx.Client, ref: str
) -> None:
    r = client.delete(f"/fernand/conversations/12347/tags/{ref}", headers=FERNAND_AUTH)
    assert r.status_code == 200
    assert sb.state.fernand.tags_of(12347) == []


def test_delete_absent_tag_is_a_no_op(sb: Sandbox, client: httpx.Client) -> None:
    for ref in ("urgent", "no-such-tag"):
        r = client.delete(f"/fernand/conversations/12346/tags/{ref}", headers=FERNAND_AUTH)
        assert r.status_code == 200
        assert r.json()["tags"] == [5]


def test_add_restores_and_creates(sb: Sandbox, client: httpx.Client) -> None:
    client.delete("/fernand/conversations/12345/tags/urgent", headers=FERNAND_AUTH)
    r = client.post(
        "/fernand/conversations/12345/tags", headers=FERNAND_AUTH, json={"name": "urgent"}
    )
    assert r.status_code == 200
    assert r.json()["id"] == 12
    assert sb.state.fernand.tags_of(12345) == ["VIP Customer", "billing", "urgent"]

    r = client.post(
        "/fernand/conversations/12346/tags", headers=FERNAND_AUTH, json={"name": "Refund Q&A"}
    )
    assert r.json() == {
        "id": 13,
        "slug": "refund-q-a",
        "name": "Refund Q&A",
        "color": r.json()["color"],
        "count_conversations": 1,
        "is_system": False,
    }
    assert sb.state.fernand.tags_of(12346) == ["billing", "Refund Q&A"]


@pytest.mark.parametrize("payload", [{"name": ""}, {"name": "x" * 51}, {"title": "x"}])
def test_add_validates_name(client: httpx.Client, payload: dict[str, str]) -> None:
    r = client.post("/fernand/conversations/12345/tags", headers=FERNAND_AUTH, json=payload)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"


def test_malformed_json(client: httpx.Client) -> None:
    r = client.post("/fernand/conversations/12345/tags", headers=FERNAND_AUTH, content=b"{")
    assert r.status_code == 400
    assert set(r.json()) == {"error", "message"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/fernand/conversations/99999"),
        ("GET", "/fernand/conversations/abc"),
        ("DELETE", "/fernand/conversations/99999/tags/billing"),
        ("POST", "/fernand/conversations/99999/tags"),
    ],
)
def test_unknown_conversation(client: httpx.Client, method: str, path: str) -> None:
    r = client.request(method, path, headers=FERNAND_AUTH, json={"name": "x"})
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "message": "Conversation not found"}


def test_auth_refused(client: httpx.Client) -> None:
    for headers in ({}, {"X-API-Key": "sk_wrong"}, {"Authorization": "Bearer sk_demo_fernand"}):
        r = client.get("/fernand/conversations/12345", headers=headers)
        assert r.status_code == 401
        assert r.json() == {"error": "unauthorized", "message": "Invalid API key"}


def test_rate_limits_per_bucket_with_epoch_reset(
    make_sandbox: MakeSandbox, clock: ManualClock
) -> None:
    sb = make_sandbox(
        clock=clock, limits={"fernand_writes_per_minute": 2, "fernand_reads_per_minute": 3}
    )
    reset = str(math.ceil(clock.time() + 60))
    with http(sb, headers=FERNAND_AUTH) as c:
        writes = [c.delete("/fernand/conversations/12345/tags/urgent") for _ in range(3)]
        assert [w.status_code for w in writes] == [200, 200, 429]
        assert [w.headers["X-RateLimit-Remaining"] for w in writes] == ["1", "0", "0"]
        assert {w.headers["X-RateLimit-Limit"] for w in writes} == {"2"}
        assert {w.headers["X-RateLimit-Reset"] for w in writes} == {reset}
        assert writes[2].json() == {"error": "too_many_requests", "message": "Rate limit exceeded"}
        assert "Retry-After" not in writes[2].headers

        read = c.get("/fernand/conversations/404")  # reads have their own bucket; 404s count too
        assert read.status_code == 404
        assert (read.headers["X-RateLimit-Limit"], read.headers["X-RateLimit-Remaining"]) == (
            "3",
            "2",
        )

        clock.advance(60)
        again = c.delete("/fernand/conversations/12345/tags/urgent")
        assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "1"
