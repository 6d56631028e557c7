"""Which process runs an operation, and whether that process still exists.

An operation moving to ``running`` records its owner: the host name, the pid,
and the process's start time, as ``"<host> <pid> <start>"``.  On Linux the
start is ``<boot id>:<start ticks>`` (``/proc/<pid>/stat`` field 22, counted
from boot), so a pid reused by an unrelated process, or the same pid after a
reboot, is not mistaken for the owner.  Where ``/proc`` is missing the start
is ``-`` and only the pid can be checked; on Windows not even that (probing a
pid there terminates it), so every owner counts as gone, as before owners.

SQLite serves one machine, so a pid is checked on the host that wrote it.  An
owner on another host name cannot be checked from here and counts as
:attr:`Liveness.ELSEWHERE`: recovery leaves it alone, since interrupting a job
that is still running would have its Retry send the work twice.  Containers
sharing one database therefore need distinct host names (Docker's and
Kubernetes' default).

The owner is read in the calling process, at each call, never cached across a
fork: a gunicorn worker owns what it runs, not the master that forked it.
"""

from __future__ import annotations

import functools
import os
import socket
from enum import StrEnum
from pathlib import Path

__all__ = ["Liveness", "current_owner", "owner_liveness"]

_PROC = Path("/proc")
_UNKNOWN_START = "-"
_GONE_STATES = frozenset("ZXx")  # zombie or dead: exited, merely not yet reaped


class Liveness(StrEnum):
    """What can be said of an operation's owner from this process."""

    ALIVE = "alive"
    GONE = "gone"
    ELSEWHERE = "elsewhere"  # another host, or an owner this code cannot read


def current_owner() -> str:
    """This process, as recorded on the operations it claims."""
    pid = os.getpid()
    return f"{_host()} {pid} {_start_of(pid) or _UNKNOWN_START}"


def owner_liveness(owner: str | None) -> Liveness:
    """Whether ``owner`` (from :func:`current_owner`, maybe in another process) still runs.

    ``None`` is an operation claimed before owners were recorded: it is taken
    for orphaned, as every ``running`` operation was before.
    """
    if owner is None:
        return Liveness.GONE
    parts = owner.split(" ")
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) <= 0:
        return Liveness.ELSEWHERE
    host, pid, start = parts[0], int(parts[1]), parts[2]
    if host != _host():
        return Liveness.ELSEWHERE
    return Liveness.ALIVE if _start_of(pid) == start else Liveness.GONE


def _host() -> str:
    # A space would break the owner's format; no valid host name has one.
    return socket.gethostname().replace(" ", "_") or "localhost"


def _start_of(pid: int) -> str | None:
    """The start of process ``pid`` as an owner records it; ``None`` when there is none."""
    if os.name == "nt":
        return None
    if not _PROC.joinpath("self", "stat").exists():
        return _UNKNOWN_START if _pid_exists(pid) else None
    try:
        stat = _PROC.joinpath(str(pid), "stat").read_text(encoding="ascii", errors="replace")
    except OSError:  # no such process (or no longer)
        return None
    # Field 2, the command name, is in parentheses and may hold spaces or ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in _GONE_STATES:
        return None
    return f"{_boot_id()}:{fields[19]}"  # fields[0] is field 3, so field 22 is fields[19]


@functools.cache
def _boot_id() -> str:
    # Start ticks count from boot: the boot id tells one boot's tick 500 from the next's.
    try:
        return _PROC.joinpath("sys/kernel/random/boot_id").read_text().strip() or "boot"
    except OSError:
        return "boot"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True
