"""storage.owners: a process identity that survives pid reuse, and reading it back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import Liveness, current_owner, owner_liveness

LINUX = Path("/proc/self/stat").exists()


def _owner_parts() -> tuple[str, str, str]:
    host, pid, start = current_owner().split(" ")
    return host, pid, start


def test_this_process_is_alive_and_named_by_host_and_pid() -> None:
    host, pid, start = _owner_parts()
    assert host == socket.gethostname() and pid == str(os.getpid())
    assert start != ""
    assert owner_liveness(current_owner()) is Liveness.ALIVE


def test_the_owner_is_read_in_the_process_that_asks() -> None:
    # A forked worker must not present its parent's identity.
    child = subprocess.run(
        [sys.executable, "-c", "from storage import current_owner; print(current_owner())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip().split(" ")[1] != str(os.getpid())


def test_a_process_that_exited_is_gone() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from storage import current_owner; print(current_owner())"],
        capture_output=True,
        text=True,
        check=True,
    )
    owner = done.stdout.strip()
    assert owner_liveness(owner) is Liveness.GONE


@pytest.mark.skipif(not LINUX, reason="process states come from /proc")
def test_an_exited_but_unreaped_child_is_gone() -> None:
    # A gunicorn worker killed a moment ago is a zombie until the master reaps it.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 30
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        host, _, start = _owner_parts()
        # Same host and boot; the start ticks do not matter once the process is dead.
        assert owner_liveness(f"{host} {child.pid} {start}") is Liveness.GONE
    finally:
        child.wait()


@pytest.mark.skipif(not LINUX, reason="start times come from /proc")
def test_a_reused_pid_or_another_boot_is_not_the_owner() -> None:
    host, pid, start = _owner_parts()
    boot, ticks = start.rsplit(":", 1)
    assert owner_liveness(f"{host} {pid} {boot}:{int(ticks) + 1}") is Liveness.GONE
    assert owner_liveness(f"{host} {pid} other-boot:{ticks}") is Liveness.GONE


def test_no_owner_is_gone() -> None:
    assert owner_liveness(None) is Liveness.GONE


def test_another_host_cannot_be_checked_from_here() -> None:
    _, pid, start = _owner_parts()
    assert owner_liveness(f"elsewhere.example {pid} {start}") is Liveness.ELSEWHERE


@pytest.mark.parametrize("owner", ["", "host", "host 12", "host twelve x", "host 0 x", "a b c d"])
def test_an_owner_in_an_unknown_form_is_left_alone(owner: str) -> None:
    assert owner_liveness(owner) is Liveness.ELSEWHERE
