"""The fake Slack: Web API rules and limits, response_urls, faults, signed requests to an app."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

import sandbox.slack_client
from sandbox import ManualClock
from sandbox.slack import FakeSlack, PostedMessage, SlackReply, sign_request

TOKEN = "xoxb-test-token"
SECRET = "test-signing-secret"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=TOKEN, signing_secret=SECRET, team_id="T0TEST", clock=clock) as f:
        yield f
    assert f.errors == []


@pytest.fixture
def web(fake: FakeSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=fake.api_url)


@dataclass
class Received:
    """One request the stub app got."""

    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.form()["payload"])
        return loaded


class AppStub:
    """A tiny app: checks the signature as bolt does (401 if bad), records, answers as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answer: tuple[int, bytes] = (200, b"")
        self.verifier = SignatureVerifier(SECRET)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.received.append(Received(headers, body))
                if stub.verifier.is_valid_request(body, headers):
                    status, answer = stub.answer
                else:
                    status, answer = 401, b'{"error": "invalid request"}'
                ctype = "application/json" if answer.startswith(b"{") else "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/slack/events"

    def reply_json(self, body: dict[str, Any]) -> None:
        self.answer = (200, json.dumps(body).encode())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def app() -> Iterator[AppStub]:
    stub = AppStub()
    yield stub
    stub.close()


def modal(
    title: str = "Remove tags", blocks: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title},
        "blocks": blocks if blocks is not None else [section("Loading…")],
        **extra,
    }


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(action_id: str, value: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "buttons",
        "elements": [
            {
                "type": "button",
                "action_id": action_id,
                "value": value,
                "text": {"type": "plain_text", "text": "Undo"},
            }
        ],
    }


def text_input(block_id: str = "reason", action_id: str = "reason_input") -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": "Reason"},
        "element": {"type": "plain_text_input", "action_id": action_id},
    }


def api_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


def open_modal(fake: FakeSlack, web: WebClient, view: dict[str, Any]) -> dict[str, Any]:
    opened: dict[str, Any] = web.views_open(trigger_id=fake.issue_trigger_id(), view=view)["view"]
    return opened


# -- auth and basics -----------------------------------------------------------------------------


