"""Our own bounded executor for provider work, apart from bolt's listener threads.

bolt runs listeners on a small shared pool; a Fernand job paced at five writes
a minute would hold one of those threads for many minutes and starve new acks.
Provider I/O therefore runs here, after the ack.  The queue is bounded so that
a flood of commands is refused with a clear message instead of piling up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["Jobs"]

log = logging.getLogger(__name__)


class Jobs:
    """At most ``workers`` jobs run at once and ``workers + backlog`` are accepted."""

    def __init__(self, workers: int = 8, backlog: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="untag-job")
        self._slots = threading.BoundedSemaphore(workers + backlog)
        self._idle = threading.Condition()
        self._pending = 0

    def submit(self, name: str, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue ``fn(*args)``; False when the queue is full (the caller tells the user)."""
        if not self._slots.acquire(blocking=False):
            log.warning("job queue full; refused %s", name)
            return False
        with self._idle:
            self._pending += 1
        future = self._pool.submit(fn, *args)
        future.add_done_callback(lambda f: self._finished(name, f))
        return True

    def _finished(self, name: str, future: Future[Any]) -> None:
        self._slots.release()
        error = future.exception()
        if error is not None:
            # Jobs report their own failures to the user; this is the last resort.
            log.error("job %s failed: %s", name, type(error).__name__, exc_info=error)
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is pending (tests, graceful shutdown); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
