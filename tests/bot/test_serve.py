"""`untag serve` for real: gunicorn in a subprocess, a full flow, and what its log says."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox import Sandbox
from sandbox.slack import FakeSlack
from storage import OperationStore, open_database
from tests.bot.test_cli_run import base_env

UNTAG = str(Path(sys.executable).parent / "untag")
BOT_TOKEN, SECRET = "xoxb-serve-canary-51f0", "serve-signing-canary-77aa"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CRASHED_LEAD = "554023000000791003"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Sandbox, FakeSlack, subprocess.Popen[str]]]:
    # An operation a crash left running: claimed by a process that has exited since.
    database = tmp_path / "untag.db"
    store = OperationStore(open_database(database))
    crashed = store.create(
        kind="remove",
        requester="U0BOB",
        provider="zoho",
        scope="Leads",
        targets=[CRASHED_LEAD],
        tags=["Attend First"],
    )
    claim = (
        "import sys; from storage import OperationStore, open_database; "
        "OperationStore(open_database(sys.argv[1])).advance(sys.argv[2], to='running')"
    )
    subprocess.run([sys.executable, "-c", claim, str(database), crashed.id], check=True)
    with (
        Sandbox(port=0).start() as sb,
        FakeSlack(bot_token=BOT_TOKEN, signing_secret=SECRET).start() as slack,
    ):
        port = free_port()
        env = {
            **base_env(tmp_path),
            **sb.env(),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url,
        }
        process = subprocess.Popen(
            [UNTAG, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, process)
            yield f"{base}/slack/events", sb, slack, process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            assert process.stdout is not None and process.stderr is not None
            process.stdout.close()
            process.stderr.close()


def wait_healthy(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "untag serve exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("untag serve never became healthy")


def test_serve_runs_a_removal_and_logs_one_safe_line_per_request(
    served: tuple[str, Sandbox, FakeSlack, subprocess.Popen[str]],
) -> None:
    url, sb, slack, process = served
    reply = slack.slash_command(url, "zoho Leads 554023000000793002 Prime", user_id="U0ALICE")
    assert reply.status == 200
    slack.wait_for(
        lambda: any(v.get("callback_id") == "untag_confirm" for v in list(slack.views.values()))
    )
    view = next(v for v in list(slack.views.values()) if v.get("callback_id") == "untag_confirm")
    values = {"tags": {"tags_input": {"type": "plain_text_input", "value": "Prime"}}}
    slack.submit_view(url, view["id"], values, user_id="U0ALICE")
    slack.wait_for(
        lambda: any("Removal succeeded" in m.latest().text for m in list(slack.messages))
    )
    writes = [r for r in sb.requests if r.provider == "zoho" and r.method == "POST"]
    assert [json.loads(r.body) for r in writes] == [
        {"tags": [{"name": "Prime"}], "ids": ["554023000000793002"]}
    ]

    process.send_signal(signal.SIGTERM)
    _, log = process.communicate(timeout=30)
    assert "slack command user=U0ALICE outcome=modal opened" in log
    assert "slack submit user=U0ALICE outcome=running" in log
    assert log.count("POST /slack/events 200") >= 2
    assert reply.trigger_id and reply.trigger_id not in log
    assert reply.response_url and reply.response_url not in log
    for secret in (BOT_TOKEN, SECRET, os.environ.get("ZOHO_CLIENT_SECRET", "zoho-demo-secret")):
        assert secret not in log
    assert "Traceback" not in log


def test_serve_tells_requesters_about_interrupted_work_and_retry_finishes_it(
    served: tuple[str, Sandbox, FakeSlack, subprocess.Popen[str]],
) -> None:
    url, sb, slack, _ = served
    slack.wait_for(
        lambda: any("untag restarted while your" in m.latest().text for m in list(slack.messages))
    )
    notice = next(m for m in list(slack.messages) if "untag restarted" in m.latest().text)
    assert notice.channel == slack.dm_channel("U0BOB")
    slack.click(url, action_id="untag_retry", message=notice, user_id="U0BOB")
    slack.wait_for(
        lambda: any("Removal succeeded: 1 record" in m.latest().text for m in list(slack.messages))
    )
    [sent] = [r for r in sb.requests if r.method == "POST" and "remove_tags" in r.path]
    assert sent.json() == {"tags": [{"name": "Attend First"}], "ids": [CRASHED_LEAD]}


def test_serve_refuses_to_start_without_slack_credentials(tmp_path: Path) -> None:
    done = subprocess.run(
        [UNTAG, "serve", "--port", str(free_port())],
        env=base_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET missing" in done.stderr
    assert_only_our_message(done.stderr)


def test_serve_refuses_a_malformed_policy_with_one_line(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[[allow]]\nusers = ["alice"]\nproviders = ["zoho"]\n')
    env = {
        **base_env(tmp_path),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "UNTAG_POLICY": str(policy),
    }
    done = subprocess.run(
        [UNTAG, "serve", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "UNTAG_POLICY" in done.stderr and "Traceback" not in done.stderr
    assert_only_our_message(done.stderr)


def assert_only_our_message(stderr: str) -> None:
    """The reason, and nothing from gunicorn after it ("Worker failed to boot" and the like)."""
    assert "[ERROR]" not in stderr and "Worker" not in stderr and "Shutting down" not in stderr
