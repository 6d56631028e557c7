"""Listeners that answer Slack the moment they call ``ack()``.

bolt runs a listener in a thread and, by default, checks every 10 ms whether it has
acked yet (``ThreadListenerRunner``: ``time.sleep(0.01)`` in a loop).  So every answer
waited up to 10 ms for nothing, each waiting request thread woke 100 times a second,
and under load those wake-ups competed with the work for the GIL: a command that takes
under a millisecond to handle held a request thread for 12 ms or more.

Instead the app runs with ``process_before_response=True`` (bolt calls the listener on
the request thread and sends what it acked once it returns), and :func:`answer_on_ack`
wraps each listener: it runs the listener on the pool, waits on an event that ``ack()``
sets, and returns at once.  What the listener does after acking (opening a modal,
queueing a job, posting a reply) goes on in the pool, as it did under bolt's runner.
Events, which have no ``ack``, are handed to the pool and acked by bolt at once.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack
from slack_bolt.response import BoltResponse

__all__ = ["ACK_TIMEOUT", "LISTENER_THREADS", "answer_on_ack", "listener_pool"]

ACK_TIMEOUT = 3.0
"""Seconds to wait for ``ack()``, as bolt does: past that Slack has given up anyway."""

LISTENER_THREADS = 32
"""Listener threads.  A listener keeps its thread for the Web API calls it makes after its ack
(``views.open``: 100-300 ms from Slack), so the pool is kept larger than gunicorn's request
threads: a burst of commands must not wait for a free thread before it can even be acked.
bolt's own default is 5."""

Listener = Callable[..., None]

log = logging.getLogger("untag.slack")


def listener_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="untag-listener")


class _SignallingAck(Ack):
    """bolt's ``ack``, which also wakes the request thread waiting to send what was acked."""

    def __init__(self, acked: threading.Event) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # bolt's __init__ is unannotated
        self._acked = acked

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self._acked.set()


def answer_on_ack(pool: Executor, listener: Listener, timeout: float = ACK_TIMEOUT) -> Listener:
    """``listener`` run on ``pool``; the request's answer is whatever it acked, sent once it has.

    A listener that returns without acking is not waited for: bolt then answers as for any
    un-acked request.  An exception it raises is logged (type and traceback, no payload):
    on the pool, nobody else would see it.
    """

    def finished(done: Future[None]) -> None:
        error = done.exception()
        if error is not None:
            log.error("listener %s failed: %s", name, type(error).__name__, exc_info=error)

    @functools.wraps(listener)  # bolt reads the wrapped signature to pick the arguments to pass
    def run(**kwargs: Any) -> None:
        ack = kwargs.get("ack")
        if not isinstance(ack, Ack):  # an event: bolt acks as soon as this returns
            pool.submit(listener, **kwargs).add_done_callback(finished)
            return
        acked = threading.Event()
        signalling = _SignallingAck(acked)
        done = pool.submit(listener, **{**kwargs, "ack": signalling})
        done.add_done_callback(lambda _: acked.set())  # returned without acking: stop waiting
        done.add_done_callback(finished)
        acked.wait(timeout)
        ack.response = signalling.response

    name = getattr(listener, "__name__", "listener")
    return run
