from __future__ import annotations

import threading

import httpx
import pytest

from sandbox import Fault, ManualClock, Sandbox

from .conftest import MakeSandbox, http, wait_until, zoho_headers

LEAD_A, LEAD_B, LEAD_C, LOCKED = (
    "554023000000793002",
    "554023000000792001",
    "554023000000791003",
    "554023000000799009",
)
REMOVE = "/zoho/crm/v7/Leads/actions/remove_tags"
ADD = "/zoho/crm/v7/Leads/actions/add_tags"
PRIME_AND_ATTEND = [{"name": "Prime"}, {"name": "Attend First"}]


@pytest.fixture
def auth(client: httpx.Client) -> dict[str, str]:
    return zoho_headers(client)


def test_bulk_remove_reproduces_documented_sample(
    sb: Sandbox, client: httpx.Client, auth: dict[str, str]
) -> None:
    r = client.post(REMOVE, headers=auth, json={"tags": PRIME_AND_ATTEND, "ids": [LEAD_A, LEAD_B]})
    assert r.status_code == 200
    assert r.json() == {
        "data": [
            {
                "code": "SUCCESS",
                "details": {
                    "id": LEAD_A,
                    "tags": [
                        {"name": "Nurture", "id": "554023000002555018", "color_code": "#57B1FD"}
                    ],
                },
                "message": "tags updated successfully",
                "status": "success",
            },
            {
                "code": "SUCCESS",
                "details": {
                    "id": LEAD_B,
                    "tags": [
                        {
                            "name": "Nurturing Lead",
                            "id": "554023000002172011",
                            "color_code": "#57B1FD",
                        },
                        {"name": "web", "id": "554023000001180007", "color_code": None},
                    ],
                },
                "message": "tags updated successfully",
                "status": "success",
            },
        ],
        "locked_count": "0",
    }
    assert sb.state.zoho.tags_of("Leads", LEAD_A) == ["Nurture"]


def test_single_record_remove_has_no_locked_count(
    sb: Sandbox, client: httpx.Client, auth: dict[str, str]
) -> None:
    r = client.post(
        f"/zoho/crm/v7/Leads/{LEAD_B}/actions/remove_tags",
        headers=auth,
        json={"tags": [{"name": "PRIME"}, {"name": "absent"}]},
    )
    assert r.status_code == 200
    body = r.json()
    assert "locked_count" not in body
    assert [t["name"] for t in body["data"][0]["details"]["tags"]] == ["Nurturing Lead", "web"]


def test_mixed_batch_is_207_with_per_record_errors(
    sb: Sandbox, client: httpx.Client, auth: dict[str, str]
) -> None:
    ids = [LEAD_C, LOCKED, "554023000000000000"]
    r = client.post(REMOVE, headers=auth, json={"tags": PRIME_AND_ATTEND, "ids": ids})
    assert r.status_code == 207
    data = r.json()["data"]
    assert [d["code"] for d in data] == ["SUCCESS", "RECORD_LOCKED", "INVALID_DATA"]
    assert data[1] == {
        "code": "RECORD_LOCKED",
        "details": {"id": LOCKED},
        "message": "cannot update a locked record",
        "status": "error",
    }
    assert data[2] == {
        "code": "INVALID_DATA",
        "details": {"id": "554023000000000000"},
        "message": "the id given seems to be invalid",
        "status": "error",
    }
    assert r.json()["locked_count"] == "1"
    assert sb.state.zoho.tags_of("Leads", LOCKED) == ["Prime"]
    assert sb.state.zoho.tags_of("Leads", LEAD_C) == []


def test_all_failed_is_400(client: httpx.Client, auth: dict[str, str]) -> None:
    r = client.post(REMOVE, headers=auth, json={"tags": PRIME_AND_ATTEND, "ids": [LOCKED]})
    assert r.status_code == 400
    assert r.json()["data"][0]["code"] == "RECORD_LOCKED"


