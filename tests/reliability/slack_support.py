"""Shared by the Slack-side fault and hostile-input tests (``test_slack_*.py``).

- Canary credentials for Slack and every provider, and a log tap that sees each record both
  before and after the project's redaction filter (``configure_logging`` + ``protect``).
- :func:`app_stack`: the real app (``build_app`` + ``make_wsgi_app``) on a threaded loopback
  server, the sandbox and a fake Slack behind it, all on canaries; for volume.
- :func:`serve`: ``untag serve`` as a real subprocess (gunicorn) on the same kind of set-up.
- :class:`Tally`: every request sent, its status and latency, for the figures.
- :func:`provider_writes` and :func:`executed`: what reached a provider and what ran, to check
  that nothing happened that the legitimate requester did not confirm.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

import bot.logs
from bot.config import load_settings
from bot.logs import configure_logging, protect
from bot.runtime import build_runtime
from bot.server import make_wsgi_app
from bot.slack import build_app
from sandbox import Credentials, Sandbox
from sandbox.slack import FakeSlack, SlackReply, sign_request
from tests.bot.test_cli_run import base_env
from tests.bot.test_slack import Stack, _QuietHandler, _ThreadingServer

UNTAG = str(Path(sys.executable).parent / "untag")

ALICE, MALLORY, EVE, ADMIN = "U0ALICE", "U0MALLORY", "U0EVE", "U0ADMIN"

CANARY_BOT_TOKEN = "xoxb-CANARY-slackbot-7d1f2e"
CANARY_SIGNING_SECRET = "CANARY-slack-signing-4b9e0c"
CANARY_PROVIDERS = Credentials(
    alta_token="CANARY-slk-alta-a1b2",
    fernand_key="sk_CANARY-slk-fernand-c3d4",
    zoho_client_id="zoho-canary-slk-client",
    zoho_client_secret="CANARY-slk-zoho-secret-e5f6",
    zoho_refresh_token="1000.CANARY-slk-zoho-refresh-0a0b",
    cc_client_id="cc-canary-slk-client",
    cc_client_secret="CANARY-slk-cc-secret-1c1d",
    cc_refresh_token="CANARY-slk-cc-refresh-2e2f",
    cc_access_token="CANARY-slk-cc-access-3a3b",
)
SECRETS = (
    CANARY_BOT_TOKEN,
    CANARY_SIGNING_SECRET,
    CANARY_PROVIDERS.alta_token,
    CANARY_PROVIDERS.fernand_key,
    CANARY_PROVIDERS.zoho_client_secret,
    CANARY_PROVIDERS.zoho_refresh_token,
    CANARY_PROVIDERS.cc_client_secret,
    CANARY_PROVIDERS.cc_refresh_token,
    CANARY_PROVIDERS.cc_access_token,
)
TOKEN_ENDPOINTS = frozenset({"zoho-accounts", "cc-auth"})  # token grants, not record changes
ACK_LIMIT = 3.0  # seconds Slack waits for an answer
RAN_STATUSES = frozenset({"running", "succeeded", "partially_failed", "undone", "interrupted"})

# -- figures -------------------------------------------------------------------------------------


def write_figures(figures: Mapping[str, object]) -> None:
    """Append one JSON line to ``$UNTAG_RELIABILITY_FIGURES`` when set (for RELIABILITY.md)."""
    target = os.environ.get("UNTAG_RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures, sort_keys=True) + "\n")


@dataclass
class Tally:
    """Every request a test sent: how many, how each was answered, the slowest answer."""

    name: str
    statuses: Counter[int] = field(default_factory=Counter)
    max_latency: float = 0.0
    slow: list[tuple[str, float]] = field(default_factory=list)
    server_errors: list[tuple[str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def record(self, label: str, reply: SlackReply) -> None:
        with self._lock:
            self.statuses[reply.status] += 1
            self.max_latency = max(self.max_latency, reply.elapsed)
            if reply.elapsed >= ACK_LIMIT:
                self.slow.append((label, reply.elapsed))
            if reply.status >= 500:
                self.server_errors.append((label, reply.status))

    def figures(self) -> dict[str, object]:
        return {
            "suite": "slack",
            "test": self.name,
            "requests": self.total,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "5xx": len(self.server_errors),
            "max_latency_s": round(self.max_latency, 3),
        }

    def report(self) -> str:
        return json.dumps(self.figures(), sort_keys=True)


# -- logs ----------------------------------------------------------------------------------------


class LogTap(logging.Handler):
    """Checks every log line for canaries as it is emitted; keeps only what a test reports.

    Installed twice: once before the redaction filter (``raw``: what our code and the
    libraries tried to log) and once after it (what reaches the log).
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__(logging.DEBUG)
        self.secrets = tuple(secrets)
        self.lines = 0
        self.leaks: set[str] = set()
        self.errors: list[str] = []  # ERROR and worse from untag's own loggers
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        found = {s for s in self.secrets if s in text}
        with self._lock:
            self.lines += 1
            self.leaks |= found
            if record.levelno >= logging.ERROR and record.name.startswith("untag"):
                self.errors.append(f"{record.name}: {text[:2000]}")


