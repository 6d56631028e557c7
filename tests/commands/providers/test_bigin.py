"""Zoho Bigin v2 provider: what differs from CRM (query-string remove, name-string tags)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from commands.actions import Action, ProviderName
from commands.config import ProvidersConfig, RateLimits, ZohoConfig
from commands.http import HttpClient
from commands.providers import bigin
from commands.providers.base import Provider, Wiring, no_progress
from commands.providers.bigin import BiginProvider
from commands.results import Outcome, RecordResult
from sandbox import Sandbox
from storage import TokenStore, open_database
from tests.storage.test_audit import KEY

from .test_zoho import FakeZoho, item

CONTACT_A = "2445013000000402006"
CONTACT_B = "2445013000000141005"
API = "https://www.zohoapis.com"


@pytest.fixture
def make_bigin(tmp_path: Path) -> Iterator[Callable[..., Provider]]:
    """Builds the Bigin provider around a MockTransport handler; closes everything after."""
    db = open_database(tmp_path / "tokens.db")
    clients: list[HttpClient] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response] | None,
        *,
        config: ZohoConfig | None = None,
    ) -> Provider:
        # No handler: a real transport (the sandbox over loopback).
        transport = None if handler is None else httpx.MockTransport(handler)
        http = HttpClient(transport=transport)
        clients.append(http)
        section = config or ZohoConfig(access_token=SecretStr("tok"), api_domain=API)
        limits = RateLimits(zoho_concurrency=1, bigin_concurrency=3)
        wiring = Wiring(
            config=ProvidersConfig(bigin=section, limits=limits),
            http=http,
            tokens=TokenStore(db, KEY),
        )
        provider = bigin.build(wiring)
        assert provider is not None
        return provider

    yield make
    for http in clients:
        http.close()
    db.close()


def contacts(*targets: str, tags: tuple[str, ...] = ("Hot Deal", "In Progress")) -> Action:
    return Action(provider=ProviderName.BIGIN, scope="Contacts", targets=targets, tags=tags)


def test_remove_sends_ids_and_tag_names_in_the_query_with_no_body(
    make_bigin: Callable[..., Provider],
) -> None:
    fake = FakeZoho({CONTACT_A: ["Hot Deal", "In Progress", "From Email"]}, bigin=True)
    provider = make_bigin(fake)
    action = contacts(CONTACT_A)

    preview = provider.preview(action)
    [result] = provider.remove(action, preview, no_progress)

    [read] = fake.reads
    assert str(read.url) == f"{API}/bigin/v2/Contacts?ids={CONTACT_A}&fields=Tag"
    [write] = fake.writes
    assert write.method == "POST"
    assert write.url.raw_path == (
        b"/bigin/v2/Contacts/actions/remove_tags"
        b"?ids=2445013000000402006&tag_names=Hot%20Deal,In%20Progress"
    )
    assert write.url.host == "www.zohoapis.com"
    assert write.headers["authorization"] == "Zoho-oauthtoken tok"
    assert write.content == b""
    assert "content-type" not in write.headers
    # Bigin's details.tags are name strings; they are the record's remaining tags.
    assert result == RecordResult(
        target=CONTACT_A,
        outcome=Outcome.REMOVED,
        removed=("Hot Deal", "In Progress"),
        remaining=("From Email",),
    )


def test_tag_names_are_percent_encoded_but_separated_by_literal_commas(
    make_bigin: Callable[..., Provider],
) -> None:
    fake = FakeZoho({CONTACT_A: ["R&D/ü", "a+b"]}, bigin=True)
    provider = make_bigin(fake)
    action = contacts(CONTACT_A, CONTACT_B, tags=("R&D/ü", "a+b"))

    provider.remove(action, provider.preview(action), no_progress)

    [write] = fake.writes
    assert write.url.query == f"ids={CONTACT_A}&tag_names=R%26D%2F%C3%BC,a%2Bb".encode()
    assert fake.records[CONTACT_A] == []


def test_1200_records_take_exactly_three_calls(make_bigin: Callable[..., Provider]) -> None:
    ids = [str(2445013000000000000 + n) for n in range(1200)]
    fake = FakeZoho({rid: ["Hot Deal"] for rid in ids}, bigin=True)
    provider = make_bigin(fake)
    action = contacts(*ids)

    results = provider.remove(action, provider.preview(action), no_progress)

    batches = [w.url.params["ids"].split(",") for w in fake.writes]
    assert [len(b) for b in batches] == [500, 500, 200]
    assert [rid for b in batches for rid in b] == ids
    assert all(w.url.params["tag_names"] == "Hot Deal,In Progress" for w in fake.writes)
    assert {r.outcome for r in results} == {Outcome.REMOVED}


def test_mixed_answer_reports_locked_and_missing_records(
    make_bigin: Callable[..., Provider],
) -> None:
    fake = FakeZoho({CONTACT_A: ["Hot Deal"], CONTACT_B: ["Hot Deal"]}, bigin=True)
    provider = make_bigin(fake)
    action = contacts(CONTACT_A, CONTACT_B)
    preview = provider.preview(action)
    fake.scripted.append(
        httpx.Response(
            207,
            json={
                "data": [
                    item("SUCCESS", {"id": CONTACT_A, "tags": ["Negotiation"]}),
                    item("RECORD_LOCKED", {"id": CONTACT_B}),
                ]
            },
        )
    )

    results = provider.remove(action, preview, no_progress)

    assert [(r.outcome, r.code, r.remaining) for r in results] == [
        (Outcome.REMOVED, None, ("Negotiation",)),
        (Outcome.LOCKED, "RECORD_LOCKED", None),
    ]


def test_a_comma_in_a_tag_name_is_refused_without_a_call(
    make_bigin: Callable[..., Provider],
) -> None:
    fake = FakeZoho({CONTACT_A: ["Hot, Deal"]}, bigin=True)
    provider = make_bigin(fake)
    action = contacts(CONTACT_A, tags=("Hot, Deal",))

    preview = provider.preview(action)
    [result] = provider.remove(action, preview, no_progress)

    assert preview.notes and "comma" in preview.notes[0]
    assert fake.writes == []
    assert (result.outcome, result.code) == (Outcome.FAILED, "UNSUPPORTED_TAG_NAME")
    assert fake.records[CONTACT_A] == ["Hot, Deal"]


def test_undo_posts_a_json_add_tags(make_bigin: Callable[..., Provider]) -> None:
    fake = FakeZoho({CONTACT_A: ["From Email"], CONTACT_B: []}, bigin=True)
    removed = [
        RecordResult(target=CONTACT_A, outcome=Outcome.REMOVED, removed=("Hot Deal",)),
        RecordResult(target=CONTACT_B, outcome=Outcome.REMOVED, removed=("Hot Deal",)),
    ]

    results = make_bigin(fake).undo(contacts(CONTACT_A, CONTACT_B), removed, no_progress)

    [write] = fake.writes
    assert str(write.url) == f"{API}/bigin/v2/Contacts/actions/add_tags"
    assert write.headers["authorization"] == "Zoho-oauthtoken tok"
    assert json.loads(write.content) == {
        "tags": [{"name": "Hot Deal"}],
        "ids": [CONTACT_A, CONTACT_B],
        "over_write": False,
    }
    assert [(r.outcome, r.remaining) for r in results] == [
        (Outcome.RESTORED, ("From Email", "Hot Deal")),
        (Outcome.RESTORED, ("Hot Deal",)),
    ]


def test_token_refresh_then_calls_go_to_the_returned_api_domain(
    make_bigin: Callable[..., Provider],
) -> None:
    fake = FakeZoho({CONTACT_A: ["Hot Deal"]}, bigin=True)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "accounts.zoho.in":
            grant: dict[str, Any] = {
                "access_token": "1000.in",
                "expires_in": 3600,
                "api_domain": "https://www.zohoapis.in",
            }
            return httpx.Response(200, json=grant)
        return fake(request)

    config = ZohoConfig(
        client_id="cid",
        client_secret=SecretStr("s"),
        refresh_token=SecretStr("r"),
        accounts_url="https://accounts.zoho.in",
    )
    provider = make_bigin(handler, config=config)
    action = contacts(CONTACT_A)

    provider.remove(action, provider.preview(action), no_progress)

    assert str(seen[0].url) == "https://accounts.zoho.in/oauth/v2/token"
    assert seen[0].content.startswith(b"grant_type=refresh_token&")
    assert [f"{r.url.host}{r.url.path}" for r in seen[1:]] == [
        "www.zohoapis.in/bigin/v2/Contacts",
        "www.zohoapis.in/bigin/v2/Contacts/actions/remove_tags",
    ]
    assert {r.headers["authorization"] for r in seen[1:]} == {"Zoho-oauthtoken 1000.in"}


def test_build_uses_the_bigin_section(make_bigin: Callable[..., Provider]) -> None:
    provider = make_bigin(FakeZoho({}, bigin=True))

    assert isinstance(provider, BiginProvider)
    assert provider.name == "bigin" and provider.batch_size == 500
    assert provider.session.provider == "bigin"


def test_sandbox_preview_remove_undo(make_bigin: Callable[..., Provider]) -> None:
    with Sandbox(port=0, seed_demo=False) as sb:
        store = sb.state.bigin
        store.add_record("Contacts", CONTACT_A, ["Hot Deal", "In Progress", "From Email"])
        store.add_record("Contacts", CONTACT_B, ["Hot Deal"], locked=True)
        urls, creds = sb.base_urls(), sb.credentials
        config = ZohoConfig(
            client_id=creds.zoho_client_id,
            client_secret=SecretStr(creds.zoho_client_secret),
            refresh_token=SecretStr(creds.zoho_refresh_token),
            accounts_url=urls["zoho_accounts"],
            api_domain=urls["zoho_api_domain"],
        )
        provider = make_bigin(None, config=config)
        action = contacts(CONTACT_A, CONTACT_B)

        preview = provider.preview(action)
        results = provider.remove(action, preview, no_progress)

        assert [(r.outcome, r.removed, r.remaining) for r in results] == [
            (Outcome.REMOVED, ("Hot Deal", "In Progress"), ("From Email",)),
            (Outcome.LOCKED, (), None),
        ]
        assert store.tags_of("Contacts", CONTACT_A) == ["From Email"]
        assert store.tags_of("Contacts", CONTACT_B) == ["Hot Deal"]
        [write] = [r for r in sb.requests if r.method == "POST" and r.provider == "bigin"]
        assert write.path == "/bigin/v2/Contacts/actions/remove_tags"
        assert write.query == (f"ids={CONTACT_A},{CONTACT_B}&tag_names=Hot%20Deal,In%20Progress")
        assert write.body == b""
        assert write.headers["authorization"].startswith("Zoho-oauthtoken ")

        sb.clear_requests()
        removed = [r for r in results if r.outcome is Outcome.REMOVED]
        undone = provider.undo(action, removed, no_progress)

        assert [r.outcome for r in undone] == [Outcome.RESTORED]
        assert store.tags_of("Contacts", CONTACT_A) == ["From Email", "Hot Deal", "In Progress"]
        [add] = sb.requests
        assert (add.provider, add.method, add.path) == (
            "bigin",
            "POST",
            "/bigin/v2/Contacts/actions/add_tags",
        )
        assert add.json() == {
            "tags": [{"name": "Hot Deal"}, {"name": "In Progress"}],
            "ids": [CONTACT_A],
            "over_write": False,
        }
