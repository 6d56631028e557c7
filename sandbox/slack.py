"""A fake Slack for end-to-end tests: the Web API the app calls, and the Slack that calls the app.

Usage::

    from sandbox.slack import FakeSlack

    with FakeSlack(bot_token="xoxb-test-token", signing_secret="test-signing-secret") as fake:
        env["SLACK_API_URL"] = fake.api_url                  # the app's WebClient base_url
        reply = fake.slash_command(app_url, "zoho Leads 1 Prime")   # signed, as Slack sends it
        assert reply.status == 200
        fake.wait_for(lambda: fake.calls_to("views.open"))   # results arrive after the ack
        view_id = fake.calls_to("views.open")[0].response["view"]["id"]
        fake.submit_view(app_url, view_id, {"confirm": {"ok": {"type": "checkboxes", ...}}})
        assert fake.violations == []

Socket Mode: ``FakeSlack(app_token="xapp-…")`` also serves a WebSocket endpoint
(``sandbox.slack_socket``); ``apps.connections.open`` hands out its URL, and passing
``SOCKET_MODE`` where an app URL goes sends commands and interactions as envelopes over the app's
connection instead of HTTP::

    fake.socket_mode.wait_connected()                          # the app has connected
    reply = fake.slash_command(SOCKET_MODE, "zoho Leads 1 Prime")   # acked: reply.status 200
    fake.socket_mode.send_envelope("events_api", {...})        # anything else, raw

Served on one loopback port (standard library only):

* ``POST /api/<method>``: auth.test, views.open/push/update/publish, chat.postMessage,
  chat.postEphemeral, chat.update, chat.delete, conversations.open, users.info,
  usergroups.users.list, and apps.connections.open when Socket Mode is on; anything else is
  ``unknown_method``. ``Authorization: Bearer <bot token>`` is required (the app token for
  apps.connections.open; the wrong one is ``not_allowed_token_type``). Slack's rules are
  enforced: single-use 3-second trigger_ids, view ``hash``, modal title/submit/close ≤ 24
  characters, ≤ 100 blocks per view and ≤ 50 per message, private_metadata ≤ 3000, callback_id
  ≤ 255, section text ≤ 3000, button value ≤ 2000, and more (``sandbox.slack_limits``).
  Refusals are ``invalid_arguments`` for views and ``invalid_blocks`` / ``msg_too_long`` for
  messages (as slack.com answers), and each one is added to ``violations``.
* ``POST /response/<id>``: response_urls, 5 uses within 30 minutes. A 6th use answers
  **404 ``used_url``** and a late one 404 ``expired_url`` (plain text, like Slack's webhooks);
  both are violations. ``replace_original`` edits the message the URL came from (a clicked
  message, else the last message posted through the URL); ``delete_original`` deletes it.
* ``POST /_fake/invocations`` (control, for a client in another process, such as
  ``bench.ack``'s load generator): ``{"channel_id": …, "users": […]}`` issues a trigger_id and
  a response_url per user, as Slack does when a user invokes a command.

The client side (``slash_command``, ``message_shortcut``, ``submit_view``, ``close_view``,
``click``) signs with the real clock, since the app checks the timestamp against its own time;
the injectable ``clock`` governs trigger and response_url expiry, message ts and call times.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sandbox.core import Clock
from sandbox.slack_client import SOCKET_MODE, SlackClientSide
from sandbox.slack_http import SlackServer
from sandbox.slack_models import (
    MessageVersion,
    PostedMessage,
    SlackCall,
    SlackReply,
    Violation,
    sign_request,
)
from sandbox.slack_socket import SocketAck, SocketModeServer
from sandbox.slack_state import Fault, Identity, SlackState
from sandbox.slack_web import WebApi

__all__ = [
    "SOCKET_MODE",
    "FakeSlack",
    "MessageVersion",
    "PostedMessage",
    "SlackCall",
    "SlackReply",
    "SocketAck",
    "SocketModeServer",
    "Violation",
    "sign_request",
]

DEFAULT_USER = "U0USER"
DEFAULT_CHANNEL = "C0CHAN"


class FakeSlack:
    """Slack on loopback: a Web API server for the app, and a client sending it signed requests.

    ``start()`` serves in a daemon thread and returns ``self``; it is also a context manager.
    Snapshots (``calls``, ``messages``, ``views``…) are copies except the ``PostedMessage``
    objects, which keep receiving edits.
    """

    def __init__(
        self,
        bot_token: str = "xoxb-test-token",
        signing_secret: str = "test-signing-secret",
        team_id: str = "T0TEST",
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        clock: Clock | None = None,
        seed: int = 0,
        team_domain: str = "untag-test",
        app_id: str = "A0UNTAG",
        bot_id: str = "B0UNTAG",
        bot_user_id: str = "U0UNTAGBOT",
        client_timeout: float = 10.0,
        app_token: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.signing_secret = signing_secret
        identity = Identity(
            team_id=team_id,
            team_domain=team_domain,
            app_id=app_id,
            bot_id=bot_id,
            bot_user_id=bot_user_id,
            bot_token=bot_token,
            verification_token="fake-verification-token",
            app_token=app_token,
        )
        self._state = SlackState(identity, clock or Clock(), seed)
        # Socket Mode only with an app token, as in Slack: other tests get no extra port.
        self._socket = SocketModeServer(host, app_id=app_id) if app_token else None
        self._api = WebApi(self._state, self._socket.new_url if self._socket else None)
        self._client = SlackClientSide(
            self._state, self._api, signing_secret, lambda: self.url, client_timeout, self._socket
        )
        self._server: SlackServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        """Bind and serve in a daemon thread (and the Socket Mode endpoint). Returns ``self``."""
        if self._socket is not None:
            self._socket.start()
        if self._server is None:
            server = SlackServer((self.host, self.port), self._api)
            self._server = server
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"fake-slack-{server.server_port}",
                daemon=True,
            ).start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._socket is not None:
            self._socket.stop()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses and identity ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("the fake Slack is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL (``SLACK_API_URL``; methods are POSTed to ``api_url + method``)."""
        return f"{self.url}/api/"

    @property
    def socket_mode(self) -> SocketModeServer:
        """The Socket Mode endpoint (connections, envelopes, acks); needs an ``app_token``."""
        if self._socket is None:
            raise RuntimeError("Socket Mode is off: give FakeSlack an app_token")
        return self._socket

    @property
    def identity(self) -> Identity:
        """Team, app and bot ids the fake answers with."""
        return self._state.identity

    # -- what the app did ------------------------------------------------------------------------

    @property
    def calls(self) -> list[SlackCall]:
        """Every Web API call and response_url post so far, in arrival order (a snapshot)."""
        with self._state.lock:
            return list(self._state.calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        """The calls of one method (``"response_url"`` for response_url posts)."""
        return [call for call in self.calls if call.method == method]

    def clear_calls(self) -> None:
        """Forget the calls made so far (views, messages and violations stay)."""
        with self._state.lock:
            self._state.calls.clear()

    @property
    def violations(self) -> list[Violation]:
        """Requests Slack would have refused or ignored (limits, used URLs, slow acks)."""
        with self._state.lock:
            return list(self._state.violations)

    def clear_violations(self) -> None:
        """Forget recorded violations (for tests that provoke one on purpose)."""
        with self._state.lock:
            self._state.violations.clear()

    @property
    def errors(self) -> list[str]:
        """Tracebacks of crashes inside the fake itself (answered with a 500)."""
        return list(self._server.errors) if self._server is not None else []

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """Open modals by view id, latest version of each (deep copies)."""
        with self._state.lock:
            return {vid: v for vid in self._state.views.open if (v := self._state.view(vid))}

    @property
    def home_views(self) -> dict[str, dict[str, Any]]:
        """The published App Home view of each user (``views.publish``)."""
        with self._state.lock:
            return copy.deepcopy(self._state.views.home)

    @property
    def messages(self) -> list[PostedMessage]:
        """Every message posted, in order (the list is a snapshot; messages are live)."""
        with self._state.lock:
            return list(self._state.messages)

    def message(self, channel: str, ts: str) -> PostedMessage:
        """The message at ``ts`` in ``channel`` (a user id means the DM); ``KeyError`` if none."""
        found = self._state.find_message(self._state.resolve_channel(channel), ts)
        if found is None:
            raise KeyError(f"no message {ts} in {channel}")
        return found

    def dm_channel(self, user_id: str) -> str:
        """The ``D…`` channel id of the bot's DM with ``user_id`` (stable per user)."""
        return self._state.dm_channel(user_id)

    @property
    def usergroups(self) -> dict[str, list[str]]:
        """Members of each user group for ``usergroups.users.list`` (edit in place)."""
        return self._state.usergroups

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """User objects for ``users.info`` by id (edit in place); others get a default."""
        return self._state.users

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, message: str = ""
    ) -> None:
        """Poll ``predicate`` until it is truthy; ``AssertionError`` after ``timeout`` seconds.

        Results are posted after the app has acknowledged, so tests wait for them this way.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                recent = [(c.method, c.error) for c in self.calls[-10:]]
                raise AssertionError(
                    f"condition not met within {timeout} s. {message} recent calls: {recent}"
                )
            time.sleep(0.005)

    # -- fault knobs -----------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        count: int = 1,
        error: str = "ratelimited",
    ) -> None:
        """Fail the next ``count`` calls of ``method``.

        429: ``Retry-After: retry_after`` and ``{"ok": false, "error": error}``; 5xx: a plain
        text error page; any other status: ``{"ok": false, "error": error}`` with that status
        (use 200 to inject an API error such as ``not_in_channel``).
        """
        self._state.fail_next(method, Fault(status, retry_after, error), count)

    # -- Slack calling the app -------------------------------------------------------------------

    def issue_trigger_id(self, user_id: str = DEFAULT_USER, *, view_id: str | None = None) -> str:
        """A fresh trigger_id: valid for 3 s (on the fake's clock) and one use."""
        return self._state.issue_trigger(user_id, view_id)

    def issue_response_url(
        self, channel_id: str = DEFAULT_CHANNEL, user_id: str = DEFAULT_USER
    ) -> str:
        """A response_url on the fake (``<url>/response/<id>``): 5 uses within 30 minutes."""
        return self._client.issue_response_url(channel_id, user_id)

    def slash_command(
        self,
        app_url: str,
        text: str,
        *,
        user_id: str = DEFAULT_USER,
        channel_id: str = DEFAULT_CHANNEL,
        command: str = "/untag",
        team_id: str | None = None,
        escape: bool = True,
    ) -> SlackReply:
        """Invoke a slash command; ``text`` gets ``& < >`` escaped as Slack does (``escape``)."""
        return self._client.slash_command(
            app_url,
            text,
            user_id=user_id,
            channel_id=channel_id,
            command=command,
            team_id=team_id,
            escape=escape,
        )

    def message_shortcut(
        self,
        app_url: str,
        message_text: str,
        *,
        callback_id: str = "remove_tags_from_message",
        user_id: str = DEFAULT_USER,
        channel_id: str = DEFAULT_CHANNEL,
        author_id: str = "U0AUTHOR",
        escape: bool = True,
    ) -> SlackReply:
        """Run a message shortcut on a message ``author_id`` wrote in ``channel_id``."""
        return self._client.message_shortcut(
            app_url,
            message_text,
            callback_id=callback_id,
            user_id=user_id,
            channel_id=channel_id,
            author_id=author_id,
            escape=escape,
        )

    def submit_view(
        self,
        app_url: str,
        view_id: str,
        values: dict[str, dict[str, dict[str, Any]]],
        *,
        user_id: str | None = None,
    ) -> SlackReply:
        """Submit the open view with ``state.values = values`` and apply the app's answer.

        ``values`` must name input blocks and their action ids; ``user_id`` defaults to whoever
        opened the view. Empty answer: the view closes; ``response_action`` update / push /
        clear / errors are applied to ``views``.
        """
        return self._client.submit_view(app_url, view_id, values, user_id=user_id)

    def close_view(
        self,
        app_url: str,
        view_id: str,
        *,
        user_id: str | None = None,
        is_cleared: bool = False,
    ) -> SlackReply | None:
        """Close the view; returns None (nothing sent) unless it was opened with notify_on_close."""
        return self._client.close_view(app_url, view_id, user_id=user_id, is_cleared=is_cleared)

    def click(
        self,
        app_url: str,
        *,
        action_id: str,
        value: str | None = None,
        message: PostedMessage | None = None,
        view_id: str | None = None,
        user_id: str | None = None,
        block_id: str | None = None,
        state_values: dict[str, Any] | None = None,
    ) -> SlackReply:
        """Click the element ``action_id`` rendered in ``message`` or in open view ``view_id``.

        ``value`` defaults to the rendered button's value (pass one to forge it); ``user_id``
        defaults to the ephemeral message's viewer, the view's owner, or ``U0USER``.
        """
        return self._client.click(
            app_url,
            action_id=action_id,
            value=value,
            message=message,
            view_id=view_id,
            user_id=user_id,
            block_id=block_id,
            state_values=state_values,
        )

    def send_raw(self, app_url: str, body: bytes, headers: dict[str, str]) -> SlackReply:
        """POST exactly ``body`` with exactly ``headers`` (for signature-attack tests)."""
        return self._client.send(app_url, body, headers)