@dataclass
class Taps:
    raw: LogTap
    redacted: LogTap


@contextmanager
def production_logs(secrets: Sequence[str] = SECRETS) -> Iterator[Taps]:
    """INFO logging set up as ``untag serve`` does (``configure_logging`` then ``protect``)."""
    root = logging.getLogger()
    raw, redacted = LogTap(secrets), LogTap(secrets)
    root.handlers.insert(0, raw)  # first: sees each record before the filter rewrites it
    root.addHandler(redacted)
    names = ("httpx", "httpcore", "slack_sdk", "slack_bolt.middleware")
    levels = {name: logging.getLogger(name).level for name in names}
    level = root.level
    redactor = configure_logging(logging.INFO)
    raw.removeFilter(redactor)
    protect(secrets)
    try:
        yield Taps(raw, redacted)
    finally:
        for handler in root.handlers:
            handler.removeFilter(redactor)
        root.removeHandler(raw)
        root.removeHandler(redacted)
        bot.logs._installed.remove(redactor)
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


# -- the app in-process --------------------------------------------------------------------------


@contextmanager
def app_stack(tmp: Path, **settings_overrides: Any) -> Iterator[Stack]:
    """The real Slack app on loopback, on canary credentials, with its sandbox and fake Slack."""
    with (
        Sandbox(port=0, seed_demo=True, credentials=CANARY_PROVIDERS).start() as sb,
        FakeSlack(bot_token=CANARY_BOT_TOKEN, signing_secret=CANARY_SIGNING_SECRET).start() as fs,
    ):
        overrides: dict[str, Any] = {k.lower(): v for k, v in sb.env().items()}
        overrides.update(
            slack_bot_token=CANARY_BOT_TOKEN,
            slack_signing_secret=CANARY_SIGNING_SECRET,
            slack_api_url=fs.api_url,
            untag_database=tmp / "untag.db",
            untag_admins=ADMIN,
        )
        overrides.update(settings_overrides)
        settings = load_settings(_env_file=None, **overrides)
        runtime = build_runtime(settings)
        app, surface = build_app(runtime)
        server = _ThreadingServer(("127.0.0.1", 0), _QuietHandler)
        server.set_app(make_wsgi_app(app))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/slack/events"
            yield Stack(sb, fs, url, runtime, surface)
        finally:
            surface.jobs.wait_idle(60)
            server.shutdown()
            server.server_close()
            surface.jobs.shutdown()
            runtime.close()


# -- untag serve as a subprocess -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_env(tmp: Path, sb: Sandbox, fs: FakeSlack) -> dict[str, str]:
    return {
        **base_env(tmp),
        **sb.env(),
        "SLACK_BOT_TOKEN": CANARY_BOT_TOKEN,
        "SLACK_SIGNING_SECRET": CANARY_SIGNING_SECRET,
        "SLACK_API_URL": fs.api_url,
        "UNTAG_ADMINS": ADMIN,
    }


