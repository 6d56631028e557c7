"""Slack end to end over real HTTP: the WSGI app on loopback, a fake Slack on both sides
(signed requests in, Web API calls out), and the sandbox providers behind the app."""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import yaml

from bot.config import load_settings
from bot.runtime import Runtime, build_runtime
from bot.server import make_wsgi_app
from bot.slack import SlackSurface, build_app
from sandbox import Sandbox
from sandbox.slack import FakeSlack, PostedMessage, sign_request

SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
ALICE, MALLORY, ADMIN = "U0ALICE", "U0MALLORY", "U0ADMIN"
ROOT = Path(__file__).resolve().parents[2]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """The app logs its own line per request."""


@dataclass
class Stack:
    sandbox: Sandbox
    slack: FakeSlack
    url: str
    runtime: Runtime
    surface: SlackSurface

    def views_with(self, callback_id: str) -> list[dict[str, Any]]:
        return [v for v in list(self.slack.views.values()) if v.get("callback_id") == callback_id]

    def wait_for_view(self, callback_id: str) -> dict[str, Any]:
        self.slack.wait_for(lambda: bool(self.views_with(callback_id)), message=callback_id)
        return self.views_with(callback_id)[-1]

    def wait_for_message(self, fragment: str, *, user: str = ALICE) -> PostedMessage:
        def found() -> PostedMessage | None:
            for message in list(self.slack.messages):
                if fragment in message.latest().text:
                    return message
            return None

        self.slack.wait_for(lambda: found() is not None, message=fragment)
        message = found()
        assert message is not None
        return message

    def writes(self, provider: str) -> list[Any]:
        return [r for r in self.sandbox.requests if r.provider == provider and r.method != "GET"]


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    with (
        Sandbox(port=0, seed_demo=True).start() as sb,
        FakeSlack(bot_token=BOT_TOKEN, signing_secret=SECRET).start() as slack,
    ):
        overrides: dict[str, Any] = {k.lower(): v for k, v in sb.env().items()}
        settings = load_settings(
            **overrides,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            untag_database=tmp_path / "untag.db",
            untag_admins=ADMIN,
        )
        runtime = build_runtime(settings)
        app, surface = build_app(runtime)
        server = make_server(
            "127.0.0.1",
            0,
            make_wsgi_app(app),
            server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/slack/events"
            yield Stack(sb, slack, url, runtime, surface)
            assert surface.jobs.wait_idle(30)
            assert slack.violations == [], slack.violations
        finally:
            server.shutdown()
            server.server_close()
            surface.jobs.shutdown()
            runtime.close()


def tags_value(text: str) -> dict[str, dict[str, dict[str, str]]]:
    return {"tags": {"tags_input": {"type": "plain_text_input", "value": text}}}


@dataclass(frozen=True)
class Flow:
    command: str
    tags_typed: str
    provider: str
    remove: tuple[str, str, str]  # method, path, query
    remove_body: Any
    undo: tuple[str, str]
    undo_body: Any


CC_CONTACT = "1618ae62-4752-11e9-9c8a-fa163e6b01c1"
THREAD = "3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10"
FLOWS = {
    "zoho": Flow(
        "zoho Leads 554023000000793002 Prime",
        "Prime",
        "zoho",
        ("POST", "/crm/v7/Leads/actions/remove_tags", ""),
        {"tags": [{"name": "Prime"}], "ids": ["554023000000793002"]},
        ("POST", "/crm/v7/Leads/actions/add_tags"),
        {"tags": [{"name": "Prime"}], "ids": ["554023000000793002"], "over_write": False},
    ),
    "bigin": Flow(
        'bigin Companies 2445013000000500001 "Hot Deal"',
        '"Hot Deal"',
        "bigin",
        (
            "POST",
            "/bigin/v2/Accounts/actions/remove_tags",
            "ids=2445013000000500001&tag_names=Hot%20Deal",
        ),
        None,
        ("POST", "/bigin/v2/Accounts/actions/add_tags"),
        {"tags": [{"name": "Hot Deal"}], "ids": ["2445013000000500001"], "over_write": False},
    ),
    "fernand": Flow(
        'fernand 12345 "VIP Customer"',
        '"VIP Customer"',
        "fernand",
        ("DELETE", "/conversations/12345/tags/VIP%20Customer", ""),
        None,
        ("POST", "/conversations/12345/tags"),
        {"name": "VIP Customer"},
    ),
    "alta": Flow(
        f'alta thread {THREAD} "Hot Lead"',
        '"Hot Lead"',
        "alta",
        ("POST", "/v1/tags/unassign", ""),
        {"entityId": THREAD, "entityType": "emailThread", "tags": ["Hot Lead"]},
        ("POST", "/v1/tags/assign"),
        {"entityId": THREAD, "entityType": "emailThread", "tags": ["Hot Lead"]},
    ),
    "constantcontact": Flow(
        f"cc contacts {CC_CONTACT} VIP",
        "VIP",
        "constantcontact",
        ("POST", "/v3/activities/contacts_taggings_remove", ""),
        "cc-remove",
        ("POST", "/v3/activities/contacts_taggings_add"),
        "cc-add",
    ),
}


def expected_body(stack: Stack, body: Any) -> Any:
    if body in ("cc-remove", "cc-add"):
        vip = stack.sandbox.state.constantcontact.tag_id("VIP")
        return {"source": {"contact_ids": [CC_CONTACT]}, "tag_ids": [vip]}
    return body


@pytest.mark.parametrize("name", list(FLOWS))
def test_command_modal_submit_result_undo(stack: Stack, name: str) -> None:
    flow = FLOWS[name]
    reply = stack.slack.slash_command(stack.url, flow.command, user_id=ALICE, channel_id="C0OPS")
    assert reply.status == 200 and reply.body == ""  # a bare ack: the modal does the talking

    preview = stack.wait_for_view("untag_confirm")
    assert flow.tags_typed.strip('"') in json.dumps(preview["blocks"])
    assert stack.writes(flow.provider) == []  # a preview reads; nothing was changed yet

    done = stack.slack.submit_view(
        stack.url, preview["id"], tags_value(flow.tags_typed), user_id=ALICE
    )
    assert done.status == 200 and done.body == ""  # closes the modal
    result = stack.wait_for_message("Removal succeeded")
    [remove] = stack.writes(flow.provider)
    assert (remove.method, remove.path, remove.query) == flow.remove
    if flow.remove_body is None:
        assert remove.body == b""
    else:
        assert remove.json() == expected_body(stack, flow.remove_body)

    stack.sandbox.clear_requests()
    stack.slack.click(stack.url, action_id="untag_undo", message=result, user_id=ALICE)
    stack.wait_for_message("Undo succeeded")
    [undo] = stack.writes(flow.provider)
    assert (undo.method, undo.path) == flow.undo
    assert undo.json() == expected_body(stack, flow.undo_body)


def test_a_pasted_zoho_crm_link_ends_with_the_right_remove_request(stack: Stack) -> None:
    link = "https://crm.zoho.com/crm/org20071/tab/Leads/554023000000792001"
    stack.slack.message_shortcut(
        stack.url, f"please drop Prime from <{link}|this lead>", user_id=ALICE, channel_id="C0OPS"
    )
    form = stack.wait_for_view("untag_form")
    rendered = json.dumps(form["blocks"])
    assert "554023000000792001" in rendered and '"zoho:Leads"' in rendered  # pre-filled
    values = {
        "provider": {
            "provider_select": {"type": "static_select", "selected_option": {"value": "zoho"}}
        },
        "scope": {
            "scope_select": {"type": "static_select", "selected_option": {"value": "zoho:Leads"}}
        },
        "targets": {"targets_input": {"type": "plain_text_input", "value": "554023000000792001"}},
        "tags": {"tags_input": {"type": "plain_text_input", "value": "Prime"}},
    }
    stack.slack.submit_view(stack.url, form["id"], values, user_id=ALICE)
    preview = stack.wait_for_view("untag_confirm")
    stack.slack.submit_view(stack.url, preview["id"], tags_value("Prime"), user_id=ALICE)
    stack.wait_for_message("Removal succeeded")
    [remove] = stack.writes("zoho")
    assert (remove.method, remove.path) == ("POST", "/crm/v7/Leads/actions/remove_tags")
    assert remove.json() == {"tags": [{"name": "Prime"}], "ids": ["554023000000792001"]}


def raw_submit(stack: Stack, view: dict[str, Any], user: str, values: Any) -> tuple[int, str]:
    """A view_submission sent as raw signed bytes: replayable, and from any user."""
    from urllib.parse import urlencode

    payload = {
        "type": "view_submission",
        "team": {"id": "T0TEST", "domain": "test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T0TEST"},
        "api_app_id": "A0TEST",
        "token": "",
        "trigger_id": "1.2.3",
        "view": {**view, "state": {"values": values}},
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {**sign_request(SECRET, body), "Content-Type": "application/x-www-form-urlencoded"}
    reply = stack.slack.send_raw(stack.url, body, headers)
    return reply.status, reply.body


def test_forged_metadata_that_is_not_text_reads_as_an_unknown_confirmation(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """JSON inside private_metadata may hold a lone surrogate: valid JSON, but no text, and
    SQLite cannot look it up.  It is an operation never issued, not an internal failure."""
    stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
    preview = stack.wait_for_view("untag_confirm")
    forged = {**preview, "private_metadata": '{"op": "\\ud800"}'}
    with caplog.at_level(logging.INFO, logger="untag.slack"):
        status, body = raw_submit(stack, forged, ALICE, tags_value("Prime"))
        assert status == 200 and "never issued" in body
        outcome = "slack submit user=U0ALICE outcome=unknown operation"
        stack.slack.wait_for(lambda: outcome in caplog.text, message="logged after the ack")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert stack.writes("zoho") == []


def test_two_identical_submits_at_the_same_moment_make_one_provider_call(stack: Stack) -> None:
    stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
    preview = stack.wait_for_view("untag_confirm")
    replies: list[int] = []
    start = threading.Barrier(2)

    def submit() -> None:
        start.wait()
        replies.append(raw_submit(stack, preview, ALICE, tags_value("Prime"))[0])

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stack.wait_for_message("Removal succeeded")
    assert stack.surface.jobs.wait_idle(10)
    assert replies == [200, 200]
    assert len(stack.writes("zoho")) == 1


def test_cancel_makes_no_provider_call(stack: Stack) -> None:
    stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
    preview = stack.wait_for_view("untag_confirm")
    op_id = json.loads(preview["private_metadata"])["op"]
    stack.slack.close_view(stack.url, preview["id"], user_id=ALICE)
    stack.slack.wait_for(lambda: stack.runtime.untag.operations.get(op_id).status == "cancelled")  # type: ignore[union-attr]
    assert stack.writes("zoho") == []


def test_another_user_cannot_confirm_or_undo(stack: Stack) -> None:
    stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
    preview = stack.wait_for_view("untag_confirm")
    status, body = raw_submit(stack, preview, MALLORY, tags_value("Prime"))
    refused = json.loads(body)
    assert status == 200 and refused["response_action"] == "update"
    assert "requester or an admin" in json.dumps(refused["view"])
    assert stack.writes("zoho") == []

    stack.slack.submit_view(stack.url, preview["id"], tags_value("Prime"), user_id=ALICE)
    result = stack.wait_for_message("Removal succeeded")
    stack.sandbox.clear_requests()
    stack.slack.click(stack.url, action_id="untag_undo", message=result, user_id=MALLORY)
    stack.wait_for_message("requester or an admin", user=MALLORY)
    assert stack.writes("zoho") == []


def test_edited_tags_are_checked_and_re_previewed(stack: Stack) -> None:
    stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
    preview = stack.wait_for_view("untag_confirm")
    bad = stack.slack.submit_view(stack.url, preview["id"], tags_value("x" * 30), user_id=ALICE)
    assert bad.json()["response_action"] == "errors" and "tags" in bad.json()["errors"]
    stack.slack.submit_view(stack.url, preview["id"], tags_value('"Attend First"'), user_id=ALICE)
    first_op = json.loads(preview["private_metadata"])["op"]

    def re_previewed() -> bool:
        views = stack.views_with("untag_confirm")
        return bool(views) and json.loads(views[-1]["private_metadata"])["op"] != first_op

    stack.slack.wait_for(re_previewed)
    assert "Attend First" in json.dumps(stack.views_with("untag_confirm")[-1]["blocks"])
    assert stack.runtime.untag.operations.get(first_op).status == "cancelled"  # type: ignore[union-attr]
    assert stack.writes("zoho") == []


def test_account_wide_deletion_needs_an_admin_and_the_typed_name(stack: Stack) -> None:
    command = 'cc delete-tags "Spring Promo 2026"'
    denied = stack.slack.slash_command(stack.url, command, user_id=ALICE)
    assert "admins" in denied.body
    stack.slack.slash_command(stack.url, command, user_id=ADMIN)
    preview = stack.wait_for_view("untag_confirm")
    assert "Contacts affected" in json.dumps(preview["blocks"])
    values = {
        **tags_value('"Spring Promo 2026"'),
        "confirm_name": {"confirm_input": {"type": "plain_text_input", "value": "Spring"}},
    }
    wrong = stack.slack.submit_view(stack.url, preview["id"], values, user_id=ADMIN)
    assert wrong.json()["response_action"] == "errors"
    assert stack.writes("constantcontact") == []


@pytest.mark.parametrize(
    "text", ["", "foo bar", "zoho Leeds 554023000000793002 Prime", "help zoho", "x" * 5000]
)
def test_junk_gets_a_friendly_ephemeral_reply_fast(stack: Stack, text: str) -> None:
    reply = stack.slack.slash_command(stack.url, text, user_id=ALICE)
    assert reply.status == 200
    assert reply.elapsed < 3.0
    assert reply.body  # text for the user, never silence
    assert stack.slack.calls_to("views.open") == []


def test_expired_trigger_is_explained_not_silent(stack: Stack) -> None:
    stack.slack.fail_next("views.open", status=200, error="expired_trigger_id")
    stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
    stack.wait_for_message("run the command again")


def signed_command(text: str) -> bytes:
    from urllib.parse import urlencode

    return urlencode(
        {
            "command": "/untag",
            "text": text,
            "user_id": ALICE,
            "team_id": "T0TEST",
            "channel_id": "C0OPS",
            "trigger_id": "1.2.3",
        }
    ).encode()


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "NOW"},
        {"X-Slack-Request-Timestamp": "OLD"},
        {"X-Slack-Request-Timestamp": "FUTURE"},
        {"X-Slack-Request-Timestamp": "abc"},
        {"X-Slack-Signature": None, "X-Slack-Request-Timestamp": None},
        {"X-Slack-Signature": None},
    ],
    ids=["bad-signature", "stale", "future", "non-numeric", "no-headers", "no-signature"],
)
def test_bad_signatures_get_401_and_no_side_effect(
    stack: Stack, headers: dict[str, str | None]
) -> None:
    import time

    body = signed_command("zoho Leads 554023000000793002 Prime")
    now = int(time.time())
    # Outside the 300 s window by more than a slow run's delivery: a request signed 301 s
    # ahead and delivered 1 s later (a loaded machine) was rightly accepted.
    shifted = {"NOW": now, "OLD": now - 301, "FUTURE": now + 330}
    stamp = headers.get("X-Slack-Request-Timestamp", "NOW")
    sent = sign_request(SECRET, body, shifted.get(str(stamp), now))
    for key, value in headers.items():
        if value is None:
            sent.pop(key, None)
        elif key == "X-Slack-Request-Timestamp" and value in shifted:
            continue
        else:
            sent[key] = value
    sent["Content-Type"] = "application/x-www-form-urlencoded"
    reply = stack.slack.send_raw(stack.url, body, sent)
    assert reply.status == 401
    assert stack.slack.calls == []
    assert stack.runtime.untag.operations.recent(limit=5) == []


