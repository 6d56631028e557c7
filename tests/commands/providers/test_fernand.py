"""Fernand provider: exact requests, path encoding, outcome parsing, undo, 429 handling."""

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
from commands.config import FernandConfig, ProvidersConfig, RateLimits
from commands.errors import ProviderStatusError, ProviderUnavailable, RateLimited
from commands.http import ApiResponse, HttpClient
from commands.providers import fernand
from commands.providers.base import Wiring, reporting_batches_to
from commands.results import Outcome, Preview, RecordPreview, RecordResult
from sandbox import Sandbox

BASE = "https://fernand.test"
NOW = 1_767_225_600.0  # the injected clock: 2026-01-01T00:00Z

CATALOGUE = [
    {"id": 1, "slug": "vip-customer", "name": "VIP Customer", "color": "#E5484D"},
    {"id": 5, "slug": "billing", "name": "Billing", "color": "#3E63DD"},
    {"id": 12, "slug": "a-b", "name": "a/b", "color": "#30A46C"},
]
NAMES = {t["id"]: t["name"] for t in CATALOGUE}
IDS = {t["name"]: t["id"] for t in CATALOGUE}

Handler = Callable[[httpx.Request], httpx.Response]


class FakeFernand:
    """Just enough of Fernand: conversations by id, the catalogue, detach and attach."""

    def __init__(self, conversations: dict[int, list[int]], tags: Any = None) -> None:
        self.conversations = conversations
        self.tags_body: Any = CATALOGUE if tags is None else tags
        self.requests: list[httpx.Request] = []
        self.override: dict[tuple[str, str], list[httpx.Response]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raw = request.url.raw_path.decode()
        queued = self.override.get((request.method, raw))
        if queued:
            return queued.pop(0)
        parts = raw.split("/")[1:]
        if request.method == "GET" and parts == ["tags"]:
            return httpx.Response(200, json=self.tags_body)
        conversation = self.conversations.get(int(parts[1]))
        if conversation is None:
            return httpx.Response(
                404, json={"error": "not_found", "message": "Conversation not found"}
            )
        if request.method == "GET":
            return httpx.Response(200, json=self._conversation(int(parts[1])))
        if request.method == "DELETE":
            name = httpx.URL("/" + parts[3]).path.lstrip("/")  # percent-decoded
            conversation[:] = [i for i in conversation if NAMES.get(i) != name]
            return httpx.Response(200, json=self._conversation(int(parts[1])))
        name = json.loads(request.content)["name"]
        conversation.append(IDS[name])
        return httpx.Response(200, json={"id": IDS[name], "name": name, "slug": "x"})

    def _conversation(self, cid: int) -> dict[str, Any]:
        return {
            "id": cid,
            "subject": "Question about billing",
            "tags": list(self.conversations[cid]),
        }

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.raw_path.decode()) for r in self.requests]


def make_provider(fake: Handler, *, now: float = NOW) -> fernand.FernandProvider:
    config = ProvidersConfig(
        fernand=FernandConfig(api_key=SecretStr("sk_test_1"), base_url=BASE),
        limits=RateLimits(fernand_reads_per_minute=0, fernand_writes_per_minute=0),
    )
    wiring = Wiring(
        config=config,
        http=HttpClient(transport=httpx.MockTransport(fake)),
        tokens=cast(Any, None),
    )
    provider = fernand.build(wiring, now=lambda: now)
    assert provider is not None
    return provider


def action(*targets: str, tags: tuple[str, ...] = ("vip customer",)) -> Action:
    return Action(provider=ProviderName.FERNAND, targets=targets, tags=tags)


def response(status: int, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, headers or {}, b"", "DELETE", "/conversations/1/tags/x")


pytestmark = pytest.mark.usefixtures("no_retry_waits")


def test_build_returns_none_without_config() -> None:
    wiring = Wiring(config=ProvidersConfig(), http=HttpClient(), tokens=cast(Any, None))
    assert fernand.build(wiring) is None


def test_preview_reads_conversations_and_names_their_tags_from_the_catalogue() -> None:
    fake = FakeFernand({12345: [1, 5], 777: [5], 999: [1, 99]})
    provider = make_provider(fake)
    preview = provider.preview(action("12345", "404", "777", "999", "abc"))

    assert fake.calls() == [
        ("GET", "/conversations/12345"),
        ("GET", "/tags"),  # once, when the first tag needs a name
        ("GET", "/conversations/404"),
        ("GET", "/conversations/777"),
        ("GET", "/conversations/999"),
    ]  # "abc" cannot be a conversation id: no call at all
    assert all(r.headers["x-api-key"] == "sk_test_1" for r in fake.requests)
    assert preview.readable is True
    assert preview.records == (
        RecordPreview(
            target="12345",
            current=("VIP Customer", "Billing"),
            removing=("VIP Customer",),
            after=("Billing",),
        ),
        RecordPreview(target="404", found=False),
        RecordPreview(target="777", current=("Billing",), removing=(), after=("Billing",)),
        RecordPreview(
            target="999",
            current=("VIP Customer", "#99"),
            removing=("VIP Customer",),
            after=("#99",),
        ),
        RecordPreview(target="abc", found=False),
    )


