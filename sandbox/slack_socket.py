"""The fake Slack's Socket Mode endpoint: a small RFC 6455 WebSocket server on loopback.

Standard library only, like the rest of the sandbox. It speaks what slack_sdk's builtin
client (``slack_sdk/socket_mode/builtin``, the one bolt's ``SocketModeHandler`` uses) sends
and expects:

* **Handshake.** ``GET /link/?ticket=…&app_id=… HTTP/1.1`` with ``Upgrade: websocket``,
  ``Connection: Upgrade``, ``Sec-WebSocket-Key`` and ``Sec-WebSocket-Version: 13``. The client
  checks the status (101) and ``Sec-WebSocket-Accept`` = base64(SHA-1(key + the RFC 6455
  GUID)), nothing else. A ticket is issued by ``apps.connections.open`` and opens one
  connection, as Slack's do; a wrong or used ticket is refused (401) and recorded.
* **Frames.** Every client frame must be masked (RFC 6455 §5.3; an unmasked one is a protocol
  error: close 1002); server frames are not. Text frames carry JSON. The client pings right
  after the handshake and every ``ping_interval`` seconds with ``"<session id>:<unix time>"``
  and calls the connection stale when no pong has echoed it for four intervals, so every ping
  is answered with a pong carrying the same payload. A close frame is answered with a close
  frame and the TCP connection ends; ``stop()`` sends close 1001 (going away).
* **Messages.** ``{"type": "hello", …}`` first, as Slack sends on every new connection; then
  envelopes ``{"envelope_id", "type", "payload", "accepts_response_payload"}``, which the app
  acknowledges with ``{"envelope_id", "payload"?}`` (``payload`` is what an HTTP app would have
  answered: a slash command's reply, a view submission's ``response_action``). ``disconnect()``
  sends ``{"type": "disconnect", "reason": …}``, upon which the client opens a new connection
  with a new ``apps.connections.open``.

Slack delivers each envelope to one of the app's open connections; here, the newest one.
Everything the client did wrong (unmasked frames, acks for unknown envelopes, refused
handshakes) is kept in ``errors`` for tests to assert empty.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import os
import socket
import socketserver
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "ConnectionRecord",
    "Frame",
    "ProtocolError",
    "SocketAck",
    "SocketModeServer",
    "accept_key",
    "encode_frame",
    "read_frame",
]

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG = 1000, 1001, 1002, 1009
# An ack is a few KB (a view at most); a client sending more than this is broken, not busy.
MAX_MESSAGE = 1 << 20
_MAX_HEADER_LINES = 100


_T = TypeVar("_T")


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class ProtocolError(Exception):
    """A frame or handshake that breaks RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, message: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


# -- frames --------------------------------------------------------------------------------------


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Frame:
    """One WebSocket frame as read, payload already unmasked."""

    fin: bool
    opcode: int
    masked: bool
    payload: bytes


def encode_frame(opcode: int, payload: bytes, *, mask: bytes | None = None) -> bytes:
    """One final frame; ``mask`` (4 bytes) as a client must send it, none as a server does."""
    head = bytes([0x80 | opcode])
    mask_bit = 0x80 if mask is not None else 0
    length = len(payload)
    if length <= 125:
        head += bytes([mask_bit | length])
    elif length <= 0xFFFF:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if mask is None:
        return head + payload
    return head + mask + _unmask(payload, mask)


def read_frame(stream: _Readable, *, limit: int = MAX_MESSAGE) -> Frame | None:
    """The next frame from ``stream``; None when the peer closed the TCP connection."""
    head = _read_exact(stream, 2)
    if head is None:
        return None
    first, second = head
    if first & 0x70:
        raise ProtocolError("reserved bits set without a negotiated extension")
    opcode, masked, length = first & 0x0F, bool(second & 0x80), second & 0x7F
    if length >= 126:
        size = 2 if length == 126 else 8
        extended = _read_exact(stream, size)
        if extended is None:
            return None
        length = struct.unpack("!H" if size == 2 else "!Q", extended)[0]
    if opcode >= 0x8 and (length > 125 or not first & 0x80):
        raise ProtocolError("control frames must be final and at most 125 bytes")
    if length > limit:
        raise ProtocolError(f"frame of {length} bytes", CLOSE_TOO_BIG)
    mask = _read_exact(stream, 4) if masked else b""
    payload = _read_exact(stream, length)
    if mask is None or payload is None:
        return None
    return Frame(bool(first & 0x80), opcode, masked, _unmask(payload, mask) if masked else payload)


def _unmask(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ m for b, m in zip(data, itertools.cycle(mask)))


