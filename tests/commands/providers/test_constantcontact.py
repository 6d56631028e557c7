"""Constant Contact provider: exact activity requests, polling, tag lookup, limits, OAuth, undo."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr

from commands.actions import Action, Operation, ProviderName
from commands.config import ConstantContactConfig, ProvidersConfig, RateLimits
from commands.errors import ConfigError, QuotaExceeded, RateLimited
from commands.http import ApiResponse, HttpClient
from commands.providers import constantcontact as cc
from commands.providers.base import Wiring
from commands.results import Outcome, Preview, RecordPreview, RecordResult
from sandbox import Limits, ManualClock, Sandbox
from storage import Database, TokenStore, open_database
from tests.storage.test_audit import KEY

BASE = "https://api.cc.test/v3"
TOKEN_URL = "https://authz.cc.test/oauth2/default/v1/token"
VIP = "00e4429c-3beb-11eb-9f34-fa163e56c9b9"
COLD = "04fe9a97-a579-43c5-bb1a-58ed29bf0a6a"
GOLD = "4501b8b0-1e39-11e8-bc9f-00163e6dbd8d"
C1 = "1618ae62-4752-11e9-9c8a-fa163e6b01c1"
C2 = "2b0f4b2e-4752-11e9-9c8a-fa163e6b01c1"
C3 = "3c1e5d3f-4752-11e9-9c8a-fa163e6b01c1"
GONE = "9f9f9f9f-4752-11e9-9c8a-fa163e6b01c1"

Plan = list[tuple[str, float]]  # (state, fraction of items completed) per poll


@dataclass
class FakeCC:
    """A small Constant Contact: tags, contacts with taggings, and scripted activities."""

    tags: dict[str, str] = field(
        default_factory=lambda: {VIP: "VIP", COLD: "Cold lead", GOLD: "Gold"}
    )
    contacts: dict[str, list[str]] = field(
        default_factory=lambda: {C1: [VIP, GOLD], C2: [VIP], C3: [GOLD]}
    )
    page_size: int = 500
    contact_page_size: int = 500
    plan: Plan = field(default_factory=lambda: [("processing", 0.5), ("completed", 1.0)])
    activity_errors: list[str] = field(default_factory=list)
    queued: list[httpx.Response] = field(default_factory=list)  # answered before routing
    requests: list[httpx.Request] = field(default_factory=list)
    _activities: dict[str, tuple[Plan, int]] = field(default_factory=dict)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            return self.queued.pop(0)
        path = request.url.path.removeprefix("/v3")
        if request.method == "GET" and path == "/contact_tags":
            return self._tag_page(request)
        if request.method == "GET" and path.startswith("/contacts/"):
            return self._contact(path.removeprefix("/contacts/"))
        if request.method == "GET" and path == "/contacts":
            return self._listing(request)
        if request.method == "POST" and path.startswith("/activities/"):
            return self._start(path.removeprefix("/activities/"), json.loads(request.content))
        if request.method == "GET" and path.startswith("/activities/"):
            return self._poll(path.removeprefix("/activities/"))
        return httpx.Response(404, json=[{"error_key": "not.found"}])

    def _tag_page(self, request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("cursor", "0"))
        items = [
            {"tag_id": tid, "name": name, "contacts_count": self._count(tid)}
            for tid, name in list(self.tags.items())[start : start + self.page_size]
        ]
        body: dict[str, Any] = {"tags": items}
        if start + self.page_size < len(self.tags):
            nxt = start + self.page_size
            body["_links"] = {"next": {"href": f"/v3/contact_tags?cursor={nxt}&limit=500"}}
        return httpx.Response(200, json=body)

    def _listing(self, request: httpx.Request) -> httpx.Response:
        """``GET /contacts?tags=a,b&include=taggings``: the contacts carrying any of the tags."""
        wanted = set(request.url.params["tags"].split(","))
        assert request.url.params["include"] == "taggings"
        carrying = [(c, t) for c, t in self.contacts.items() if wanted & set(t)]
        start = int(request.url.params.get("cursor", "0"))
        page = carrying[start : start + self.contact_page_size]
        body: dict[str, Any] = {
            "contacts": [{"contact_id": c, "taggings": list(t)} for c, t in page]
        }
        if start + self.contact_page_size < len(carrying):
            nxt = start + self.contact_page_size
            tags = request.url.params["tags"]  # the next link carries the whole query
            href = f"/v3/contacts?cursor={nxt}&tags={tags}&include=taggings"
            body["_links"] = {"next": {"href": href}}
        return httpx.Response(200, json=body)

    def _count(self, tag_id: str) -> int:
        return sum(tag_id in taggings for taggings in self.contacts.values())

    def _contact(self, contact_id: str) -> httpx.Response:
        if contact_id not in self.contacts:
            return httpx.Response(404, json=[{"error_key": "contacts.not.found"}])
        return httpx.Response(
            200, json={"contact_id": contact_id, "taggings": list(self.contacts[contact_id])}
        )

    def _start(self, kind: str, body: dict[str, Any]) -> httpx.Response:
        tag_ids: list[str] = body["tag_ids"]
        items = body.get("source", {}).get("contact_ids", tag_ids)
        for contact in body.get("source", {}).get("contact_ids", []):
            taggings = self.contacts.setdefault(contact, [])
            if kind == "contacts_taggings_remove":
                taggings[:] = [t for t in taggings if t not in tag_ids]
            else:
                taggings += [t for t in tag_ids if t not in taggings]
        if kind == "contacts_tags_delete":
            for tag_id in tag_ids:
                self.tags.pop(tag_id, None)
                for taggings in self.contacts.values():
                    if tag_id in taggings:
                        taggings.remove(tag_id)
        activity_id = f"act-{len(self._activities) + 1}"
        self._activities[activity_id] = (list(self.plan), len(items))
        return httpx.Response(201, json=self._activity(activity_id, "initialized", None, 0))

    def _poll(self, activity_id: str) -> httpx.Response:
        plan, total = self._activities[activity_id]
        state, fraction = plan.pop(0) if len(plan) > 1 else plan[0]
        return httpx.Response(200, json=self._activity(activity_id, state, fraction, total))

    def _activity(
        self, activity_id: str, state: str, fraction: float | None, total: int
    ) -> dict[str, Any]:
        status = (
            {}
            if fraction is None
            else {"items_total_count": total, "items_completed_count": int(fraction * total)}
        )
        return {
            "activity_id": activity_id,
            "state": state,
            "percent_done": 1 if fraction is None else int(fraction * 100),
            "activity_errors": self.activity_errors if state == "completed" else [],
            "status": status,
            "_links": {"self": {"href": f"/v3/activities/{activity_id}"}},
        }

    # --- what tests read ---

    def calls(self, method: str | None = None) -> list[str]:
        """``METHOD /path?query`` of each request, in order."""
        return [
            f"{r.method} {r.url.raw_path.decode()}"
            for r in self.requests
            if method is None or r.method == method
        ]

    def posts(self) -> list[tuple[str, Any]]:
        return [(r.url.path, json.loads(r.content)) for r in self.requests if r.method == "POST"]


@dataclass
class FakeTime:
    """An injected sleeper and monotonic clock: sleeping moves the clock, nobody waits."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with open_database(tmp_path / "untag.db") as database:
        yield database