def test_preview_accepts_a_data_envelope_around_the_catalogue() -> None:
    fake = FakeFernand({1: [5]}, tags={"data": CATALOGUE})
    preview = make_provider(fake).preview(action("1", tags=("Billing",)))
    assert preview.records[0].current == ("Billing",)


def test_preview_without_any_tag_skips_the_catalogue() -> None:
    fake = FakeFernand({1: []})
    preview = make_provider(fake).preview(action("1"))
    assert fake.calls() == [("GET", "/conversations/1")]
    assert preview.records[0].nothing_to_do


def test_preview_fails_loudly_when_the_catalogue_cannot_be_read() -> None:
    fake = FakeFernand({1: [5]})
    fake.override[("GET", "/tags")] = [
        httpx.Response(500, json={"error": "internal_error", "message": "boom"})
    ]
    with pytest.raises(ProviderStatusError) as caught:
        make_provider(fake).preview(action("1"))
    assert caught.value.code == "internal_error"


def test_a_conversation_that_cannot_be_read_is_marked_and_the_others_previewed() -> None:
    fake = FakeFernand({7: [1, 5], 8: [1], 9: [5]})
    fake.override[("GET", "/conversations/8")] = [httpx.Response(503, json={})] * 8
    provider = make_provider(fake)

    preview = provider.preview(action("7", "8", "9"))

    assert [r.target for r in preview.records] == ["7", "8", "9"]
    unread = preview.records[1]
    assert unread.unreadable is not None and "503" in unread.unreadable
    assert (unread.removing, unread.current) == ((), None)
    assert preview.records[0].removing == ("VIP Customer",)
    assert preview.records[2].nothing_to_do
    assert fake.calls().count(("GET", "/conversations/8")) == 3  # retried before giving up


def test_when_every_conversation_fails_the_preview_fails_with_the_provider_error() -> None:
    fake = FakeFernand({7: [1], 8: [1]})
    for cid in ("7", "8"):
        fake.override[("GET", f"/conversations/{cid}")] = [httpx.Response(500, json={})] * 8
    with pytest.raises(ProviderStatusError):
        make_provider(fake).preview(action("7", "8"))


def test_remove_deletes_the_catalogue_name_as_one_encoded_segment() -> None:
    fake = FakeFernand({12345: [1, 5]})
    provider = make_provider(fake)
    act = action("12345")
    preview = provider.preview(act)
    fake.requests.clear()

    progress: list[tuple[int, int]] = []
    results = provider.remove(act, preview, lambda d, t: progress.append((d, t)))

    assert fake.calls() == [("DELETE", "/conversations/12345/tags/VIP%20Customer")]
    assert str(fake.requests[0].url) == f"{BASE}/conversations/12345/tags/VIP%20Customer"
    assert fake.requests[0].headers["x-api-key"] == "sk_test_1"
    assert fake.requests[0].content == b""
    assert results == [
        RecordResult(
            target="12345",
            outcome=Outcome.REMOVED,
            removed=("VIP Customer",),
            remaining=("Billing",),
        )
    ]
    assert progress == [(1, 1)]


def test_a_slash_in_a_tag_name_stays_inside_the_segment() -> None:
    assert fernand.tag_path("1", "a/b") == "/conversations/1/tags/a%2Fb"
    assert fernand.tag_path("1", "50% off?#") == "/conversations/1/tags/50%25%20off%3F%23"
    fake = FakeFernand({1: [12]})
    provider = make_provider(fake)
    act = action("1", tags=("a/b",))
    preview = provider.preview(act)
    provider.remove(act, preview, lambda d, t: None)
    assert fake.calls()[-1] == ("DELETE", "/conversations/1/tags/a%2Fb")
    assert fake.conversations[1] == []


def test_one_delete_per_tag_and_nothing_for_missing_or_untagged_conversations() -> None:
    fake = FakeFernand({1: [1, 5, 12], 2: [12]})
    provider = make_provider(fake)
    act = action("1", "404", "2", tags=("VIP Customer", "billing"))
    preview = provider.preview(act)
    fake.requests.clear()
    progress: list[tuple[int, int]] = []

    results = provider.remove(act, preview, lambda d, t: progress.append((d, t)))

    assert fake.calls() == [
        ("DELETE", "/conversations/1/tags/VIP%20Customer"),
        ("DELETE", "/conversations/1/tags/Billing"),
    ]
    assert results == [
        RecordResult(
            target="1",
            outcome=Outcome.REMOVED,
            removed=("VIP Customer", "Billing"),
            remaining=("a/b",),
        ),
        RecordResult(target="404", outcome=Outcome.NOT_FOUND),
        RecordResult(target="2", outcome=Outcome.NOT_PRESENT),
    ]
    assert progress == [(1, 2), (2, 2)]