def test_more_than_500_ids(client: httpx.Client, auth: dict[str, str]) -> None:
    ids = [str(554023000000000000 + i) for i in range(501)]
    r = client.post(REMOVE, headers=auth, json={"tags": PRIME_AND_ATTEND, "ids": ids})
    assert r.status_code == 400
    body = r.json()
    assert (body["code"], body["status"], body["details"]["maximum_length"]) == (
        "LIMIT_EXCEEDED",
        "error",
        500,
    )


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"ids": [LEAD_A]}, "REQUIRED_PARAM_MISSING"),
        ({"tags": [], "ids": [LEAD_A]}, "REQUIRED_PARAM_MISSING"),
        ({"tags": PRIME_AND_ATTEND}, "REQUIRED_PARAM_MISSING"),
        ({"tags": PRIME_AND_ATTEND, "ids": []}, "REQUIRED_PARAM_MISSING"),
        ({"tags": PRIME_AND_ATTEND, "ids": [554023000000793002]}, "INVALID_DATA"),
        ({"tags": [{"colour": "x"}], "ids": [LEAD_A]}, "INVALID_DATA"),
    ],
)
def test_request_validation(
    client: httpx.Client, auth: dict[str, str], payload: dict[str, object], code: str
) -> None:
    r = client.post(REMOVE, headers=auth, json=payload)
    assert r.status_code == 400
    assert r.json()["code"] == code
    assert set(r.json()) == {"code", "details", "message", "status"}


def test_malformed_json(client: httpx.Client, auth: dict[str, str]) -> None:
    r = client.post(REMOVE, headers=auth, content=b"tags=Prime")
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_DATA"


def test_invalid_module_and_url(client: httpx.Client, auth: dict[str, str]) -> None:
    r = client.post("/zoho/crm/v7/Widgets/actions/remove_tags", headers=auth, json={})
    assert r.status_code == 400
    assert r.json() == {
        "code": "INVALID_MODULE",
        "details": {},
        "message": "the module name given seems to be invalid",
        "status": "error",
    }
    r = client.post("/zoho/crm/v7/Leads/actions/explode", headers=auth, json={})
    assert (r.status_code, r.json()["code"]) == (404, "INVALID_URL_PATTERN")
    r = client.get(REMOVE, headers=auth)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_REQUEST_METHOD")


@pytest.mark.parametrize("header", ["", "Bearer {t}", "Zoho-oauthtoken 1000.bogus", "{t}"])
def test_auth_refused(client: httpx.Client, auth: dict[str, str], header: str) -> None:
    token = auth["Authorization"].split()[1]
    r = client.get(
        f"/zoho/crm/v7/Leads/{LEAD_A}", headers={"Authorization": header.format(t=token)}
    )
    assert r.status_code == 401
    assert r.json() == {
        "code": "INVALID_TOKEN",
        "details": {},
        "message": "invalid oauth token",
        "status": "error",
    }


def test_get_records_by_ids_and_single(client: httpx.Client, auth: dict[str, str]) -> None:
    r = client.get(
        "/zoho/crm/v7/Leads",
        headers=auth,
        params={"ids": f"{LEAD_C},554023000000000001,{LEAD_A}", "fields": "Tag"},
    )
    assert r.status_code == 200
    body = r.json()
    assert [d["id"] for d in body["data"]] == [LEAD_C, LEAD_A]
    assert body["data"][0] == {
        "id": LEAD_C,
        "Tag": [{"name": "Attend First", "id": "554023000002555007", "color_code": "#E7A826"}],
    }
    assert body["info"]["count"] == 2 and body["info"]["more_records"] is False

    single = client.get(f"/zoho/crm/v7/Leads/{LEAD_A}", headers=auth).json()["data"][0]
    assert [t["name"] for t in single["Tag"]] == ["Prime", "Attend First", "Nurture"]
    assert single["Last_Name"] == "Tanaka"

    assert client.get("/zoho/crm/v7/Leads/554023000000000001", headers=auth).status_code == 204
    none = client.get("/zoho/crm/v7/Leads", headers=auth, params={"ids": "1", "fields": "Tag"})
    assert (none.status_code, none.content) == (204, b"")


def test_get_records_validation(client: httpx.Client, auth: dict[str, str]) -> None:
    r = client.get("/zoho/crm/v7/Leads", headers=auth, params={"ids": LEAD_A})
    assert (r.status_code, r.json()["code"]) == (400, "REQUIRED_PARAM_MISSING")
    many = ",".join(str(554023000000000000 + i) for i in range(101))
    r = client.get("/zoho/crm/v7/Leads", headers=auth, params={"ids": many, "fields": "Tag"})
    assert (r.status_code, r.json()["code"]) == (400, "LIMIT_EXCEEDED")