def _read_exact(stream: _Readable, size: int) -> bytes | None:
    data = stream.read(size) if size else b""
    return data if len(data) == size else None


# -- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SocketAck:
    """The app's acknowledgement of one envelope.

    ``payload`` is the response payload (None for a bare ack); ``elapsed`` is seconds from
    sending the envelope to receiving the ack (Slack waits 3); ``connection`` is the id of the
    connection it came back on.
    """

    envelope_id: str
    payload: dict[str, Any] | None
    elapsed: float
    connection: int


@dataclass(frozen=True)
class ConnectionRecord:
    """One WebSocket connection: when it opened and how it ended (None while open).

    ``ended`` is ``"client close"`` (a close frame from the app), ``"server close"``
    (``disconnect(close=True)``, ``stop()``), ``"eof"`` (the TCP connection dropped without a
    close frame) or ``"protocol error"``. ``pings`` counts the pings the client sent.
    """

    id: int
    opened_at: float
    ended: str | None
    close_code: int | None
    pings: int


class _Connection:
    """Server side of one connection: its socket, a send lock, and what it has seen."""

    def __init__(self, ident: int, sock: socket.socket) -> None:
        self.id = ident
        self.sock = sock
        self.opened_at = time.monotonic()
        self.ended: str | None = None
        self.close_code: int | None = None
        self.pings = 0
        self.close_sent = False
        self._send_lock = threading.Lock()

    def send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            if opcode == OP_CLOSE:
                if self.close_sent:
                    return
                self.close_sent = True
            elif self.close_sent:
                raise ConnectionError("the connection is closing")
            self.sock.sendall(encode_frame(opcode, payload))

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame (once) and stop both directions."""
        with contextlib.suppress(OSError):
            self.send(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8"))
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def record(self) -> ConnectionRecord:
        return ConnectionRecord(self.id, self.opened_at, self.ended, self.close_code, self.pings)


# -- the server ----------------------------------------------------------------------------------


class SocketModeServer:
    """Slack's end of Socket Mode on loopback: hands out connection URLs, pushes envelopes,
    records acks.  ``start()`` serves in daemon threads; every method is thread-safe."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, app_id: str = "A0UNTAG") -> None:
        self.host = host
        self.port = port
        self.app_id = app_id
        self._cond = threading.Condition()
        self._tickets: set[str] = set()
        self._connections: list[_Connection] = []
        self._serial = itertools.count(1)
        self._sent_at: dict[str, float] = {}
        self._envelopes: list[dict[str, Any]] = []
        self._acks: dict[str, SocketAck] = {}
        self._pongs: set[bytes] = set()
        self._errors: list[str] = []
        self._server: _TcpServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SocketModeServer:
        """Bind and serve in a daemon thread. Returns ``self``."""
        if self._server is None:
            server = _TcpServer((self.host, self.port), self)
            self._server = server
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-slack-socket-{server.server_address[1]}",
                daemon=True,
            ).start()
        return self

    def stop(self) -> None:
        """Close every connection with 1001 (going away), then stop listening."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._cond:
            live = [c for c in self._connections if c.ended is None]
        for connection in live:
            connection.close(CLOSE_GOING_AWAY, "server stopping")

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what apps.connections.open hands out ----------------------------------------------------

    def new_url(self) -> str:
        """A ``ws://`` URL good for one connection, shaped like Slack's ``wss://…/link/?ticket=``."""
        if self._server is None:
            raise RuntimeError("the Socket Mode endpoint is not started")
        ticket = str(uuid.uuid4())
        with self._cond:
            self._tickets.add(ticket)
        host, port = self._server.server_address[:2]
        return f"ws://{host!s}:{port}/link/?ticket={ticket}&app_id={self.app_id}"

    # -- what the tests read ---------------------------------------------------------------------

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Every connection so far, oldest first."""
        with self._cond:
            return [c.record() for c in self._connections]

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        """Every envelope sent, in order (copies of what went over the wire)."""
        with self._cond:
            return [json.loads(json.dumps(e)) for e in self._envelopes]

    @property
    def acks(self) -> list[SocketAck]:
        """Every ack received, in arrival order."""
        with self._cond:
            return list(self._acks.values())

    def ack_for(self, envelope_id: str) -> SocketAck | None:
        """The ack of one envelope, if it came."""
        with self._cond:
            return self._acks.get(envelope_id)

    @property
    def errors(self) -> list[str]:
        """What the client did that Slack would refuse (refused handshakes, unmasked frames…)."""
        with self._cond:
            return list(self._errors)

    def wait_connected(self, timeout: float = 10.0, *, after: int = 0) -> int:
        """Wait for an open connection with an id above ``after``; returns its id.

        ``AssertionError`` after ``timeout`` seconds.
        """
        found = self._wait(lambda: self._newest(after), timeout)
        if found is None:
            raise AssertionError(
                f"no Socket Mode connection within {timeout} s; seen: {self.connections}"
            )
        return found.id

    def wait_closed(self, connection: int, timeout: float = 10.0) -> ConnectionRecord:
        """Wait until connection ``connection`` has ended; ``AssertionError`` after ``timeout``."""

        if all(c.id != connection for c in self.connections):
            raise KeyError(f"no connection {connection}")

        def ended() -> ConnectionRecord | None:
            record = next(c.record() for c in self._connections if c.id == connection)
            return record if record.ended is not None else None

        found = self._wait(ended, timeout)
        if found is None:
            raise AssertionError(f"connection {connection} still open after {timeout} s")
        return found

    # -- Slack talking to the app ----------------------------------------------------------------

    def send_envelope(
        self,
        kind: str,
        payload: Any,
        *,
        accepts_response_payload: bool = False,
        envelope_id: str | None = None,
        timeout: float = 10.0,
        **extra: Any,
    ) -> SocketAck | None:
        """Send ``{"envelope_id", "type": kind, "payload", …}`` and wait for its ack.

        ``payload`` goes out as given (anything JSON can carry, to test junk); ``extra`` adds
        fields such as ``retry_attempt``. Returns None when no ack came within ``timeout``.
        """
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            **extra,
        }
        with self._cond:
            self._envelopes.append(envelope)
            self._sent_at[envelope_id] = time.monotonic()
        self.send_text(json.dumps(envelope))  # \u escapes: even a lone surrogate can go out
        return self._wait(lambda: self._acks.get(envelope_id), timeout)

    def send_text(self, text: str) -> None:
        """Send one text frame, as is, on the newest open connection."""
        connection = self._newest(0)
        if connection is None:
            raise AssertionError("no open Socket Mode connection to send on")
        connection.send(OP_TEXT, text.encode("utf-8"))

    def disconnect(self, reason: str = "refresh_requested", *, close: bool = False) -> int:
        """Ask the app to reconnect, as Slack does every few hours; returns the connection id.

        With ``close``, also close the connection (1001) after the message, as Slack does
        shortly after a ``disconnect`` it sends.
        """
        connection = self._newest(0)
        if connection is None:
            raise AssertionError("no open Socket Mode connection to disconnect")
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        connection.send(OP_TEXT, json.dumps(message).encode("utf-8"))
        if close:
            connection.close(CLOSE_GOING_AWAY, reason)
        return connection.id

    def ping(self, timeout: float = 5.0) -> bool:
        """Ping the newest connection; True when its pong came back within ``timeout``."""
        connection = self._newest(0)
        if connection is None:
            return False
        nonce = os.urandom(8).hex().encode("ascii")
        connection.send(OP_PING, nonce)
        return self._wait(lambda: (nonce in self._pongs) or None, timeout) is not None

    # -- internals -------------------------------------------------------------------------------

    def _wait(self, found: Callable[[], _T | None], timeout: float) -> _T | None:
        with self._cond:
            self._cond.wait_for(found, timeout=timeout)
            return found()

    def _newest(self, after: int) -> _Connection | None:
        with self._cond:
            live = [c for c in self._connections if c.ended is None and c.id > after]
            return live[-1] if live else None

    def _error(self, message: str) -> None:
        with self._cond:
            self._errors.append(message)

    def _redeem(self, target: str) -> bool:
        ticket = parse_qs(urlsplit(target).query).get("ticket", [""])[0]
        with self._cond:
            if ticket not in self._tickets:
                return False
            self._tickets.discard(ticket)
            return True

    def _opened(self, sock: socket.socket) -> _Connection:
        with self._cond:
            connection = _Connection(next(self._serial), sock)
            self._connections.append(connection)
            self._cond.notify_all()
            return connection

    def _ended(self, connection: _Connection, how: str, code: int | None = None) -> None:
        with self._cond:
            if connection.ended is None:
                connection.ended, connection.close_code = how, code
            self._cond.notify_all()

    def _pinged(self, connection: _Connection) -> None:
        with self._cond:
            connection.pings += 1

    def _ponged(self, payload: bytes) -> None:
        with self._cond:
            self._pongs.add(payload)
            self._cond.notify_all()

    def _acked(self, connection: _Connection, text: str) -> None:
        """Record an ack; anything else the client sends is an error (it only ever acks)."""
        try:
            message = json.loads(text)
        except ValueError:
            return self._error(f"connection {connection.id} sent text that is not JSON")
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        payload = message.get("payload") if isinstance(message, dict) else None
        if not isinstance(envelope_id, str) or not isinstance(payload, dict | None):
            return self._error(f"connection {connection.id} sent a message that is no ack")
        with self._cond:
            sent = self._sent_at.get(envelope_id)
            if sent is None or envelope_id in self._acks:
                self._errors.append(f"ack for an unknown or already acked envelope {envelope_id}")
                return None
            elapsed = time.monotonic() - sent
            self._acks[envelope_id] = SocketAck(envelope_id, payload, elapsed, connection.id)
            self._cond.notify_all()
        return None


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], slack: SocketModeServer) -> None:
        self.slack = slack
        super().__init__(address, _Handler)


class _Handler(socketserver.StreamRequestHandler):
    """One connection: the HTTP upgrade, ``hello``, then frames until either side closes."""

    server: _TcpServer
    # Frames are small and sent in one write each; Nagle would hold acks back ~40 ms.
    disable_nagle_algorithm = True

    def handle(self) -> None:
        slack = self.server.slack
        key = self._handshake(slack)
        if key is None:
            return
        self.wfile.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key).encode("ascii") + b"\r\n\r\n"
        )
        self.wfile.flush()
        connection = slack._opened(self.connection)
        hello = {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
            "connection_info": {"app_id": slack.app_id},
        }
        try:
            connection.send(OP_TEXT, json.dumps(hello).encode("utf-8"))
            self._serve(slack, connection)
        except ProtocolError as exc:
            slack._error(f"connection {connection.id}: {exc}")
            connection.close(exc.code, str(exc)[:100])
            slack._ended(connection, "protocol error", exc.code)
        except OSError:  # reset by the peer, or shut down by stop()
            pass
        finally:
            slack._ended(connection, "server close" if connection.close_sent else "eof")

    def _handshake(self, slack: SocketModeServer) -> str | None:
        """The client's ``Sec-WebSocket-Key`` once the upgrade request checks out, else None."""
        request_line = self.rfile.readline(8192).decode("latin-1").strip()
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADER_LINES):
            line = self.rfile.readline(8192).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        method, _, rest = request_line.partition(" ")
        target = rest.rpartition(" ")[0]
        key = headers.get("sec-websocket-key", "")
        problem = None
        if method != "GET" or headers.get("upgrade", "").lower() != "websocket":
            problem = "not a WebSocket upgrade"
        elif "upgrade" not in headers.get("connection", "").lower():
            problem = "Connection header does not say Upgrade"
        elif headers.get("sec-websocket-version") != "13":
            problem = "Sec-WebSocket-Version is not 13"
        elif not _valid_key(key):
            problem = "Sec-WebSocket-Key is not 16 bytes in base64"
        elif not slack._redeem(target):
            problem = "unknown or used ticket"
        if problem is None:
            return key
        slack._error(f"handshake refused: {problem}")
        status = "401 Unauthorized" if problem.endswith("ticket") else "400 Bad Request"
        self.wfile.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode("ascii"))
        return None

    def _serve(self, slack: SocketModeServer, connection: _Connection) -> None:
        """Read frames until a close frame or EOF; answer pings, record acks."""
        message = bytearray()
        while True:
            frame = read_frame(self.rfile)
            if frame is None:  # the builtin client drops TCP without a close frame when it stops
                return slack._ended(connection, "server close" if connection.close_sent else "eof")
            if not frame.masked:
                raise ProtocolError("client frame not masked")
            if frame.opcode == OP_PING:
                slack._pinged(connection)
                connection.send(OP_PONG, frame.payload)
            elif frame.opcode == OP_PONG:
                slack._ponged(frame.payload)
            elif frame.opcode == OP_CLOSE:
                payload = frame.payload
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                how = "server close" if connection.close_sent else "client close"
                connection.close(code or CLOSE_NORMAL)  # echo it, as RFC 6455 §5.5.1 asks
                return slack._ended(connection, how, code)
            elif frame.opcode in (OP_TEXT, OP_CONTINUATION):
                message += frame.payload
                if len(message) > MAX_MESSAGE:
                    raise ProtocolError("message too big", CLOSE_TOO_BIG)
                if frame.fin:
                    text, message = bytes(message).decode("utf-8", "replace"), bytearray()
                    slack._acked(connection, text)
            else:
                raise ProtocolError(f"unexpected opcode {frame.opcode:#x}")


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False