@pytest.fixture
def tokens(db: Database) -> TokenStore:
    return TokenStore(db, KEY)


pytestmark = pytest.mark.usefixtures("no_retry_waits")


def make(
    fake: FakeCC,
    tokens: TokenStore,
    *,
    config: ConstantContactConfig | None = None,
    poll: cc.PollPolicy | None = None,
    time: FakeTime | None = None,
) -> tuple[cc.ConstantContact, FakeTime]:
    config = config or ConstantContactConfig(access_token=SecretStr("tok-123"), base_url=BASE)
    wiring = Wiring(
        config=ProvidersConfig(
            constant_contact=config, limits=RateLimits(constant_contact_per_second=0)
        ),
        http=HttpClient(transport=httpx.MockTransport(fake)),
        tokens=tokens,
    )
    time = time or FakeTime()
    provider = cc.build(wiring, sleep=time.sleep, poll=poll or cc.PollPolicy(), clock=time.clock)
    assert provider is not None
    return provider, time


def contacts_action(*targets: str, tags: tuple[str, ...] = ("VIP",)) -> Action:
    return Action(
        provider=ProviderName.CONSTANT_CONTACT, scope="contacts", targets=targets, tags=tags
    )


def delete_action(*tags: str) -> Action:
    return Action(
        provider=ProviderName.CONSTANT_CONTACT, operation=Operation.DELETE_TAGS, tags=tags
    )


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))


# --- build ---------------------------------------------------------------------------------------


def test_build_returns_none_without_config(tokens: TokenStore) -> None:
    wiring = Wiring(config=ProvidersConfig(), http=HttpClient(), tokens=tokens)
    assert cc.build(wiring) is None


