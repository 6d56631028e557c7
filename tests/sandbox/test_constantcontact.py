from __future__ import annotations

import base64
import json

import httpx
import pytest

from sandbox import Credentials, ManualClock, Sandbox
from sandbox.demo import CC_CONTACT_A, CC_CONTACT_B, CC_PROMO_CONTACTS, CC_TAGS

from .conftest import CC_AUTH, MakeSandbox, http

PROMO, VIP, NEWSLETTER = CC_TAGS["Spring Promo 2026"], CC_TAGS["VIP"], CC_TAGS["Newsletter"]
TOKEN = "/cc-auth/oauth2/default/v1/token"
BASIC = ("cc-demo-client", "cc-demo-secret")


def activity(client: httpx.Client, activity_id: str) -> dict[str, object]:
    r = client.get(f"/cc/v3/activities/{activity_id}", headers=CC_AUTH)
    assert r.status_code == 200
    result: dict[str, object] = r.json()
    return result


def test_contact_with_and_without_taggings(client: httpx.Client) -> None:
    plain = client.get(f"/cc/v3/contacts/{CC_CONTACT_A}", headers=CC_AUTH).json()
    assert "taggings" not in plain
    assert plain["email_address"]["address"] == "debora.lang@example.com"
    tagged = client.get(
        f"/cc/v3/contacts/{CC_CONTACT_A}", headers=CC_AUTH, params={"include": "taggings"}
    ).json()
    assert tagged["taggings"] == [VIP, NEWSLETTER]


def test_unknown_contact(client: httpx.Client) -> None:
    r = client.get("/cc/v3/contacts/00000000-0000-0000-0000-000000000000", headers=CC_AUTH)
    assert r.status_code == 404
    assert r.json() == [
        {"error_key": "contacts.api.not_found", "error_message": "Contact not found."}
    ]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer expired"}, {"Authorization": "Zoho-oauthtoken cc-demo-access"}],
)
def test_auth_refused(client: httpx.Client, headers: dict[str, str]) -> None:
    r = client.get("/cc/v3/contact_tags", headers=headers)
    assert r.status_code == 401
    assert r.json() == [{"error_key": "unauthorized", "error_message": "Unauthorized"}]


def test_rotating_refresh_token(sb: Sandbox, client: httpx.Client) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "cc-demo-refresh"}
    first = client.post(TOKEN, auth=BASIC, data=form)
    assert first.status_code == 200
    body = first.json()
    assert body["refresh_token"] != "cc-demo-refresh"
    assert (body["token_type"], body["expires_in"], body["scope"]) == (
        "Bearer",
        86400,
        "contact_data offline_access",
    )
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] == 86400

    reused = client.post(TOKEN, auth=BASIC, data=form)
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": "The refresh token is invalid or expired.",
    }
    assert sb.env()["CONSTANT_CONTACT_REFRESH_TOKEN"] == body["refresh_token"]

    second = client.post(TOKEN, auth=BASIC, data={**form, "refresh_token": body["refresh_token"]})
    assert second.status_code == 200
    auth = {"Authorization": f"Bearer {second.json()['access_token']}"}
    assert client.get("/cc/v3/contact_tags", headers=auth).status_code == 200
    assert sb.token_requests("constantcontact") == 2


def test_long_lived_refresh_token(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(credentials=Credentials(cc_rotating=False))
    form = {"grant_type": "refresh_token", "refresh_token": "cc-demo-refresh"}
    with http(sb) as c:
        bodies = [c.post(TOKEN, auth=BASIC, data=form).json() for _ in range(2)]
    assert [b["refresh_token"] for b in bodies] == ["cc-demo-refresh", "cc-demo-refresh"]


def test_bad_client_credentials(client: httpx.Client) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "cc-demo-refresh"}
    for auth in (("cc-demo-client", "wrong"), None):
        r = client.post(TOKEN, auth=auth, data=form)
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"


