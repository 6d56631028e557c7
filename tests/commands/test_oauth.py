"""Token managers: Zoho grants and api_domain, Constant Contact rotation persisted before use."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from commands.config import ConstantContactConfig, ZohoConfig
from commands.errors import AuthenticationFailed, RateLimited
from commands.http import HttpClient
from commands.oauth import TokenManager, constant_contact_tokens, zoho_tokens
from storage import TokenStore, open_database
from tests.storage.test_audit import KEY

ZOHO = ZohoConfig(
    client_id="cid",
    client_secret=SecretStr("csecret-zz"),
    refresh_token=SecretStr("rtoken-zz"),
    accounts_url="https://accounts.zoho.eu",
    api_domain="https://www.zohoapis.com",
)


def memory_store() -> TokenStore:
    return TokenStore(open_database(":memory:"), KEY)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_zoho_grant_uses_a_form_body_and_the_returned_api_domain() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(
                200,
                json={
                    "access_token": "1000.abc",
                    "expires_in": 3600,
                    "api_domain": "https://www.zohoapis.eu",
                    "token_type": "Bearer",
                },
            )
        return httpx.Response(200, json={"data": []})

    http = HttpClient(transport=httpx.MockTransport(handler))
    tokens = zoho_tokens(http, ZOHO, memory_store(), provider="zoho")
    session = http.session(
        "zoho", base_url=lambda: (tokens.api_domain or ZOHO.api_domain) + "/crm/v7", auth=tokens
    )
    session.get("/Leads?ids=1&fields=Tag")

    grant, call = seen
    assert str(grant.url) == "https://accounts.zoho.eu/oauth/v2/token"  # secrets not in the URL
    assert parse_qs(grant.content.decode()) == {
        "grant_type": ["refresh_token"],
        "client_id": ["cid"],
        "client_secret": ["csecret-zz"],
        "refresh_token": ["rtoken-zz"],
    }
    assert call.url.host == "www.zohoapis.eu" and call.url.path == "/crm/v7/Leads"
    assert call.headers["Authorization"] == "Zoho-oauthtoken 1000.abc"


def test_zoho_token_is_cached_until_shortly_before_expiry() -> None:
    grants: list[int] = []
    clock = Clock()

    def handler(request: httpx.Request) -> httpx.Response:
        grants.append(1)
        return httpx.Response(200, json={"access_token": f"t{len(grants)}", "expires_in": 3600})

    tokens = zoho_tokens(
        HttpClient(transport=httpx.MockTransport(handler)),
        ZOHO,
        memory_store(),
        provider="zoho",
        clock=clock,
    )
    assert tokens.headers() == tokens.headers() == {"Authorization": "Zoho-oauthtoken t1"}
    clock.now += timedelta(minutes=57)  # still outside the two-minute safety margin
    assert tokens.headers() == {"Authorization": "Zoho-oauthtoken t1"}
    clock.now += timedelta(minutes=1, seconds=30)  # inside it: refresh before Zoho refuses
    assert tokens.headers() == {"Authorization": "Zoho-oauthtoken t2"}
    assert len(grants) == 2


def test_eight_threads_needing_a_first_token_cause_one_grant() -> None:
    grants: list[int] = []
    start = threading.Barrier(8)

    def handler(request: httpx.Request) -> httpx.Response:
        grants.append(1)
        return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})

    tokens = zoho_tokens(
        HttpClient(transport=httpx.MockTransport(handler)), ZOHO, memory_store(), provider="zoho"
    )

    def worker() -> None:
        start.wait()
        tokens.headers()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(grants) == 1


@pytest.mark.parametrize("error", ["invalid_code", "invalid_client"])
def test_zoho_grant_errors_arrive_with_http_200_and_never_echo_secrets(error: str) -> None:
    http = HttpClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"error": error}))
    )
    with pytest.raises(AuthenticationFailed) as caught:
        zoho_tokens(http, ZOHO, memory_store(), provider="zoho").headers()
    message = str(caught.value)
    assert error in message and "ZOHO_" in message
    assert "csecret-zz" not in message and "rtoken-zz" not in message


def test_zoho_refresh_limit_is_reported_as_rate_limited() -> None:
    body = {
        "error": "Access Denied",
        "error_description": "You have made too many requests "
        "continuously. Please try again after some time.",
        "status": "failure",
    }
    http = HttpClient(transport=httpx.MockTransport(lambda r: httpx.Response(400, json=body)))
    with pytest.raises(RateLimited, match="too many token requests"):
        zoho_tokens(http, ZOHO, memory_store(), provider="zoho").headers()


def cc_config() -> ConstantContactConfig:
    return ConstantContactConfig(
        refresh_token=SecretStr("configured-refresh"),
        client_id="cc-client",
        client_secret=SecretStr("cc-secret"),
        base_url="https://api.cc.test/v3",
        token_url="https://auth.cc.test/token",
    )


def test_rotated_refresh_token_is_stored_before_the_new_access_token_is_used(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "untag.db"
    store = TokenStore(open_database(db_path), KEY)
    stored_when_used: list[str | None] = []
    refresh_tokens_sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.cc.test":
            assert request.headers["Authorization"].startswith("Basic ")
            form = parse_qs(request.content.decode())
            refresh_tokens_sent.append(form["refresh_token"][0])
            n = len(refresh_tokens_sent)
            return httpx.Response(
                200,
                json={
                    "access_token": f"access-{n}",
                    "refresh_token": f"rotated-{n}",
                    "expires_in": 86400,
                    "token_type": "Bearer",
                },
            )
        # What another process would find in the file at the moment the token is used:
        fresh = TokenStore(open_database(db_path), KEY).load("constantcontact")
        stored_when_used.append(fresh.refresh_token if fresh else None)
        return httpx.Response(200, json={})

    http = HttpClient(transport=httpx.MockTransport(handler))
    clock = Clock()
    tokens = constant_contact_tokens(http, cc_config(), store, clock=clock)
    session = http.session("constantcontact", base_url="https://api.cc.test/v3", auth=tokens)
    session.get("/contacts/x")
    assert stored_when_used == ["rotated-1"]

    # A new process uses the stored access token while it lasts ...
    later_store = TokenStore(open_database(db_path), KEY)
    later = constant_contact_tokens(http, cc_config(), later_store, clock=clock)
    assert later.headers() == {"Authorization": "Bearer access-1"}
    assert refresh_tokens_sent == ["configured-refresh"]
    # ... then refreshes from the rotated token, not the superseded configured one.
    clock.now += timedelta(days=1)
    assert later.headers() == {"Authorization": "Bearer access-2"}
    assert refresh_tokens_sent == ["configured-refresh", "rotated-1"]


def test_a_newly_configured_refresh_token_wins_over_an_old_stored_lineage(tmp_path: Path) -> None:
    store = TokenStore(open_database(tmp_path / "untag.db"), KEY)
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(parse_qs(request.content.decode())["refresh_token"][0])
        return httpx.Response(
            200, json={"access_token": "a", "refresh_token": "r2", "expires_in": 86400}
        )

    http = HttpClient(transport=httpx.MockTransport(handler))
    constant_contact_tokens(http, cc_config(), store).headers()
    reauthorized = cc_config().model_copy(update={"refresh_token": SecretStr("re-authorized")})
    constant_contact_tokens(http, reauthorized, store).headers()
    assert sent == ["configured-refresh", "re-authorized"]


def test_invalid_grant_asks_for_reauthorization(tmp_path: Path) -> None:
    store = TokenStore(open_database(tmp_path / "untag.db"), KEY)
    http = HttpClient(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(400, json={"error": "invalid_grant"})
        )
    )
    with pytest.raises(AuthenticationFailed, match="re-authorize"):
        constant_contact_tokens(http, cc_config(), store).headers()


# -- access tokens shared between processes ---------------------------------------------------


def zoho_grants(grants: list[str]) -> httpx.MockTransport:
    """A Zoho that grants t1, t2, ... and refuses any other token than the newest."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            grants.append(f"t{len(grants) + 1}")
            return httpx.Response(200, json={"access_token": grants[-1], "expires_in": 3600})
        if request.headers["Authorization"] != f"Zoho-oauthtoken {grants[-1]}":
            return httpx.Response(401, json={"code": "INVALID_TOKEN"})
        return httpx.Response(200, json={"data": []})

    return httpx.MockTransport(handler)