def test_auth_is_required(fake: FakeSlack, web: WebClient) -> None:
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=fake.api_url).auth_test()
    with pytest.raises(SlackApiError) as wrong:
        WebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test()
    assert (api_error(missing), api_error(wrong)) == ("not_authed", "invalid_auth")
    me = web.auth_test()
    assert me["team_id"] == "T0TEST" and me["bot_id"] and me["user_id"]
    assert [c.ok for c in fake.calls_to("auth.test")] == [False, False, True]
    assert fake.calls[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_unknown_method_and_form_bodies(fake: FakeSlack, web: WebClient) -> None:
    with pytest.raises(SlackApiError) as unknown:
        web.api_call("tags.remove")
    assert api_error(unknown) == "unknown_method"
    # Form-encoded JSON fields are decoded in the recorded params.
    blocks = [section("hi")]
    form = {"channel": "C1", "blocks": json.dumps(blocks)}
    answer = httpx.post(
        f"{fake.api_url}chat.postMessage", data=form, headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    assert answer["ok"] is True
    assert fake.calls_to("chat.postMessage")[0].params["blocks"] == blocks


# -- trigger_id ----------------------------------------------------------------------------------


def test_trigger_is_single_use(fake: FakeSlack, web: WebClient) -> None:
    trigger = fake.issue_trigger_id()
    opened = web.views_open(trigger_id=trigger, view=modal())["view"]
    assert opened["id"].startswith("V") and opened["hash"] and opened["team_id"] == "T0TEST"
    with pytest.raises(SlackApiError) as again:
        web.views_open(trigger_id=trigger, view=modal())
    with pytest.raises(SlackApiError) as bogus:
        web.views_open(trigger_id="123.456.nope", view=modal())
    assert (api_error(again), api_error(bogus)) == ("exchanged_trigger_id", "invalid_trigger_id")
    assert list(fake.views) == [opened["id"]]


def test_trigger_expires_after_three_seconds(
    fake: FakeSlack, web: WebClient, clock: ManualClock
) -> None:
    late, in_time = fake.issue_trigger_id(), fake.issue_trigger_id()
    clock.advance(2.9)
    web.views_open(trigger_id=in_time, view=modal())
    clock.advance(0.2)
    with pytest.raises(SlackApiError) as expired:
        web.views_open(trigger_id=late, view=modal())
    assert api_error(expired) == "expired_trigger_id"


def test_invocations_issue_triggers_and_response_urls_for_another_process(
    fake: FakeSlack, web: WebClient, clock: ManualClock
) -> None:
    url = f"{fake.url}/_fake/invocations"
    answer = httpx.post(url, json={"channel_id": "C0LOAD", "users": ["U0A", "U0B"]})
    issued = answer.json()["invocations"]
    assert answer.status_code == 200 and len(issued) == 2
    opened = web.views_open(trigger_id=issued[0]["trigger_id"], view=modal())
    assert opened["view"]["id"] in fake.views
    assert issued[1]["response_url"].startswith(f"{fake.url}/response/")
    assert WebhookClient(issued[1]["response_url"]).send(text="done").status_code == 200
    assert fake.messages[-1].user == "U0B" and fake.messages[-1].channel == "C0LOAD"
    clock.advance(3.1)  # the trigger clock started when the route was called
    with pytest.raises(SlackApiError) as expired:
        web.views_open(trigger_id=issued[1]["trigger_id"], view=modal())
    assert api_error(expired) == "expired_trigger_id"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"channel_id": "C1", "users": "U0A"}',
        b'{"channel_id": 1, "users": []}',
    ],
)
def test_invocations_refuse_malformed_bodies(fake: FakeSlack, body: bytes) -> None:
    answer = httpx.post(f"{fake.url}/_fake/invocations", content=body)
    assert (answer.status_code, answer.json()) == (400, {"ok": False, "error": "invalid_arguments"})
    assert fake.calls == [] and fake.errors == []


def test_push_stacks_at_most_three_views(fake: FakeSlack, web: WebClient) -> None:
    root = open_modal(fake, web, modal())
    second = web.views_push(trigger_id=fake.issue_trigger_id(view_id=root["id"]), view=modal())
    assert second["view"]["root_view_id"] == root["id"]
    assert second["view"]["previous_view_id"] == root["id"]
    web.views_push(trigger_id=fake.issue_trigger_id(view_id=root["id"]), view=modal())
    with pytest.raises(SlackApiError) as full:
        web.views_push(trigger_id=fake.issue_trigger_id(view_id=root["id"]), view=modal())
    assert api_error(full) == "push_limit_reached"


# -- limits --------------------------------------------------------------------------------------

LONG = "x" * 25


def _view_open(fake: FakeSlack, web: WebClient, **view: Any) -> None:
    web.views_open(trigger_id=fake.issue_trigger_id(), view=modal(**view))


LIMIT_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("title", {"title": "x" * 24}, {"title": LONG}),
    (
        "submit",
        {"submit": {"type": "plain_text", "text": "x" * 24}},
        {"submit": {"type": "plain_text", "text": LONG}},
    ),
    (
        "close",
        {"close": {"type": "plain_text", "text": "x" * 24}},
        {"close": {"type": "plain_text", "text": LONG}},
    ),
    ("blocks", {"blocks": [section("b")] * 100}, {"blocks": [section("b")] * 101}),
    ("private_metadata", {"private_metadata": "m" * 3000}, {"private_metadata": "m" * 3001}),
    ("callback_id", {"callback_id": "c" * 255}, {"callback_id": "c" * 256}),
    ("section text", {"blocks": [section("s" * 3000)]}, {"blocks": [section("s" * 3001)]}),
    ("button value", {"blocks": [button("b", "v" * 2000)]}, {"blocks": [button("b", "v" * 2001)]}),
    (
        "submit required with inputs",
        {"blocks": [text_input()], "submit": {"type": "plain_text", "text": "Go"}},
        {"blocks": [text_input()]},
    ),
]


