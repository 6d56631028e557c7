"""The fake Slack's Socket Mode endpoint: RFC 6455 by hand, and slack_sdk's builtin client."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from sandbox.slack import SOCKET_MODE, FakeSlack, SocketAck
from sandbox.slack_socket import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    accept_key,
    encode_frame,
    read_frame,
)

BOT, APP = "xoxb-test-token", "xapp-1-A0UNTAG-1-test"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT, app_token=APP, client_timeout=2.0) as f:
        yield f


@pytest.fixture
def client(fake: FakeSlack) -> Iterator[SocketModeClient]:
    """slack_sdk's builtin client, as bolt's SocketModeHandler builds it, acking with a text."""
    web = WebClient(token=BOT, base_url=fake.api_url)
    sm = SocketModeClient(app_token=APP, web_client=web, ping_interval=10)

    def answer(client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        reply = {"text": f"got {req.type}"} if req.accepts_response_payload else None
        client.send_socket_mode_response(SocketModeResponse(req.envelope_id, reply))

    sm.socket_mode_request_listeners.append(answer)
    try:
        yield sm
    finally:
        sm.close()


def _upgrade(url: str) -> tuple[socket.socket, bytes]:
    """A hand-made client's upgrade request; the socket and the server's answer head."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    if head.startswith(b"HTTP/1.1 101"):
        assert f"Sec-WebSocket-Accept: {accept_key(key)}\r\n".encode() in head
    return sock, head


def _masked(opcode: int, payload: bytes) -> bytes:
    return encode_frame(opcode, payload, mask=os.urandom(4))


def test_accept_key_is_rfc_6455s_example() -> None:
    # RFC 6455 §1.3: the sample nonce and the answer it requires.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_hello_ping_envelope_ack_and_close_by_hand(fake: FakeSlack) -> None:
    server = fake.socket_mode
    sock, head = _upgrade(server.new_url())
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
    stream = sock.makefile("rb")
    hello = read_frame(stream)
    assert hello is not None and hello.opcode == OP_TEXT and not hello.masked
    assert json.loads(hello.payload)["type"] == "hello"

    sock.sendall(_masked(OP_PING, b"session:1767225600.5"))
    pong = read_frame(stream)
    assert pong is not None and (pong.opcode, pong.payload) == (OP_PONG, b"session:1767225600.5")

    # Over 64 KB out (the 8-byte length), over 125 bytes back (the 2-byte one).
    big = "y" * 70_000
    sent: list[SocketAck | None] = []
    pusher = threading.Thread(
        target=lambda: sent.append(
            server.send_envelope("events_api", {"big": big}, envelope_id="e1")
        )
    )
    pusher.start()
    frame = read_frame(stream)
    assert frame is not None and json.loads(frame.payload)["payload"] == {"big": big}
    sock.sendall(
        _masked(OP_TEXT, json.dumps({"envelope_id": "e1", "payload": {"t": "x" * 300}}).encode())
    )
    pusher.join(5)
    [ack] = server.acks
    assert sent == [ack] and (ack.envelope_id, ack.payload) == ("e1", {"t": "x" * 300})

    sock.sendall(_masked(OP_CLOSE, struct.pack("!H", 1000)))
    echo = read_frame(stream)
    assert echo is not None and echo.opcode == OP_CLOSE and echo.payload == struct.pack("!H", 1000)
    [record] = server.connections
    assert server.wait_closed(record.id).ended == "client close"
    assert server.wait_closed(record.id).pings == 1 and server.errors == []
    stream.close()
    sock.close()


def test_tickets_open_one_connection_and_frames_must_be_masked(fake: FakeSlack) -> None:
    server = fake.socket_mode
    url = server.new_url()
    first, head = _upgrade(url)
    assert head.startswith(b"HTTP/1.1 101")
    second, head = _upgrade(url)  # the same ticket again
    assert head.startswith(b"HTTP/1.1 401")
    second.close()
    assert server.errors == ["handshake refused: unknown or used ticket"]

    stream = first.makefile("rb")
    assert read_frame(stream) is not None  # hello
    first.sendall(encode_frame(OP_TEXT, b"{}"))  # unmasked, as only a server may send
    close = read_frame(stream)
    assert close is not None and close.opcode == OP_CLOSE and close.payload[:2] == b"\x03\xea"
    [record] = server.connections
    assert server.wait_closed(record.id).ended == "protocol error"
    assert server.errors[-1].endswith("client frame not masked")
    stream.close()
    first.close()


def test_apps_connections_open_takes_the_app_token_only(fake: FakeSlack) -> None:
    web = WebClient(token=BOT, base_url=fake.api_url)
    url = web.apps_connections_open(app_token=APP)["url"]
    assert url.startswith("ws://127.0.0.1:") and "/link/?ticket=" in url
    with pytest.raises(SlackApiError) as bot_token:
        web.apps_connections_open(app_token=BOT)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as app_token:
        WebClient(token=APP, base_url=fake.api_url).auth_test()
    assert app_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as unknown:
        web.apps_connections_open(app_token="xapp-1-other")
    assert unknown.value.response["error"] == "invalid_auth"


def test_without_an_app_token_there_is_no_socket_mode() -> None:
    with FakeSlack(bot_token=BOT) as plain:
        with pytest.raises(SlackApiError) as refused:
            WebClient(token=BOT, base_url=plain.api_url).apps_connections_open(app_token=APP)
        assert refused.value.response["error"] == "invalid_auth"
        with pytest.raises(RuntimeError, match="Socket Mode is off"):
            plain.slash_command(SOCKET_MODE, "help")


def test_the_builtin_client_acks_and_reconnects(fake: FakeSlack, client: SocketModeClient) -> None:
    server = fake.socket_mode
    client.connect()
    first = server.wait_connected()
    reply = fake.slash_command(SOCKET_MODE, "zoho Leads 1 Prime", user_id="U0ALICE")
    assert reply.status == 200 and reply.json() == {"text": "got slash_commands"}
    [envelope] = server.envelopes
    assert envelope["payload"]["text"] == "zoho Leads 1 Prime"
    assert envelope["payload"]["trigger_id"] == reply.trigger_id
    assert server.ping()  # the client answers Slack's pings too

    # Slack's "disconnect": the client fetches a new URL and moves to a new connection.
    server.disconnect("refresh_requested")
    second = server.wait_connected(after=first)
    assert server.wait_closed(first).ended is not None
    assert len(fake.calls_to("apps.connections.open")) == 2
    ack = server.send_envelope("events_api", {"type": "event_callback"})
    assert ack is not None and ack.connection == second and ack.payload is None

    client.close()
    assert server.wait_closed(second).ended == "eof"  # the builtin client sends no close frame
    assert server.errors == [] and fake.violations == []


def test_an_envelope_nobody_acknowledges_fails_the_sender(fake: FakeSlack) -> None:
    silent = SocketModeClient(app_token=APP, web_client=WebClient(token=BOT, base_url=fake.api_url))
    try:
        silent.connect()
        fake.socket_mode.wait_connected()
        with pytest.raises(AssertionError, match="never acknowledged"):
            fake.slash_command(SOCKET_MODE, "help")  # waits client_timeout (2 s)
        assert [v.message for v in fake.violations] == ["envelope not acknowledged within 2.0 s"]
    finally:
        silent.close()
