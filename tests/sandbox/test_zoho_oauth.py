from __future__ import annotations

import httpx

from sandbox import ManualClock, Sandbox

from .conftest import ZOHO_FORM, MakeSandbox, http

TOKEN = "/zoho-accounts/oauth/v2/token"


def test_issues_token_with_api_domain(sb: Sandbox, client: httpx.Client) -> None:
    r = client.post(TOKEN, data=ZOHO_FORM)
    assert r.status_code == 200
    body = r.json()
    assert body["access_token"].startswith("1000.")
    assert (body["expires_in"], body["token_type"], body["api_domain"]) == (
        3600,
        "Bearer",
        f"{sb.url}/zoho",
    )
    assert body["scope"] == "ZohoCRM.modules.ALL ZohoBigin.modules.ALL"
    assert sb.token_requests("zoho") == 1


def test_accepts_query_parameters(client: httpx.Client) -> None:
    r = client.post(TOKEN, params=ZOHO_FORM)
    assert "access_token" in r.json()


def test_errors_are_http_200(sb: Sandbox, client: httpx.Client) -> None:
    wrong_client = client.post(TOKEN, data={**ZOHO_FORM, "client_secret": "nope"})
    wrong_refresh = client.post(TOKEN, data={**ZOHO_FORM, "refresh_token": "1000.old"})
    assert (wrong_client.status_code, wrong_client.json()) == (200, {"error": "invalid_client"})
    assert (wrong_refresh.status_code, wrong_refresh.json()) == (200, {"error": "invalid_code"})
    assert sb.token_requests("zoho") == 0


def test_eleventh_grant_in_ten_minutes_is_refused(
    make_sandbox: MakeSandbox, clock: ManualClock
) -> None:
    sb = make_sandbox(clock=clock, limits={"zoho_tokens_per_10_min": 10})
    with http(sb) as c:
        assert all("access_token" in c.post(TOKEN, data=ZOHO_FORM).json() for _ in range(10))
        refused = c.post(TOKEN, data=ZOHO_FORM)
        assert refused.status_code == 400
        assert refused.json() == {
            "error": "Access Denied",
            "error_description": "You have made too many requests continuously. "
            "Please try again after some time.",
            "status": "failure",
        }
        assert sb.token_requests("zoho") == 10
        clock.advance(600)
        assert "access_token" in c.post(TOKEN, data=ZOHO_FORM).json()