def test_activity_progresses_and_applies_effects_item_by_item(
    make_sandbox: MakeSandbox, clock: ManualClock
) -> None:
    sb = make_sandbox(clock=clock, cc_items_per_second=10)
    ids = [*CC_PROMO_CONTACTS, "ffffffff-0000-0000-0000-000000000000"]
    with http(sb) as c:
        created = c.post(
            "/cc/v3/activities/contacts_taggings_remove",
            headers=CC_AUTH,
            json={"source": {"contact_ids": ids}, "tag_ids": [PROMO]},
        )
        assert created.status_code == 201
        first = created.json()
        assert (
            first["state"],
            first["percent_done"],
            first["status"],
            first["activity_errors"],
        ) == ("initialized", 1, {}, [])
        assert first["_links"] == {"self": {"href": f"/v3/activities/{first['activity_id']}"}}

        clock.advance(1.0)
        half = activity(c, first["activity_id"])
        assert half["state"] == "processing"
        assert half["status"] == {"items_total_count": 21, "items_completed_count": 10}
        assert half["percent_done"] == 47
        still_tagged = [i for i in CC_PROMO_CONTACTS if sb.state.constantcontact.tag_names_of(i)]
        assert still_tagged == list(CC_PROMO_CONTACTS[10:])

        clock.advance(2.0)
        done = activity(c, first["activity_id"])
    assert (done["state"], done["percent_done"]) == ("completed", 100)
    assert done["activity_errors"] == ["Contact ffffffff-0000-0000-0000-000000000000 not found"]
    assert all(sb.state.constantcontact.tag_names_of(i) == [] for i in CC_PROMO_CONTACTS)
    assert sb.state.constantcontact.tag_names_of(CC_CONTACT_B) == [
        "Newsletter",
        "Spring Promo 2026",
    ]


def test_add_by_tag_source_round_trip(make_sandbox: MakeSandbox, clock: ManualClock) -> None:
    sb = make_sandbox(clock=clock, cc_items_per_second=None)
    with http(sb) as c:
        r = c.post(
            "/cc/v3/activities/contacts_taggings_add",
            headers=CC_AUTH,
            json={"source": {"tag_ids": [NEWSLETTER]}, "tag_ids": [VIP, PROMO]},
        )
        assert r.status_code == 201
        assert activity(c, r.json()["activity_id"])["state"] == "completed"
    assert sb.state.constantcontact.tag_names_of(CC_CONTACT_A) == [
        "VIP",
        "Newsletter",
        "Spring Promo 2026",
    ]
    assert sb.state.constantcontact.tag_names_of(CC_CONTACT_B) == [
        "Newsletter",
        "Spring Promo 2026",
        "VIP",
    ]


def test_delete_tags_account_wide(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(cc_items_per_second=None)
    with http(sb) as c:
        r = c.post(
            "/cc/v3/activities/contacts_tags_delete", headers=CC_AUTH, json={"tag_ids": [PROMO]}
        )
        assert r.status_code == 201
        assert activity(c, r.json()["activity_id"])["state"] == "completed"
        names = [t["name"] for t in c.get("/cc/v3/contact_tags", headers=CC_AUTH).json()["tags"]]
    assert names == ["Newsletter", "VIP", "Do Not Mail"]
    assert sb.state.constantcontact.tag_id("Spring Promo 2026") is None
    assert sb.state.constantcontact.tag_names_of(CC_CONTACT_B) == ["Newsletter"]


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (
            {"source": {"contact_ids": [CC_CONTACT_A], "tag_ids": [VIP]}, "tag_ids": [VIP]},
            "activity.source.invalid",
        ),
        ({"source": {}, "tag_ids": [VIP]}, "activity.source.invalid"),
        (
            {"source": {"contact_ids": ["x"] * 501}, "tag_ids": [VIP]},
            "activity.source.contact_ids.size",
        ),
        (
            {"source": {"contact_ids": [CC_CONTACT_A]}, "tag_ids": [VIP] * 51},
            "activity.tag_ids.size",
        ),
        ({"source": {"contact_ids": [CC_CONTACT_A]}, "tag_ids": []}, "activity.tag_ids.size"),
        (
            {"source": {"contact_ids": [CC_CONTACT_A]}, "tag_ids": ["nope"]},
            "activity.tag_ids.invalid",
        ),
        ({"source": {"list_ids": ["l1"]}, "tag_ids": [VIP]}, "activity.source.unsupported"),
        (
            {
                "source": {"contact_ids": [CC_CONTACT_A]},
                "exclude": {"contact_ids": []},
                "tag_ids": [VIP],
            },
            "activity.exclude.invalid",
        ),
    ],
)
def test_tagging_validation(client: httpx.Client, payload: dict[str, object], key: str) -> None:
    r = client.post("/cc/v3/activities/contacts_taggings_remove", headers=CC_AUTH, json=payload)
    assert r.status_code == 400
    assert r.json()[0]["error_key"] == key


def test_malformed_json(client: httpx.Client) -> None:
    r = client.post("/cc/v3/activities/contacts_tags_delete", headers=CC_AUTH, content=b"[")
    assert r.status_code == 400
    assert r.json() == [
        {
            "error_key": "request.body.invalid",
            "error_message": "The request body is not valid JSON.",
        }
    ]


