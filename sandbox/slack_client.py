"""The Slack side that calls the app: signed slash commands and interaction payloads.

Bodies are built the way Slack builds them (docs/slack.md §4, java-slack-sdk samples):
slash commands are form fields, interactivity is one form field ``payload=<json>``, both
``application/x-www-form-urlencoded`` and signed over the exact bytes sent. What the app
acknowledges is applied as Slack would (``response_action`` on a view submission), and an answer
slower than 3 seconds is recorded as a violation, since Slack would have shown the user an error.

Given ``SOCKET_MODE`` instead of an app URL, the same payloads travel as Socket Mode envelopes
(``slash_commands``, ``interactive``) over the app's WebSocket connection, unsigned (the
connection is the credential), and the ack's ``payload`` stands for the HTTP answer's body.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sandbox.slack_limits import view_problems
from sandbox.slack_models import PostedMessage, SlackReply, sign_request
from sandbox.slack_socket import SocketModeServer
from sandbox.slack_state import ApiError, SlackState
from sandbox.slack_web import WebApi

__all__ = ["ACK_DEADLINE", "SOCKET_MODE", "SlackClientSide", "escape_text"]

ACK_DEADLINE = 3.0  # seconds Slack waits for the app's HTTP answer (or Socket Mode ack)
# Passed where an app URL goes: deliver over the Socket Mode connection instead of HTTP.
SOCKET_MODE = "socket-mode:"
# Interactions whose Socket Mode ack may carry a response (response_action, options).
_RESPONDING_INTERACTIONS = ("view_submission", "block_suggestion")
_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    "Accept": "application/json,*/*",
}
# Loopback only: never route the app's URL through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def escape_text(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` as Slack does in command text and message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackClientSide:
    """Builds, signs and sends what Slack sends to the app, and applies the app's answers."""

    def __init__(
        self,
        state: SlackState,
        api: WebApi,
        signing_secret: str,
        base_url: Callable[[], str],
        timeout: float,
        socket: SocketModeServer | None = None,
    ) -> None:
        self.state = state
        self.api = api
        self.signing_secret = signing_secret
        self.base_url = base_url
        self.timeout = timeout
        self.socket = socket

    # -- pieces of payloads ----------------------------------------------------------------------

    def issue_response_url(
        self, channel_id: str, user_id: str, source: PostedMessage | None = None
    ) -> str:
        """A response_url on the fake, bound to a channel, user and maybe a source message."""
        token = self.state.issue_response_url(channel_id, user_id, source)
        return f"{self.base_url()}/response/{token}"

    def _team(self) -> dict[str, Any]:
        ident = self.state.identity
        return {"id": ident.team_id, "domain": ident.team_domain}

    def _user(self, user_id: str) -> dict[str, Any]:
        name = self.state.user(user_id).get("name", user_id.lower())
        return {
            "id": user_id,
            "username": name,
            "name": name,
            "team_id": self.state.identity.team_id,
        }

    @staticmethod
    def _channel(channel_id: str) -> dict[str, Any]:
        name = "directmessage" if channel_id.startswith("D") else channel_id.lower()
        return {"id": channel_id, "name": name}

    def _common(self, kind: str, user_id: str) -> dict[str, Any]:
        """Fields every interaction payload carries."""
        return {
            "type": kind,
            "token": self.state.identity.verification_token,
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.state.identity.app_id,
            "enterprise": None,
            "is_enterprise_install": False,
        }

    # -- what Slack sends ------------------------------------------------------------------------

    def slash_command(
        self,
        app_url: str,
        text: str,
        *,
        user_id: str,
        channel_id: str,
        command: str,
        team_id: str | None,
        escape: bool,
    ) -> SlackReply:
        """A slash command: form fields in the order Slack sends them."""
        ident = self.state.identity
        trigger_id = self.state.issue_trigger(user_id)
        response_url = self.issue_response_url(channel_id, user_id)
        fields = {
            "token": ident.verification_token,
            "team_id": team_id or ident.team_id,
            "team_domain": ident.team_domain,
            "channel_id": channel_id,
            "channel_name": self._channel(channel_id)["name"],
            "user_id": user_id,
            "user_name": self._user(user_id)["name"],
            "command": command,
            "text": escape_text(text) if escape else text,
            "api_app_id": ident.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        body = urlencode(fields).encode("ascii")
        return self._deliver(f"slash_command {command}", app_url, body, fields, "slash_commands")

    def message_shortcut(
        self,
        app_url: str,
        message_text: str,
        *,
        callback_id: str,
        user_id: str,
        channel_id: str,
        author_id: str,
        escape: bool,
    ) -> SlackReply:
        """A message shortcut (``message_action``) on a message someone wrote in a channel."""
        ts = self.state.next_ts()
        text = escape_text(message_text) if escape else message_text
        payload = {
            **self._common("message_action", user_id),
            "callback_id": callback_id,
            "trigger_id": self.state.issue_trigger(user_id),
            "response_url": self.issue_response_url(channel_id, user_id),
            "action_ts": self.state.next_ts(),
            "message_ts": ts,
            "channel": self._channel(channel_id),
            "message": {
                "type": "message",
                "user": author_id,
                "ts": ts,
                "team": self.state.identity.team_id,
                "text": text,
                "blocks": [_rich_text(text)],
            },
        }
        return self._deliver_payload(f"message_action {callback_id}", app_url, payload)

    def submit_view(
        self, app_url: str, view_id: str, values: dict[str, Any], *, user_id: str | None
    ) -> SlackReply:
        """A view submission of the open view, then the app's ``response_action`` applied."""
        view = self._open_view(view_id)
        _check_values(view, values)
        self.state.set_state(view_id, values)
        user = user_id or self.state.view_owner(view_id) or "U0USER"
        payload = {
            **self._common("view_submission", user),
            "trigger_id": self.state.issue_trigger(user, view_id),
            "view": self._open_view(view_id),
            "response_urls": [],
        }
        reply = self._deliver_payload(f"view_submission {view['callback_id']}", app_url, payload)
        self._apply_submission_ack(view_id, user, reply)
        return reply

    def close_view(
        self, app_url: str, view_id: str, *, user_id: str | None, is_cleared: bool
    ) -> SlackReply | None:
        """The user closes the view; ``view_closed`` is sent only if it has ``notify_on_close``."""
        view = self._open_view(view_id)
        user = user_id or self.state.view_owner(view_id) or "U0USER"
        self.state.close_view(view_id, clear=is_cleared or bool(view.get("clear_on_close")))
        if not view.get("notify_on_close"):
            return None
        payload = {**self._common("view_closed", user), "view": view, "is_cleared": is_cleared}
        return self._deliver_payload(f"view_closed {view['callback_id']}", app_url, payload)

    def click(
        self,
        app_url: str,
        *,
        action_id: str,
        value: str | None,
        message: PostedMessage | None,
        view_id: str | None,
        user_id: str | None,
        block_id: str | None,
        state_values: dict[str, Any] | None,
    ) -> SlackReply:
        """A click on a button the app rendered, in a message or in an open view."""
        if (message is None) == (view_id is None):
            raise ValueError("pass exactly one of message= or view_id=")
        if message is not None:
            user = user_id or message.user or "U0USER"
            payload = self._message_click(message, user)
            blocks = message.latest().blocks
        else:
            assert view_id is not None
            if state_values is not None:
                self.state.set_state(view_id, state_values)
            view = self._open_view(view_id)
            user = user_id or self.state.view_owner(view_id) or "U0USER"
            payload = {"container": {"type": "view", "view_id": view_id}, "view": view}
            blocks = view["blocks"]
        block, element = _find_element(blocks, action_id, block_id)
        action = {
            "action_id": action_id,
            "block_id": block["block_id"],
            "type": element.get("type", "button"),
            "text": element.get("text"),
            "value": element.get("value") if value is None else value,
            "action_ts": self.state.next_ts(),
        }
        if "style" in element:
            action["style"] = element["style"]
        payload = {
            **self._common("block_actions", user),
            "trigger_id": self.state.issue_trigger(user, view_id),
            "state": {"values": state_values or {}},
            "actions": [action],
            **payload,
        }
        return self._deliver_payload(f"block_actions {action_id}", app_url, payload)

    def _message_click(self, message: PostedMessage, user: str) -> dict[str, Any]:
        """Container, channel, message and response_url of a click in a message."""
        if message.deleted:
            raise AssertionError(f"message {message.ts} in {message.channel} was deleted")
        part: dict[str, Any] = {
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": message.ephemeral,
            },
            "channel": self._channel(message.channel),
            "response_url": self.issue_response_url(message.channel, user, message),
        }
        if not message.ephemeral:  # Slack does not echo ephemeral messages back
            part["message"] = self.api.as_json(message)
        return part

    def _open_view(self, view_id: str) -> dict[str, Any]:
        view = self.state.view(view_id)
        if view is None:
            raise AssertionError(f"view {view_id} is not open (the app never opened it, or closed)")
        return view

    # -- sending ---------------------------------------------------------------------------------

    def _deliver_payload(self, kind: str, app_url: str, payload: dict[str, Any]) -> SlackReply:
        """Send an interaction as ``payload=<json>``."""
        encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        body = urlencode({"payload": encoded}).encode("ascii")
        return self._deliver(kind, app_url, body, payload, "interactive")

    def _deliver(
        self, kind: str, app_url: str, body: bytes, sent: dict[str, Any], envelope: str
    ) -> SlackReply:
        """Sign and send (or push as an ``envelope`` over Socket Mode); record a violation when
        the answer took longer than Slack waits."""
        if app_url == SOCKET_MODE:
            reply = self._over_socket(kind, envelope, sent)
        else:
            headers = {**_HEADERS, **sign_request(self.signing_secret, body)}
            reply = self.send(app_url, body, headers)
        if reply.elapsed > ACK_DEADLINE:
            self.state.violate(
                kind, [f"answered after {reply.elapsed:.2f} s; Slack gives up after 3 s"]
            )
        return SlackReply(
            reply.status,
            reply.headers,
            reply.body,
            reply.elapsed,
            trigger_id=sent.get("trigger_id"),
            response_url=sent.get("response_url"),
            sent=sent,
        )

    def _over_socket(self, kind: str, envelope: str, sent: dict[str, Any]) -> SlackReply:
        """Push ``sent`` as a Socket Mode envelope; the ack reads as an HTTP 200 with its payload.

        No ack within the client timeout raises, as a hung HTTP answer does.
        """
        if self.socket is None:
            raise RuntimeError("Socket Mode is off: give FakeSlack an app_token")
        responding = envelope == "slash_commands" or sent.get("type") in _RESPONDING_INTERACTIONS
        ack = self.socket.send_envelope(
            envelope, sent, accepts_response_payload=responding, timeout=self.timeout
        )
        if ack is None:
            self.state.violate(kind, [f"envelope not acknowledged within {self.timeout} s"])
            raise AssertionError(f"{kind}: the app never acknowledged the envelope")
        body = "" if ack.payload is None else json.dumps(ack.payload)
        return SlackReply(200, {}, body, ack.elapsed)

    def send(self, app_url: str, body: bytes, headers: dict[str, str]) -> SlackReply:
        """POST ``body`` as is and wait for the whole answer (up to the client timeout)."""
        request = urllib.request.Request(app_url, data=body, headers=headers, method="POST")
        started = time.monotonic()
        try:
            with _OPENER.open(request, timeout=self.timeout) as answer:
                status, raw_headers, raw = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as err:
            with err:
                status, raw_headers, raw = err.code, err.headers, err.read()
        elapsed = time.monotonic() - started
        got = {name.lower(): value for name, value in raw_headers.items()}
        return SlackReply(status, got, raw.decode("utf-8", "replace"), elapsed)

    # -- applying acknowledgements ---------------------------------------------------------------

    def _apply_submission_ack(self, view_id: str, user: str, reply: SlackReply) -> None:
        """Do what Slack does with the app's answer to a view submission."""
        if reply.elapsed > ACK_DEADLINE or reply.status != 200:
            return  # Slack shows an error in the modal and leaves it as it was
        text = reply.body.strip()
        if not text:
            self.state.close_view(view_id, clear=False)
            return
        try:
            answer = json.loads(text)
        except ValueError:
            self.state.violate("view_submission", ["ack body is neither empty nor JSON"])
            return
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if action is None:
            self.state.close_view(view_id, clear=False)
        elif action == "clear":
            self.state.close_view(view_id, clear=True)
        elif action == "errors":
            self._check_errors(view_id, answer.get("errors"))
        elif action in ("update", "push"):
            self._replace_or_push(view_id, user, action, answer.get("view"))
        else:
            self.state.violate("view_submission", [f"unknown response_action {action!r}"])

    def _check_errors(self, view_id: str, errors: Any) -> None:
        """``errors`` must name input blocks of the view, or Slack cannot show them."""
        view = self._open_view(view_id)
        inputs = {b.get("block_id") for b in view["blocks"] if b.get("type") == "input"}
        if not isinstance(errors, dict) or not errors:
            self.state.violate("view_submission", ["response_action errors without errors"])
            return
        unknown = sorted(str(k) for k in errors if k not in inputs)
        if unknown:
            self.state.violate(
                "view_submission", [f"errors name blocks that are not input blocks: {unknown}"]
            )

    def _replace_or_push(self, view_id: str, user: str, action: str, view: Any) -> None:
        """``response_action`` update or push, checked against the same limits as the API."""
        problems = view_problems(view, surface="modal")
        if problems:
            self.state.violate(f"view_submission response_action={action}", problems)
            return
        assert isinstance(view, dict)
        built = self.api.build_view(view)
        if action == "update":
            self.state.replace_view(view_id, built, None)
            return
        try:
            self.state.open_view(built, user, under=view_id)
        except ApiError as err:
            self.state.violate("view_submission response_action=push", [err.error])


