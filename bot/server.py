"""The HTTP entry point of ``untag serve``: the WSGI app gunicorn runs in each worker.

The WSGI app serves ``POST /slack/events`` through bolt and ``GET /healthz``,
and logs one line per request (method, path, status, time; never a body or a
header value).  Requests whose Slack headers are missing or malformed are
refused with 401 before bolt sees them: bolt would answer a non-numeric
timestamp with a 500, and unauthenticated traffic must never look like our
failure.  The signature itself is checked here too, before the body is parsed
(bolt parses first, and parsing a megabyte of form escapes costs a quarter of
a second).  Signed bodies that bolt could not read (not UTF-8, not a JSON
object, or shaped unlike any Slack payload: bolt would crash on them, a 500)
get a 400.

Socket Mode envelopes get the same shape checks (:mod:`bot.socket_mode`).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from slack_bolt.response import BoltResponse

from bot.jsontext import loads_text

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["MAX_BODY", "make_wsgi_app", "shape_problem"]

log = logging.getLogger("untag.http")

MAX_BODY = 1_000_000  # Slack's payloads are a few KB; anything near this is not Slack
MAX_DRAIN = 4 * MAX_BODY  # an oversized body up to this is read (and dropped) before the 413
EVENTS_PATH = "/slack/events"
SIGNATURE_WINDOW = 300  # seconds a signed request stays valid, as bolt and Slack's docs say


def make_wsgi_app(app: App) -> WSGIApplication:
    """The WSGI callable: Slack events, health, and a one-line log per request.

    Signatures are checked with the signing secret ``app`` verifies with.
    """
    handler = _SlackHandler(app, path=EVENTS_PATH)
    secret = getattr(app, "_signing_secret", None)  # bolt keeps what it was built with
    key = secret.encode() if isinstance(secret, str) and secret.strip() else None

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        statuses: list[str] = []

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return _route(handler, key, environ, remember, method, path)
        finally:
            status = statuses[0].split(" ", 1)[0] if statuses else "-"
            elapsed = (time.monotonic() - started) * 1000
            log.info("%s %s %s %.0fms", method, path, status, elapsed)

    return wsgi


class _SlackHandler(SlackRequestHandler):
    """bolt's WSGI handler, given the body as :func:`_route` read and checked it.

    Parsed once, by :func:`_parsed`, and right: bolt reads any form body that
    merely *contains* the text ``payload`` as an interaction, finds no
    ``payload`` field and dispatches an empty body, so a command such as
    ``/untag fernand 12345 "payload issue"`` went unanswered (a 404).
    """

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        raw = request.get_body()
        headers = request.get_headers()
        # Built empty, then given the body already read: parsing is done once, by us.
        bolt_request = BoltRequest(body="", query=request.query_string, headers=headers)
        body = request.environ.get(_PARSED)
        if body is None:
            body = _parsed(raw, bolt_request.content_type)
        bolt_request.raw_body = raw
        bolt_request.body = body
        bolt_request.context = build_context(BoltContext(), body)
        return self.app.dispatch(bolt_request)


_PARSED = "untag.parsed_body"  # the body as read by the checks, for the handler


def _route(
    handler: SlackRequestHandler,
    key: bytes | None,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    method: str,
    path: str,
) -> Iterable[bytes]:
    if path == "/healthz" and method in ("GET", "HEAD"):
        return _reply(start_response, "200 OK", b'{"ok":true}', "application/json")
    if path != EVENTS_PATH or method != "POST":
        return _reply(start_response, "404 Not Found", b"Not Found")
    if _content_length(environ) > MAX_BODY:
        _discard(environ)
        return _reply(start_response, "413 Payload Too Large", b"Payload Too Large")
    if not _slack_headers_well_formed(environ):
        return _reply(
            start_response, "401 Unauthorized", b'{"error":"invalid request"}', "application/json"
        )
    body = environ["wsgi.input"].read(_content_length(environ)) if "wsgi.input" in environ else b""
    if key is not None and not _signed(key, body, environ):
        return _reply(
            start_response, "401 Unauthorized", b'{"error":"invalid request"}', "application/json"
        )
    try:
        parsed = _parsed(body.decode("utf-8"), _media_type(environ))
        problem = shape_problem(parsed, depth=0)
    except (ValueError, RecursionError):  # Unicode errors and JSONDecodeError included
        parsed, problem = None, "not UTF-8 text, or not JSON where JSON is due"
    if problem is not None:
        log.info("request body refused: %s", problem)
        return _reply(
            start_response, "400 Bad Request", b'{"error":"malformed payload"}', "application/json"
        )
    environ["wsgi.input"] = io.BytesIO(body)  # read once here; bolt reads it again
    environ[_PARSED] = parsed
    return handler(environ, start_response)


def _signed(key: bytes, body: bytes, environ: WSGIEnvironment) -> bool:
    """Slack's v0 signature over the exact bytes, at most five minutes old or early."""
    timestamp = str(environ["HTTP_X_SLACK_REQUEST_TIMESTAMP"])
    if abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = b"v0=" + hmac.new(key, base, hashlib.sha256).hexdigest().encode()
    # As bytes: compare_digest refuses str with non-ASCII characters (bolt's check raises, a 500).
    sent = str(environ["HTTP_X_SLACK_SIGNATURE"]).encode("utf-8", "replace")
    return hmac.compare_digest(expected, sent)


