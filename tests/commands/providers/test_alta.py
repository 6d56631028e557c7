"""Alta provider: exact requests, outcome parsing, undo, retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import stamina
import tenacity
from pydantic import SecretStr

from commands.actions import Action, ProviderName
from commands.config import AltaConfig, ProvidersConfig, RateLimits
from commands.http import HttpClient
from commands.providers import alta
from commands.providers.base import Wiring
from commands.results import Outcome, Preview, RecordPreview, RecordResult
from sandbox import Credentials, Sandbox

BASE = "https://alta.test/v1"
THREAD = "0b4f6c1e-9d2a-4c55-8f7e-3a1b2c3d4e5f"
OTHER = "6f1e2d3c-4b5a-4978-8675-a1b2c3d4e5f6"
THIRD = "11111111-2222-4333-8444-555555555555"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport that records every request and answers from a handler."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._handler(request)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


def make_provider(
    handler: Handler = ok, *, account_id: str | None = "acct-7", limit: int = 0
) -> tuple[alta.AltaProvider, Recorder]:
    recorder = Recorder(handler)
    config = ProvidersConfig(
        alta=AltaConfig(api_token=SecretStr("tok-123"), account_id=account_id, base_url=BASE),
        limits=RateLimits(alta_per_minute=limit),
    )
    wiring = Wiring(
        config=config,
        http=HttpClient(transport=httpx.MockTransport(recorder)),
        tokens=cast(Any, None),
    )
    provider = alta.build(wiring)
    assert provider is not None
    return provider, recorder


def action(*targets: str, tags: tuple[str, ...] = ("VIP", "Cold lead")) -> Action:
    return Action(provider=ProviderName.ALTA, scope="emailThread", targets=targets, tags=tags)


pytestmark = pytest.mark.usefixtures("no_retry_waits")


def test_build_returns_none_without_config() -> None:
    wiring = Wiring(config=ProvidersConfig(), http=HttpClient(), tokens=cast(Any, None))
    assert alta.build(wiring) is None


def test_preview_makes_no_call_and_says_tags_are_unreadable() -> None:
    provider, recorder = make_provider()
    preview = provider.preview(action(THREAD, OTHER))

    assert recorder.requests == []
    assert preview.readable is False
    assert preview.notes == (
        "Alta has no API to read an entity's tags: current tags cannot be shown. "
        "Removing a tag the entity does not carry changes nothing.",
    )
    assert preview.records == (
        RecordPreview(target=THREAD, current=None, removing=("VIP", "Cold lead"), after=None),
        RecordPreview(target=OTHER, current=None, removing=("VIP", "Cold lead"), after=None),
    )


def test_preview_warns_about_ids_that_are_not_uuids() -> None:
    provider, _ = make_provider()
    preview = provider.preview(action(THREAD, "li-conv-42"))
    assert preview.notes[1] == "Not UUIDs, Alta will probably refuse them: li-conv-42"


def test_preview_refuses_an_unknown_entity_type() -> None:
    provider, _ = make_provider()
    bad = Action(provider=ProviderName.ALTA, scope="Leads", targets=(THREAD,), tags=("VIP",))
    with pytest.raises(ValueError, match="entity type"):
        provider.preview(bad)


def test_remove_sends_one_unassign_per_entity_with_every_tag() -> None:
    provider, recorder = make_provider()
    act = Action(
        provider=ProviderName.ALTA,
        scope="linkedinConversation",
        targets=(THREAD, OTHER),
        tags=("VIP", "Cold lead"),
    )
    progress: list[tuple[int, int]] = []
    results = provider.remove(act, provider.preview(act), lambda d, t: progress.append((d, t)))

    assert [(r.method, str(r.url)) for r in recorder.requests] == [
        ("POST", f"{BASE}/tags/unassign"),
        ("POST", f"{BASE}/tags/unassign"),
    ]
    first = recorder.requests[0]
    assert first.headers["authorization"] == "Bearer tok-123"
    assert first.headers["x-account-id"] == "acct-7"
    assert first.headers["content-type"] == "application/json"
    assert recorder.bodies() == [
        {"entityId": THREAD, "entityType": "linkedinConversation", "tags": ["VIP", "Cold lead"]},
        {"entityId": OTHER, "entityType": "linkedinConversation", "tags": ["VIP", "Cold lead"]},
    ]
    assert results == [
        RecordResult(target=THREAD, outcome=Outcome.REMOVED, removed=("VIP", "Cold lead")),
        RecordResult(target=OTHER, outcome=Outcome.REMOVED, removed=("VIP", "Cold lead")),
    ]
    assert progress == [(1, 2), (2, 2)]


def test_no_account_header_when_no_account_is_configured() -> None:
    provider, recorder = make_provider(account_id=None)
    act = action(THREAD)
    provider.remove(act, provider.preview(act), lambda d, t: None)
    assert "x-account-id" not in recorder.requests[0].headers
    assert recorder.requests[0].headers["authorization"] == "Bearer tok-123"


def test_not_found_and_validation_errors_are_per_entity() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        entity = json.loads(request.content)["entityId"]
        if entity == THREAD:
            return httpx.Response(404, json={"error": "NotFound", "message": "Resource not found"})
        if entity == OTHER:
            return httpx.Response(
                400, json={"error": "ValidationError", "message": "entityId must be a valid UUID"}
            )
        return httpx.Response(200)

    provider, recorder = make_provider(handler)
    act = action(THREAD, OTHER, THIRD)
    results = provider.remove(act, provider.preview(act), lambda d, t: None)

    assert len(recorder.requests) == 3
    assert results == [
        RecordResult(target=THREAD, outcome=Outcome.NOT_FOUND),
        RecordResult(
            target=OTHER,
            outcome=Outcome.FAILED,
            code="ValidationError",
            message="entityId must be a valid UUID",
        ),
        RecordResult(target=THIRD, outcome=Outcome.REMOVED, removed=("VIP", "Cold lead")),
    ]


def test_error_without_a_json_body_still_fails_with_the_status() -> None:
    provider, _ = make_provider(lambda r: httpx.Response(500, text="oops"))
    act = action(THREAD)
    [result] = provider.remove(act, provider.preview(act), lambda d, t: None)
    assert result.outcome is Outcome.FAILED
    assert result.code == "HTTP 500"
    assert result.message == "POST /v1/tags/unassign answered 500"


def test_refused_token_fails_every_entity_after_one_call() -> None:
    body = {"error": "Unauthorized", "message": "Invalid API token"}
    provider, recorder = make_provider(lambda r: httpx.Response(401, json=body))
    act = action(THREAD, OTHER)
    results = provider.remove(act, provider.preview(act), lambda d, t: None)

    assert len(recorder.requests) == 1
    assert [(r.outcome, r.code) for r in results] == [
        (Outcome.FAILED, "AuthenticationFailed"),
        (Outcome.FAILED, "AuthenticationFailed"),
    ]


def test_records_with_nothing_to_remove_or_missing_from_the_preview_are_not_sent() -> None:
    provider, recorder = make_provider()
    act = action(THREAD, OTHER, THIRD)
    preview = Preview(
        action=act,
        readable=False,
        records=(
            RecordPreview(target=THREAD, removing=()),
            RecordPreview(target=OTHER, removing=("VIP",)),
        ),
    )
    results = provider.remove(act, preview, lambda d, t: None)

    assert recorder.bodies() == [{"entityId": OTHER, "entityType": "emailThread", "tags": ["VIP"]}]
    assert [r.outcome for r in results] == [Outcome.NOT_PRESENT, Outcome.REMOVED, Outcome.SKIPPED]


def test_undo_assigns_exactly_the_removed_tags() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["entityId"] == OTHER:
            return httpx.Response(404, json={"error": "NotFound", "message": "gone"})
        return httpx.Response(200)

    provider, recorder = make_provider(handler)
    removed = [
        RecordResult(target=THREAD, outcome=Outcome.REMOVED, removed=("VIP",)),
        RecordResult(target=OTHER, outcome=Outcome.REMOVED, removed=("VIP", "Cold lead")),
    ]
    progress: list[tuple[int, int]] = []
    results = provider.undo(action(THREAD, OTHER), removed, lambda d, t: progress.append((d, t)))

    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("POST", "/v1/tags/assign"),
        ("POST", "/v1/tags/assign"),
    ]
    assert recorder.requests[0].headers["authorization"] == "Bearer tok-123"
    assert recorder.bodies() == [
        {"entityId": THREAD, "entityType": "emailThread", "tags": ["VIP"]},
        {"entityId": OTHER, "entityType": "emailThread", "tags": ["VIP", "Cold lead"]},
    ]
    assert results == [
        RecordResult(target=THREAD, outcome=Outcome.RESTORED, removed=("VIP",)),
        RecordResult(target=OTHER, outcome=Outcome.NOT_FOUND),
    ]
    assert progress == [(1, 2), (2, 2)]


def test_429_waits_what_retry_after_says_then_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait is read from tenacity's sleep, patched: no real sleeping, no timing guesswork."""
    answers = iter(
        [
            httpx.Response(
                429,
                headers={"Retry-After": "1"},
                json={"error": "TooManyRequests", "message": "Rate limit exceeded."},
            ),
            httpx.Response(200),
        ]
    )
    provider, recorder = make_provider(lambda r: next(answers))
    slept: list[float] = []
    monkeypatch.setattr(tenacity.nap, "time", SimpleNamespace(sleep=slept.append))
    act = action(THREAD)
    with stamina.set_testing(False):  # real backoff computation, fake sleep
        [result] = provider.remove(act, provider.preview(act), lambda d, t: None)

    assert slept == [1.0]
    assert len(recorder.requests) == 2
    assert recorder.requests[0].content == recorder.requests[1].content
    assert result.outcome is Outcome.REMOVED


