"""The command line of the apps ``bench.ack`` measures beside untag (floor, baseline).

Kept apart from ``bench._common``: a served app must not import the load generator's
libraries, or the floor would measure them too.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.serving import run_gunicorn

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication


def serve_from_args(factory: Callable[[], WSGIApplication], description: str | None) -> None:
    """``--host --port --workers --threads``, then gunicorn as ``untag serve`` runs it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    run_gunicorn(
        factory, host=args.host, port=args.port, workers=args.workers, threads=args.threads
    )
