"""The calibration of ``bench.ack``: an app that answers every request at once, doing nothing.

    .venv/bin/python -m bench.floor_app --port P [--workers 1] [--threads 16]

Served as ``untag serve`` is (``bot.server.run_gunicorn``: gthread, same worker
and thread counts) but with no bolt and no work, so its latency under the
benchmark's load is what the machine, gunicorn and the load generator cost by
themselves: a floor no Python app served this way can beat on this machine.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot.server import run_gunicorn

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


def make_app() -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)
        body = b'{"ok":true}' if environ.get("PATH_INFO") == "/healthz" else b""
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    run_gunicorn(
        make_app, host=args.host, port=args.port, workers=args.workers, threads=args.threads
    )


if __name__ == "__main__":
    main()