@pytest.mark.parametrize(("rule", "at_limit", "over"), LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_modal_limits(
    fake: FakeSlack, web: WebClient, rule: str, at_limit: dict[str, Any], over: dict[str, Any]
) -> None:
    _view_open(fake, web, **at_limit)
    assert fake.violations == []
    with pytest.raises(SlackApiError) as refused:
        _view_open(fake, web, **over)
    assert api_error(refused) == "invalid_arguments"
    messages = refused.value.response["response_metadata"]["messages"]
    assert messages and all(m.startswith("[ERROR]") for m in messages)
    assert [v.message for v in fake.violations] == messages
    last = fake.calls_to("views.open")[-1]
    assert (last.ok, last.error) == (False, "invalid_arguments")


def test_limits_count_characters_not_bytes(fake: FakeSlack, web: WebClient) -> None:
    with pytest.raises(SlackApiError):
        _view_open(fake, web, title="é" * 25)
    _view_open(fake, web, title="é" * 24)


def test_message_and_home_block_limits(fake: FakeSlack, web: WebClient) -> None:
    web.chat_postMessage(channel="C1", text="t", blocks=[section("b")] * 50)
    with pytest.raises(SlackApiError) as message:
        web.chat_postMessage(channel="C1", text="t", blocks=[section("b")] * 51)
    assert api_error(message) == "invalid_blocks"
    home = {"type": "home", "blocks": [section("b")] * 100}
    web.views_publish(user_id="U1", view=home)
    with pytest.raises(SlackApiError) as too_many:
        web.views_publish(user_id="U1", view={**home, "blocks": [section("b")] * 101})
    assert api_error(too_many) == "invalid_arguments"
    assert [v.method for v in fake.violations] == ["chat.postMessage", "views.publish"]
    assert len(fake.home_views["U1"]["blocks"]) == 100


def test_message_limits_on_update_and_text(fake: FakeSlack, web: WebClient) -> None:
    posted = web.chat_postMessage(channel="C1", text="t")
    with pytest.raises(SlackApiError) as update:
        web.chat_update(channel="C1", ts=posted["ts"], text="t", blocks=[button("b", "v" * 2001)])
    with pytest.raises(SlackApiError) as long_text:
        web.chat_postMessage(channel="C1", text="x" * 40_001)
    with pytest.raises(SlackApiError) as empty:
        web.api_call("chat.postMessage", json={"channel": "C1"})  # no text, no blocks
    assert [api_error(e) for e in (update, long_text, empty)] == [
        "invalid_blocks",
        "msg_too_long",
        "no_text",
    ]


# -- views ---------------------------------------------------------------------------------------


def test_update_with_hash(fake: FakeSlack, web: WebClient) -> None:
    opened = open_modal(fake, web, modal(callback_id="untag_preview", private_metadata="op-1"))
    updated = web.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Preview"))
    assert updated["view"]["id"] == opened["id"] and updated["view"]["hash"] != opened["hash"]
    with pytest.raises(SlackApiError) as stale:
        web.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Again"))
    assert api_error(stale) == "hash_conflict"
    web.views_update(view_id=opened["id"], view=modal("No hash"))  # no hash: last write wins
    assert fake.views[opened["id"]]["title"]["text"] == "No hash"
    with pytest.raises(SlackApiError) as missing:
        web.views_update(view_id="VNOPE", view=modal())
    assert api_error(missing) == "not_found"


def test_update_by_external_id(fake: FakeSlack, web: WebClient) -> None:
    opened = open_modal(fake, web, modal(external_id="op-42"))
    web.views_update(external_id="op-42", view=modal("Done", external_id="op-42"))
    assert fake.views[opened["id"]]["title"]["text"] == "Done"
    with pytest.raises(SlackApiError) as duplicate:
        open_modal(fake, web, modal(external_id="op-42"))
    assert api_error(duplicate) == "duplicate_external_id"


def test_publish_home_keeps_id_and_checks_hash(fake: FakeSlack, web: WebClient) -> None:
    first = web.views_publish(user_id="U1", view={"type": "home", "blocks": [section("a")]})
    second = web.views_publish(
        user_id="U1", view={"type": "home", "blocks": [section("b")]}, hash=first["view"]["hash"]
    )
    assert second["view"]["id"] == first["view"]["id"]
    with pytest.raises(SlackApiError) as stale:
        web.views_publish(
            user_id="U1", view={"type": "home", "blocks": []}, hash=first["view"]["hash"]
        )
    assert api_error(stale) == "hash_conflict"


# -- messages ------------------------------------------------------------------------------------


def test_dm_channel_ids_are_stable_per_user(fake: FakeSlack, web: WebClient) -> None:
    a1 = web.chat_postMessage(channel="U0ALICE", text="one")["channel"]
    a2 = web.chat_postMessage(channel="U0ALICE", text="two")["channel"]
    b = web.chat_postMessage(channel="U0BOB", text="three")["channel"]
    opened = web.conversations_open(users="U0ALICE")["channel"]["id"]
    assert a1 == a2 == opened == fake.dm_channel("U0ALICE") and a1.startswith("D")
    assert b != a1 and b.startswith("D")
    assert [m.channel for m in fake.messages] == [a1, a1, b]


def test_chat_update_records_edits(fake: FakeSlack, web: WebClient) -> None:
    first = web.chat_postMessage(channel="C1", text="Running 0/2", blocks=[section("0/2")])
    second = web.chat_postMessage(channel="C1", text="other")
    assert float(second["ts"]) > float(first["ts"])
    web.chat_update(channel="C1", ts=first["ts"], text="Running 1/2")
    web.chat_update(channel="C1", ts=first["ts"], text="Done", blocks=[section("2/2")])
    message = fake.message("C1", first["ts"])
    assert [e.text for e in message.edits] == ["Running 1/2", "Done"]
    assert message.edits[0].blocks[0]["text"]["text"] == "0/2"  # blocks kept when left out
    assert message.latest().text == "Done" and message.text == "Running 0/2"
    assert "2/2" in message.all_text()
    with pytest.raises(SlackApiError) as missing:
        web.chat_update(channel="C1", ts="1.000001", text="x")
    assert api_error(missing) == "message_not_found"


def test_ephemeral_messages_cannot_be_updated(fake: FakeSlack, web: WebClient) -> None:
    sent = web.chat_postEphemeral(channel="C1", user="U0ALICE", text="only you")
    message = fake.message("C1", sent["message_ts"])
    assert message.ephemeral and message.user == "U0ALICE"
    with pytest.raises(SlackApiError) as refused:
        web.chat_update(channel="C1", ts=sent["message_ts"], text="edited")
    assert api_error(refused) == "message_not_found"


def test_users_and_usergroups(fake: FakeSlack, web: WebClient) -> None:
    fake.usergroups["S0ADMINS"] = ["U0ALICE"]
    fake.users["U0ALICE"] = {"id": "U0ALICE", "name": "alice", "profile": {"email": "a@x.io"}}
    assert web.usergroups_users_list(usergroup="S0ADMINS")["users"] == ["U0ALICE"]
    assert web.users_info(user="U0ALICE")["user"]["profile"]["email"] == "a@x.io"
    assert web.users_info(user="U0BOB")["user"]["id"] == "U0BOB"
    with pytest.raises(SlackApiError) as unknown:
        web.usergroups_users_list(usergroup="S0NOPE")
    assert api_error(unknown) == "no_such_subteam"


# -- response_url --------------------------------------------------------------------------------


def test_response_url_five_uses(fake: FakeSlack) -> None:
    url = fake.issue_response_url(channel_id="C1", user_id="U0ALICE")
    assert url.startswith(f"{fake.url}/response/")
    hook = WebhookClient(url)
    statuses = [hook.send(text=f"update {i}").status_code for i in range(5)]
    sixth = hook.send(text="one too many")
    assert statuses == [200] * 5 and (sixth.status_code, sixth.body) == (404, "used_url")
    assert [v.method for v in fake.violations] == ["response_url"]
    first = fake.messages[0]
    assert first.ephemeral and first.user == "U0ALICE" and first.source == "response_url"
    assert len(fake.messages) == 5 and len(fake.calls_to("response_url")) == 6


def test_response_url_expires_after_30_minutes(fake: FakeSlack, clock: ManualClock) -> None:
    url = fake.issue_response_url()
    clock.advance(30 * 60 + 1)
    answer = WebhookClient(url).send(text="late")
    assert (answer.status_code, answer.body) == (404, "expired_url")


def test_response_url_replace_original_edits(fake: FakeSlack) -> None:
    hook = WebhookClient(fake.issue_response_url())
    hook.send(text="Working…")
    hook.send(text="Done", replace_original=True)
    hook.send(text="Extra", response_type="in_channel")
    first, extra = fake.messages
    assert first.latest().text == "Done" and [e.text for e in first.edits] == ["Done"]
    assert not extra.ephemeral
    bad = hook.send(blocks=[section("b")] * 51)
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")


# -- faults --------------------------------------------------------------------------------------


def test_fail_next_429_is_retried_by_slack_sdk(fake: FakeSlack, web: WebClient) -> None:
    fake.fail_next("chat.postMessage", retry_after=0)
    web.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    assert web.chat_postMessage(channel="C1", text="hello")["ok"] is True
    first, second = fake.calls_to("chat.postMessage")
    assert (first.status, first.error, second.ok) == (429, "ratelimited", True)
    assert len(fake.messages) == 1


def test_fail_next_429_headers_and_5xx(fake: FakeSlack, web: WebClient) -> None:
    fake.fail_next("views.open", retry_after=7, count=2)
    with pytest.raises(SlackApiError) as limited:
        web.views_open(trigger_id=fake.issue_trigger_id(), view=modal())
    response = limited.value.response
    assert response.status_code == 429 and response.headers["Retry-After"] in ("7", ["7"])
    assert response["error"] == "ratelimited"
    fake.fail_next("auth.test", status=503)
    answer = httpx.post(f"{fake.api_url}auth.test", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 503
    fake.fail_next("chat.postMessage", status=200, error="not_in_channel")
    with pytest.raises(SlackApiError) as injected:
        web.chat_postMessage(channel="C1", text="x")
    assert api_error(injected) == "not_in_channel"


# -- signing and the client side -----------------------------------------------------------------


def test_sign_request_matches_slack_sdk() -> None:
    secret, body, ts = "8f742231b10e8888abcd99yyyzzz85a5", b"token=x&text=hi%20there", 1531420618
    headers = sign_request(secret, body, ts)
    expected = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body)
    assert headers == {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": expected}
    assert SignatureVerifier(SECRET).is_valid_request(body, sign_request(SECRET, body))


def test_slash_command_is_signed_form(fake: FakeSlack, web: WebClient, app: AppStub) -> None:
    app.reply_json({"response_type": "ephemeral", "text": "usage"})
    reply = fake.slash_command(app.url, "zoho Leads 1 <Prime & Co>", user_id="U0ALICE")
    assert (reply.status, reply.json()["text"]) == (200, "usage")
    (got,) = app.received
    assert got.headers["content-type"] == "application/x-www-form-urlencoded"
    form = got.form()
    assert list(form) == [
        "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
        "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
    ]  # fmt: skip
    assert form["text"] == "zoho Leads 1 &lt;Prime &amp; Co&gt;"
    assert (form["command"], form["user_id"], form["team_id"]) == ("/untag", "U0ALICE", "T0TEST")
    assert reply.trigger_id == form["trigger_id"] and reply.response_url == form["response_url"]
    # The trigger and response_url work against the fake.
    web.views_open(trigger_id=form["trigger_id"], view=modal())
    assert WebhookClient(form["response_url"]).send(text="ok").status_code == 200


def test_bad_signatures_are_sent_as_given(fake: FakeSlack, app: AppStub) -> None:
    body = b"command=%2Funtag&text=x"
    stale = fake.send_raw(app.url, body, sign_request(SECRET, body, timestamp=1_000_000_000))
    forged = fake.send_raw(app.url, body, sign_request("wrong-secret", body))
    good = fake.send_raw(app.url, body, sign_request(SECRET, body))
    assert [stale.status, forged.status, good.status] == [401, 401, 200]
    assert app.received[0].body == body


def test_message_shortcut_payload(fake: FakeSlack, app: AppStub) -> None:
    reply = fake.message_shortcut(app.url, "please untag 42 from Prime", channel_id="C0SALES")
    payload = app.received[0].payload()
    assert reply.status == 200 and payload["type"] == "message_action"
    assert payload["callback_id"] == "remove_tags_from_message"
    assert payload["message"]["text"] == "please untag 42 from Prime"
    assert payload["message_ts"] == payload["message"]["ts"]
    assert payload["channel"]["id"] == "C0SALES" and payload["user"]["id"] == "U0USER"
    assert payload["team"] == {"id": "T0TEST", "domain": "untag-test"}
    assert payload["trigger_id"] == reply.trigger_id and payload["response_url"]


def test_submit_view_sends_current_view_and_applies_update(
    fake: FakeSlack, web: WebClient, app: AppStub
) -> None:
    opened = open_modal(
        fake,
        web,
        modal(
            blocks=[text_input()],
            submit={"type": "plain_text", "text": "Remove"},
            callback_id="untag_confirm",
            private_metadata="op-7",
        ),
    )
    app.reply_json({"response_action": "update", "view": modal("Running…")})
    values = {"reason": {"reason_input": {"type": "plain_text_input", "value": "cleanup"}}}
    reply = fake.submit_view(app.url, opened["id"], values)
    payload = app.received[0].payload()
    assert reply.status == 200 and payload["type"] == "view_submission"
    view = payload["view"]
    assert (view["id"], view["hash"], view["callback_id"]) == (
        opened["id"],
        opened["hash"],
        "untag_confirm",
    )
    assert view["private_metadata"] == "op-7" and view["state"]["values"] == values
    assert payload["user"]["id"] == "U0USER" and "response_url" not in payload
    now = fake.views[opened["id"]]
    assert now["title"]["text"] == "Running…" and now["hash"] != opened["hash"]
    assert fake.violations == []


def test_submit_view_bare_ack_closes_and_errors_are_checked(
    fake: FakeSlack, web: WebClient, app: AppStub
) -> None:
    submit = {"type": "plain_text", "text": "Go"}
    opened = open_modal(fake, web, modal(blocks=[text_input()], submit=submit))
    app.reply_json({"response_action": "errors", "errors": {"not_an_input": "bad"}})
    fake.submit_view(app.url, opened["id"], {})
    assert opened["id"] in fake.views
    assert "not_an_input" in fake.violations[0].message
    app.answer = (200, b"")
    fake.submit_view(app.url, opened["id"], {})
    assert fake.views == {}
    with pytest.raises(AssertionError):
        fake.submit_view(app.url, opened["id"], {})


def test_submit_view_rejects_values_the_view_cannot_have(
    fake: FakeSlack, web: WebClient, app: AppStub
) -> None:
    opened = open_modal(
        fake, web, modal(blocks=[text_input()], submit={"type": "plain_text", "text": "Go"})
    )
    with pytest.raises(AssertionError):
        fake.submit_view(app.url, opened["id"], {"nope": {"x": {}}})
    assert app.received == []


def test_close_view_notifies_only_when_asked(fake: FakeSlack, web: WebClient, app: AppStub) -> None:
    quiet = open_modal(fake, web, modal())
    assert fake.close_view(app.url, quiet["id"]) is None and app.received == []
    loud = open_modal(fake, web, modal(notify_on_close=True, callback_id="untag_confirm"))
    reply = fake.close_view(app.url, loud["id"])
    assert reply is not None and reply.status == 200
    payload = app.received[0].payload()
    assert payload["type"] == "view_closed" and payload["view"]["id"] == loud["id"]
    assert payload["is_cleared"] is False and fake.views == {}


def test_click_in_message(fake: FakeSlack, web: WebClient, app: AppStub) -> None:
    posted = web.chat_postMessage(channel="C1", text="Done", blocks=[button("undo", "op-9")])
    message = fake.message("C1", posted["ts"])
    reply = fake.click(app.url, action_id="undo", message=message, user_id="U0ALICE")
    payload = app.received[0].payload()
    assert reply.status == 200 and payload["type"] == "block_actions"
    (action,) = payload["actions"]
    assert (action["action_id"], action["value"], action["block_id"]) == ("undo", "op-9", "buttons")
    assert action["type"] == "button" and action["action_ts"]
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C1",
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == posted["ts"] and payload["user"]["id"] == "U0ALICE"
    # A forged value is sent as given; an element the app never rendered is refused.
    fake.click(app.url, action_id="undo", value="op-other", message=message)
    assert app.received[1].payload()["actions"][0]["value"] == "op-other"
    with pytest.raises(AssertionError):
        fake.click(app.url, action_id="redo", message=message)
    # The response_url of a click replaces the clicked message (text only: the button goes).
    WebhookClient(payload["response_url"]).send(text="Undone", replace_original=True)
    assert (message.latest().text, message.latest().blocks) == ("Undone", [])
    with pytest.raises(AssertionError):
        fake.click(app.url, action_id="undo", message=message)


def test_click_in_view(fake: FakeSlack, web: WebClient, app: AppStub) -> None:
    opened = open_modal(fake, web, modal(blocks=[button("show_more", "page-2")]))
    fake.click(app.url, action_id="show_more", view_id=opened["id"])
    payload = app.received[0].payload()
    assert payload["container"] == {"type": "view", "view_id": opened["id"]}
    assert payload["view"]["id"] == opened["id"] and "response_url" not in payload
    # Its trigger can push onto the modal.
    pushed = web.views_push(trigger_id=payload["trigger_id"], view=modal())
    assert pushed["view"]["root_view_id"] == opened["id"]


def test_slow_ack_is_a_violation(
    fake: FakeSlack, app: AppStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox.slack_client, "ACK_DEADLINE", -1.0)  # every answer is "late"
    fake.slash_command(app.url, "help")
    assert [v.method for v in fake.violations] == ["slash_command /untag"]


def test_wait_for(fake: FakeSlack, web: WebClient) -> None:
    results: list[SlackReply] = []
    timer = threading.Timer(0.05, lambda: web.chat_postMessage(channel="C1", text="later"))
    timer.start()
    fake.wait_for(lambda: len(fake.messages) == 1, timeout=5)
    timer.join(5)
    with pytest.raises(AssertionError, match="not met"):
        fake.wait_for(lambda: bool(results), timeout=0.05)
    message: PostedMessage = fake.messages[0]
    assert message.text == "later"