def test_a_failed_delete_keeps_what_came_off_before_it() -> None:
    fake = FakeFernand({1: [1, 5, 12], 2: [1]})
    provider = make_provider(fake)
    act = action("1", "2", tags=("VIP Customer", "Billing", "a/b"))
    preview = provider.preview(act)
    fake.override[("DELETE", "/conversations/1/tags/Billing")] = [
        httpx.Response(400, json={"error": "bad_request", "message": "tag is locked"})
    ]
    progress: list[tuple[int, int]] = []

    results = provider.remove(act, preview, lambda d, t: progress.append((d, t)))

    assert [c for c in fake.calls() if c[0] == "DELETE"] == [
        ("DELETE", "/conversations/1/tags/VIP%20Customer"),
        ("DELETE", "/conversations/1/tags/Billing"),
        ("DELETE", "/conversations/2/tags/VIP%20Customer"),
    ]
    assert results == [
        RecordResult(
            target="1",
            outcome=Outcome.FAILED,
            removed=("VIP Customer",),
            code="bad_request",
            message="tag is locked",
        ),
        RecordResult(target="2", outcome=Outcome.REMOVED, removed=("VIP Customer",), remaining=()),
    ]
    # Four calls planned; the third tag of conversation 1 is settled without a call.
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_an_exhausted_retry_mid_conversation_still_reports_the_removed_tags() -> None:
    fake = FakeFernand({1: [1, 5]})
    provider = make_provider(fake)
    act = action("1", tags=("VIP Customer", "Billing"))
    preview = provider.preview(act)
    fake.override[("DELETE", "/conversations/1/tags/Billing")] = [
        httpx.Response(503) for _ in range(3)
    ]

    recorded: list[RecordResult] = []
    with reporting_batches_to(recorded.extend):
        [result] = provider.remove(act, preview, lambda d, t: None)

    assert result.outcome is Outcome.FAILED
    assert result.code == "ProviderUnavailable"
    assert result.removed == ("VIP Customer",)
    # Recorded so with its batch, before the job goes on: after a crash, undo still sees it.
    assert recorded == [result]


def test_a_200_that_still_lists_the_tag_is_not_a_removal() -> None:
    fake = FakeFernand({1: [1, 5]})
    provider = make_provider(fake)
    act = action("1")
    preview = provider.preview(act)
    fake.override[("DELETE", "/conversations/1/tags/VIP%20Customer")] = [
        httpx.Response(200, json={"id": 1, "tags": [1, 5]})
    ]
    [result] = provider.remove(act, preview, lambda d, t: None)
    assert (result.outcome, result.code, result.removed) == (Outcome.FAILED, "NotRemoved", ())


def test_a_conversation_deleted_after_the_preview_is_not_found() -> None:
    fake = FakeFernand({1: [1]})
    provider = make_provider(fake)
    act = action("1")
    preview = provider.preview(act)
    del fake.conversations[1]
    [result] = provider.remove(act, preview, lambda d, t: None)
    assert result == RecordResult(target="1", outcome=Outcome.NOT_FOUND)


def test_targets_missing_from_the_preview_are_skipped() -> None:
    fake = FakeFernand({})
    act = action("1")
    results = make_provider(fake).remove(act, Preview(action=act), lambda d, t: None)
    assert fake.requests == []
    assert results[0].outcome is Outcome.SKIPPED