def test_build_without_any_token_is_a_config_error(tokens: TokenStore) -> None:
    config = ProvidersConfig(constant_contact=ConstantContactConfig())
    with pytest.raises(ConfigError, match="CONSTANT_CONTACT_REFRESH_TOKEN"):
        cc.build(Wiring(config=config, http=HttpClient(), tokens=tokens))


# --- preview -------------------------------------------------------------------------------------


def test_preview_looks_tags_up_across_two_pages_case_insensitively(tokens: TokenStore) -> None:
    fake = FakeCC(page_size=2)  # Gold, the third tag, is on page two
    provider, _ = make(fake, tokens)

    preview = provider.preview(contacts_action(C1, C3, tags=("gold", "vip")))

    assert fake.calls() == [
        "GET /v3/contact_tags?limit=500&include_count=true",
        "GET /v3/contact_tags?cursor=2&limit=500",
        f"GET /v3/contacts/{C1}?include=taggings",
        f"GET /v3/contacts/{C3}?include=taggings",
    ]
    assert all(r.headers["Authorization"] == "Bearer tok-123" for r in fake.requests)
    assert preview.resolved_tags == {"Gold": GOLD, "VIP": VIP}
    assert preview.records == (
        RecordPreview(target=C1, current=("VIP", "Gold"), removing=("Gold", "VIP"), after=()),
        RecordPreview(target=C3, current=("Gold",), removing=("Gold",), after=()),
    )
    assert preview.notes == ()


def test_preview_accepts_tag_ids_and_notes_unknown_tags_and_missing_contacts(
    tokens: TokenStore,
) -> None:
    fake = FakeCC()
    provider, _ = make(fake, tokens)

    preview = provider.preview(contacts_action(C2, GONE, tags=(VIP, "Platinum")))

    assert preview.resolved_tags == {"VIP": VIP}
    assert preview.notes == ('tag "Platinum" does not exist in this account',)
    assert preview.records == (
        RecordPreview(target=C2, current=("VIP",), removing=("VIP",), after=()),
        RecordPreview(target=GONE, found=False),
    )
    assert preview.undoable


def bulk_contacts(count: int, taggings: list[str]) -> dict[str, list[str]]:
    return {f"{n:08d}-bulk-4e21-9b6a-0c8d2e4f6a10": list(taggings) for n in range(count)}


def test_a_bulk_preview_reads_the_tag_listing_not_each_contact(tokens: TokenStore) -> None:
    """1,200 targets carrying VIP (on 1,201 contacts: 3 pages) and one that does not exist:
    the catalogue, the 3 listing pages and 1 read of the unlisted target, not 1,201 reads."""
    contacts = {**bulk_contacts(1_200, [VIP, GOLD]), C2: [VIP], C3: [GOLD]}
    fake = FakeCC(contacts=contacts)
    provider, _ = make(fake, tokens)
    targets = [c for c in contacts if c not in (C2, C3)] + [GONE]

    preview = provider.preview(contacts_action(*targets, tags=("VIP",)))

    assert fake.calls() == [
        "GET /v3/contact_tags?limit=500&include_count=true",
        f"GET /v3/contacts?tags={VIP}&include=taggings&limit=500",
        f"GET /v3/contacts?cursor=500&tags={VIP}&include=taggings",
        f"GET /v3/contacts?cursor=1000&tags={VIP}&include=taggings",
        f"GET /v3/contacts/{GONE}?include=taggings",
    ]
    first = targets[0]
    assert preview.records[0] == RecordPreview(
        target=first, current=("VIP", "Gold"), removing=("VIP",), after=("Gold",)
    )
    assert preview.records[-1] == RecordPreview(target=GONE, found=False)
    assert sum(r.found for r in preview.records) == 1_200


def test_a_listing_tells_apart_an_untagged_contact_from_a_missing_one(tokens: TokenStore) -> None:
    """Targets the listing does not name are read one by one: there, C3 exists without VIP."""
    contacts = {**bulk_contacts(30, [VIP]), C3: [GOLD]}
    fake = FakeCC(contacts=contacts)
    provider, _ = make(fake, tokens)
    targets = [*bulk_contacts(30, [VIP]), C3]

    preview = provider.preview(contacts_action(*targets, tags=("VIP",)))

    assert fake.calls()[1:] == [
        f"GET /v3/contacts?tags={VIP}&include=taggings&limit=500",
        f"GET /v3/contacts/{C3}?include=taggings",
    ]
    assert preview.records[-1] == RecordPreview(
        target=C3, current=("Gold",), removing=(), after=("Gold",)
    )


