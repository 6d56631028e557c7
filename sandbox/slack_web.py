"""The fake Slack Web API (``POST /api/<method>``) and response_url endpoint (``/response/<id>``).

Answers the way slack.com does: HTTP 200 with ``{"ok": ...}`` JSON for every outcome except
injected faults (429 with ``Retry-After``, or a plain 5xx).  Every method takes the bot token
except ``apps.connections.open``, which takes the app-level (``xapp-``) token and nothing else;
the wrong kind of token is ``not_allowed_token_type``, as on slack.com.
"""

from __future__ import annotations

import copy
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.core import Response, first_values, json_response
from sandbox.slack_limits import MAX_MESSAGE_TEXT, message_problems, view_problems
from sandbox.slack_models import PostedMessage, SlackCall
from sandbox.slack_state import ApiError, Fault, ResponseUrl, SlackState, WebhookError, is_user_id

__all__ = ["WebApi", "parse_params"]

# Form-encoded values Slack reads as JSON documents.
_JSON_FIELDS = ("view", "blocks", "attachments", "metadata")
# A view's fields Slack fills in when the app leaves them out.
_VIEW_DEFAULTS: dict[str, Any] = {
    "private_metadata": "",
    "callback_id": "",
    "external_id": "",
    "title": None,
    "submit": None,
    "close": None,
    "clear_on_close": False,
    "notify_on_close": False,
    "submit_disabled": False,
}

Handler = Callable[[dict[str, Any]], dict[str, Any]]
# Methods that take the app-level token instead of the bot token (Slack's method docs).
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