def test_undo_posts_each_removed_tag_by_name() -> None:
    fake = FakeFernand({12345: [5], 8: [5]})
    provider = make_provider(fake)
    removed = [
        RecordResult(target="12345", outcome=Outcome.REMOVED, removed=("VIP Customer", "a/b")),
        RecordResult(target="404", outcome=Outcome.REMOVED, removed=("Billing",)),
        RecordResult(target="8", outcome=Outcome.REMOVED, removed=("VIP Customer",)),
    ]
    fake.override[("POST", "/conversations/8/tags")] = [
        httpx.Response(400, json={"error": "bad_request", "message": "name too long"})
    ]
    progress: list[tuple[int, int]] = []

    results = provider.undo(action("12345"), removed, lambda d, t: progress.append((d, t)))

    assert fake.calls() == [
        ("POST", "/conversations/12345/tags"),
        ("POST", "/conversations/12345/tags"),
        ("POST", "/conversations/404/tags"),
        ("POST", "/conversations/8/tags"),
    ]
    assert [json.loads(r.content) for r in fake.requests] == [
        {"name": "VIP Customer"},
        {"name": "a/b"},
        {"name": "Billing"},
        {"name": "VIP Customer"},
    ]
    assert fake.requests[0].headers["x-api-key"] == "sk_test_1"
    assert fake.requests[0].headers["content-type"] == "application/json"
    assert results == [
        RecordResult(target="12345", outcome=Outcome.RESTORED, removed=("VIP Customer", "a/b")),
        RecordResult(target="404", outcome=Outcome.NOT_FOUND),
        RecordResult(
            target="8", outcome=Outcome.FAILED, code="bad_request", message="name too long"
        ),
    ]
    assert fake.conversations[12345] == [5, 1, 12]
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_429_waits_until_x_ratelimit_reset_then_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait comes from the reset epoch and the injected clock, read off tenacity's sleep."""
    fake = FakeFernand({12345: [1]})
    provider = make_provider(fake)
    act = action("12345")
    preview = provider.preview(act)
    fake.override[("DELETE", "/conversations/12345/tags/VIP%20Customer")] = [
        httpx.Response(
            429,
            headers={
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(NOW) + 42),
            },
            json={"error": "too_many_requests", "message": "Rate limit exceeded"},
        )
    ]
    slept: list[float] = []
    monkeypatch.setattr(tenacity.nap, "time", SimpleNamespace(sleep=slept.append))

    with stamina.set_testing(False):  # real backoff computation, fake sleep
        [result] = provider.remove(act, preview, lambda d, t: None)

    assert slept == [42.0]
    deletes = [c for c in fake.calls() if c[0] == "DELETE"]
    assert deletes == [("DELETE", "/conversations/12345/tags/VIP%20Customer")] * 2
    assert result.outcome is Outcome.REMOVED


def test_classifier_measures_the_wait_from_the_reset_epoch() -> None:
    classify = fernand.fernand_classifier(now=lambda: NOW)

    problem = classify(response(429, {"x-ratelimit-reset": str(int(NOW) + 7)}))
    assert isinstance(problem, RateLimited)
    assert problem.retry_after == 7.0

    already_due = classify(response(429, {"x-ratelimit-reset": str(int(NOW) - 3)}))
    assert isinstance(already_due, RateLimited)
    assert already_due.retry_after == fernand.MIN_RATE_LIMIT_WAIT

    unsaid = classify(response(429))
    assert isinstance(unsaid, RateLimited)
    assert unsaid.retry_after is None  # exponential backoff

    assert isinstance(classify(response(503)), ProviderUnavailable)
    assert classify(response(404)) is None
    assert classify(response(200)) is None


def test_against_the_sandbox_remove_then_undo() -> None:
    with Sandbox(port=0, seed_demo=False).start() as sb:
        store = sb.state.fernand
        store.add_conversation(12345, ["VIP Customer", "Billing", "a/b"])
        store.add_conversation(777, ["Billing"])
        config = ProvidersConfig(
            fernand=FernandConfig(
                api_key=SecretStr(sb.credentials.fernand_key), base_url=sb.base_urls()["fernand"]
            )
        )
        http = HttpClient()
        try:
            provider = fernand.build(Wiring(config=config, http=http, tokens=cast(Any, None)))
            assert provider is not None
            act = action("12345", "777", "404", tags=("vip customer", "A/B"))
            preview = provider.preview(act)
            assert [r.removing for r in preview.records] == [("VIP Customer", "a/b"), (), ()]
            assert preview.records[2].found is False
            sb.clear_requests()

            results = provider.remove(act, preview, lambda d, t: None)
            assert results == [
                RecordResult(
                    target="12345",
                    outcome=Outcome.REMOVED,
                    removed=("VIP Customer", "a/b"),
                    remaining=("Billing",),
                ),
                RecordResult(target="777", outcome=Outcome.NOT_PRESENT),
                RecordResult(target="404", outcome=Outcome.NOT_FOUND),
            ]
            assert store.tags_of(12345) == ["Billing"]
            assert [(r.provider, r.method, r.path, r.status) for r in sb.requests] == [
                ("fernand", "DELETE", "/conversations/12345/tags/VIP%20Customer", 200),
                ("fernand", "DELETE", "/conversations/12345/tags/a%2Fb", 200),
            ]
            assert sb.requests[0].headers["x-api-key"] == sb.credentials.fernand_key
            sb.clear_requests()

            undone = provider.undo(act, results[:1], lambda d, t: None)
            assert [r.outcome for r in undone] == [Outcome.RESTORED]
            assert sorted(store.tags_of(12345)) == ["Billing", "VIP Customer", "a/b"]
            assert [(r.method, r.path, r.json()) for r in sb.requests] == [
                ("POST", "/conversations/12345/tags", {"name": "VIP Customer"}),
                ("POST", "/conversations/12345/tags", {"name": "a/b"}),
            ]
        finally:
            http.close()
