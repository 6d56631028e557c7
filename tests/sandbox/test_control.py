from __future__ import annotations

import threading

import httpx

from sandbox import Fault, Sandbox

from .conftest import (
    ALTA_AUTH,
    CC_AUTH,
    FERNAND_AUTH,
    MakeSandbox,
    http,
    wait_until,
    zoho_headers,
)


def test_health_and_env(sb: Sandbox, client: httpx.Client) -> None:
    assert client.get("/_sandbox/health").json() == {"ok": True, "url": sb.url}
    assert client.get("/_sandbox/env").json() == sb.env()


def test_requests_listing_and_clearing(sb: Sandbox, client: httpx.Client) -> None:
    client.get("/fernand/conversations/12345?x=1", headers=FERNAND_AUTH)
    client.get("/_sandbox/health")
    listed = client.get("/_sandbox/requests").json()
    assert len(listed) == 1
    assert listed[0]["path"] == "/conversations/12345"
    assert listed[0]["query"] == "x=1" and listed[0]["status"] == 200 and listed[0]["body"] == ""
    assert client.get("/_sandbox/requests", params={"provider": "alta"}).json() == []
    assert client.delete("/_sandbox/requests").status_code == 200
    assert sb.requests == []


def test_faults_over_http(sb: Sandbox, client: httpx.Client) -> None:
    r = client.post(
        "/_sandbox/faults",
        json={"provider": "fernand", "kind": "status", "status": 500, "count": 1},
    )
    assert r.status_code == 200
    assert client.get("/_sandbox/faults").json()[0]["remaining"] == 1
    assert client.get("/fernand/tags", headers=FERNAND_AUTH).status_code == 500
    client.post("/_sandbox/faults", json={"kind": "drop"})
    assert client.delete("/_sandbox/faults").status_code == 200
    assert client.get("/fernand/tags", headers=FERNAND_AUTH).status_code == 200
    bad = client.post("/_sandbox/faults", json={"kind": "explode"})
    assert bad.status_code == 400 and "kind" in bad.json()["error"]


def test_expire_tokens_over_http(client: httpx.Client) -> None:
    auth = zoho_headers(client)
    client.post("/_sandbox/expire-tokens")
    assert client.get("/zoho/crm/v7/Leads/554023000000793002", headers=auth).status_code == 401
    assert client.get("/cc/v3/contact_tags", headers=CC_AUTH).status_code == 401


def test_seed_and_state(sb: Sandbox, client: httpx.Client) -> None:
    seeds = [
        {
            "provider": "zoho",
            "module": "Deals",
            "ids": ["554023000000990001"],
            "tags": ["Big"],
            "locked": True,
        },
        {
            "provider": "bigin",
            "module": "Pipelines",
            "ids": ["2445013000000990001"],
            "tags": ["Q4"],
        },
        {"provider": "fernand", "ids": [777], "tags": ["vip"]},
        {
            "provider": "alta",
            "entity_type": "emailThread",
            "ids": ["11111111-2222-4333-8444-555555555555"],
            "tags": ["Cold"],
        },
    ]
    for payload in seeds:
        assert client.post("/_sandbox/seed", json=payload).json() == {"ok": True, "seeded": 1}
    cc = client.post(
        "/_sandbox/seed",
        json={
            "provider": "constantcontact",
            "ids": ["cafe0000-0000-0000-0000-000000000000"],
            "tags": ["VIP", "Brand New"],
        },
    ).json()
    assert cc["tag_ids"]["VIP"] == "c6915956-fde3-4081-977e-c3b8d1b068a7"

    state = client.get("/_sandbox/state").json()
    assert state["zoho"]["Deals"]["records"]["554023000000990001"] == {
        "tags": ["Big"],
        "locked": True,
    }
    assert state["bigin"]["Pipelines"]["records"]["2445013000000990001"]["tags"] == ["Q4"]
    assert state["fernand"]["conversations"]["777"]["tags"] == [sb.state.fernand.add_tag("vip").id]
    assert state["alta"]["entities"]["11111111-2222-4333-8444-555555555555"]["tags"] == ["Cold"]
    assert state["constantcontact"]["contacts"]["cafe0000-0000-0000-0000-000000000000"]["tags"] == [
        "VIP",
        "Brand New",
    ]
    assert client.post("/_sandbox/seed", json={"provider": "myspace", "ids": []}).status_code == 400


def test_limits_and_token_counts(sb: Sandbox, client: httpx.Client) -> None:
    r = client.post("/_sandbox/limits", json={"alta_per_minute": 1})
    assert r.json()["alta_per_minute"] == 1 and sb.limits.alta_per_minute == 1
    body = {
        "entityId": "3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10",
        "entityType": "emailThread",
        "tags": ["x"],
    }
    codes = [
        client.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json=body).status_code
        for _ in range(2)
    ]
    assert codes == [200, 429]
    assert client.post("/_sandbox/limits", json={"alta_per_mnute": 1}).status_code == 400
    zoho_headers(client)
    assert client.get("/_sandbox/token-requests").json() == {"zoho": 1, "constantcontact": 0}


def test_reset(sb: Sandbox, client: httpx.Client) -> None:
    client.delete("/fernand/conversations/12345/tags/urgent", headers=FERNAND_AUTH)
    assert client.post("/_sandbox/reset", json={"seed_demo": True}).status_code == 200
    assert sb.state.fernand.tags_of(12345) == ["VIP Customer", "billing", "urgent"]
    assert sb.requests == []
    client.post("/_sandbox/reset", json={"seed_demo": False})
    assert client.get("/fernand/tags", headers=FERNAND_AUTH).json() == []