@dataclass
class Served:
    """One ``untag serve``.  Its output goes to a file: a pipe nobody reads until the end
    fills up after 64 KB of log lines, and then every thread that logs blocks (the server
    hangs; that is the test's fault, not the server's)."""

    process: subprocess.Popen[bytes]
    url: str
    output: Path
    log: str = ""

    def stop(self) -> str:
        """SIGTERM, wait for it to exit (its jobs finished), and return everything it logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise
        self.log = self.output.read_text(encoding="utf-8", errors="replace")
        return self.log


def start_serve(tmp: Path, env: Mapping[str, str]) -> Served:
    port = free_port()
    output = tmp / f"serve-{port}.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [UNTAG, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "16"],
            env=dict(env),
            cwd=tmp,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Served(process, f"http://127.0.0.1:{port}/slack/events", output)


def wait_healthy(served: Served, timeout: float = 30.0) -> None:
    base = served.url.removesuffix("/slack/events")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(f"untag serve exited: {served.stop()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("untag serve never became healthy")


@contextmanager
def serving(tmp: Path, env: Mapping[str, str], count: int = 1) -> Iterator[list[Served]]:
    """``count`` ``untag serve`` processes on the same database, healthy; stopped afterwards."""
    processes = [start_serve(tmp, env) for _ in range(count)]
    try:
        for served in processes:
            wait_healthy(served)
        yield processes
    finally:
        for served in processes:
            if served.process.poll() is None or not served.log:
                served.stop()


# -- requests as Slack sends them ----------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


def signed(
    body: bytes, *, timestamp: int | None = None, content_type: str = FORM
) -> dict[str, str]:
    return {**sign_request(CANARY_SIGNING_SECRET, body, timestamp), "Content-Type": content_type}


def interaction_body(payload: Any) -> bytes:
    """An interactivity request body: one form field ``payload=<json>``."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def submission(view: Mapping[str, Any], user: str, values: Any, team: str = "T0TEST") -> bytes:
    """A view_submission of ``view`` by ``user`` with ``state.values = values``."""
    return interaction_body(
        {
            "type": "view_submission",
            "team": {"id": team, "domain": "untag-test"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team},
            "api_app_id": "A0UNTAG",
            "token": "fake-verification-token",
            "trigger_id": "1.2.3",
            "view": {**view, "state": {"values": values}},
            "response_urls": [],
        }
    )


def tags_value(text: str) -> dict[str, Any]:
    return {"tags": {"tags_input": {"type": "plain_text_input", "value": text}}}


def send(fs: FakeSlack, url: str, body: bytes, headers: Mapping[str, str]) -> SlackReply:
    """POST as is; a connection the server cut is an answer too (status 0), not an exception."""
    try:
        return fs.send_raw(url, body, dict(headers))
    except OSError as exc:  # urllib.error.URLError included
        return SlackReply(0, {}, f"{type(exc).__name__}: {exc}", 0.0)


# -- what happened -------------------------------------------------------------------------------


def provider_writes(sb: Sandbox) -> list[tuple[str, str, str, bytes]]:
    """Every request that could change a record (not a read, not a token grant), in order."""
    return [
        (r.provider, r.method, r.path, r.body)
        for r in sb.requests
        if r.method != "GET" and r.provider not in TOKEN_ENDPOINTS
    ]


@dataclass(frozen=True)
class Executed:
    """The operations that ran (confirmed, or undo/retry children) and the confirmations."""

    ran: dict[str, tuple[str, str, str]]  # op id → (kind, requester, status)
    confirmations: list[tuple[str, str]]  # (op id, actor) of every ``confirmed`` event
    statuses: dict[str, str]  # op id → status, every operation


def executed(database: Path) -> Executed:
    """Read straight from the file (a separate connection), as any process would see it."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        ops = db.execute("SELECT id, kind, requester, status, parent_id FROM operations").fetchall()
        confirmed = db.execute(
            "SELECT op_id, actor FROM events WHERE kind = 'confirmed' ORDER BY seq"
        ).fetchall()
    db.close()
    confirmed_ids = {str(c[0]) for c in confirmed}
    ran = {
        op_id: (kind, requester, status)
        for op_id, kind, requester, status, parent in ops
        if parent is not None or op_id in confirmed_ids or status in RAN_STATUSES
    }
    return Executed(
        ran=ran,
        confirmations=[(str(a), str(b)) for a, b in confirmed],
        statuses={op_id: status for op_id, _, _, status, _ in ops},
    )


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.01)


def database_bytes(database: Path) -> bytes:
    """The database file with its WAL and the audit key file's neighbours, as stored."""
    return b"".join(
        p.read_bytes() for p in sorted(database.parent.iterdir()) if p.name.startswith("untag.db")
    )