def test_healthz(stack: Stack) -> None:
    import httpx

    health = httpx.get(stack.url.replace("/slack/events", "/healthz"))
    assert (health.status_code, health.json()) == (200, {"ok": True})


def test_every_command_and_callback_id_in_the_manifest_has_a_listener(stack: Stack) -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    for command in manifest["features"]["slash_commands"]:
        reply = stack.slack.slash_command(stack.url, "help", command=command["command"])
        assert reply.status == 200 and "zoho" in reply.body
    for shortcut in manifest["features"]["shortcuts"]:
        reply = stack.slack.message_shortcut(
            stack.url, "no links here", callback_id=shortcut["callback_id"]
        )
        assert reply.status == 200
    stack.wait_for_view("untag_form")


def test_retry_failed_sends_only_the_failed_records_once(stack: Stack) -> None:
    locked, free = "554023000000799009", "554023000000793002"
    stack.slack.slash_command(stack.url, f"zoho Leads {free},{locked} Prime", user_id=ALICE)
    preview = stack.wait_for_view("untag_confirm")
    stack.slack.submit_view(stack.url, preview["id"], tags_value("Prime"), user_id=ALICE)
    result = stack.wait_for_message("Removal partially failed")
    assert "locked" in result.latest().text or "locked" in json.dumps(result.latest().blocks)

    stack.sandbox.state.zoho.unlock("Leads", locked)
    stack.sandbox.clear_requests()
    stack.slack.click(stack.url, action_id="untag_retry", message=result, user_id=ALICE)
    stack.wait_for_message("Removal succeeded: 1 record")
    [retry] = stack.writes("zoho")
    assert retry.json() == {"tags": [{"name": "Prime"}], "ids": [locked]}

    stack.slack.click(stack.url, action_id="untag_retry", message=result, user_id=ALICE)
    stack.wait_for_message("already retried")
    assert len(stack.writes("zoho")) == 1


