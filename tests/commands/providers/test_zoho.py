"""Zoho CRM v7 provider: exact requests, per-record outcome parsing, batching, undo, tokens."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
import stamina
from pydantic import SecretStr

from commands.actions import Action, ProviderName
from commands.config import ProvidersConfig, ZohoConfig
from commands.errors import QuotaExceeded, RateLimited
from commands.http import ApiResponse, HttpClient
from commands.providers import zoho
from commands.providers.base import Provider, Wiring, no_progress
from commands.providers.zoho import ZohoProvider, tag_names, zoho_classifier
from commands.results import Outcome, Preview, RecordPreview, RecordResult
from sandbox import Fault, Sandbox
from storage import TokenStore, open_database
from tests.storage.test_audit import KEY

LEAD_A = "554023000000793002"  # 18 digits: above 2**53, a float would corrupt it
LEAD_B = "554023000000792001"
LEAD_C = "554023000000791003"
API = "https://www.zohoapis.com"


def lead_ids(count: int) -> list[str]:
    return [str(554023000000000000 + n) for n in range(count)]


class FakeZoho:
    """A Zoho-like handler for ``httpx.MockTransport`` over ``records`` (id -> tag names).

    It records every request; ``scripted`` answers replace the next writes, in order.
    """

    def __init__(self, records: dict[str, list[str]], *, bigin: bool = False) -> None:
        self.records = {rid: list(tags) for rid, tags in records.items()}
        self.bigin = bigin
        self.locked: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.scripted: list[httpx.Response] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "POST" and self.scripted:
            return self.scripted.pop(0)
        if request.method == "GET":
            return self._read(request)
        if request.url.path.endswith("/actions/remove_tags"):
            return self._remove(request)
        if request.url.path.endswith("/actions/add_tags"):
            return self._add(request)
        return httpx.Response(404, json={"code": "INVALID_URL_PATTERN", "status": "error"})

    @property
    def writes(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]

    @property
    def reads(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET"]

    def _tag(self, name: str) -> Any:
        return name if self.bigin else {"name": name, "id": f"id-{name}", "color_code": None}

    def _read(self, request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        data = [
            {"id": rid, "Tag": [self._tag(n) for n in self.records[rid]]}
            for rid in ids
            if rid in self.records
        ]
        return httpx.Response(200, json={"data": data}) if data else httpx.Response(204)

    def _remove(self, request: httpx.Request) -> httpx.Response:
        if self.bigin:
            query = dict(p.split("=", 1) for p in request.url.query.decode().split("&"))
            ids = query["ids"].split(",")
            names = [unquote(n) for n in query["tag_names"].split(",")]
        else:
            body = json.loads(request.content)
            ids, names = body["ids"], [t["name"] for t in body["tags"]]
        gone = {n.casefold() for n in names}
        return self._answer(ids, lambda tags: [t for t in tags if t.casefold() not in gone])

    def _add(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        names = [t["name"] for t in body["tags"]]
        return self._answer(body["ids"], lambda tags: tags + [n for n in names if n not in tags])

    def _answer(self, ids: list[str], change: Callable[[list[str]], list[str]]) -> httpx.Response:
        data: list[dict[str, Any]] = []
        for rid in ids:
            if rid not in self.records:
                data.append(item("INVALID_DATA", {"id": rid}))
            elif rid in self.locked:
                data.append(item("RECORD_LOCKED", {"id": rid}))
            else:
                self.records[rid] = change(self.records[rid])
                tags = [self._tag(n) for n in self.records[rid]]
                data.append(item("SUCCESS", {"id": rid, "tags": tags}))
        ok = sum(1 for d in data if d["code"] == "SUCCESS")
        status = 200 if ok == len(data) else 400 if ok == 0 else 207
        return httpx.Response(status, json={"data": data})


def item(code: str, details: dict[str, Any]) -> dict[str, Any]:
    status = "success" if code == "SUCCESS" else "error"
    return {"code": code, "details": details, "message": code.lower(), "status": status}


def crm_tags(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "id": f"id-{n}", "color_code": "#57B1FD"} for n in names]


@pytest.fixture
def wiring_for(tmp_path: Path) -> Iterator[Callable[..., Wiring]]:
    """Builds a Wiring around a MockTransport handler; closes clients and the database after."""
    db = open_database(tmp_path / "tokens.db")
    clients: list[HttpClient] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response] | None,
        *,
        config: ZohoConfig | None = None,
        bigin: bool = False,
    ) -> Wiring:
        # No handler: a real transport (the sandbox over loopback).
        transport = None if handler is None else httpx.MockTransport(handler)
        http = HttpClient(transport=transport)
        clients.append(http)
        section = config or ZohoConfig(access_token=SecretStr("tok"), api_domain=API)
        providers = ProvidersConfig(bigin=section) if bigin else ProvidersConfig(zoho=section)
        return Wiring(config=providers, http=http, tokens=TokenStore(db, KEY))

    yield make
    for http in clients:
        http.close()
    db.close()


@pytest.fixture
def make_zoho(
    wiring_for: Callable[..., Wiring],
) -> Callable[..., Provider]:
    def make(handler: Callable[[httpx.Request], httpx.Response] | None, **kwargs: Any) -> Provider:
        provider = zoho.build(wiring_for(handler, **kwargs))
        assert provider is not None
        return provider

    return make


def leads(*targets: str, tags: Sequence[str] = ("Prime",)) -> Action:
    return Action(provider=ProviderName.ZOHO, scope="Leads", targets=targets, tags=tuple(tags))


def remove_all(provider: Provider, action: Action) -> tuple[Preview, list[RecordResult]]:
    preview = provider.preview(action)
    return preview, provider.remove(action, preview, no_progress)


# -- exact requests ----------------------------------------------------------


def test_preview_and_remove_send_the_exact_crm_requests(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime", "Nurture"], LEAD_B: ["PRIME", "web"]})
    provider = make_zoho(fake)

    preview, results = remove_all(provider, leads(LEAD_A, LEAD_B))

    read = fake.reads[0]
    assert str(read.url) == f"{API}/crm/v7/Leads?ids={LEAD_A},{LEAD_B}&fields=Tag"
    assert read.headers["authorization"] == "Zoho-oauthtoken tok"
    assert [r.removing for r in preview.records] == [("Prime",), ("PRIME",)]
    [write] = fake.writes
    assert write.method == "POST"
    assert str(write.url) == f"{API}/crm/v7/Leads/actions/remove_tags"
    assert write.headers["authorization"] == "Zoho-oauthtoken tok"
    assert write.headers["content-type"] == "application/json"
    assert json.loads(write.content) == {"tags": [{"name": "Prime"}], "ids": [LEAD_A, LEAD_B]}
    assert results == [
        RecordResult(
            target=LEAD_A, outcome=Outcome.REMOVED, removed=("Prime",), remaining=("Nurture",)
        ),
        RecordResult(
            target=LEAD_B, outcome=Outcome.REMOVED, removed=("PRIME",), remaining=("web",)
        ),
    ]


def test_ids_stay_strings_in_every_request(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"]})
    provider = make_zoho(fake)

    _, results = remove_all(provider, leads(LEAD_A))
    provider.undo(leads(LEAD_A), results, no_progress)

    assert fake.reads[0].url.params["ids"] == LEAD_A
    for write in fake.writes:
        assert f'"{LEAD_A}"'.encode() in write.content  # a JSON string, never a number
        assert all(isinstance(i, str) for i in json.loads(write.content)["ids"])


def test_numeric_ids_in_answers_are_read_exactly(make_zoho: Callable[..., Provider]) -> None:
    # Python's json keeps big integers exact; the provider turns them into the same string.
    body = f'{{"data":[{{"id":{LEAD_A},"Tag":[{{"name":"Prime","id":"1"}}]}}]}}'
    provider = make_zoho(lambda request: httpx.Response(200, content=body.encode()))

    preview = provider.preview(leads(LEAD_A))

    assert preview.records[0].found and preview.records[0].removing == ("Prime",)


# -- preview -----------------------------------------------------------------


def test_preview_204_means_every_record_is_missing(make_zoho: Callable[..., Provider]) -> None:
    provider = make_zoho(lambda request: httpx.Response(204))

    preview = provider.preview(leads(LEAD_A, LEAD_B))

    assert [r.found for r in preview.records] == [False, False]


def test_preview_reads_tag_objects_and_marks_absent_ids_missing(
    make_zoho: Callable[..., Provider],
) -> None:
    data = {"data": [{"id": LEAD_A, "Tag": crm_tags("Prime", "web")}, {"id": LEAD_C, "Tag": None}]}
    provider = make_zoho(lambda request: httpx.Response(200, json=data))

    preview = provider.preview(leads(LEAD_A, LEAD_B, LEAD_C))

    assert preview.records == (
        RecordPreview(target=LEAD_A, current=("Prime", "web"), removing=("Prime",), after=("web",)),
        RecordPreview(target=LEAD_B, found=False),
        RecordPreview(target=LEAD_C, current=(), removing=(), after=()),
    )


def test_malformed_ids_are_not_found_without_a_read(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"]})

    preview = make_zoho(fake).preview(leads(LEAD_A, "abc", "12,3"))

    assert [r.found for r in preview.records] == [True, False, False]
    assert [r.url.params["ids"] for r in fake.reads] == [LEAD_A]


def test_preview_reads_at_most_100_ids_per_call(make_zoho: Callable[..., Provider]) -> None:
    ids = lead_ids(250)
    fake = FakeZoho({rid: ["Prime"] for rid in ids})

    preview = make_zoho(fake).preview(leads(*ids))

    sizes = [len(r.url.params["ids"].split(",")) for r in fake.reads]
    assert sizes == [100, 100, 50]
    assert all(r.removing == ("Prime",) for r in preview.records)


def test_tag_names_reads_both_shapes() -> None:
    assert tag_names(crm_tags("Prime", "web")) == ("Prime", "web")
    assert tag_names(["From Email", "In Progress"]) == ("From Email", "In Progress")
    assert tag_names(None) == ()


# -- remove ------------------------------------------------------------------


def test_records_with_nothing_to_remove_get_no_call(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["web"], LEAD_C: ["Prime"]})

    _, results = remove_all(make_zoho(fake), leads(LEAD_A, LEAD_B, LEAD_C))

    [write] = fake.writes
    assert json.loads(write.content)["ids"] == [LEAD_C]
    assert [(r.target, r.outcome) for r in results] == [
        (LEAD_A, Outcome.NOT_PRESENT),
        (LEAD_B, Outcome.NOT_FOUND),
        (LEAD_C, Outcome.REMOVED),
    ]


def test_no_call_at_all_when_nothing_to_remove(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["web"]})

    _, results = remove_all(make_zoho(fake), leads(LEAD_A, LEAD_B))

    assert fake.writes == []
    assert [r.outcome for r in results] == [Outcome.NOT_PRESENT, Outcome.NOT_FOUND]


def test_1200_records_take_exactly_three_calls(make_zoho: Callable[..., Provider]) -> None:
    ids = lead_ids(1200)
    fake = FakeZoho({rid: ["Prime", "web"] for rid in ids})
    progress: list[tuple[int, int]] = []
    provider = make_zoho(fake)
    action = leads(*ids)

    results = provider.remove(
        action, provider.preview(action), lambda d, t: progress.append((d, t))
    )

    assert [len(json.loads(w.content)["ids"]) for w in fake.writes] == [500, 500, 200]
    sent = [rid for w in fake.writes for rid in json.loads(w.content)["ids"]]
    assert sent == ids
    assert [r.target for r in results] == ids
    assert {r.outcome for r in results} == {Outcome.REMOVED}
    assert progress[-1] == (1200, 1200)


def test_207_mixed_answer_reports_each_record(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"], LEAD_B: ["Prime"], LEAD_C: ["Prime"]})
    provider = make_zoho(fake)
    action = leads(LEAD_A, LEAD_B, LEAD_C)
    preview = provider.preview(action)
    fake.scripted.append(
        httpx.Response(
            207,
            json={
                "data": [
                    item("SUCCESS", {"id": LEAD_A, "tags": []}),
                    item("RECORD_LOCKED", {"id": LEAD_B}),
                    item("INVALID_DATA", {"id": LEAD_C}),
                ],
                "locked_count": "1",
            },
        )
    )

    results = provider.remove(action, preview, no_progress)

    assert [(r.outcome, r.code) for r in results] == [
        (Outcome.REMOVED, None),
        (Outcome.LOCKED, "RECORD_LOCKED"),
        (Outcome.NOT_FOUND, "INVALID_DATA"),
    ]
    assert results[0].removed == ("Prime",) and results[0].remaining == ()


def test_a_locked_record_fails_alone(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime", "web"], LEAD_B: ["Prime"], LEAD_C: ["Prime"]})
    fake.locked.add(LEAD_B)

    _, results = remove_all(make_zoho(fake), leads(LEAD_A, LEAD_B, LEAD_C))

    assert [r.outcome for r in results] == [Outcome.REMOVED, Outcome.LOCKED, Outcome.REMOVED]
    assert results[1].removed == () and results[1].message == "record_locked"
    assert fake.records[LEAD_B] == ["Prime"]


def test_400_with_data_is_read_per_record(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"], LEAD_B: ["Prime"]})
    provider = make_zoho(fake)
    action = leads(LEAD_A, LEAD_B)
    preview = provider.preview(action)
    # No details.id: matched by position. INVALID_DATA that does not name the id is a failure.
    fake.scripted.append(
        httpx.Response(
            400,
            json={
                "data": [
                    item("INVALID_DATA", {"api_name": "tags", "json_path": "$.tags[0]"}),
                    item("LIMIT_EXCEEDED", {"id": LEAD_B, "limit": 10}),
                ]
            },
        )
    )

    results = provider.remove(action, preview, no_progress)

    assert [(r.outcome, r.code, r.message) for r in results] == [
        (Outcome.FAILED, "INVALID_DATA", "invalid_data"),
        (Outcome.FAILED, "LIMIT_EXCEEDED", "limit_exceeded"),
    ]


def test_items_are_matched_by_id_not_order(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"], LEAD_B: ["Prime"], LEAD_C: ["Prime"]})
    provider = make_zoho(fake)
    action = leads(LEAD_A, LEAD_B, LEAD_C)
    preview = provider.preview(action)
    fake.scripted.append(
        httpx.Response(
            207,
            json={
                "data": [
                    item("RECORD_LOCKED", {"id": LEAD_B}),
                    item("SUCCESS", {"id": LEAD_A, "tags": crm_tags("web")}),
                ]
            },
        )
    )

    results = provider.remove(action, preview, no_progress)

    assert [(r.outcome, r.code) for r in results] == [
        (Outcome.REMOVED, None),
        (Outcome.LOCKED, "RECORD_LOCKED"),
        (Outcome.FAILED, "NO_RESULT"),  # Zoho said nothing about it: never assume success
    ]
    assert results[0].remaining == ("web",)


def test_body_without_data_fails_only_its_batch(
    wiring_for: Callable[..., Wiring],
) -> None:
    class SmallBatches(ZohoProvider):
        batch_size = 2

    fake = FakeZoho({rid: ["Prime"] for rid in (LEAD_A, LEAD_B, LEAD_C)})
    provider = SmallBatches.from_wiring(wiring_for(fake))
    assert provider is not None
    action = leads(LEAD_A, LEAD_B, LEAD_C)
    preview = provider.preview(action)
    fake.scripted.append(
        httpx.Response(
            400,
            json={"code": "INVALID_MODULE", "details": {}, "message": "bad", "status": "error"},
        )
    )

    results = provider.remove(action, preview, no_progress)

    assert len(fake.writes) == 2
    assert [(r.outcome, r.code) for r in results] == [
        (Outcome.FAILED, "INVALID_MODULE"),
        (Outcome.FAILED, "INVALID_MODULE"),
        (Outcome.REMOVED, None),
    ]


def test_2xx_without_data_is_a_failure(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"]})
    provider = make_zoho(fake)
    preview = provider.preview(leads(LEAD_A))
    fake.scripted.append(httpx.Response(200, json={}))

    [result] = provider.remove(leads(LEAD_A), preview, no_progress)

    assert (result.outcome, result.code) == (Outcome.FAILED, "NO_DATA")


def test_record_missing_from_the_preview_is_not_touched(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"]})
    provider = make_zoho(fake)
    empty = Preview(action=leads(LEAD_A))

    [result] = provider.remove(leads(LEAD_A), empty, no_progress)

    assert fake.writes == []
    assert (result.outcome, result.code) == (Outcome.FAILED, "NOT_PREVIEWED")


# -- retries -----------------------------------------------------------------


def test_too_many_requests_is_retried(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"]})
    provider = make_zoho(fake)
    preview = provider.preview(leads(LEAD_A))
    fake.scripted += [
        httpx.Response(429, json={"code": "TOO_MANY_REQUESTS", "status": "error"}),
        httpx.Response(503),
    ]

    with stamina.set_testing(True, attempts=3):
        [result] = provider.remove(leads(LEAD_A), preview, no_progress)

    assert len(fake.writes) == 3
    assert result.outcome is Outcome.REMOVED


def test_persistent_429_fails_the_batch(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"]})
    provider = make_zoho(fake)
    preview = provider.preview(leads(LEAD_A))
    fake.scripted += [httpx.Response(429, json={"code": "TOO_MANY_REQUESTS"})] * 2

    with stamina.set_testing(True, attempts=2):
        [result] = provider.remove(leads(LEAD_A), preview, no_progress)

    assert (result.outcome, result.code) == (Outcome.FAILED, "RateLimited")
    assert fake.records[LEAD_A] == ["Prime"]


def test_classifier() -> None:
    classify = zoho_classifier("zoho")

    def answer(status: int, body: bytes = b"") -> ApiResponse:
        return ApiResponse(status, {}, body, "POST", "/Leads/actions/remove_tags")

    limited = classify(answer(429, b'{"code":"TOO_MANY_REQUESTS","details":{"retry_after":60}}'))
    assert isinstance(limited, RateLimited) and limited.retry_after is None
    assert not isinstance(limited, QuotaExceeded)
    assert isinstance(classify(answer(429, b'{"code":"LIMIT_REACHED"}')), QuotaExceeded)
    assert classify(answer(502)) is not None and classify(answer(504)) is not None
    assert classify(answer(400, b'{"code":"INVALID_MODULE"}')) is None
    assert classify(answer(207, b'{"data":[]}')) is None


# -- undo --------------------------------------------------------------------


def test_undo_sends_the_exact_inverse(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["web"], LEAD_B: ["x"], LEAD_C: ["y"]})
    fake.locked.add(LEAD_C)
    removed = [
        RecordResult(target=LEAD_A, outcome=Outcome.REMOVED, removed=("Prime",)),
        RecordResult(target=LEAD_B, outcome=Outcome.REMOVED, removed=("Prime", "Hot Deal")),
        RecordResult(target=LEAD_C, outcome=Outcome.REMOVED, removed=("Prime",)),
    ]

    results = make_zoho(fake).undo(leads(LEAD_A, LEAD_B, LEAD_C), removed, no_progress)

    assert [str(w.url) for w in fake.writes] == [f"{API}/crm/v7/Leads/actions/add_tags"] * 2
    assert [json.loads(w.content) for w in fake.writes] == [
        {"tags": [{"name": "Prime"}], "ids": [LEAD_A, LEAD_C], "over_write": False},
        {"tags": [{"name": "Prime"}, {"name": "Hot Deal"}], "ids": [LEAD_B], "over_write": False},
    ]
    assert fake.writes[0].headers["authorization"] == "Zoho-oauthtoken tok"
    assert [(r.target, r.outcome) for r in results] == [
        (LEAD_A, Outcome.RESTORED),
        (LEAD_B, Outcome.RESTORED),
        (LEAD_C, Outcome.LOCKED),
    ]
    assert results[0].remaining == ("web", "Prime")


def test_undo_batches_500_and_skips_what_was_not_removed(
    make_zoho: Callable[..., Provider],
) -> None:
    ids = lead_ids(1001)
    fake = FakeZoho({rid: [] for rid in ids})
    removed = [RecordResult(target=rid, outcome=Outcome.REMOVED, removed=("Prime",)) for rid in ids]
    removed.append(RecordResult(target=LEAD_A, outcome=Outcome.NOT_PRESENT))

    results = make_zoho(fake).undo(leads(*ids, LEAD_A), removed, no_progress)

    assert [len(json.loads(w.content)["ids"]) for w in fake.writes] == [500, 500, 1]
    assert [r.outcome for r in results[:-1]] == [Outcome.RESTORED] * 1001
    assert results[-1].outcome is Outcome.SKIPPED


def test_remove_then_undo_restores_the_records(make_zoho: Callable[..., Provider]) -> None:
    fake = FakeZoho({LEAD_A: ["Prime", "web"], LEAD_B: ["web"]})
    provider = make_zoho(fake)
    action = leads(LEAD_A, LEAD_B)

    _, results = remove_all(provider, action)
    assert fake.records == {LEAD_A: ["web"], LEAD_B: ["web"]}
    undone = provider.undo(
        action, [r for r in results if r.outcome is Outcome.REMOVED], no_progress
    )

    assert [r.outcome for r in undone] == [Outcome.RESTORED]
    assert fake.records == {LEAD_A: ["web", "Prime"], LEAD_B: ["web"]}


# -- tokens and wiring ----------------------------------------------------------


def test_token_refresh_then_calls_go_to_the_returned_api_domain(
    make_zoho: Callable[..., Provider],
) -> None:
    fake = FakeZoho({LEAD_A: ["Prime"]})
    token_requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "accounts.zoho.eu":
            token_requests.append(request)
            grant = {
                "access_token": "1000.fresh",
                "expires_in": 3600,
                "api_domain": "https://www.zohoapis.eu",
                "token_type": "Bearer",
            }
            return httpx.Response(200, json=grant)
        return fake(request)

    config = ZohoConfig(
        client_id="cid",
        client_secret=SecretStr("csecret"),
        refresh_token=SecretStr("rtok"),
        accounts_url="https://accounts.zoho.eu",
        api_domain="https://www.zohoapis.com",
    )
    provider = make_zoho(handler, config=config)

    remove_all(provider, leads(LEAD_A))

    [token] = token_requests
    assert (token.method, str(token.url)) == ("POST", "https://accounts.zoho.eu/oauth/v2/token")
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token.content.decode()) == {
        "grant_type": ["refresh_token"],
        "client_id": ["cid"],
        "client_secret": ["csecret"],
        "refresh_token": ["rtok"],
    }
    assert [str(r.url).split("?")[0] for r in fake.requests] == [
        "https://www.zohoapis.eu/crm/v7/Leads",
        "https://www.zohoapis.eu/crm/v7/Leads/actions/remove_tags",
    ]
    assert {r.headers["authorization"] for r in fake.requests} == {"Zoho-oauthtoken 1000.fresh"}


def test_build_needs_the_zoho_section(wiring_for: Callable[..., Wiring]) -> None:
    wiring = wiring_for(FakeZoho({}), bigin=True)  # only bigin configured

    assert zoho.build(wiring) is None
    built = zoho.build(wiring_for(FakeZoho({})))
    assert isinstance(built, ZohoProvider) and built.name == "zoho" and built.batch_size == 500


# -- against the sandbox ----------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(port=0, seed_demo=False).start()
    yield sb
    sb.stop()


def sandbox_config(sb: Sandbox) -> ZohoConfig:
    urls, creds = sb.base_urls(), sb.credentials
    return ZohoConfig(
        client_id=creds.zoho_client_id,
        client_secret=SecretStr(creds.zoho_client_secret),
        refresh_token=SecretStr(creds.zoho_refresh_token),
        accounts_url=urls["zoho_accounts"],
        api_domain="http://127.0.0.1:9/unused",  # the grant's api_domain must win
    )


def test_sandbox_preview_remove_undo(sandbox: Sandbox, make_zoho: Callable[..., Provider]) -> None:
    store = sandbox.state.zoho
    store.add_record("Leads", LEAD_A, ["Prime", "Nurture"])
    store.add_record("Leads", LEAD_B, ["Prime"], locked=True)
    store.add_record("Leads", LEAD_C, ["web"])
    provider = make_zoho(None, config=sandbox_config(sandbox))
    action = leads(LEAD_A, LEAD_B, LEAD_C, "554023000000000404")

    preview = provider.preview(action)
    assert [(r.found, r.removing) for r in preview.records] == [
        (True, ("Prime",)),
        (True, ("Prime",)),
        (True, ()),
        (False, ()),
    ]
    results = provider.remove(action, preview, no_progress)

    assert [r.outcome for r in results] == [
        Outcome.REMOVED,
        Outcome.LOCKED,
        Outcome.NOT_PRESENT,
        Outcome.NOT_FOUND,
    ]
    assert results[0].remaining == ("Nurture",)
    assert store.tags_of("Leads", LEAD_A) == ["Nurture"]
    assert store.tags_of("Leads", LEAD_B) == ["Prime"]
    token, read, write = sandbox.requests
    assert (token.provider, token.method, token.path) == (
        "zoho-accounts",
        "POST",
        "/oauth/v2/token",
    )
    assert token.query == "" and b"refresh_token=zoho-demo-refresh" in token.body
    assert (read.provider, read.method, read.path) == ("zoho", "GET", "/crm/v7/Leads")
    assert read.query == f"ids={LEAD_A},{LEAD_B},{LEAD_C},554023000000000404&fields=Tag"
    assert (write.provider, write.method, write.path) == (
        "zoho",
        "POST",
        "/crm/v7/Leads/actions/remove_tags",
    )
    assert write.headers["authorization"].startswith("Zoho-oauthtoken 1000.")
    assert write.json() == {"tags": [{"name": "Prime"}], "ids": [LEAD_A, LEAD_B]}
    assert write.status == 207

    sandbox.clear_requests()
    undone = provider.undo(
        action, [r for r in results if r.outcome is Outcome.REMOVED], no_progress
    )

    assert [r.outcome for r in undone] == [Outcome.RESTORED]
    assert store.tags_of("Leads", LEAD_A) == ["Nurture", "Prime"]
    [add] = sandbox.requests
    assert (add.method, add.path) == ("POST", "/crm/v7/Leads/actions/add_tags")
    assert add.json() == {"tags": [{"name": "Prime"}], "ids": [LEAD_A], "over_write": False}


def test_sandbox_too_many_requests_is_retried(
    sandbox: Sandbox, make_zoho: Callable[..., Provider]
) -> None:
    sandbox.state.zoho.add_record("Leads", LEAD_A, ["Prime"])
    provider = make_zoho(None, config=sandbox_config(sandbox))
    preview = provider.preview(leads(LEAD_A))
    sandbox.add_fault(Fault(provider="zoho", status=429, count=1, method="POST"))

    with stamina.set_testing(True, attempts=3):
        [result] = provider.remove(leads(LEAD_A), preview, no_progress)

    assert result.outcome is Outcome.REMOVED
    writes = [r for r in sandbox.requests if (r.provider, r.method) == ("zoho", "POST")]
    assert [r.status for r in writes] == [429, 200]
    assert sandbox.state.zoho.tags_of("Leads", LEAD_A) == []
