"""``untag socket``: Slack over Socket Mode, with the checks HTTP requests get.

Envelopes get the same shape checks as ``POST /slack/events`` (see
:class:`_SocketModeHandler`), and the process stops on SIGTERM as gunicorn does:
no new work, running jobs given time to finish (see :func:`run_socket_mode`).
Kept apart from :mod:`bot.server` so that ``untag serve``'s workers do not load
the Socket Mode client.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.jobs import Jobs
from bot.jsontext import require_text
from bot.server import shape_problem

__all__ = ["STOP_GRACE", "run_socket_mode"]

log = logging.getLogger("untag.http")

STOP_GRACE = 30.0  # seconds running jobs get after SIGTERM: gunicorn's graceful_timeout in serve


class _SocketModeHandler(SocketModeHandler):
    """bolt's Socket Mode adapter, with the checks ``_route`` gives HTTP requests.

    bolt's adapter hands every envelope's payload to ``app.dispatch`` unchecked, and
    acknowledges only what a listener acknowledged.  So a malformed payload made bolt
    raise (a traceback in the log) and was never acknowledged, nor was an envelope no
    listener handles: Slack redelivers an unacknowledged event, for nothing, since no
    retry can make either work.  Here a malformed payload is acknowledged without reaching
    bolt (HTTP's 400), and one bolt does not handle (its 404) is acknowledged bare.  A
    500 stays unacknowledged, as Slack then tells the user something failed.
    """

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        started = time.time()
        problem = _envelope_problem(req.payload)
        if problem is not None:
            log.info("envelope refused: %s", problem)  # never the payload: it may hold a URL
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        response = run_bolt_app(self.app, req)
        if response.status == 404:
            response = BoltResponse(status=200, body="")
        send_response(client, req, response, started)


def _envelope_problem(payload: object) -> str | None:
    """Why bolt must not see this payload (what ``_route`` refuses with a 400), or None."""
    try:
        require_text(payload)
    except (ValueError, RecursionError):
        return "not UTF-8 text"
    return shape_problem(payload, depth=0)


def run_socket_mode(
    app: App,
    app_token: str,
    *,
    jobs: Jobs | None = None,
    connected: Callable[[bool], None] | None = None,
    grace: float = STOP_GRACE,
) -> bool:
    """Serve over Socket Mode until SIGTERM or Ctrl+C: no public URL needed; the xapp-
    token is the credential.  ``connected`` is told whether the first connection opened
    (if not, the client retries every ping interval).

    Stopping closes the connection first, so that Slack sends new envelopes to the app's
    other connections, then gives ``jobs`` up to ``grace`` seconds to finish and report.
    Returns False when some are still running: the caller should exit without waiting
    for them (they are recovered as interrupted at the next start).  Raises
    ``SlackApiError`` when Slack refuses the token.
    """
    handler = _SocketModeHandler(app, app_token)
    # SIGTERM (systemd, docker stop, kubectl) behaves like Ctrl+C: without this the
    # process died on the spot, mid-removal, and nothing reported the job until a restart.
    in_main = threading.current_thread() is threading.main_thread()  # signals: main only
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if in_main else None
    try:
        handler.connect()  # type: ignore[no-untyped-call]
        if connected is not None:
            connected(handler.client.is_connected())
        threading.Event().wait()
    except KeyboardInterrupt:
        log.info("stopping: closing the Socket Mode connection")
    finally:
        if in_main:  # from here a second SIGTERM acts as before: it cuts the drain short
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        handler.close()  # type: ignore[no-untyped-call]
    if jobs is None or jobs.wait_idle(grace):
        return True
    log.warning("jobs still running after %.0f s; they will show as interrupted", grace)
    return False