def test_a_second_process_adopts_the_stored_zoho_token_until_it_expires(tmp_path: Path) -> None:
    grants: list[str] = []
    clock = Clock()
    path = tmp_path / "untag.db"

    def process() -> TokenManager:  # a client and a database connection of its own
        http = HttpClient(transport=zoho_grants(grants))
        store = TokenStore(open_database(path), KEY)
        return zoho_tokens(http, ZOHO, store, provider="zoho", clock=clock)

    assert process().headers() == {"Authorization": "Zoho-oauthtoken t1"}
    assert process().headers() == {"Authorization": "Zoho-oauthtoken t1"}
    assert grants == ["t1"]
    clock.now += timedelta(minutes=59)
    assert process().headers() == {"Authorization": "Zoho-oauthtoken t2"}
    assert grants == ["t1", "t2"]


def test_a_refused_shared_token_is_replaced_not_adopted_again(tmp_path: Path) -> None:
    grants: list[str] = []
    path = tmp_path / "untag.db"
    first = HttpClient(transport=zoho_grants(grants))
    zoho_tokens(first, ZOHO, TokenStore(open_database(path), KEY), provider="zoho").headers()
    grants.append("t-revoked-elsewhere")  # Zoho now refuses t1
    http = HttpClient(transport=zoho_grants(grants))
    tokens = zoho_tokens(http, ZOHO, TokenStore(open_database(path), KEY), provider="zoho")
    session = http.session("zoho", base_url="https://www.zohoapis.com/crm/v7", auth=tokens)
    session.get("/Leads?ids=1&fields=Tag")
    assert grants == ["t1", "t-revoked-elsewhere", "t3"]
    assert tokens.headers() == {"Authorization": "Zoho-oauthtoken t3"}


def test_tokens_stored_under_another_key_are_an_authentication_error(tmp_path: Path) -> None:
    path = tmp_path / "untag.db"
    grants: list[str] = []
    first = HttpClient(transport=zoho_grants(grants))
    zoho_tokens(first, ZOHO, TokenStore(open_database(path), KEY), provider="zoho").headers()
    other = TokenStore(open_database(path), b"a different key of 32 bytes....")
    with pytest.raises(AuthenticationFailed, match="audit key"):
        zoho_tokens(
            HttpClient(transport=zoho_grants(grants)), ZOHO, other, provider="zoho"
        ).headers()