def test_a_listing_is_skipped_when_the_tag_is_on_too_many_contacts(tokens: TokenStore) -> None:
    """VIP on 5,000 contacts (10 pages) for 20 targets: 20 reads beat 10 pages x 10."""
    contacts = bulk_contacts(5_000, [VIP])
    fake = FakeCC(contacts=contacts)
    provider, _ = make(fake, tokens)
    targets = list(contacts)[:20]

    provider.preview(contacts_action(*targets, tags=("VIP",)))

    assert fake.calls()[1:] == [f"GET /v3/contacts/{t}?include=taggings" for t in targets]


# --- remove from contacts ------------------------------------------------------------------------


def test_remove_posts_the_exact_activity_and_polls_until_completed(tokens: TokenStore) -> None:
    fake = FakeCC(contacts={C1: [VIP, GOLD], C2: [VIP], C3: [GOLD]})
    provider, time = make(fake, tokens)
    action = contacts_action(C1, C3, GONE, C2)
    preview = provider.preview(action)
    fake.requests.clear()
    progress = Progress()

    results = provider.remove(action, preview, progress)

    assert fake.calls() == [
        "POST /v3/activities/contacts_taggings_remove",
        "GET /v3/activities/act-1",
        "GET /v3/activities/act-1",
    ]
    post = fake.requests[0]
    assert post.headers["Authorization"] == "Bearer tok-123"
    assert post.headers["Content-Type"] == "application/json"
    assert json.loads(post.content) == {"source": {"contact_ids": [C1, C2]}, "tag_ids": [VIP]}
    assert time.slept == [0.5, 0.75]  # interval grows ×1.5
    # C3 (nothing to do) and GONE (not found) count at once; then the activity's own status.
    assert progress.calls == [(2, 4), (3, 4), (4, 4), (4, 4)]
    assert results == [
        RecordResult(target=C1, outcome=Outcome.REMOVED, removed=("VIP",), remaining=("Gold",)),
        RecordResult(target=C3, outcome=Outcome.NOT_PRESENT, remaining=("Gold",)),
        RecordResult(target=GONE, outcome=Outcome.NOT_FOUND),
        RecordResult(target=C2, outcome=Outcome.REMOVED, removed=("VIP",), remaining=()),
    ]
    assert fake.contacts == {C1: [GOLD], C2: [], C3: [GOLD]}


def test_remove_groups_contacts_by_the_tags_they_carry(tokens: TokenStore) -> None:
    fake = FakeCC(contacts={C1: [VIP, GOLD], C2: [VIP], C3: [GOLD, VIP]}, plan=[("completed", 1)])
    provider, _ = make(fake, tokens)
    action = contacts_action(C1, C2, C3, tags=("VIP", "Gold"))
    preview = provider.preview(action)

    results = provider.remove(action, preview, Progress())

    assert fake.posts() == [
        (
            "/v3/activities/contacts_taggings_remove",
            {"source": {"contact_ids": [C1, C3]}, "tag_ids": [VIP, GOLD]},
        ),
        (
            "/v3/activities/contacts_taggings_remove",
            {"source": {"contact_ids": [C2]}, "tag_ids": [VIP]},
        ),
    ]
    assert [r.removed for r in results] == [("VIP", "Gold"), ("VIP",), ("VIP", "Gold")]


def test_remove_sends_at_most_500_contacts_per_activity(tokens: TokenStore) -> None:
    fake = FakeCC(plan=[("completed", 1)])
    provider, _ = make(fake, tokens)
    targets = tuple(f"contact-{i:03d}" for i in range(501))
    action = contacts_action(*targets)
    preview = Preview(
        action=action,
        records=tuple(
            RecordPreview(target=t, current=("VIP",), removing=("VIP",), after=()) for t in targets
        ),
        resolved_tags={"VIP": VIP},
    )
    progress = Progress()

    results = provider.remove(action, preview, progress)

    sizes = [len(body["source"]["contact_ids"]) for _, body in fake.posts()]
    assert sizes == [500, 1]
    assert fake.posts()[1][1]["source"]["contact_ids"] == ["contact-500"]
    assert len(results) == 501 and all(r.outcome is Outcome.REMOVED for r in results)
    assert progress.calls[-1] == (501, 501)


def test_activity_errors_fail_only_the_contacts_they_name(tokens: TokenStore) -> None:
    fake = FakeCC(
        plan=[("completed", 1)],
        activity_errors=[f"contact {C2} could not be updated: contact is deleted"],
    )
    provider, _ = make(fake, tokens)
    action = contacts_action(C1, C2)

    results = provider.remove(action, provider.preview(action), Progress())

    assert results[0].outcome is Outcome.REMOVED
    assert results[1] == RecordResult(
        target=C2,
        outcome=Outcome.FAILED,
        code="activity_error",
        message=f"contact {C2} could not be updated: contact is deleted",
    )


