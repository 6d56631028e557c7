"""The fake Slack's HTTP server: ``/api/<method>`` and ``/response/<id>`` on one loopback port."""

from __future__ import annotations

import traceback
from typing import cast

from sandbox.core import Response, json_response
from sandbox.serving import QuietHandler, TrackingServer
from sandbox.slack_web import WebApi

__all__ = ["SlackServer"]

API_PREFIX = "/api/"
RESPONSE_PREFIX = "/response/"


class SlackServer(TrackingServer):
    """Serves a ``WebApi`` in one thread per connection; ``errors`` keeps handler tracebacks."""

    def __init__(self, address: tuple[str, int], api: WebApi) -> None:
        self.api = api
        self.errors: list[str] = []
        super().__init__(address, _Handler)

    def route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Answer one request; a crash becomes a 500 and is kept in ``errors``."""
        path, _, query = target.partition("?")
        try:
            if path.startswith(API_PREFIX) and method in ("GET", "POST"):
                return self.api.handle(path[len(API_PREFIX) :], query, body, headers)
            if path.startswith(RESPONSE_PREFIX) and method == "POST":
                return self.api.handle_response_url(path[len(RESPONSE_PREFIX) :], body, headers)
            return Response(404, b"Not Found", {"Content-Type": "text/plain"})
        except Exception:
            self.errors.append(traceback.format_exc())
            return json_response(500, {"ok": False, "error": "fatal_error"})


class _Handler(QuietHandler):
    server_version = "fake-slack/1.0"

    def _server(self) -> SlackServer:
        return cast(SlackServer, self.server)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._write(self._server().route(self.command, self.path, headers, body))

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