def test_contact_tags_pagination(client: httpx.Client) -> None:
    first = client.get(
        "/cc/v3/contact_tags", headers=CC_AUTH, params={"limit": 3, "include_count": "true"}
    ).json()
    assert [t["name"] for t in first["tags"]] == ["Newsletter", "VIP", "Spring Promo 2026"]
    assert [t["contacts_count"] for t in first["tags"]] == [2, 1, 22]
    assert first["tags"][0]["tag_source"] == "Contact"
    href = first["_links"]["next"]["href"]
    assert href.startswith("/v3/contact_tags?cursor=") and "limit=3" in href

    last = client.get(f"/cc{href}", headers=CC_AUTH).json()
    assert [t["name"] for t in last["tags"]] == ["Do Not Mail"]
    assert "_links" not in last
    plain = client.get("/cc/v3/contact_tags", headers=CC_AUTH).json()
    assert "contacts_count" not in plain["tags"][0] and len(plain["tags"]) == 4

    for bad in ({"limit": 0}, {"limit": 501}, {"cursor": "garbage!"}):
        assert client.get("/cc/v3/contact_tags", headers=CC_AUTH, params=bad).status_code == 400


def test_contacts_filtered_by_tag(client: httpx.Client) -> None:
    page = client.get(
        "/cc/v3/contacts",
        headers=CC_AUTH,
        params={"tags": PROMO, "limit": 20, "include_count": "true"},
    ).json()
    assert page["contacts_count"] == 22 and len(page["contacts"]) == 20
    rest = client.get(f"/cc{page['_links']['next']['href']}", headers=CC_AUTH).json()
    assert len(rest["contacts"]) == 2 and "_links" not in rest


def test_forced_failure_keeps_partial_effects(
    make_sandbox: MakeSandbox, clock: ManualClock
) -> None:
    sb = make_sandbox(clock=clock, cc_items_per_second=10)
    sb.state.constantcontact.fail_next_activity("Internal error", after_items=5)
    with http(sb) as c:
        r = c.post(
            "/cc/v3/activities/contacts_taggings_remove",
            headers=CC_AUTH,
            json={"source": {"contact_ids": list(CC_PROMO_CONTACTS)}, "tag_ids": [PROMO]},
        )
        clock.advance(5)
        failed = activity(c, r.json()["activity_id"])
    assert failed["state"] == "failed"
    assert failed["activity_errors"] == ["Internal error"]
    assert failed["status"] == {"items_total_count": 20, "items_completed_count": 5}
    untagged = [i for i in CC_PROMO_CONTACTS if not sb.state.constantcontact.tag_names_of(i)]
    assert untagged == list(CC_PROMO_CONTACTS[:5])


def test_unknown_activity(client: httpx.Client) -> None:
    r = client.get("/cc/v3/activities/00000000-0000-4000-8000-000000000000", headers=CC_AUTH)
    assert r.status_code == 404
    assert r.json()[0]["error_key"] == "not_found"


def test_per_second_throttle(make_sandbox: MakeSandbox, clock: ManualClock) -> None:
    sb = make_sandbox(clock=clock, limits={"cc_per_second": 2})
    with http(sb) as c:
        codes = [c.get("/cc/v3/contact_tags", headers=CC_AUTH).status_code for _ in range(3)]
        refused = c.get("/cc/v3/contact_tags", headers=CC_AUTH)
        token = c.post(
            TOKEN,
            auth=BASIC,
            data={"grant_type": "refresh_token", "refresh_token": "cc-demo-refresh"},
        )
        clock.advance(1.0)
        after = c.get("/cc/v3/contact_tags", headers=CC_AUTH)
    assert codes == [200, 200, 429]
    assert refused.json() == {"error_key": "throttled", "error_message": "Too Many Requests"}
    assert "Retry-After" not in refused.headers
    assert token.status_code == 200  # the token endpoint does not count
    assert after.status_code == 200


def test_daily_quota(make_sandbox: MakeSandbox) -> None:
    clock = ManualClock(start=1_767_311_400.0)  # 2026-01-01T23:50:00Z
    sb = make_sandbox(clock=clock, limits={"cc_per_day": 3})
    with http(sb) as c:
        codes = []
        for _ in range(4):
            codes.append(c.get("/cc/v3/contact_tags", headers=CC_AUTH).status_code)
            clock.advance(10)
        refused = c.get("/cc/v3/contact_tags", headers=CC_AUTH)
        clock.advance(600)  # past 00:00 UTC
        next_day = c.get("/cc/v3/contact_tags", headers=CC_AUTH)
    assert codes == [200, 200, 200, 429]
    assert refused.json() == {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}
    assert next_day.status_code == 200
