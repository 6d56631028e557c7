"""The fake Slack's HTTP server: ``/api/<method>`` and ``/response/<id>`` on one loopback port."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from sandbox.core import Response, json_response
from sandbox.slack_web import WebApi

__all__ = ["SlackServer"]

API_PREFIX = "/api/"
RESPONSE_PREFIX = "/response/"


class SlackServer(ThreadingHTTPServer):
    """Serves a ``WebApi`` in one thread per connection; ``errors`` keeps handler tracebacks."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: WebApi) -> None:
        self.api = api
        self.errors: list[str] = []
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def track(self, connection: socket.socket, open_: bool) -> None:
        """Remember open connections so ``close_connections`` can wake idle handler threads."""
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down keep-alive connections so their handler threads exit."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, delayed ACKs add ~40 ms per response.
    disable_nagle_algorithm = True
    server_version = "fake-slack/1.0"
    sys_version = ""

    def _server(self) -> SlackServer:
        return cast(SlackServer, self.server)

    def setup(self) -> None:
        super().setup()
        self._server().track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._server().track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr logging; ``FakeSlack.calls`` records everything."""

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