# -- a full job queue ------------------------------------------------------------------------


def _fill(submit: Any) -> threading.Event:
    """Fill a queue with jobs that wait for the returned gate; set it to let them finish."""
    gate = threading.Event()
    while submit(gate.wait):
        pass
    return gate


def test_a_full_preview_queue_is_said_in_the_ack_and_opens_no_modal(stack: Stack) -> None:
    gate = _fill(stack.surface.jobs.submit_preview)
    try:
        reply = stack.slack.slash_command(
            stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE
        )
        assert reply.status == 200 and "untag is busy" in reply.body
        assert stack.slack.calls_to("views.open") == []
        assert stack.slack.calls_to("views.update") == []
        assert stack.runtime.untag.operations.recent(limit=5) == []  # nothing was planned
    finally:
        gate.set()
    assert stack.surface.jobs.wait_idle(10)
    stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
    stack.wait_for_view("untag_confirm")  # the queue has room again: a normal preview


def test_long_jobs_filling_their_queue_leave_previews_running(stack: Stack) -> None:
    gate = _fill(lambda job: stack.surface.jobs.submit("execute", job))
    try:
        stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
        preview = stack.wait_for_view("untag_confirm")
        assert "Prime" in json.dumps(preview["blocks"])
    finally:
        gate.set()


