"""HTTP and Socket Mode entry points: ``untag serve`` (gunicorn) and ``untag socket``.

The WSGI app serves ``POST /slack/events`` through bolt and ``GET /healthz``,
and logs one line per request (method, path, status, time; never a body or a
header value).  Requests whose Slack headers are missing or malformed are
refused with 401 before bolt sees them: bolt would answer a non-numeric
timestamp with a 500, and unauthenticated traffic must never look like our
failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["MAX_BODY", "make_wsgi_app", "run_gunicorn", "run_socket_mode"]

log = logging.getLogger("untag.http")

MAX_BODY = 1_000_000  # Slack's payloads are a few KB; anything near this is not Slack
EVENTS_PATH = "/slack/events"


def make_wsgi_app(app: App) -> WSGIApplication:
    """The WSGI callable: Slack events, health, and a one-line log per request."""
    handler = SlackRequestHandler(app, path=EVENTS_PATH)

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        statuses: list[str] = []

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return _route(handler, environ, remember, method, path)
        finally:
            status = statuses[0].split(" ", 1)[0] if statuses else "-"
            elapsed = (time.monotonic() - started) * 1000
            log.info("%s %s %s %.0fms", method, path, status, elapsed)

    return wsgi


def _route(
    handler: SlackRequestHandler,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    method: str,
    path: str,
) -> Iterable[bytes]:
    if path == "/healthz" and method in ("GET", "HEAD"):
        return _reply(start_response, "200 OK", b'{"ok":true}', "application/json")
    if path != EVENTS_PATH or method != "POST":
        return _reply(start_response, "404 Not Found", b"Not Found")
    if _content_length(environ) > MAX_BODY:
        return _reply(start_response, "413 Payload Too Large", b"Payload Too Large")
    if not _slack_headers_well_formed(environ):
        return _reply(
            start_response, "401 Unauthorized", b'{"error":"invalid request"}', "application/json"
        )
    return handler(environ, start_response)


def _content_length(environ: WSGIEnvironment) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return MAX_BODY + 1


def _slack_headers_well_formed(environ: WSGIEnvironment) -> bool:
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
    signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
    return timestamp.isdigit() and len(timestamp) <= 12 and signature.startswith("v0=")


def _reply(
    start_response: StartResponse, status: str, body: bytes, content_type: str = "text/plain"
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def run_gunicorn(
    factory: Callable[[], WSGIApplication], *, host: str, port: int, workers: int, threads: int
) -> None:
    """Serve the app built by ``factory`` in each worker (never across a fork: SQLite)."""
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
        def load_config(self) -> None:
            options = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "worker_class": "gthread",
                "threads": threads,
                "timeout": 60,
                "graceful_timeout": 30,
                "accesslog": None,  # our own line per request, without query strings
                "errorlog": "-",
                "loglevel": "warning",
                "preload_app": False,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApplication:
            return factory()

    _Server().run()


def run_socket_mode(app: App, app_token: str) -> None:
    """Serve over Socket Mode: no public URL needed; the xapp- token is the credential."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    SocketModeHandler(app, app_token).start()  # type: ignore[no-untyped-call]