def test_add_tags_round_trip_and_catalogue(
    sb: Sandbox, client: httpx.Client, auth: dict[str, str]
) -> None:
    client.post(REMOVE, headers=auth, json={"tags": PRIME_AND_ATTEND, "ids": [LEAD_A]})
    r = client.post(
        ADD,
        headers=auth,
        json={
            "tags": [{"id": "554023000002555001"}, {"name": "Attend First"}, {"name": "Fresh"}],
            "ids": [LEAD_A],
            "over_write": False,
        },
    )
    assert r.status_code == 200
    assert r.json()["locked_count"] == "0"
    assert [t["name"] for t in r.json()["data"][0]["details"]["tags"]] == [
        "Nurture",
        "Prime",
        "Attend First",
        "Fresh",
    ]
    assert sb.state.zoho.tags_of("Leads", LEAD_A) == ["Nurture", "Prime", "Attend First", "Fresh"]
    assert "Fresh" in [t.name for t in sb.state.zoho.catalogue("Leads")]
    assert "Fresh" not in [t.name for t in sb.state.zoho.catalogue("Contacts")]


def test_add_tags_over_write(sb: Sandbox, client: httpx.Client, auth: dict[str, str]) -> None:
    r = client.post(
        ADD, headers=auth, json={"tags": [{"name": "web"}], "ids": [LEAD_A], "over_write": True}
    )
    assert r.status_code == 200
    assert sb.state.zoho.tags_of("Leads", LEAD_A) == ["web"]


def test_add_tags_caps_records_at_ten(
    sb: Sandbox, client: httpx.Client, auth: dict[str, str]
) -> None:
    sb.state.zoho.add_record("Leads", "554023000000900001", [f"t{i}" for i in range(9)])
    tags = [{"name": "extra1"}, {"name": "extra2"}]
    r = client.post(ADD, headers=auth, json={"tags": tags, "ids": ["554023000000900001", LEAD_C]})
    assert r.status_code == 207
    assert r.json()["data"][0]["code"] == "LIMIT_EXCEEDED"
    assert len(sb.state.zoho.tags_of("Leads", "554023000000900001")) == 9
    assert sb.state.zoho.tags_of("Leads", LEAD_C) == ["Attend First", "extra1", "extra2"]


def test_tags_are_per_module(sb: Sandbox, client: httpx.Client, auth: dict[str, str]) -> None:
    leads = client.get(
        "/zoho/crm/v7/settings/tags", headers=auth, params={"module": "Leads"}
    ).json()
    contacts = client.get(
        "/zoho/crm/v7/settings/tags", headers=auth, params={"module": "Contacts"}
    ).json()
    prime_ids = {t["id"] for t in leads["tags"] + contacts["tags"] if t["name"] == "Prime"}
    assert len(prime_ids) == 2
    r = client.post(
        "/zoho/crm/v7/Contacts/actions/remove_tags",
        headers=auth,
        json={"tags": [{"name": "Prime"}], "ids": ["554023000000801001"]},
    )
    assert r.status_code == 200
    assert sb.state.zoho.tags_of("Contacts", "554023000000801001") == ["VIP"]
    assert sb.state.zoho.tags_of("Leads", LEAD_A)[0] == "Prime"


def test_access_token_expires(make_sandbox: MakeSandbox, clock: ManualClock) -> None:
    sb = make_sandbox(clock=clock, zoho_token_ttl=100)
    with http(sb) as c:
        auth = zoho_headers(c)
        assert c.get(f"/zoho/crm/v7/Leads/{LEAD_A}", headers=auth).status_code == 200
        clock.advance(100)
        assert c.get(f"/zoho/crm/v7/Leads/{LEAD_A}", headers=auth).status_code == 401


def test_expire_tokens(sb: Sandbox, client: httpx.Client, auth: dict[str, str]) -> None:
    sb.expire_tokens()
    r = client.get(f"/zoho/crm/v7/Leads/{LEAD_A}", headers=auth)
    assert (r.status_code, r.json()["code"]) == (401, "INVALID_TOKEN")
    assert (
        client.get(f"/zoho/crm/v7/Leads/{LEAD_A}", headers=zoho_headers(client)).status_code == 200
    )


def test_concurrency_limit(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(limits={"zoho_concurrency": 2})
    sb.add_fault(Fault(provider="zoho", kind="latency", seconds=0.5, count=2))
    with http(sb) as c:
        auth = zoho_headers(c)
        url = f"/zoho/crm/v7/Leads/{LEAD_A}"
        statuses: list[int] = []
        slow = [
            threading.Thread(target=lambda: statuses.append(c.get(url, headers=auth).status_code))
            for _ in range(2)
        ]
        for t in slow:
            t.start()
        wait_until(lambda: sb.in_flight("zoho") == 2)
        refused = c.get(url, headers=auth)
        for t in slow:
            t.join()
    assert refused.status_code == 429
    assert refused.json() == {
        "code": "TOO_MANY_REQUESTS",
        "details": {"retry_after": 60},
        "message": "too many requests",
        "status": "error",
    }
    assert statuses == [200, 200]
    assert sb.in_flight("zoho") == 0
