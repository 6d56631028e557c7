"""The threaded loopback HTTP server both simulators run on (providers and fake Slack)."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

__all__ = ["QuietHandler", "TrackingServer"]


class TrackingServer(ThreadingHTTPServer):
    """One thread per connection, and the open connections known, so ``stop`` is prompt."""

    daemon_threads = True
    # Benchmarks open many connections at once; the default backlog of 5 stalls them.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

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


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no Nagle delay, no stderr line per request (the simulators record)."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, delayed ACKs add ~40 ms per response.
    disable_nagle_algorithm = True
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        cast(TrackingServer, self.server).track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            cast(TrackingServer, self.server).track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr logging."""