def test_activity_errors_naming_no_contact_of_ours_keep_removed(tokens: TokenStore) -> None:
    # Reporting FAILED for a contact whose tag is gone would keep undo from restoring it.
    fake = FakeCC(plan=[("completed", 1)], activity_errors=["some unrelated warning"])
    provider, _ = make(fake, tokens)
    action = contacts_action(C2)

    results = provider.remove(action, provider.preview(action), Progress())

    assert results[0].outcome is Outcome.REMOVED


def test_nothing_to_remove_makes_no_write(tokens: TokenStore) -> None:
    fake = FakeCC()
    provider, _ = make(fake, tokens)
    action = contacts_action(C2, GONE, tags=("Cold lead",))
    preview = provider.preview(action)
    fake.requests.clear()

    results = provider.remove(action, preview, Progress())

    assert fake.requests == []
    assert [r.outcome for r in results] == [Outcome.NOT_PRESENT, Outcome.NOT_FOUND]


def test_a_failed_activity_fails_its_whole_batch(tokens: TokenStore) -> None:
    fake = FakeCC(plan=[("failed", 0)])
    provider, _ = make(fake, tokens)
    action = contacts_action(C1, C2)

    results = provider.remove(action, provider.preview(action), Progress())

    assert [(r.outcome, r.code) for r in results] == [(Outcome.FAILED, "failed")] * 2
    assert results[0].message is not None and "act-1 failed" in results[0].message


def test_polling_stops_at_the_cap_and_says_to_check_later(tokens: TokenStore) -> None:
    fake = FakeCC(plan=[("processing", 0.1)])  # never finishes
    poll = cc.PollPolicy(initial=1.0, factor=2.0, maximum=4.0, timeout=10.0)
    provider, time = make(fake, tokens, poll=poll)
    action = contacts_action(C2)

    results = provider.remove(action, provider.preview(action), Progress())

    assert time.slept == [1.0, 2.0, 4.0, 4.0]  # capped at 4 s; stops once 10 s have passed
    assert results == [
        RecordResult(
            target=C2,
            outcome=Outcome.FAILED,
            code="activity_running",
            message="activity act-1 still running; check later",
        )
    ]


# --- account-wide deletion -----------------------------------------------------------------------


def test_delete_tags_preview_shows_the_blast_radius(tokens: TokenStore) -> None:
    fake = FakeCC()  # VIP on 2 contacts, Gold on 2
    provider, _ = make(fake, tokens)

    preview = provider.preview(delete_action("vip", "Platinum", GOLD))

    assert fake.calls() == ["GET /v3/contact_tags?limit=500&include_count=true"]
    assert preview.affected_count == 4
    assert not preview.undoable
    assert preview.notes == (
        "this deletes the tags from the whole account, taking them off every contact; "
        "it cannot be undone",
        'tag "Platinum" does not exist in this account',
        "4 contacts is an upper bound: a contact with several of these tags "
        "is counted once per tag",
    )
    assert preview.records == (
        RecordPreview(target="VIP", current=("VIP",), removing=("VIP",), after=()),
        RecordPreview(target="Platinum", found=False),
        RecordPreview(target="Gold", current=("Gold",), removing=("Gold",), after=()),
    )


def test_delete_tags_posts_tag_ids_and_cannot_be_undone(tokens: TokenStore) -> None:
    fake = FakeCC()
    provider, _ = make(fake, tokens)
    action = delete_action("VIP", "Platinum")
    preview = provider.preview(action)
    fake.requests.clear()

    results = provider.remove(action, preview, Progress())

    assert fake.calls() == [
        "POST /v3/activities/contacts_tags_delete",
        "GET /v3/activities/act-1",
        "GET /v3/activities/act-1",
    ]
    assert fake.posts() == [("/v3/activities/contacts_tags_delete", {"tag_ids": [VIP]})]
    assert results == [
        RecordResult(target="VIP", outcome=Outcome.REMOVED, removed=("VIP",)),
        RecordResult(target="Platinum", outcome=Outcome.NOT_FOUND, message="no such tag"),
    ]
    assert VIP not in fake.tags
    fake.requests.clear()

    undone = provider.undo(action, results[:1], Progress())

    assert fake.requests == []
    assert undone == [
        RecordResult(
            target="VIP",
            outcome=Outcome.FAILED,
            code="irreversible",
            message="account-wide deletion cannot be undone",
        )
    ]


