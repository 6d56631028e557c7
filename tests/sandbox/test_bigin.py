from __future__ import annotations

import httpx
import pytest

from sandbox import Sandbox

from .conftest import zoho_headers

CONTACT_A, CONTACT_B, COMPANY = "2445013000000402006", "2445013000000141005", "2445013000000500001"
REMOVE = "/zoho/bigin/v2/Contacts/actions/remove_tags"


@pytest.fixture
def auth(client: httpx.Client) -> dict[str, str]:
    return zoho_headers(client)


def test_remove_splits_raw_query_on_commas(
    sb: Sandbox, client: httpx.Client, auth: dict[str, str]
) -> None:
    r = client.post(
        f"{REMOVE}?ids={CONTACT_A},{CONTACT_B}&tag_names=Hot%20Deal,In%20Progress",
        headers=auth,
        json={"tags": [{"name": "From Email"}]},
    )  # the body is ignored
    assert r.status_code == 200
    assert r.json() == {
        "data": [
            {
                "code": "SUCCESS",
                "details": {"id": CONTACT_A, "tags": ["From Email"]},
                "message": "tags updated successfully",
                "status": "success",
            },
            {
                "code": "SUCCESS",
                "details": {"id": CONTACT_B, "tags": ["From Webforms", "Negotiation"]},
                "message": "tags updated successfully",
                "status": "success",
            },
        ]
    }
    assert sb.state.bigin.tags_of("Contacts", CONTACT_A) == ["From Email"]
    recorded = sb.requests[-1]
    assert recorded.provider == "bigin"
    assert recorded.path == "/bigin/v2/Contacts/actions/remove_tags"
    assert recorded.query == f"ids={CONTACT_A},{CONTACT_B}&tag_names=Hot%20Deal,In%20Progress"


def test_encoded_comma_is_part_of_one_name(
    sb: Sandbox, client: httpx.Client, auth: dict[str, str]
) -> None:
    sb.state.bigin.add_record("Contacts", "2445013000000900001", ["a", "b", "a,b"])
    r = client.post(f"{REMOVE}?ids=2445013000000900001&tag_names=a%2Cb", headers=auth)
    assert r.status_code == 200
    assert sb.state.bigin.tags_of("Contacts", "2445013000000900001") == ["a", "b"]


def test_plus_decodes_to_space(sb: Sandbox, client: httpx.Client, auth: dict[str, str]) -> None:
    r = client.post(f"{REMOVE}?ids={CONTACT_A}&tag_names=hot+deal", headers=auth)
    assert r.status_code == 200
    assert sb.state.bigin.tags_of("Contacts", CONTACT_A) == ["From Email", "In Progress"]


def test_single_record_form(sb: Sandbox, client: httpx.Client, auth: dict[str, str]) -> None:
    r = client.post(
        f"/zoho/bigin/v2/Accounts/{COMPANY}/actions/remove_tags?tag_names=Partner", headers=auth
    )
    assert r.status_code == 200
    assert r.json()["data"][0]["details"] == {"id": COMPANY, "tags": ["Hot Deal"]}
    assert sb.state.bigin.tags_of("Accounts", COMPANY) == ["Hot Deal"]


def test_mixed_and_locked(sb: Sandbox, client: httpx.Client, auth: dict[str, str]) -> None:
    sb.state.bigin.lock("Contacts", CONTACT_B)
    r = client.post(f"{REMOVE}?ids={CONTACT_A},{CONTACT_B},999&tag_names=Hot%20Deal", headers=auth)
    assert r.status_code == 207
    assert [d["code"] for d in r.json()["data"]] == ["SUCCESS", "RECORD_LOCKED", "INVALID_DATA"]
    assert "locked_count" not in r.json()


@pytest.mark.parametrize(
    "query", [f"ids={CONTACT_A}", "tag_names=Hot%20Deal", f"ids={CONTACT_A}&tag_names=", ""]
)
def test_missing_params(client: httpx.Client, auth: dict[str, str], query: str) -> None:
    r = client.post(f"{REMOVE}?{query}", headers=auth)
    assert r.status_code == 400
    assert r.json()["code"] == "REQUIRED_PARAM_MISSING"


def test_more_than_500_ids(client: httpx.Client, auth: dict[str, str]) -> None:
    ids = ",".join(str(2445013000000000000 + i) for i in range(501))
    r = client.post(f"{REMOVE}?ids={ids}&tag_names=x", headers=auth)
    assert (r.status_code, r.json()["code"]) == (400, "LIMIT_EXCEEDED")


def test_add_tags_round_trip(sb: Sandbox, client: httpx.Client, auth: dict[str, str]) -> None:
    client.post(f"{REMOVE}?ids={CONTACT_A}&tag_names=Hot%20Deal", headers=auth)
    r = client.post(
        "/zoho/bigin/v2/Contacts/actions/add_tags",
        headers=auth,
        json={"tags": [{"name": "Hot Deal"}], "ids": [CONTACT_A], "over_write": False},
    )
    assert r.status_code == 200
    assert r.json() == {
        "data": [
            {
                "code": "SUCCESS",
                "details": {"id": CONTACT_A, "tags": ["From Email", "In Progress", "Hot Deal"]},
                "message": "tags updated successfully",
                "status": "success",
            }
        ]
    }
    assert sb.state.bigin.tags_of("Contacts", CONTACT_A) == [
        "From Email",
        "In Progress",
        "Hot Deal",
    ]


def test_records_carry_tag_without_color(client: httpx.Client, auth: dict[str, str]) -> None:
    record = client.get(f"/zoho/bigin/v2/Contacts/{CONTACT_B}", headers=auth).json()["data"][0]
    assert [set(t) for t in record["Tag"]] == [{"name", "id"}, {"name", "id"}]
    listed = client.get(
        "/zoho/bigin/v2/Contacts", headers=auth, params={"ids": CONTACT_B, "fields": "Tag"}
    ).json()
    assert listed["data"] == [{"id": CONTACT_B, "Tag": record["Tag"]}]


def test_crm_only_module_is_invalid(client: httpx.Client, auth: dict[str, str]) -> None:
    r = client.post("/zoho/bigin/v2/Leads/actions/remove_tags?ids=1&tag_names=x", headers=auth)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_MODULE")


def test_auth_refused(client: httpx.Client) -> None:
    r = client.post(f"{REMOVE}?ids={CONTACT_A}&tag_names=x", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401
    assert r.json()["code"] == "INVALID_TOKEN"
