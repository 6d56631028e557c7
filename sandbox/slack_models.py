"""Records the fake Slack keeps (calls, messages, violations, replies) and request signing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MessageVersion",
    "PostedMessage",
    "SlackCall",
    "SlackReply",
    "Violation",
    "sign_request",
]


def sign_request(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds to every request it sends to an app.

    ``X-Slack-Signature`` is ``"v0=" + hex(HMAC-SHA256(secret, b"v0:{ts}:" + body))`` over the
    exact body bytes; ``timestamp`` defaults to now (Unix seconds).
    """
    ts = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{ts}:".encode() + body
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


@dataclass(frozen=True)
class SlackCall:
    """One Web API call (or ``response_url`` post, method ``"response_url"``) the app made.

    ``params`` merges query, form and JSON fields; form values that Slack reads as JSON
    (``view``, ``blocks``, ``attachments``, ``metadata``) are decoded. ``headers`` have lower-case
    names. ``at`` is the fake's monotonic clock when the call arrived.
    """

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    ok: bool
    error: str | None
    at: float
    status: int = 200
    response: dict[str, Any] | None = None


@dataclass(frozen=True)
class Violation:
    """A request Slack would have rejected or ignored, e.g. a 30-character modal title."""

    method: str
    message: str


@dataclass(frozen=True)
class MessageVersion:
    """The text and blocks of a message at one point in time."""

    text: str
    blocks: list[dict[str, Any]]
    at: float


@dataclass
class PostedMessage:
    """A message the app posted (``chat.postMessage``, ``chat.postEphemeral`` or a response_url).

    ``user`` is the only viewer of an ephemeral message (None for normal ones); ``edits`` holds the
    later versions (``chat.update``, or ``replace_original`` through a response_url) in order.
    """

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    source: str
    at: float
    user: str | None = None
    ephemeral: bool = False
    thread_ts: str | None = None
    deleted: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    edits: list[MessageVersion] = field(default_factory=list)

    def latest(self) -> MessageVersion:
        """The message as users see it now: the last edit, or the original."""
        if self.edits:
            return self.edits[-1]
        return MessageVersion(self.text, self.blocks, self.at)

    def all_text(self) -> str:
        """The latest text plus every text object in the latest blocks, for loose assertions."""
        version = self.latest()
        parts = [version.text]
        _collect_text(version.blocks, parts)
        return "\n".join(p for p in parts if p)


def _collect_text(node: Any, parts: list[str]) -> None:
    """Append the ``text`` of every text object found anywhere under ``node``."""
    if isinstance(node, list):
        for item in node:
            _collect_text(item, parts)
    elif isinstance(node, dict):
        text = node.get("text")
        if isinstance(text, str):
            parts.append(text)
        for value in node.values():
            if isinstance(value, dict | list):
                _collect_text(value, parts)


@dataclass(frozen=True)
class SlackReply:
    """How the app answered a request the fake sent as Slack.

    ``elapsed`` is wall-clock seconds until the whole answer arrived (Slack gives up after 3 s);
    ``trigger_id`` and ``response_url`` are the ones the payload carried, if any; ``sent`` is the
    body sent, decoded (form fields, or the ``payload`` object for interactivity).
    """

    status: int
    headers: dict[str, str]
    body: str
    elapsed: float
    trigger_id: str | None = None
    response_url: str | None = None
    sent: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body)
