"""`untag socket` for real: the process over a WebSocket, a full removal, junk, reconnects, SIGTERM.

The app runs as a subprocess against the sandbox providers and the fake Slack, whose
``apps.connections.open`` hands out a ``ws://`` URL on loopback (``sandbox.slack_socket``).
Commands and interactions travel as Socket Mode envelopes on that connection; the app's
Web API calls go to the fake over HTTP as usual.  No signing secret is configured: in Socket
Mode the app-level token is the credential.  Every wait is on a condition, with a timeout.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_settings
from bot.jobs import Jobs
from bot.runtime import build_runtime
from bot.slack import build_app
from bot.socket_mode import run_socket_mode
from bot.views import metadata_of
from sandbox import Fault, Sandbox
from sandbox.slack import SOCKET_MODE, FakeSlack, PostedMessage
from storage import OperationStore, open_database
from tests.bot.test_cli_run import base_env
from tests.bot.test_slack import tags_value

UNTAG = str(Path(sys.executable).parent / "untag")
BOT_TOKEN = "xoxb-socket-canary-9d21"
APP_TOKEN = "xapp-1-A0UNTAG-1-socket-canary-5c3e"
ALICE = "U0ALICE"
LEAD = "554023000000793002"
START_TIMEOUT = 60.0  # a cold interpreter on a busy 2-core machine


@dataclass
class SocketApp:
    """A running ``untag socket`` and the fakes around it."""

    process: subprocess.Popen[bytes]
    slack: FakeSlack
    sandbox: Sandbox
    log_path: Path
    database: Path
    connection: int  # id of its first Socket Mode connection

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for_message(self, fragment: str) -> PostedMessage:
        def found() -> PostedMessage | None:
            return next((m for m in self.slack.messages if fragment in m.latest().text), None)

        self.slack.wait_for(lambda: found() is not None or not self.alive(), message=fragment)
        message = found()
        assert message is not None, self.log()
        return message

    def preview(self, command: str) -> dict[str, Any]:
        """``/untag <command>`` over the socket, then the preview modal once it is filled in."""
        reply = self.slack.slash_command(SOCKET_MODE, command, user_id=ALICE, channel_id="C0OPS")
        assert (reply.status, reply.body) == (200, ""), reply  # a bare ack: the modal answers

        def filled() -> dict[str, Any] | None:
            views = self.slack.views.values()
            return next((v for v in views if v.get("callback_id") == "untag_confirm"), None)

        self.slack.wait_for(lambda: filled() is not None or not self.alive(), message="preview")
        view = filled()
        assert view is not None, self.log()
        return view


@pytest.fixture
def socket_app(tmp_path: Path) -> Iterator[SocketApp]:
    with (
        Sandbox(port=0).start() as sb,
        FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN).start() as slack,
    ):
        env = {
            **base_env(tmp_path),
            **sb.env(),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.api_url,
        }
        log_path = tmp_path / "untag-socket.log"
        # Output to a file: an unread pipe fills up and blocks the process mid-log.
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [UNTAG, "socket"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                slack.wait_for(
                    lambda: (
                        process.poll() is not None
                        or any(c.ended is None for c in slack.socket_mode.connections)
                    ),
                    timeout=START_TIMEOUT,
                    message="untag socket connecting",
                )
                assert process.poll() is None, log_path.read_text()
                [first] = slack.socket_mode.connections
                yield SocketApp(process, slack, sb, log_path, tmp_path / "untag.db", first.id)
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    raise


def test_socket_runs_a_removal_end_to_end(socket_app: SocketApp) -> None:
    app, slack, sm = socket_app, socket_app.slack, socket_app.slack.socket_mode
    # The connection came from apps.connections.open, called with the app token.
    [connect] = slack.calls_to("apps.connections.open")
    assert connect.ok and connect.headers["authorization"] == f"Bearer {APP_TOKEN}"
    assert connect.response is not None and connect.response["url"].startswith("ws://127.0.0.1:")

    preview = app.preview(f"zoho Leads {LEAD} Prime")
    [command] = sm.envelopes
    assert command["type"] == "slash_commands" and command["accepts_response_payload"] is True
    ack = sm.ack_for(command["envelope_id"])
    assert ack is not None and ack.payload is None and ack.connection == app.connection
    # The modal opened with the command's trigger, then filled in with the preview.
    [opened] = slack.calls_to("views.open")
    assert opened.ok and opened.params["trigger_id"] == command["payload"]["trigger_id"]
    assert opened.response is not None and opened.response["view"]["id"] == preview["id"]
    shown = json.dumps(preview["blocks"])
    assert LEAD in shown and "Prime" in shown
    assert preview["submit"]["text"] == "Remove"

    reply = slack.submit_view(SOCKET_MODE, preview["id"], tags_value("Prime"), user_id=ALICE)
    submission = sm.envelopes[-1]
    assert submission["type"] == "interactive"
    assert submission["payload"]["type"] == "view_submission"
    assert submission["accepts_response_payload"] is True
    assert (reply.status, reply.body) == (200, "")  # a bare ack: Slack closes the modal
    assert preview["id"] not in slack.views

    result = app.wait_for_message("Removal succeeded")
    assert (result.source, result.channel, result.user) == ("chat.postEphemeral", "C0OPS", ALICE)
    writes = [r for r in app.sandbox.requests if r.provider == "zoho" and r.method != "GET"]
    assert [(r.method, r.path, r.query, r.json()) for r in writes] == [
        (
            "POST",
            "/crm/v7/Leads/actions/remove_tags",
            "",
            {"tags": [{"name": "Prime"}], "ids": [LEAD]},
        )
    ]
    assert [a.envelope_id for a in sm.acks] == [e["envelope_id"] for e in sm.envelopes]
    assert all(a.elapsed < 3 for a in sm.acks), sm.acks
    assert slack.violations == [] and sm.errors == [] and slack.errors == []

    log = app.log()
    assert "untag connected over Socket Mode" in log
    assert f"slack command user={ALICE} outcome=modal opened" in log
    assert f"slack submit user={ALICE} outcome=running" in log
    for secret in (BOT_TOKEN, APP_TOKEN, command["payload"]["trigger_id"], "zoho-demo-secret"):
        assert secret not in log
    assert "Traceback" not in log


def test_socket_acknowledges_junk_envelopes_and_keeps_serving(socket_app: SocketApp) -> None:
    app, sm = socket_app, socket_app.slack.socket_mode
    junk: list[tuple[str, Any]] = [
        # Malformed: refused before bolt, which would raise on them (never acknowledged).
        ("slash_commands", {"command": 5, "text": {"a": 1}}),
        ("interactive", {"type": "view_submission", "view": "not a view"}),
        ("interactive", {"type": "block_actions", "actions": "not a list"}),
        ("events_api", {"type": "event_callback", "event": 5}),
        ("interactive", {"type": "view_submission", "user": {"id": "\ud800"}}),
        # Well-formed but for no listener: bolt's 404, which it left unacknowledged.
        ("slash_commands", "a string"),  # slack_sdk reads it as {"text": "a string"}
        ("interactive", {}),
        ("events_api", {"type": "event_callback", "event": {"type": "reaction_added"}}),
        ("no_such_type", {"x": 1}),
    ]
    for kind, payload in junk:
        ack = sm.send_envelope(kind, payload)
        assert ack is not None, (kind, payload, app.log())
        assert ack.payload is None and ack.elapsed < 3, ack
    assert app.log().count("envelope refused:") == 5
    assert "Traceback" not in app.log()
    # Frames slack_sdk cannot read itself (not JSON, a payload that is no object) never
    # reach the app: slack_sdk logs and drops them.  The process must simply go on.
    sm.send_text("{not json")
    sm.send_text(json.dumps({"envelope_id": "e-list", "type": "interactive", "payload": [1]}))

    reply = app.slack.slash_command(SOCKET_MODE, "help", user_id=ALICE)
    assert reply.status == 200 and "/untag zoho" in reply.json()["text"]
    assert app.alive()
    assert [c.id for c in sm.connections] == [app.connection]  # no reconnect was needed
    assert sm.errors == [] and app.slack.violations == []

    # Slack asks for a reconnect every few hours: a new apps.connections.open, a new
    # connection, the old one closed; envelopes then arrive on the new one.
    old = sm.disconnect("refresh_requested")
    new = sm.wait_connected(after=old, timeout=30)
    sm.wait_closed(old, timeout=30)
    assert len(app.slack.calls_to("apps.connections.open")) == 2
    reply = app.slack.slash_command(SOCKET_MODE, "help zoho", user_id=ALICE)
    assert reply.status == 200 and "zoho" in reply.json()["text"]
    assert sm.acks[-1].connection == new
    assert sm.errors == [] and app.slack.violations == []


def test_sigterm_lets_the_running_removal_finish_then_exits_cleanly(socket_app: SocketApp) -> None:
    app, sm = socket_app, socket_app.slack.socket_mode
    # Hold the removal at Zoho long enough to stop the app while it is in flight.
    app.sandbox.add_fault(Fault(provider="zoho", kind="latency", seconds=4, path_contains="remove"))
    preview = app.preview(f"zoho Leads {LEAD} Prime")
    op_id = metadata_of(preview)["op"]
    app.slack.submit_view(SOCKET_MODE, preview["id"], tags_value("Prime"), user_id=ALICE)

    def removal_unanswered() -> bool:
        return any("remove_tags" in r.path and r.status is None for r in app.sandbox.requests)

    app.slack.wait_for(removal_unanswered, message="removal at Zoho")
    app.process.send_signal(signal.SIGTERM)
    assert app.process.wait(timeout=60) == 0, app.log()

    # Drained, not killed: the result was reported and the operation finished before the exit.
    assert any("Removal succeeded" in m.latest().text for m in app.slack.messages), app.log()
    op = OperationStore(open_database(app.database)).get(op_id)
    assert op is not None and op.status == "succeeded"
    assert sm.wait_closed(app.connection).ended is not None
    log = app.log()
    assert "stopping: closing the Socket Mode connection" in log and "untag stopped" in log
    assert "Traceback" not in log


def test_socket_refuses_a_wrong_app_token_with_one_line(tmp_path: Path) -> None:
    with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN).start() as slack:
        env = {
            **base_env(tmp_path),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": "xapp-1-A0UNTAG-1-revoked-77f0",
            "SLACK_API_URL": slack.api_url,
        }
        done = subprocess.run(
            [UNTAG, "socket"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 3, done.stderr
    assert "Slack refused SLACK_APP_TOKEN: invalid_auth" in done.stderr
    assert "Traceback" not in done.stderr and "revoked-77f0" not in done.stderr


def test_a_drain_that_outlasts_its_grace_is_given_up_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In process, with a grace of 0.3 s instead of 30: a job that is still pending when the
    grace runs out is left (the next start reports it interrupted), and the log says so."""
    with (
        Sandbox(port=0).start() as sb,
        FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN).start() as slack,
    ):
        values: dict[str, Any] = {k.lower(): v for k, v in sb.env().items()}
        settings = load_settings(
            **values,
            slack_bot_token=BOT_TOKEN,
            slack_app_token=APP_TOKEN,
            slack_api_url=slack.api_url,
            untag_database=tmp_path / "untag.db",
        )
        runtime = build_runtime(settings)
        jobs = Jobs()
        app, _ = build_app(runtime, jobs=jobs, socket_mode=True)
        held = jobs.reserve_preview()  # pending until released: a job that will not finish
        assert held is not None

        def stop_soon(ok: bool) -> None:  # as SIGTERM does, once the connection is open
            assert ok
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()

        try:
            with caplog.at_level(logging.INFO, logger="untag.http"):
                drained = run_socket_mode(app, APP_TOKEN, jobs=jobs, connected=stop_soon, grace=0.3)
        finally:
            held.release()
            jobs.shutdown()
            runtime.close()
        assert drained is False
        assert "jobs still running after 0 s; they will show as interrupted" in caplog.text
        [connection] = slack.socket_mode.connections
        assert slack.socket_mode.wait_closed(connection.id).ended is not None  # closed first
