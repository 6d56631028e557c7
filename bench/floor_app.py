"""The calibration of ``bench.ack``: an app that answers every request at once, doing nothing.

    .venv/bin/python -m bench.floor_app --port P [--workers 1] [--threads 16]

Served as ``untag serve`` is (``bot.serving.run_gunicorn``: gthread, same worker
and thread counts) but with no bolt and no work, so its latency under the
benchmark's load is what the machine, gunicorn and the load generator cost by
themselves: a floor no Python app served this way can beat on this machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bench._serve import serve_from_args

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
    serve_from_args(make_app, __doc__.splitlines()[0] if __doc__ else None)


if __name__ == "__main__":
    main()
