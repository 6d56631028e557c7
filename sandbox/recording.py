"""The log of requests that reached a provider route."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from sandbox.core import Request


@dataclass(frozen=True)
class RecordedRequest:
    """One provider request exactly as received, and the status the sandbox answered.

    ``path`` is relative to the provider prefix (``/alta``, ``/fernand``, ``/zoho``,
    ``/zoho-accounts``, ``/cc``, ``/cc-auth``) and still percent-encoded; ``raw_path`` is the full
    received path; ``query`` is the raw query string. ``status`` is None when the connection was
    dropped (or the answer is not written yet). ``at`` is the arrival time, in Unix epoch seconds
    of the sandbox clock.
    """

    provider: str
    method: str
    path: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    at: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form; the body is decoded as UTF-8 text (invalid bytes replaced)."""
        return {
            "provider": self.provider,
            "method": self.method,
            "path": self.path,
            "raw_path": self.raw_path,
            "query": self.query,
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
            "at": self.at,
        }


class LogEntry:
    """A slot in the log whose status is filled in once the answer is known."""

    __slots__ = ("request", "status")

    def __init__(self, request: RecordedRequest) -> None:
        self.request = request
        self.status: int | None = None


class RequestLog:
    """Thread-safe, arrival-ordered request log."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []
        self._lock = threading.Lock()

    def record(self, provider: str, req: Request, at: float) -> LogEntry:
        """Append a request; the caller sets ``status`` on the returned entry later."""
        recorded = RecordedRequest(
            provider,
            req.method,
            req.path,
            req.raw_path,
            req.query,
            dict(req.headers),
            req.body,
            None,
            at,
        )
        entry = LogEntry(recorded)
        with self._lock:
            self._entries.append(entry)
        return entry

    def snapshot(self) -> list[RecordedRequest]:
        """Copies of every recorded request, oldest first."""
        with self._lock:
            entries = list(self._entries)
        return [_with_status(e) for e in entries]

    def clear(self) -> None:
        """Forget every request."""
        with self._lock:
            self._entries.clear()


def _with_status(entry: LogEntry) -> RecordedRequest:
    r = entry.request
    return RecordedRequest(
        r.provider,
        r.method,
        r.path,
        r.raw_path,
        r.query,
        dict(r.headers),
        r.body,
        entry.status,
        r.at,
    )
