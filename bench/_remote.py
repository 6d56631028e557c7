"""The provider sandbox in a process of its own, driven over its ``/_sandbox`` control API.

A real provider does not share our interpreter: in-process, the simulators' HTTP
handling competes with untag for the GIL, and a benchmark of untag's request rate
then partly measures the sandbox.  ``untag sandbox`` runs it apart; this seeds it,
sets its limits and reads its request log as counts (copying every logged request
across would cost more than the phases measured).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import UNTAG, free_port

__all__ = ["LogCounts", "RemoteSandbox", "remote_sandbox"]

ROOT = Path(__file__).resolve().parents[1]
"""The checkout this benchmark comes from: the sandbox process runs the same code."""


@dataclass(frozen=True)
class LogCounts:
    """A slice of the sandbox's request log as counts (``GET /_sandbox/requests/summary``)."""

    end: int  # the log's length when counted: the mark for the next slice
    count: int
    statuses: Mapping[str, int]
    methods: Mapping[str, int]
    last_at: float | None  # newest arrival, on the sandbox's clock
    now: float  # the sandbox's clock when counted

    def status(self, code: int) -> int:
        return self.statuses.get(str(code), 0)

    def method(self, name: str) -> int:
        return self.methods.get(name, 0)


class RemoteSandbox:
    """A running ``untag sandbox`` process and a client for its control API."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], client: httpx.Client) -> None:
        self.url = url
        self.process = process
        self._client = client

    def reset(self, *, seed_demo: bool = False) -> None:
        self._post("reset", {"seed_demo": seed_demo})

    def set_limits(self, limits: Mapping[str, int | None]) -> None:
        self._post("limits", dict(limits))

    def set_cc_items_per_second(self, rate: float | None) -> None:
        self._post("cc-activities", {"items_per_second": rate})

    def seed(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._post("seed", dict(payload)))

    def env(self) -> dict[str, str]:
        return dict(self._get("env"))

    def counts(self, since: int = 0, provider: str | None = None) -> LogCounts:
        params: dict[str, str | int] = {"since": since}
        if provider is not None:
            params["provider"] = provider
        body = self._get("requests/summary", params)
        return LogCounts(
            end=int(body["end"]),
            count=int(body["count"]),
            statuses=dict(body["statuses"]),
            methods=dict(body["methods"]),
            last_at=None if body["last_at"] is None else float(body["last_at"]),
            now=float(body["now"]),
        )

    def reset_in_flight_peaks(self) -> None:
        self._client.delete("/_sandbox/in-flight").raise_for_status()

    def peak_in_flight(self, api: str) -> int:
        return int(self._get("in-flight")[api]["peak"])

    def _get(self, route: str, params: Mapping[str, str | int] | None = None) -> Any:
        response = self._client.get(f"/_sandbox/{route}", params=params)
        response.raise_for_status()
        return response.json()

    def _post(self, route: str, payload: Mapping[str, Any]) -> Any:
        response = self._client.post(f"/_sandbox/{route}", json=payload)
        response.raise_for_status()
        return response.json()


@contextmanager
def remote_sandbox(log: Path, timeout: float = 30.0) -> Iterator[RemoteSandbox]:
    """Start ``untag sandbox`` on a free loopback port, emptied of its demo data; stop it after."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), _pythonpath()]))}
    argv = [UNTAG, "sandbox", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60.0, trust_env=False) as client:
            _wait_ready(client, process, timeout)
            sandbox = RemoteSandbox(url, process, client)
            sandbox.reset(seed_demo=False)
            yield sandbox
    finally:
        _stop(process)


def _pythonpath() -> str:
    return os.environ.get("PYTHONPATH", "")


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {process.returncode} before answering")
        try:
            if client.get("/_sandbox/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"the sandbox did not answer within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM, not SIGINT: a shell's background job starts with SIGINT ignored, and so
    # does the sandbox it spawns. The sandbox keeps nothing that needs flushing.
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
