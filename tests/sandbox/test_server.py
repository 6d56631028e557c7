from __future__ import annotations

import threading

import httpx
import pytest

from sandbox import Credentials, Sandbox

from .conftest import ALTA_AUTH, CC_AUTH, FERNAND_AUTH, MakeSandbox, wait_until, zoho_headers


def test_base_urls_and_env(sb: Sandbox) -> None:
    url = sb.url
    assert url.startswith("http://127.0.0.1:")
    assert sb.base_urls() == {
        "alta": f"{url}/alta/v1",
        "fernand": f"{url}/fernand",
        "zoho_api_domain": f"{url}/zoho",
        "zoho_accounts": f"{url}/zoho-accounts",
        "constantcontact": f"{url}/cc/v3",
        "constantcontact_token": f"{url}/cc-auth/oauth2/default/v1/token",
    }
    env = sb.env()
    assert env["ALTA_BASE_URL"] == f"{url}/alta/v1" and env["ZOHO_API_DOMAIN"] == f"{url}/zoho"
    assert env["FERNAND_API_KEY"] == Credentials().fernand_key
    assert "ALTA_ACCOUNT_ID" not in env
    assert set(env) == {
        "ALTA_API_TOKEN",
        "ALTA_BASE_URL",
        "FERNAND_API_KEY",
        "FERNAND_BASE_URL",
        "ZOHO_CLIENT_ID",
        "ZOHO_CLIENT_SECRET",
        "ZOHO_REFRESH_TOKEN",
        "ZOHO_ACCOUNTS_URL",
        "ZOHO_API_DOMAIN",
        "CONSTANT_CONTACT_ACCESS_TOKEN",
        "CONSTANT_CONTACT_REFRESH_TOKEN",
        "CONSTANT_CONTACT_CLIENT_ID",
        "CONSTANT_CONTACT_CLIENT_SECRET",
        "CONSTANT_CONTACT_BASE_URL",
        "CONSTANT_CONTACT_TOKEN_URL",
    }


def test_request_log_is_exact(sb: Sandbox, client: httpx.Client) -> None:
    auth = zoho_headers(client)
    raw = b'{"tags":[{"name":"Prime"}], "ids":["554023000000793002"]}'
    client.post(
        "/zoho/crm/v7/Leads/actions/remove_tags?trace=a%2Cb+c",
        headers={**auth, "Content-Type": "application/json", "X-Trace": "t-1"},
        content=raw,
    )
    client.post(
        "/zoho/bigin/v2/Contacts/actions/remove_tags?ids=1&tag_names=Hot%20Deal", headers=auth
    )
    client.get("/_sandbox/health")
    client.get("/nowhere")
    token, crm, bigin = sb.requests
    assert (token.provider, token.path, token.method) == (
        "zoho-accounts",
        "/oauth/v2/token",
        "POST",
    )
    assert b"refresh_token=zoho-demo-refresh" in token.body
    assert crm.provider == "zoho"
    assert crm.path == "/crm/v7/Leads/actions/remove_tags"
    assert crm.raw_path == "/zoho/crm/v7/Leads/actions/remove_tags"
    assert crm.query == "trace=a%2Cb+c"
    assert crm.headers["x-trace"] == "t-1" and crm.headers["authorization"] == auth["Authorization"]
    assert crm.body == raw
    assert crm.json() == {"tags": [{"name": "Prime"}], "ids": ["554023000000793002"]}
    assert crm.status == 200
    assert (bigin.provider, bigin.path, bigin.status) == (
        "bigin",
        "/bigin/v2/Contacts/actions/remove_tags",
        400,
    )


def test_provider_paths_in_log(sb: Sandbox, client: httpx.Client) -> None:
    client.get("/cc/v3/contact_tags?limit=1")
    client.post("/cc-auth/oauth2/default/v1/token")
    client.post("/alta/v1/tags/unassign")
    assert [(r.provider, r.path, r.query) for r in sb.requests] == [
        ("constantcontact", "/v3/contact_tags", "limit=1"),
        ("constantcontact-token", "/oauth2/default/v1/token", ""),
        ("alta", "/v1/tags/unassign", ""),
    ]


def test_unknown_routes_in_provider_shape(client: httpx.Client) -> None:
    alta = client.get("/alta/v1/nope", headers=ALTA_AUTH)
    fernand = client.get("/fernand/nope", headers=FERNAND_AUTH)
    cc = client.get("/cc/v3/nope", headers=CC_AUTH)
    nowhere = client.get("/salesforce/v1")
    assert [r.status_code for r in (alta, fernand, cc, nowhere)] == [404, 404, 404, 404]
    assert alta.json()["error"] == "NotFound"
    assert fernand.json()["error"] == "not_found"
    assert cc.json()[0]["error_key"] == "not_found"


def test_handler_crash_answers_500_and_keeps_serving(
    sb: Sandbox, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(sb.state.fernand, "conversation_json", boom)
    r = client.get("/fernand/conversations/12345", headers=FERNAND_AUTH)
    assert r.status_code == 500
    assert r.json() == {"error": "internal_error", "message": "Internal server error"}
    assert "simulated bug" in sb.errors[-1]
    assert client.get("/fernand/tags", headers=FERNAND_AUTH).status_code == 200


def test_bulk_seed_serves_ten_thousand_records(sb: Sandbox, client: httpx.Client) -> None:
    ids = [str(554023000010000000 + i) for i in range(10_000)]
    sb.state.zoho.add_records("Leads", ids, ["Bulk", "Prime"])
    auth = zoho_headers(client)
    r = client.post(
        "/zoho/crm/v7/Leads/actions/remove_tags",
        headers=auth,
        json={"tags": [{"name": "Bulk"}], "ids": ids[:500]},
    )
    assert r.status_code == 200 and len(r.json()["data"]) == 500
    assert sb.state.zoho.tags_of("Leads", ids[0]) == ["Prime"]
    assert sb.state.zoho.tags_of("Leads", ids[500]) == ["Bulk", "Prime"]


def test_lifecycle(make_sandbox: MakeSandbox) -> None:
    with Sandbox(seed_demo=False).start() as sb:
        url = sb.url
        assert httpx.get(f"{url}/_sandbox/health", verify=False).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_sandbox/health", verify=False)
    with pytest.raises(RuntimeError):
        _ = sb.url


def test_serve_forever_blocks_until_stopped() -> None:
    sb = Sandbox(seed_demo=False)
    runner = threading.Thread(target=sb.serve_forever)
    runner.start()
    wait_until(lambda: sb.running)
    assert httpx.get(f"{sb.url}/_sandbox/health", verify=False).status_code == 200
    sb.stop()
    runner.join(timeout=5)
    assert not runner.is_alive()