def test_an_expired_trigger_gives_its_preview_place_back(stack: Stack) -> None:
    jobs = stack.surface.jobs
    held = []
    while (slot := jobs.reserve_preview()) is not None:
        held.append(slot)
    held.pop().release()  # exactly one place left
    try:
        stack.slack.fail_next("views.open", status=200, error="expired_trigger_id")
        stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
        stack.wait_for_message("run the command again")
        reply = stack.slack.slash_command(
            stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE
        )
        assert reply.body == ""  # not busy: the failed command's place was given back
        stack.wait_for_view("untag_confirm")
    finally:
        for slot in held:
            slot.release()


def test_a_form_submitted_into_a_full_preview_queue_shows_busy(stack: Stack) -> None:
    stack.slack.message_shortcut(stack.url, "no links here", user_id=ALICE, channel_id="C0OPS")
    form = stack.wait_for_view("untag_form")
    values = {
        "provider": {
            "provider_select": {"type": "static_select", "selected_option": {"value": "zoho"}}
        },
        "scope": {
            "scope_select": {"type": "static_select", "selected_option": {"value": "zoho:Leads"}}
        },
        "targets": {"targets_input": {"type": "plain_text_input", "value": "554023000000793002"}},
        "tags": {"tags_input": {"type": "plain_text_input", "value": "Prime"}},
    }
    gate = _fill(stack.surface.jobs.submit_preview)
    try:
        reply = stack.slack.submit_view(stack.url, form["id"], values, user_id=ALICE)
        answer = reply.json()
        assert answer["response_action"] == "update"
        assert answer["view"]["title"]["text"] == "untag is busy"
    finally:
        gate.set()