def test_unknown_control_route_and_bad_json(client: httpx.Client) -> None:
    assert client.get("/_sandbox/nope").status_code == 404
    assert client.post("/_sandbox/seed", content=b"{").status_code == 400


def test_requests_since_a_mark(sb: Sandbox, client: httpx.Client) -> None:
    client.get("/fernand/conversations/12345", headers=FERNAND_AUTH)
    mark = client.get("/_sandbox/requests/summary").json()["end"]
    assert mark == 1
    client.get("/fernand/tags", headers=FERNAND_AUTH)
    listed = client.get("/_sandbox/requests", params={"since": mark}).json()
    assert [r["path"] for r in listed] == ["/tags"]
    assert client.get("/_sandbox/requests", params={"since": 5}).json() == []
    assert client.get("/_sandbox/requests", params={"since": -1}).status_code == 400
    assert client.get("/_sandbox/requests", params={"since": "x"}).status_code == 400


def test_request_summary_counts_by_status_and_method(sb: Sandbox, client: httpx.Client) -> None:
    client.post("/_sandbox/limits", json={"fernand_writes_per_minute": 1})
    client.get("/fernand/conversations/12345", headers=FERNAND_AUTH)
    mark = client.get("/_sandbox/requests/summary").json()["end"]
    for _ in range(2):
        client.delete("/fernand/conversations/12345/tags/urgent", headers=FERNAND_AUTH)
    client.post("/alta/v1/tags/unassign", headers=ALTA_AUTH, json={})
    summary = client.get(
        "/_sandbox/requests/summary", params={"since": mark, "provider": "fernand"}
    ).json()
    deletes = [r for r in sb.requests if r.method == "DELETE"]
    assert summary == {
        "end": 4,
        "count": 2,
        "statuses": {"200": 1, "429": 1},
        "methods": {"DELETE": 2},
        "last_at": deletes[-1].at,
        "now": summary["now"],
    }
    assert deletes[-1].at <= summary["now"] <= sb.clock.time()
    everything = client.get("/_sandbox/requests/summary").json()
    assert everything["count"] == 4 and everything["methods"] == {"GET": 1, "DELETE": 2, "POST": 1}
    nothing = client.get("/_sandbox/requests/summary", params={"since": 4}).json()
    assert nothing["count"] == 0 and nothing["statuses"] == {} and nothing["last_at"] is None


def test_in_flight_peak_over_http(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox()
    sb.add_fault(Fault(provider="zoho", kind="latency", seconds=0.3, count=3))
    with http(sb) as control, http(sb) as c:
        auth = zoho_headers(c)
        slow = [
            threading.Thread(
                target=lambda: c.get("/zoho/crm/v7/Leads/554023000000793002", headers=auth)
            )
            for _ in range(3)
        ]
        for t in slow:
            t.start()
        wait_until(lambda: sb.in_flight("zoho") == 3)
        during = control.get("/_sandbox/in-flight").json()
        for t in slow:
            t.join()
        after = control.get("/_sandbox/in-flight").json()
        assert control.delete("/_sandbox/in-flight").json() == {"ok": True}
        reset = control.get("/_sandbox/in-flight").json()
    assert during == {"zoho": {"now": 3, "peak": 3}, "bigin": {"now": 0, "peak": 0}}
    assert after == {"zoho": {"now": 0, "peak": 3}, "bigin": {"now": 0, "peak": 0}}
    assert reset == {"zoho": {"now": 0, "peak": 0}, "bigin": {"now": 0, "peak": 0}}


def test_reset_clears_in_flight_peaks(sb: Sandbox, client: httpx.Client) -> None:
    client.get("/zoho/crm/v7/Leads/554023000000793002", headers=zoho_headers(client))
    assert sb.peak_in_flight("zoho") == 1
    client.post("/_sandbox/reset", json={"seed_demo": False})
    assert sb.peak_in_flight("zoho") == 0


def test_cc_activity_speed_over_http(sb: Sandbox, client: httpx.Client) -> None:
    assert client.get("/_sandbox/cc-activities").json() == {"items_per_second": 200.0}
    crawl = {"items_per_second": 0.001}
    assert client.post("/_sandbox/cc-activities", json=crawl).json() == crawl
    contact = "cafe0000-0000-0000-0000-000000000001"
    tag = client.post(
        "/_sandbox/seed", json={"provider": "constantcontact", "ids": [contact], "tags": ["Gone"]}
    ).json()["tag_ids"]["Gone"]
    body = {"source": {"contact_ids": [contact]}, "tag_ids": [tag]}
    created = client.post(
        "/cc/v3/activities/contacts_taggings_remove", json=body, headers=CC_AUTH
    ).json()
    url = f"/cc/v3/activities/{created['activity_id']}"
    assert client.get(url, headers=CC_AUTH).json()["state"] != "completed"
    assert client.post("/_sandbox/cc-activities", json={"items_per_second": None}).json() == {
        "items_per_second": None
    }
    # The rate is read whenever an activity is looked at: the waiting one finishes now.
    assert client.get(url, headers=CC_AUTH).json()["state"] == "completed"
    assert sb.state.constantcontact.items_per_second is None
    assert client.post("/_sandbox/cc-activities", json={"items_per_second": 5}).json() == {
        "items_per_second": 5
    }
    bad_bodies = (
        {"items_per_second": "fast"},
        {"items_per_second": -1},
        {},
        {"items_per_second": True},
    )
    for bad in bad_bodies:
        assert client.post("/_sandbox/cc-activities", json=bad).status_code == 400
    assert sb.state.constantcontact.items_per_second == 5