def _media_type(environ: WSGIEnvironment) -> str | None:
    """The Content-Type without parameters, as bolt compares it."""
    return str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip() or None


def _discard(environ: WSGIEnvironment) -> None:
    """Read and drop a moderately oversized body, so that the client, still sending it,
    gets to read the 413 instead of a reset connection.  Beyond ``MAX_DRAIN`` the
    connection is simply closed: reading that much is the sender's attack, not our job."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:  # no length to read up to: reading could wait for ever
        return
    stream = environ.get("wsgi.input")
    if stream is None or length > MAX_DRAIN:
        return
    while length > 0:
        chunk = stream.read(min(length, 65536))
        if not chunk:
            return
        length -= len(chunk)


def _content_length(environ: WSGIEnvironment) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return MAX_BODY + 1


def _slack_headers_well_formed(environ: WSGIEnvironment) -> bool:
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
    signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
    # isascii: "²" is a digit to isdigit() but not to int(), and bolt calls int() on it.
    return (
        timestamp.isascii()
        and timestamp.isdigit()
        and len(timestamp) <= 12
        and signature.startswith("v0=")
    )


# Fields bolt reads with ``in``, ``.get`` or ``[...]`` while parsing and routing, before any
# listener runs: each must have the shape Slack gives it, or bolt raises (a 500).
_ID_HOLDERS = ("user", "team", "channel", "enterprise")  # an id string, {"id": …}, or null
_STRINGS = (
    *("type", "command", "callback_id", "action_id", "trigger_id", "response_url"),
    *("user_id", "team_id", "channel_id", "enterprise_id"),
)
_OBJECTS = ("container", "message", "previous_message", "item", "assistant_thread", "function_data")


def _parsed(text: str, content_type: str | None) -> Any:
    """The body as bolt means to read it: JSON, or form fields, or the form's ``payload``."""
    if not text:
        return {}
    if content_type == "application/json" or text.startswith("{"):
        return loads_text(text)
    fields = dict(parse_qsl(text, keep_blank_values=True))
    return loads_text(fields["payload"]) if "payload" in fields else fields


def shape_problem(node: object, *, depth: int) -> str | None:
    if not isinstance(node, Mapping):
        return "not an object"
    if depth > 3:
        return None
    for key in _ID_HOLDERS:
        value = node.get(key)
        if isinstance(value, Mapping):
            if not isinstance(value.get("id"), str | None):
                return f"{key}.id is not a string"
        elif not isinstance(value, str | None):
            return f"{key} is neither an id nor an object"
    for key in _STRINGS:
        if not isinstance(node.get(key), str | None):
            return f"{key} is not a string"
    for key in _OBJECTS:
        if not isinstance(node.get(key), Mapping | None):
            return f"{key} is not an object"
    return _nested_problem(node, depth=depth)


def _nested_problem(node: Mapping[str, Any], *, depth: int) -> str | None:
    if "view" in node:
        view = node["view"]
        if not isinstance(view, Mapping) or not isinstance(view.get("type"), str):
            return "view is not a view"
        if not isinstance(view.get("callback_id"), str | None):
            return "view.callback_id is not a string"
    if "actions" in node:
        actions = node["actions"]
        if not isinstance(actions, list) or not actions:
            return "actions is not a list of actions"
        if not all(isinstance(a, Mapping) and isinstance(a.get("action_id"), str) for a in actions):
            return "an action has no action_id"
    if "event" in node:
        event = node["event"]
        if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
            return "event is not an event"
        if (problem := shape_problem(event, depth=depth + 1)) is not None:
            return f"event.{problem}"
    for key in ("authorizations", "response_urls"):
        if key in node:
            items = node[key]
            if not isinstance(items, list):
                return f"{key} is not a list"
            for item in items:
                if (problem := shape_problem(item, depth=depth + 1)) is not None:
                    return f"{key}[].{problem}"
    return None


def _reply(
    start_response: StartResponse, status: str, body: bytes, content_type: str = "text/plain"
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
