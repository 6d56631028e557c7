"""What the benchmarks share: the machine, a quiet-machine wait, percentiles, serving and memory.

Nothing here is timed itself; it starts processes, waits for them and reads ``/proc``.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "UNTAG",
    "Machine",
    "Memory",
    "Served",
    "cpu_seconds",
    "free_port",
    "load_average",
    "machine",
    "memory",
    "percentile",
    "print_table",
    "process_tree",
    "pss_mb",
    "rss_mb",
    "serve",
    "stop",
    "wait_for_quiet",
    "wait_healthy",
]

UNTAG = str(Path(sys.executable).parent / "untag")
"""The ``untag`` entry point of the interpreter running the benchmark (the project's venv)."""

QUIET_LOAD = 1.0
"""A 1-minute load average above this means other work would distort the figures."""


@dataclass(frozen=True)
class Machine:
    nproc: int
    memory_gb: float
    cpu: str
    python: str
    sqlite: str
    kernel: str

    def line(self) -> str:
        return (
            f"{self.nproc} cores ({self.cpu}), {self.memory_gb:.0f} GB RAM, "
            f"Python {self.python}, SQLite {self.sqlite}, Linux {self.kernel}"
        )


def machine() -> Machine:
    """The machine the figures come from."""
    memory_kb = 0
    cpu = platform.machine()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return Machine(
        nproc=os.cpu_count() or 0,
        memory_gb=memory_kb / 1024 / 1024,
        cpu=cpu,
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        kernel=platform.release(),
    )


def load_average() -> float:
    """The 1-minute load average (``/proc/loadavg``)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def wait_for_quiet(max_wait: float = 600.0, poll: float = 30.0, quiet: float = QUIET_LOAD) -> float:
    """Wait (up to ``max_wait`` seconds) until the 1-minute load is at most ``quiet``.

    Other work on a small machine distorts latency figures; this never fails, it
    returns the load at which the measurement starts, to be reported beside it.
    """
    deadline = time.monotonic() + max_wait
    load = load_average()
    while load > quiet and time.monotonic() < deadline:
        print(
            f"  machine busy (1-min load {load:.2f} > {quiet}); waiting {poll:.0f} s…", flush=True
        )
        time.sleep(poll)
        load = load_average()
    return load


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def print_table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> None:
    """A plain aligned text table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    """A server subprocess on loopback and how long it took to answer ``/healthz``."""

    process: subprocess.Popen[bytes]
    base: str
    healthy_after: float
    log: Path

    @property
    def events_url(self) -> str:
        return f"{self.base}/slack/events"


def serve(argv: Sequence[str], env: Mapping[str, str], cwd: Path, port: int, log: Path) -> Served:
    """Start ``argv`` (a server on ``port``), wait for a healthy ``/healthz``, time it."""
    with log.open("wb") as sink:
        started = time.monotonic()
        process = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    healthy_after = wait_healthy(base, process, started)
    return Served(process, base, healthy_after, log)


def wait_healthy(
    base: str, process: subprocess.Popen[bytes], started: float, timeout: float = 60.0
) -> float:
    """Seconds from ``started`` until ``GET /healthz`` answers 200 (polled every 10 ms)."""
    deadline = started + timeout
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode} before healthy")
            try:
                if client.get(f"{base}/healthz").status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.01)
    raise RuntimeError(f"{base} was not healthy within {timeout:.0f} s")


def stop(served: Served, timeout: float = 5.0) -> None:
    """SIGTERM; after ``timeout`` s, SIGKILL the server and its workers.

    Gunicorn waits up to its graceful timeout for running jobs (a Fernand
    removal at 5 writes a minute), which a benchmark need not wait for.
    """
    process = served.process
    if process.poll() is not None:
        return
    pids = process_tree(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in reversed(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's master and workers), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the ppid follows the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pss_mb(pid: int) -> float:
    """Proportional set size (``Pss`` in ``/proc/<pid>/smaps_rollup``), in MB.

    Pages shared with other processes (gunicorn's master and its forked workers
    share most of theirs) count as a fraction, so the sum over a process tree is
    the memory it really occupies; a sum of ``VmRSS`` counts shared pages twice.
    """
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process tree: ``VmRSS`` and ``Pss`` per process, in MB."""

    rss: tuple[float, ...]
    pss: tuple[float, ...]

    @property
    def rss_total(self) -> float:
        return sum(self.rss)

    @property
    def pss_total(self) -> float:
        return sum(self.pss)

    def describe(self) -> str:
        each = " + ".join(f"{r:.0f}" for r in self.rss)
        return f"VmRSS {self.rss_total:.0f} MB ({each}), PSS {self.pss_total:.0f} MB"


def memory(pid: int) -> Memory:
    """Memory of ``pid`` and its descendants (gunicorn: the master first, then workers)."""
    pids = process_tree(pid)
    return Memory(tuple(rss_mb(p) for p in pids), tuple(pss_mb(p) for p in pids))


def rss_mb(pid: int) -> float:
    """Resident memory of one process (``VmRSS`` in ``/proc/<pid>/status``), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