def _rich_text(text: str) -> dict[str, Any]:
    """The rich_text block Slack stores for a message a person typed."""
    return {
        "type": "rich_text",
        "block_id": "shortcut",
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }


def _check_values(view: dict[str, Any], values: dict[str, Any]) -> None:
    """Slack only sends state for input blocks and action ids the view really has."""
    inputs = {
        b.get("block_id"): (b.get("element") or {}).get("action_id")
        for b in view["blocks"]
        if b.get("type") == "input"
    }
    for block_id, actions in values.items():
        if block_id not in inputs:
            raise AssertionError(f"view {view['id']} has no input block {block_id!r}: {inputs}")
        if not isinstance(actions, dict) or set(actions) != {inputs[block_id]}:
            raise AssertionError(
                f"input block {block_id!r} has action_id {inputs[block_id]!r}, got {actions!r}"
            )


def _find_element(
    blocks: list[dict[str, Any]], action_id: str, block_id: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The block and element with ``action_id`` (in ``block_id`` if given)."""
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        candidates += [block[k] for k in ("accessory", "element") if isinstance(block.get(k), dict)]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    shown = [
        e.get("action_id")
        for b in blocks
        for e in (b.get("elements") or []) + [b.get("accessory") or {}]
        if isinstance(e, dict) and e.get("action_id")
    ]
    raise AssertionError(f"no element with action_id {action_id!r}; rendered: {shown}")