def test_against_the_sandbox_remove_then_undo() -> None:
    credentials = Credentials(alta_account_id="acct-9")
    with Sandbox(port=0, credentials=credentials, seed_demo=False).start() as sb:
        sb.state.alta.add_entity("emailThread", THREAD, ["VIP", "Cold lead", "Keep"])
        config = ProvidersConfig(
            alta=AltaConfig(
                api_token=SecretStr(credentials.alta_token),
                account_id="acct-9",
                base_url=sb.base_urls()["alta"],
            )
        )
        http = HttpClient()
        try:
            provider = alta.build(Wiring(config=config, http=http, tokens=cast(Any, None)))
            assert provider is not None
            act = action(THREAD, OTHER)
            preview = provider.preview(act)
            assert sb.requests == []

            results = provider.remove(act, preview, lambda d, t: None)
            assert [r.outcome for r in results] == [Outcome.REMOVED, Outcome.NOT_FOUND]
            assert sb.state.alta.tags_of(THREAD) == ["Keep"]
            sent = sb.requests[0]
            assert (sent.provider, sent.method, sent.path) == ("alta", "POST", "/v1/tags/unassign")
            assert sent.headers["authorization"] == "Bearer alta-demo-token"
            assert sent.headers["x-account-id"] == "acct-9"
            assert sent.json() == {
                "entityId": THREAD,
                "entityType": "emailThread",
                "tags": ["VIP", "Cold lead"],
            }
            sb.clear_requests()

            undone = provider.undo(
                act, [r for r in results if r.outcome is Outcome.REMOVED], lambda d, t: None
            )
            assert [r.outcome for r in undone] == [Outcome.RESTORED]
            assert sorted(sb.state.alta.tags_of(THREAD)) == ["Cold lead", "Keep", "VIP"]
            [sent] = sb.requests
            assert (sent.method, sent.path, sent.status) == ("POST", "/v1/tags/assign", 200)
            assert sent.json() == {
                "entityId": THREAD,
                "entityType": "emailThread",
                "tags": ["VIP", "Cold lead"],
            }
        finally:
            http.close()
