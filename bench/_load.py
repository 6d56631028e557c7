"""The load generator of ``bench.ack``: signed slash commands, from a process of its own.

    python -m bench._load < spec.json > result.json     (the signing secret in BENCH_SIGNING_SECRET)

One asyncio loop, ``concurrency`` keep-alive HTTP/1.1 connections, each sending its next command
as soon as the previous answer is complete; requests are written as bytes, and signed with the
fake Slack's own ``sign_request``.
It spends a fraction of a millisecond of CPU per command, so the figures measure the server.
(The first version, 50 httpx threads inside the benchmark process beside the fake Slack and the
sandbox, spent 3 ms per command and was what capped the no-op floor at 383 commands/s.)

As Slack does, each command carries a fresh trigger_id and response_url: they are issued by the
fake Slack (``POST /_fake/invocations``) in batches just before they are used, well within the
trigger's 3 seconds.

The spec (JSON on stdin)::

    {"url": "http://127.0.0.1:P/slack/events", "slack_url": "http://127.0.0.1:Q",
     "concurrency": 50, "busy_marker": "untag is busy",
     "fields": {"team_id": …, "team_domain": …, "api_app_id": …, "channel_id": …},
     "commands": [["U0LOAD00", "zoho Leads 1 Prime"], …]}

The result (JSON on stdout)::

    {"samples": [[index, started_s, latency_s, status, busy], …], "wall": s, "cpu": s}

``index`` is the command's place in ``commands``, ``status`` 0 when the connection failed, and
``busy`` whether the answer held ``busy_marker``; samples are in the order the answers arrived.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from sandbox.slack_models import sign_request

SECRET_VARIABLE = "BENCH_SIGNING_SECRET"
FRESH_FOR = 1.0
"""Seconds an issued trigger_id is used for; Slack's own limit is 3 s from the user's action."""


class Refused(Exception):
    """The fake Slack would not issue invocations: the load cannot be sent as Slack sends it."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"need http://host:port/…, got {url!r}")
        return cls(parts.hostname, parts.port, parts.path or "/")


def request_bytes(endpoint: Endpoint, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {endpoint.host}:{endpoint.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the connection stays open (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, header_block = head.decode("latin-1").partition("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in header_block.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body, keep_alive = await reader.read(), False
    return status, body, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
        pass
    return b"".join(chunks)


class Connection:
    """One keep-alive connection, reopened after the server closes it or fails."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.endpoint.host, self.endpoint.port)
        reader, writer = self._streams
        try:
            writer.write(request)
            status, body, keep_alive = await read_response(reader)
        except BaseException:
            self.close()
            raise
        if not keep_alive:
            self.close()
        return status, body

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


@dataclass
class Invocations:
    """trigger_ids and response_urls from the fake Slack, per command index, issued in batches."""

    slack: Endpoint
    channel: str
    users: list[str]
    batch: int
    _issued: dict[int, tuple[float, dict[str, str]]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def take(self, index: int) -> dict[str, str]:
        async with self._lock:
            issued = self._issued.pop(index, None)
            if issued is None or time.monotonic() - issued[0] > FRESH_FOR:
                await self._issue(index)
                issued = self._issued.pop(index)
        return issued[1]

    async def _issue(self, first: int) -> None:
        indexes = range(first, min(first + self.batch, len(self.users)))
        body = json.dumps(
            {"channel_id": self.channel, "users": [self.users[i] for i in indexes]}
        ).encode()
        request = request_bytes(
            self.slack, "/_fake/invocations", body, {"Content-Type": "application/json"}
        )
        connection = Connection(self.slack)
        try:
            status, answer = await connection.exchange(request)
        finally:
            connection.close()
        if status != 200:
            raise Refused(f"POST /_fake/invocations answered {status}: {answer[:200]!r}")
        now = time.monotonic()
        for index, invocation in zip(indexes, json.loads(answer)["invocations"], strict=True):
            self._issued[index] = (now, invocation)


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    """The two headers Slack adds (``sandbox``'s own signing), plus the form's type."""
    return {"Content-Type": "application/x-www-form-urlencoded", **sign_request(secret, body)}


def command_body(fields: dict[str, str], user: str, text: str, invocation: dict[str, str]) -> bytes:
    form = {
        "token": "fake-verification-token",
        "team_id": fields["team_id"],
        "team_domain": fields["team_domain"],
        "channel_id": fields["channel_id"],
        "channel_name": fields["channel_id"].lower(),
        "user_id": user,
        "user_name": user.lower(),
        "command": "/untag",
        "text": text,
        "api_app_id": fields["api_app_id"],
        "is_enterprise_install": "false",
        "response_url": invocation["response_url"],
        "trigger_id": invocation["trigger_id"],
    }
    return urlencode(form).encode("ascii")


async def send_all(spec: dict[str, Any], secret: str) -> dict[str, Any]:
    app = Endpoint.parse(spec["url"])
    commands: list[list[str]] = spec["commands"]
    fields: dict[str, str] = spec["fields"]
    busy_marker = spec["busy_marker"].encode()
    concurrency = int(spec["concurrency"])
    invocations = Invocations(
        Endpoint.parse(spec["slack_url"]),
        fields["channel_id"],
        [user for user, _ in commands],
        batch=concurrency,
    )
    samples: list[list[Any]] = []
    next_index = iter(range(len(commands)))
    began = time.perf_counter()

    async def worker() -> None:
        connection = Connection(app)
        try:
            for index in next_index:
                user, text = commands[index]
                body = command_body(fields, user, text, await invocations.take(index))
                request = request_bytes(app, app.path, body, signed_headers(secret, body))
                sent = time.perf_counter()
                try:
                    status, answer = await connection.exchange(request)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status, answer = 0, b""
                done = time.perf_counter()
                samples.append([index, sent - began, done - sent, status, busy_marker in answer])
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"samples": samples, "wall": time.perf_counter() - began}


def main() -> None:
    secret = os.environ.get(SECRET_VARIABLE)
    if not secret:
        sys.exit(f"set {SECRET_VARIABLE} to the app's signing secret")
    spec = json.load(sys.stdin)
    cpu = time.process_time()
    try:
        result = asyncio.run(send_all(spec, secret))
    except Refused as exc:
        sys.exit(str(exc))
    result["cpu"] = time.process_time() - cpu
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
