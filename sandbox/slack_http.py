"""The fake Slack's HTTP server: ``/api/<method>`` and ``/response/<id>`` on one loopback port.

Plus one control route for another process playing the user, ``POST /_fake/invocations``: see
:meth:`SlackServer.invocations`.
"""

from __future__ import annotations

import json
import traceback
from typing import cast

from sandbox.core import Response, json_response
from sandbox.serving import QuietHandler, TrackingServer
from sandbox.slack_web import WebApi

__all__ = ["SlackServer"]

API_PREFIX = "/api/"
RESPONSE_PREFIX = "/response/"
INVOCATIONS_PATH = "/_fake/invocations"


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
            if path == INVOCATIONS_PATH and method == "POST":
                return self.invocations(body)
            return Response(404, b"Not Found", {"Content-Type": "text/plain"})
        except Exception:
            self.errors.append(traceback.format_exc())
            return json_response(500, {"ok": False, "error": "fatal_error"})

    def invocations(self, body: bytes) -> Response:
        """What Slack issues when users invoke a command: a trigger_id and a response_url each.

        ``{"channel_id": "C…", "users": ["U…", …]}`` gets ``{"ok": true, "invocations":
        [{"trigger_id": …, "response_url": …}, …]}``, one per user, in order.  A client in
        this process calls ``FakeSlack.issue_trigger_id``; a load generator in another process
        asks here, so that the 3-second trigger clock starts when it is about to send.
        """
        try:
            payload = json.loads(body)
            channel = payload["channel_id"]
            users = payload["users"]
            if not isinstance(channel, str) or not isinstance(users, list):
                raise TypeError("channel_id must be a string and users a list")
            if not all(isinstance(user, str) for user in users):
                raise TypeError("users must be strings")
        except (ValueError, KeyError, TypeError):
            return json_response(400, {"ok": False, "error": "invalid_arguments"})
        host, port = self.server_address[:2]
        state = self.api.state
        issued = [
            {
                "trigger_id": state.issue_trigger(user),
                "response_url": f"http://{host!s}:{port}{RESPONSE_PREFIX}"
                f"{state.issue_response_url(channel, user)}",
            }
            for user in users
        ]
        return json_response(200, {"ok": True, "invocations": issued})


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