# --- limits and errors ---------------------------------------------------------------------------


def test_throttled_429_is_retried_then_succeeds(tokens: TokenStore) -> None:
    fake = FakeCC(plan=[("completed", 1)])
    provider, _ = make(fake, tokens)
    action = contacts_action(C2)
    preview = provider.preview(action)
    fake.requests.clear()
    fake.queued.append(
        httpx.Response(429, json={"error_key": "throttled", "error_message": "Too Many Requests"})
    )

    results = provider.remove(action, preview, Progress())

    assert fake.calls() == [
        "POST /v3/activities/contacts_taggings_remove",
        "POST /v3/activities/contacts_taggings_remove",
        "GET /v3/activities/act-1",
    ]
    assert results[0].outcome is Outcome.REMOVED


def test_quota_exceeded_stops_without_retry_and_says_when_it_resets(tokens: TokenStore) -> None:
    fake = FakeCC(contacts={C1: [VIP, GOLD], C2: [VIP]})
    provider, _ = make(fake, tokens)
    action = contacts_action(C1, C2, tags=("VIP", "Gold"))
    preview = provider.preview(action)
    fake.requests.clear()
    fake.queued.append(
        httpx.Response(429, json={"error_key": "quota_exceeded", "error_message": "Limit Exceeded"})
    )

    results = provider.remove(action, preview, Progress())

    # One POST, not retried; the second group is failed without a call.
    assert fake.calls() == ["POST /v3/activities/contacts_taggings_remove"]
    assert [(r.outcome, r.code) for r in results] == [(Outcome.FAILED, "QuotaExceeded")] * 2
    assert all("it resets at" in (r.message or "") and "UTC" in (r.message or "") for r in results)


def test_the_classifier_reads_error_keys() -> None:
    classify = cc.classify_response(clock=lambda: datetime(2026, 3, 4, 15, 30, tzinfo=UTC))

    def answer(status: int, body: object) -> ApiResponse:
        return ApiResponse(status, {}, json.dumps(body).encode(), "GET", "/contact_tags")

    quota = classify(answer(429, {"error_key": "quota_exceeded"}))
    assert isinstance(quota, QuotaExceeded)
    assert quota.resets_at == datetime(2026, 3, 5, tzinfo=UTC)
    assert quota.message.endswith("it resets at 2026-03-05 00:00 UTC")
    throttled = classify(answer(429, [{"error_key": "throttled"}]))
    assert type(throttled) is RateLimited and throttled.retry_after is None
    assert classify(answer(503, {})) is not None
    assert classify(answer(404, {})) is None


def test_401_refreshes_once_and_the_rotated_token_is_stored_before_use(
    tokens: TokenStore,
) -> None:
    seen: list[str] = []
    token_requests: list[httpx.Request] = []
    fake = FakeCC()

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            token_requests.append(request)
            return httpx.Response(
                200,
                json={
                    "access_token": "new-access",
                    "refresh_token": "refresh-2",
                    "expires_in": 86400,
                },
            )
        auth = request.headers["Authorization"]
        seen.append(auth)
        if auth == "Bearer old-access":
            return httpx.Response(401, json=[{"error_key": "unauthorized"}])
        # The API call with the new token: the rotated refresh token is already durable.
        stored = tokens.load("constantcontact")
        assert stored is not None and stored.refresh_token == "refresh-2"
        return fake(request)

    config = ConstantContactConfig(
        access_token=SecretStr("old-access"),
        refresh_token=SecretStr("refresh-1"),
        client_id="client-id",
        client_secret=SecretStr("client-secret"),
        base_url=BASE,
        token_url=TOKEN_URL,
    )
    wiring = Wiring(
        config=ProvidersConfig(
            constant_contact=config, limits=RateLimits(constant_contact_per_second=0)
        ),
        http=HttpClient(transport=httpx.MockTransport(handler)),
        tokens=tokens,
    )
    provider = cc.build(wiring)
    assert provider is not None

    provider.preview(contacts_action(C2))

    assert len(token_requests) == 1
    token = token_requests[0]
    assert token.method == "POST"
    basic = base64.b64encode(b"client-id:client-secret").decode()
    assert token.headers["Authorization"] == f"Basic {basic}"
    assert token.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(token.content.decode())) == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-1",
    }
    assert seen == ["Bearer old-access", "Bearer new-access", "Bearer new-access"]


def test_a_502_on_read_is_retried(tokens: TokenStore) -> None:
    fake = FakeCC()
    provider, _ = make(fake, tokens)
    fake.queued.append(httpx.Response(502))

    preview = provider.preview(contacts_action(C2))

    assert fake.calls()[:2] == ["GET /v3/contact_tags?limit=500&include_count=true"] * 2
    assert preview.records[0].removing == ("VIP",)