def parse_params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """Merge query, form or JSON fields; decode form values Slack reads as JSON."""
    params: dict[str, Any] = dict(first_values(query))
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            data = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError) as err:
            raise ApiError("invalid_json") from err
        if not isinstance(data, dict):
            raise ApiError("json_not_object")
        params.update(data)
    elif media in ("", "application/x-www-form-urlencoded"):
        try:
            params.update(first_values(body.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise ApiError("invalid_charset") from err
    else:
        raise ApiError("invalid_form_data")
    for name in _JSON_FIELDS:
        params[name] = _maybe_json(params.get(name))
    return {k: v for k, v in params.items() if v is not None}


def _maybe_json(value: Any) -> Any:
    """Decode a JSON document sent as a form string; anything else is returned unchanged."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class WebApi:
    """Serves Web API methods and response_url posts against a ``SlackState``."""

    def __init__(self, state: SlackState, open_connection: Callable[[], str] | None = None) -> None:
        """``open_connection`` issues a Socket Mode URL (None: no Socket Mode endpoint)."""
        self.state = state
        self._open_connection = open_connection
        self._methods: dict[str, Handler] = {
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "conversations.open": self._conversations_open,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
        }

    # -- entry points ----------------------------------------------------------------------------

    def handle(self, method: str, query: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """Answer one Web API call and record it."""
        at = self.state.clock.monotonic()
        parse_error: ApiError | None = None
        try:
            params = parse_params(query, body, headers.get("content-type", ""))
        except ApiError as err:
            params, parse_error = {}, err
        fault = self.state.take_fault(method)
        if fault is not None:
            return self._fault(method, params, headers, at, fault)
        payload = self._answer(method, params, headers, parse_error)
        call = SlackCall(
            method, params, dict(headers), payload["ok"], payload.get("error"), at, 200, payload
        )
        self.state.record(call)
        return json_response(200, payload, {"Content-Type": "application/json; charset=utf-8"})

    def _fault(
        self, method: str, params: dict[str, Any], headers: Mapping[str, str], at: float, f: Fault
    ) -> Response:
        """An injected failure: 429 + Retry-After, plain-text 5xx, or an ``ok: false`` body."""
        self.state.record(SlackCall(method, params, dict(headers), False, f.error, at, f.status))
        if f.status >= 500:
            return Response(f.status, b"Internal Server Error", {"Content-Type": "text/plain"})
        extra = {"Retry-After": str(f.retry_after)} if f.status == 429 else {}
        ctype = {"Content-Type": "application/json; charset=utf-8"}
        return json_response(f.status, {"ok": False, "error": f.error}, {**ctype, **extra})

    def _answer(
        self,
        method: str,
        params: dict[str, Any],
        headers: Mapping[str, str],
        parse_error: ApiError | None,
    ) -> dict[str, Any]:
        """Authenticate, then run the method; every refusal becomes an ``ok: false`` body."""
        try:
            self._authenticate(method, headers)
            handler = self._methods.get(method)
            if handler is None:
                raise ApiError("unknown_method")
            if parse_error is not None:
                raise parse_error
            return handler(params)
        except ApiError as err:
            return err.payload()

    def _authenticate(self, method: str, headers: Mapping[str, str]) -> None:
        """``Authorization: Bearer <token>`` is required (token fields are not accepted): the
        app-level token for ``apps.connections.open``, the bot token for everything else."""
        auth = headers.get("authorization", "")
        if not auth:
            raise ApiError("not_authed")
        scheme, _, sent = auth.partition(" ")
        ident, token = self.state.identity, sent.strip()
        tokens = {"bot": ident.bot_token, "app": ident.app_token or ""}
        kind = next((k for k, v in tokens.items() if v and hmac.compare_digest(token, v)), None)
        if scheme.lower() != "bearer" or kind is None:
            raise ApiError("invalid_auth")
        if (kind == "app") != (method in _APP_TOKEN_METHODS):
            raise ApiError("not_allowed_token_type")

    # -- validation helpers ----------------------------------------------------------------------

    def _refuse(self, method: str, error: str, problems: list[str]) -> ApiError:
        """Record the problems as violations and build the error to raise."""
        self.state.violate(method, problems)
        return ApiError(error, problems)

    def _valid_view(self, method: str, view: Any, surface: str) -> dict[str, Any]:
        """The view if Slack would accept it, else ``invalid_arguments`` (recorded)."""
        if view is None:
            raise self._refuse(
                method, "invalid_arguments", ["[ERROR] missing required field: view"]
            )
        problems = view_problems(view, surface=surface)
        if problems:
            raise self._refuse(method, "invalid_arguments", problems)
        assert isinstance(view, dict)
        return view

    def build_view(self, sent: dict[str, Any]) -> dict[str, Any]:
        """The view as Slack stores and returns it: defaults, ids, a new hash, empty state."""
        ident = self.state.identity
        view: dict[str, Any] = {**_VIEW_DEFAULTS, **copy.deepcopy(sent)}
        view.update(
            team_id=ident.team_id,
            app_id=ident.app_id,
            app_installed_team_id=ident.team_id,
            bot_id=ident.bot_id,
            hash=self.state.new_hash(),
            state={"values": {}},
            blocks=self.with_ids(view.get("blocks") or []),
        )
        return view

    def with_ids(self, blocks: list[Any]) -> list[Any]:
        """Blocks with the ``block_id``/``action_id`` Slack generates for ones left out."""
        filled = copy.deepcopy(blocks)
        for block in filled:
            if not isinstance(block, dict):
                continue
            block.setdefault("block_id", self.state.ids.hex(5))
            for element in _elements(block):
                if element.get("type") not in (None, "plain_text", "mrkdwn", "image"):
                    element.setdefault("action_id", self.state.ids.hex(5))
        return filled

    def _content(self, method: str, params: dict[str, Any], *, edit: bool) -> tuple[str, Any]:
        """A message's text and blocks after Slack's checks (``no_text``, ``invalid_blocks``)."""
        text, blocks = params.get("text"), params.get("blocks")
        if not edit and not text and not blocks and not params.get("attachments"):
            raise ApiError("no_text")
        if blocks is not None and not isinstance(blocks, list):
            raise self._refuse(method, "invalid_blocks_format", ["[ERROR] blocks must be an array"])
        if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
            raise self._refuse(method, "msg_too_long", [f"text is {len(text)} characters"])
        problems = message_problems(blocks)
        if problems:
            raise self._refuse(method, "invalid_blocks", problems)
        return (text if isinstance(text, str) else ""), blocks

    # -- methods ---------------------------------------------------------------------------------

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if self._open_connection is None:  # pragma: no cover - an app token implies the endpoint
            raise ApiError("internal_error")
        return {"ok": True, "url": self._open_connection()}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        ident = self.state.identity
        return {
            "ok": True,
            "url": f"https://{ident.team_domain}.slack.com/",
            "team": "Untag Test",
            "user": "untag",
            "team_id": ident.team_id,
            "user_id": ident.bot_user_id,
            "bot_id": ident.bot_id,
            "is_enterprise_install": False,
        }

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = self._valid_view("views.open", params.get("view"), "modal")
        self._unique_external_id(sent, None)
        trigger = self.state.redeem_trigger(params.get("trigger_id"))
        view = self.state.open_view(self.build_view(sent), trigger.user_id, under=None)
        return {"ok": True, "view": view}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = self._valid_view("views.push", params.get("view"), "modal")
        self._unique_external_id(sent, None)
        trigger = self.state.redeem_trigger(params.get("trigger_id"))
        # A trigger from inside a modal pushes onto that modal's stack; any other opens a new one.
        under = trigger.view_id if trigger.view_id and self.state.view(trigger.view_id) else None
        view = self.state.open_view(self.build_view(sent), trigger.user_id, under=under)
        return {"ok": True, "view": view}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id = self.state.find_view_id(params.get("view_id"), params.get("external_id"))
        sent = self._valid_view("views.update", params.get("view"), "modal")
        self._unique_external_id(sent, view_id)
        view = self.state.replace_view(view_id, self.build_view(sent), params.get("hash"))
        return {"ok": True, "view": view}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = params.get("user_id")
        if not isinstance(user_id, str) or not is_user_id(user_id):
            raise self._refuse("views.publish", "invalid_arguments", ["invalid `user_id`"])
        sent = self._valid_view("views.publish", params.get("view"), "home")
        view = self.state.publish_home(user_id, self.build_view(sent), params.get("hash"))
        return {"ok": True, "view": view}

    def _unique_external_id(self, sent: dict[str, Any], view_id: str | None) -> None:
        if self.state.external_id_taken(sent.get("external_id"), view_id):
            raise ApiError("duplicate_external_id")

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        text, blocks = self._content("chat.postMessage", params, edit=False)
        message = self._store(params, channel, text, blocks, "chat.postMessage")
        return {"ok": True, "channel": channel, "ts": message.ts, "message": self.as_json(message)}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        user = params.get("user")
        if not isinstance(user, str) or not is_user_id(user):
            raise ApiError("user_not_in_channel")
        text, blocks = self._content("chat.postEphemeral", params, edit=False)
        message = self._store(params, channel, text, blocks, "chat.postEphemeral", user=user)
        return {"ok": True, "message_ts": message.ts}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._existing_message(params)
        text, blocks = self._content("chat.update", params, edit=True)
        latest = message.latest()
        # Slack keeps what an update leaves out.
        new_text = text if "text" in params else latest.text
        new_blocks = self.with_ids(blocks) if blocks is not None else latest.blocks
        self.state.edit_message(message, new_text, new_blocks)
        return {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "text": new_text,
            "message": self.as_json(message),
        }

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._existing_message(params)
        message.deleted = True
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = params.get("users")
        if isinstance(users, str):
            users = [u.strip() for u in users.split(",") if u.strip()]
        if not users:
            if isinstance(params.get("channel"), str):
                return {"ok": True, "channel": {"id": params["channel"]}}
            raise ApiError("users_list_not_supplied")
        if not isinstance(users, list) or not all(
            isinstance(u, str) and is_user_id(u) for u in users
        ):
            raise ApiError("user_not_found")
        channel, existed = self.state.open_conversation(users)
        answer: dict[str, Any] = {"ok": True, "channel": {"id": channel}}
        if existed:
            answer.update(no_op=True, already_open=True)
        return answer

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = params.get("user")
        if not isinstance(user, str) or not is_user_id(user):
            raise ApiError("user_not_found")
        return {"ok": True, "user": self.state.user(user)}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            members = self.state.usergroups.get(str(params.get("usergroup", "")))
            if members is None:
                raise ApiError("no_such_subteam")
            return {"ok": True, "users": list(members)}

    # -- message helpers -------------------------------------------------------------------------

    def _channel(self, params: dict[str, Any]) -> str:
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel:
            raise ApiError("channel_not_found")
        return self.state.resolve_channel(channel)

    def _existing_message(self, params: dict[str, Any]) -> PostedMessage:
        """The message at channel + ts; ephemeral or deleted ones are ``message_not_found``."""
        channel, ts = params.get("channel"), params.get("ts")
        if not isinstance(channel, str) or not channel:
            raise ApiError("channel_not_found")
        found = self.state.find_message(self.state.resolve_channel(channel), str(ts))
        if found is None or found.ephemeral or found.deleted:
            raise ApiError("message_not_found")
        return found

    def _store(
        self,
        params: dict[str, Any],
        channel: str,
        text: str,
        blocks: Any,
        source: str,
        *,
        user: str | None = None,
    ) -> PostedMessage:
        """Remember a new message (ephemeral when it has a single viewer)."""
        state = self.state
        message = PostedMessage(
            channel=channel,
            ts=state.next_ts(),
            text=text,
            blocks=self.with_ids(blocks or []),
            source=source,
            at=state.clock.monotonic(),
            user=user,
            ephemeral=user is not None,
            thread_ts=params.get("thread_ts"),
            params=params,
        )
        return state.add_message(message)

    def as_json(self, message: PostedMessage) -> dict[str, Any]:
        """The ``message`` object Slack returns and puts in interaction payloads."""
        ident, latest = self.state.identity, message.latest()
        body: dict[str, Any] = {
            "type": "message",
            "user": ident.bot_user_id,
            "bot_id": ident.bot_id,
            "app_id": ident.app_id,
            "team": ident.team_id,
            "text": latest.text,
            "blocks": copy.deepcopy(latest.blocks),
            "ts": message.ts,
        }
        if message.thread_ts:
            body["thread_ts"] = message.thread_ts
        return body

    # -- response_url ----------------------------------------------------------------------------

    def handle_response_url(self, token: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """A post to a response_url: ``200 ok``, or a plain-text refusal such as ``used_url``."""
        at = self.state.clock.monotonic()
        params: dict[str, Any] = {}
        try:
            entry = self.state.use_response_url(token)
            params = _webhook_body(body, headers.get("content-type", ""))
            self._respond(entry, params)
            status, text = 200, "ok"
        except WebhookError as err:
            if err.reason in ("used_url", "expired_url"):
                self.state.violate("response_url", [f"{err.reason}: {token[:8]}…"])
            status, text = err.status, err.reason
        call = SlackCall(
            "response_url",
            params,
            dict(headers),
            status == 200,
            None if status == 200 else text,
            at,
            status,
        )
        self.state.record(call)
        return Response(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def _respond(self, entry: ResponseUrl, params: dict[str, Any]) -> None:
        """Apply a response_url message: delete, replace the original, or post a new one."""
        target = entry.source or entry.last
        if params.get("delete_original"):
            if target is not None:
                target.deleted = True
            return
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks:
            raise WebhookError(400, "no_text")
        problems = message_problems(blocks, text)
        if problems:
            self.state.violate("response_url", problems)
            raise WebhookError(400, "invalid_blocks")
        text = text if isinstance(text, str) else ""
        if params.get("replace_original") and target is not None:
            self.state.edit_message(target, text, self.with_ids(blocks or []))
            return
        ephemeral = params.get("response_type", "ephemeral") != "in_channel"
        user = entry.user_id if ephemeral else None
        entry.last = self._store(params, entry.channel_id, text, blocks, "response_url", user=user)


def _webhook_body(body: bytes, content_type: str) -> dict[str, Any]:
    """A response_url body: JSON, or a form with a ``payload`` JSON field."""
    try:
        raw = body.decode("utf-8")
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            raw = first_values(raw).get("payload", "")
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise WebhookError(400, "invalid_payload") from err
    if not isinstance(data, dict):
        raise WebhookError(400, "invalid_payload")
    return data


def _elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The interactive elements of a block (accessory, actions elements, input element)."""
    found: list[Any] = []
    if block.get("type") == "actions":
        found.extend(block.get("elements") or [])
    for key in ("accessory", "element"):
        if block.get(key) is not None:
            found.append(block[key])
    return [e for e in found if isinstance(e, dict)]
