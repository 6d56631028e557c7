"""What the master process of ``untag serve`` runs: gunicorn, and recovery in a child.

This module imports only the standard library at load time, and gunicorn when
serving.  The master only supervises, and every page it holds is resident twice,
in itself and in each worker it forks (issue #6: idle memory), so nothing of
the app (settings, runtime, httpx, slack_bolt) may be imported here: each
worker builds its own app, after the fork.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

__all__ = ["ForkedTask", "run_gunicorn"]

_NO_STATUS = 255  # the child died before recording how it ended


class ForkedTask:
    """``target`` running in a forked child, which this process and its later forks can await.

    Whatever ``target`` imports and opens stays in the child and goes away with
    it.  Forked rather than spawned: the caller has imported little (cheap to
    fork), and has no threads and no open database yet (safe to fork); a spawn
    would re-import it in a fresh interpreter, and multiprocessing's spawn
    starts its resource tracker, a process that would stay beside the master.

    The child holds the only write end of a pipe: :meth:`wait` reads it until
    end of file, that is until the child has exited, then finds the exit status
    in a byte of memory shared with the child.  So gunicorn's workers, forked
    later, can wait too (only a parent can ``waitpid``); gunicorn's master reaps
    the child as it reaps any unknown child of its own.
    """

    def __init__(self, target: Callable[[], None]) -> None:
        self._status = mmap.mmap(-1, 1)  # anonymous and shared with every fork
        self._status[0] = _NO_STATUS
        self._done, writer = os.pipe()
        _flush_stdio()  # or the child would print what this process had buffered, again
        if os.fork() == 0:
            os.close(self._done)
            code = _exit_status(target)
            self._status[0] = code
            os._exit(code)  # closes ``writer``: the end of file every waiter is reading for
        os.close(writer)

    def wait(self) -> int:
        """Block until the child has exited; its exit status (1 if it died without one)."""
        while os.read(self._done, 1):  # nothing is ever written: this returns at end of file
            pass
        status = self._status[0]
        return 1 if status == _NO_STATUS else status


def _exit_status(target: Callable[[], None]) -> int:
    """Run ``target``; its exit status as the interpreter would give it (1 for an exception)."""
    try:
        target()
        code = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = (stop.code or 0) & 0xFF
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # what would have ended the process, KeyboardInterrupt included
        traceback.print_exc()
        code = 1
    _flush_stdio()  # os._exit does not
    return min(code, _NO_STATUS - 1)


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed: nothing to flush
            stream.flush()


def run_gunicorn(
    factory: Callable[[], WSGIApplication], *, host: str, port: int, workers: int, threads: int
) -> None:
    """Serve the app built by ``factory`` in each worker (never across a fork: SQLite)."""
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
        def load_config(self) -> None:
            options = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "worker_class": "gthread",
                "threads": threads,
                "timeout": 60,
                "graceful_timeout": 30,
                "accesslog": None,  # our own line per request, without query strings
                "errorlog": "-",
                "loglevel": "warning",
                # Off: the app (and its SQLite handles) must not cross a fork; and a
                # preloaded app would be resident in the master as well as in each worker.
                "preload_app": False,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApplication:
            return factory()

    _Server().run()