# --- undo ----------------------------------------------------------------------------------------


def test_undo_adds_back_exactly_the_removed_tags(tokens: TokenStore) -> None:
    fake = FakeCC(contacts={C1: [VIP, GOLD], C2: [VIP], C3: [GOLD]})
    provider, _ = make(fake, tokens)
    action = contacts_action(C1, C2, C3, tags=("VIP", "Gold"))
    removed = provider.remove(action, provider.preview(action), Progress())
    fake.requests.clear()
    progress = Progress()

    restored = provider.undo(action, removed, progress)

    assert fake.calls() == [
        "POST /v3/activities/contacts_taggings_add",
        "GET /v3/activities/act-4",
        "GET /v3/activities/act-4",
        "POST /v3/activities/contacts_taggings_add",
        "GET /v3/activities/act-5",
        "GET /v3/activities/act-5",
        "POST /v3/activities/contacts_taggings_add",
        "GET /v3/activities/act-6",
        "GET /v3/activities/act-6",
    ]
    assert fake.requests[0].headers["Authorization"] == "Bearer tok-123"
    assert fake.posts() == [
        (
            "/v3/activities/contacts_taggings_add",
            {"source": {"contact_ids": [C1]}, "tag_ids": [VIP, GOLD]},
        ),
        (
            "/v3/activities/contacts_taggings_add",
            {"source": {"contact_ids": [C2]}, "tag_ids": [VIP]},
        ),
        (
            "/v3/activities/contacts_taggings_add",
            {"source": {"contact_ids": [C3]}, "tag_ids": [GOLD]},
        ),
    ]
    assert restored == [
        RecordResult(target=C1, outcome=Outcome.RESTORED, removed=("VIP", "Gold")),
        RecordResult(target=C2, outcome=Outcome.RESTORED, removed=("VIP",)),
        RecordResult(target=C3, outcome=Outcome.RESTORED, removed=("Gold",)),
    ]
    assert progress.calls[-1] == (3, 3)
    assert fake.contacts == {C1: [VIP, GOLD], C2: [VIP], C3: [GOLD]}


def test_undo_in_a_new_process_reads_the_catalogue_and_reports_deleted_tags(
    tokens: TokenStore,
) -> None:
    fake = FakeCC(tags={VIP: "VIP"}, contacts={C1: [], C2: []}, plan=[("completed", 1)])
    provider, _ = make(fake, tokens)  # a fresh instance: no catalogue cached
    removed = [
        RecordResult(target=C1, outcome=Outcome.REMOVED, removed=("VIP", "Gold")),
        RecordResult(target=C2, outcome=Outcome.REMOVED, removed=("Gold",)),
    ]

    restored = provider.undo(contacts_action(C1, C2, tags=("VIP", "Gold")), removed, Progress())

    assert fake.calls() == [
        "GET /v3/contact_tags?limit=500&include_count=true",
        "POST /v3/activities/contacts_taggings_add",
        "GET /v3/activities/act-1",
    ]
    assert fake.posts()[0][1] == {"source": {"contact_ids": [C1]}, "tag_ids": [VIP]}
    assert restored == [
        RecordResult(
            target=C1,
            outcome=Outcome.FAILED,
            removed=("VIP",),
            code="tag_missing",
            message='restored "VIP"; "Gold" no longer exists in this account',
        ),
        RecordResult(
            target=C2,
            outcome=Outcome.FAILED,
            code="tag_missing",
            message='"Gold" no longer exists in this account',
        ),
    ]


# --- helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "base_path", "expected"),
    [
        ("/v3/contact_tags?cursor=abc", "/v3", "/contact_tags?cursor=abc"),
        ("/v3/contact_tags?cursor=abc", "/cc/v3", "/contact_tags?cursor=abc"),
        ("/cc/v3/contact_tags?cursor=abc", "/cc/v3", "/contact_tags?cursor=abc"),
        ("https://api.cc.email/v3/contact_tags?cursor=abc", "/v3", "/contact_tags?cursor=abc"),
    ],
)
def test_next_links_are_made_relative_to_the_base_url(
    href: str, base_path: str, expected: str
) -> None:
    assert cc.relative_to_base(href, base_path) == expected


# --- against the sandbox -------------------------------------------------------------------------


@pytest.fixture
def live_http() -> Iterator[HttpClient]:
    """A real client over loopback, closed after the test (an open socket fails the run)."""
    http = HttpClient()
    yield http
    http.close()


