"""The log of requests that reached a provider route."""

from __future__ import annotations

import json
import threading
from collections import Counter
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


@dataclass(frozen=True)
class LogSummary:
    """How many requests a slice of the log holds, by status and by method.

    ``end`` is the log's length when counted: pass it as ``since`` to count only what
    comes after. ``statuses`` is keyed by the status as text, ``"none"`` for a dropped
    connection or an answer not written yet; ``last_at`` is the newest arrival, if any.
    """

    end: int
    count: int
    statuses: dict[str, int]
    methods: dict[str, int]
    last_at: float | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "end": self.end,
            "count": self.count,
            "statuses": self.statuses,
            "methods": self.methods,
            "last_at": self.last_at,
        }


def _status_key(status: int | None) -> str:
    return "none" if status is None else str(status)


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

    def snapshot(self, since: int = 0) -> list[RecordedRequest]:
        """Copies of the recorded requests from position ``since`` on, oldest first."""
        return [_with_status(e) for e in self._since(since)]

    def summary(self, since: int = 0, provider: str | None = None) -> LogSummary:
        """Counts of the requests from position ``since`` on (of ``provider``, if given).

        A benchmark reads these after each phase: copying every request (headers and
        bodies) across the control API would cost more than the phase it measures.
        """
        end, entries = self._end_and_since(since)
        mine = [e for e in entries if provider in (None, e.request.provider)]
        return LogSummary(
            end=end,
            count=len(mine),
            statuses=dict(Counter(_status_key(e.status) for e in mine)),
            methods=dict(Counter(e.request.method for e in mine)),
            last_at=max((e.request.at for e in mine), default=None),
        )

    def _since(self, since: int) -> list[LogEntry]:
        return self._end_and_since(since)[1]

    def _end_and_since(self, since: int) -> tuple[int, list[LogEntry]]:
        if since < 0:
            raise ValueError("since must be a position in the log, 0 or more")
        with self._lock:
            return len(self._entries), self._entries[since:]

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
