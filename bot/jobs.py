"""Our own bounded executor for provider work, apart from bolt's listener threads.

bolt runs listeners on a small shared pool; a Fernand job paced at five writes
a minute would hold one of those threads for many minutes and starve new acks.
Provider I/O therefore runs here, after the ack.  Each queue is bounded so that
a flood of commands is refused with a clear message instead of piling up.

Two lanes: previews (a few reads, with a person watching a loading modal) and
everything else (removals, undo, retry, which may run for minutes or hours).
With one shared pool, eight long removals left no thread for any preview, and
every new command was told "busy" until one of them finished.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["Jobs", "Slot"]

log = logging.getLogger(__name__)


class _Lane:
    """At most ``workers`` jobs run at once and ``workers + backlog`` are accepted."""

    def __init__(self, name: str, workers: int, backlog: int, pending: _Pending) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"untag-{name}")
        self._slots = threading.BoundedSemaphore(workers + backlog)
        self._pending = pending

    def reserve(self, name: str) -> Slot | None:
        """A place, or None when the queue is full (the caller tells the user and logs it)."""
        if not self._slots.acquire(blocking=False):
            return None
        self._pending.add()
        return Slot(self, name)

    def start(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        future = self._pool.submit(fn, *args)
        future.add_done_callback(lambda f: self._finished(name, f))

    def give_back(self) -> None:
        self._slots.release()
        self._pending.remove()

    def _finished(self, name: str, future: Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            # Jobs report their own failures to the user; this is the last resort.
            log.error("job %s failed: %s", name, type(error).__name__, exc_info=error)
        self.give_back()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


class Slot:
    """A place in a queue, held before the job itself is known.

    A command takes one before its ack, so that "busy" can be said in the ack
    (no modal opened just to say so), and fills it once the modal is open.
    Exactly one of :meth:`submit` or :meth:`release` gives it back.
    """

    def __init__(self, lane: _Lane, name: str) -> None:
        self._lane, self._name = lane, name
        self._used = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in this slot; it is given back when the job ends."""
        self._use()
        try:
            self._lane.start(self._name, fn, args)
        except BaseException:
            self._lane.give_back()  # the pool refused it (shut down): the slot was never used
            raise

    def release(self) -> None:
        """Give the slot back unused; does nothing once it was submitted or released."""
        if not self._used:
            self._use()
            self._lane.give_back()

    def _use(self) -> None:
        if self._used:
            raise RuntimeError(f"slot for {self._name} already used")
        self._used = True


class _Pending:
    """Jobs accepted and not yet finished, across lanes, for :meth:`Jobs.wait_idle`."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def add(self) -> None:
        with self._idle:
            self._count += 1

    def remove(self) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_for_none(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout=timeout)


class Jobs:
    """The two lanes: long work (``workers``, ``backlog``) and previews (``preview_…``)."""

    def __init__(
        self,
        workers: int = 8,
        backlog: int = 64,
        *,
        preview_workers: int = 8,
        preview_backlog: int = 32,
    ) -> None:
        self._pending = _Pending()
        self._work = _Lane("job", workers, backlog, self._pending)
        # A preview queued behind 32 others (reads of up to a second or so each, eight at a
        # time) is shown within seconds; past that, "busy" is the more useful answer.
        self._previews = _Lane("preview", preview_workers, preview_backlog, self._pending)

    def submit(self, name: str, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue long work ``fn(*args)``; False when the queue is full (the caller tells the
        user)."""
        slot = self._work.reserve(name)
        if slot is None:
            log.warning("job queue full; refused %s", name)
            return False
        slot.submit(fn, *args)
        return True

    def reserve_preview(self) -> Slot | None:
        """A place in the preview queue, or None when it is full."""
        return self._previews.reserve("preview")

    def submit_preview(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue a preview ``fn(*args)``; False when the preview queue is full."""
        slot = self.reserve_preview()
        if slot is None:
            return False
        slot.submit(fn, *args)
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is pending (tests, graceful shutdown); False on timeout.

        A slot reserved and not yet submitted counts as pending: its job is on its way.
        """
        return self._pending.wait_for_none(timeout)

    def shutdown(self) -> None:
        self._previews.shutdown()
        self._work.shutdown()