def test_against_the_sandbox_remove_then_undo(tokens: TokenStore, live_http: HttpClient) -> None:
    clock = ManualClock()
    # Two contacts per second of sandbox time; sleeping moves the sandbox clock, so polls see
    # the activity progress without anyone waiting.  The sandbox's own rate windows run on the
    # same manual clock, so they are disabled here; pacing is tested elsewhere.
    limits = Limits(cc_per_second=None, cc_per_day=None)
    with Sandbox(
        port=0, seed_demo=False, clock=clock, limits=limits, cc_items_per_second=2
    ).start() as sb:
        store = sb.state.constantcontact
        for i in range(500):  # VIP and Gold land on the second page of /contact_tags
            store.add_tag(f"filler {i}")
        store.add_contact(C1, ["VIP", "Gold"])
        store.add_contact(C2, ["VIP"])
        store.add_contact(C3, ["Gold"])
        vip = store.tag_id("VIP")
        env = sb.env()
        config = ConstantContactConfig(
            access_token=SecretStr(env["CONSTANT_CONTACT_ACCESS_TOKEN"]),
            refresh_token=SecretStr(env["CONSTANT_CONTACT_REFRESH_TOKEN"]),
            client_id=env["CONSTANT_CONTACT_CLIENT_ID"],
            client_secret=SecretStr(env["CONSTANT_CONTACT_CLIENT_SECRET"]),
            base_url=env["CONSTANT_CONTACT_BASE_URL"],
            token_url=env["CONSTANT_CONTACT_TOKEN_URL"],
        )
        wiring = Wiring(
            config=ProvidersConfig(
                constant_contact=config, limits=RateLimits(constant_contact_per_second=0)
            ),
            http=live_http,
            tokens=tokens,
        )
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.advance(seconds)

        provider = cc.build(wiring, sleep=sleep)
        assert provider is not None
        action = contacts_action(C1, C2, C3, GONE, tags=("vip",))

        preview = provider.preview(action)
        pages = [r for r in sb.requests if r.path == "/v3/contact_tags"]
        assert [r.query.startswith("cursor=") for r in pages] == [False, True]
        assert preview.resolved_tags == {"VIP": vip}
        assert [r.removing for r in preview.records] == [("VIP",), ("VIP",), (), ()]
        assert not preview.records[3].found
        sb.clear_requests()
        progress = Progress()

        results = provider.remove(action, preview, progress)

        assert [r.outcome for r in results] == [
            Outcome.REMOVED,
            Outcome.REMOVED,
            Outcome.NOT_PRESENT,
            Outcome.NOT_FOUND,
        ]
        assert store.tag_names_of(C1) == ["Gold"] and store.tag_names_of(C2) == []
        posts = [r for r in sb.requests if r.method == "POST"]
        assert [(r.provider, r.path) for r in posts] == [
            ("constantcontact", "/v3/activities/contacts_taggings_remove")
        ]
        assert posts[0].headers["authorization"] == "Bearer cc-demo-access"
        assert posts[0].json() == {"source": {"contact_ids": [C1, C2]}, "tag_ids": [vip]}
        assert slept == [0.5, 0.75]  # 1 of 2 contacts after 0.5 s, both after 1.25 s
        assert progress.calls == [(2, 4), (3, 4), (4, 4), (4, 4)]

        # The access token expires: one refresh, whose rotated refresh token is stored.
        sb.expire_tokens()
        sb.clear_requests()

        restored = provider.undo(
            action, [r for r in results if r.outcome is Outcome.REMOVED], progress
        )

        assert [r.outcome for r in restored] == [Outcome.RESTORED, Outcome.RESTORED]
        assert store.tag_names_of(C1) == ["Gold", "VIP"] and store.tag_names_of(C2) == ["VIP"]
        sent = sb.requests
        assert [(r.provider, r.method, r.path, r.status) for r in sent[:3]] == [
            ("constantcontact", "POST", "/v3/activities/contacts_taggings_add", 401),
            ("constantcontact-token", "POST", "/oauth2/default/v1/token", 200),
            ("constantcontact", "POST", "/v3/activities/contacts_taggings_add", 201),
        ]
        assert sent[2].headers["authorization"] != "Bearer cc-demo-access"
        assert sent[2].json() == {"source": {"contact_ids": [C1, C2]}, "tag_ids": [vip]}
        assert sb.token_requests("constantcontact") == 1
        stored = tokens.load("constantcontact")
        assert stored is not None
        assert stored.refresh_token == sb.env()["CONSTANT_CONTACT_REFRESH_TOKEN"]
