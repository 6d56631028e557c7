"""Everything the fake Slack remembers: views, messages, triggers, response URLs, calls, faults.

One re-entrant lock guards it all: the Web API is served from many threads while the test thread
sends interactions and reads snapshots.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.core import Clock, IdSource
from sandbox.slack_models import MessageVersion, PostedMessage, SlackCall, Violation

__all__ = [
    "TRIGGER_TTL",
    "ApiError",
    "Fault",
    "Identity",
    "ResponseUrl",
    "SlackState",
    "Trigger",
    "WebhookError",
    "is_user_id",
]

TRIGGER_TTL = 3.0  # seconds; https://api.slack.com/docs/triggers
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5
VIEW_STACK_LIMIT = 3
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


def is_user_id(value: str) -> bool:
    """Whether ``value`` looks like a Slack user id (``U…`` or ``W…``)."""
    return bool(_USER_ID.match(value))


class ApiError(Exception):
    """A Web API error answer: ``{"ok": false, "error": ..., "response_metadata": ...}``."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []

    def payload(self) -> dict[str, Any]:
        """The JSON body Slack sends for this error."""
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": list(self.messages)}
        return body


class WebhookError(Exception):
    """A response_url refusal: an HTTP status with a plain-text reason such as ``used_url``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """Who the fake workspace and the app are."""

    team_id: str
    team_domain: str
    app_id: str
    bot_id: str
    bot_user_id: str
    bot_token: str
    verification_token: str
    app_token: str | None = None  # the xapp- token of Socket Mode; None: Socket Mode is off


@dataclass
class Trigger:
    """A trigger_id: one use, within 3 seconds. ``view_id`` is set when issued from a modal."""

    id: str
    issued_at: float
    user_id: str
    view_id: str | None = None
    used: bool = False


@dataclass
class ResponseUrl:
    """A response_url: 5 uses within 30 minutes, bound to a channel, a user and maybe a message."""

    token: str
    issued_at: float
    channel_id: str
    user_id: str
    source: PostedMessage | None = None
    uses: int = 0
    last: PostedMessage | None = None


@dataclass(frozen=True)
class Fault:
    """A failure to serve instead of the next call of a method (see ``FakeSlack.fail_next``)."""

    status: int
    retry_after: int
    error: str


@dataclass
class _Views:
    """Open modals, their stacks (root id -> ids bottom to top), owners, and Home tabs."""

    open: dict[str, dict[str, Any]] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    stacks: dict[str, list[str]] = field(default_factory=dict)
    home: dict[str, dict[str, Any]] = field(default_factory=dict)


class SlackState:
    """The fake workspace's memory; every method is safe to call from any thread."""

    def __init__(self, identity: Identity, clock: Clock, seed: int) -> None:
        self.identity = identity
        self.clock = clock
        self.ids = IdSource(seed)
        self.lock = threading.RLock()
        self.usergroups: dict[str, list[str]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.calls: list[SlackCall] = []
        self.violations: list[Violation] = []
        self.messages: list[PostedMessage] = []
        self.views = _Views()
        self._dms: dict[str, str] = {}
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._last_ts = 0
        self._serial = 0

    # -- ids -------------------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A message ts from the clock, strictly greater than every earlier one."""
        with self.lock:
            now = int(self.clock.time() * 1_000_000)
            self._last_ts = max(now, self._last_ts + 1)
            return f"{self._last_ts // 1_000_000}.{self._last_ts % 1_000_000:06d}"

    def new_id(self, prefix: str) -> str:
        """A Slack-looking id such as ``V0A1B2C3D4E``."""
        return prefix + self.ids.hex(10).upper()

    def new_hash(self) -> str:
        """A view hash; a different one for every version of a view."""
        return f"{int(self.clock.time())}.{self.ids.hex(8)}"

    def _next_serial(self) -> int:
        with self.lock:
            self._serial += 1
            return self._serial

    # -- records ---------------------------------------------------------------------------------

    def record(self, call: SlackCall) -> None:
        """Append a call to the log."""
        with self.lock:
            self.calls.append(call)

    def violate(self, method: str, messages: list[str]) -> None:
        """Remember requests Slack would have rejected or ignored."""
        with self.lock:
            self.violations.extend(Violation(method, message) for message in messages)

    def fail_next(self, method: str, fault: Fault, count: int) -> None:
        """Serve ``fault`` instead of the next ``count`` calls of ``method``."""
        with self.lock:
            self._faults.setdefault(method, deque()).extend([fault] * count)

    def take_fault(self, method: str) -> Fault | None:
        """The fault to serve for this call of ``method``, if one is queued."""
        with self.lock:
            queue = self._faults.get(method)
            return queue.popleft() if queue else None

    # -- people and channels ---------------------------------------------------------------------

    def dm_channel(self, user_id: str) -> str:
        """The bot's DM channel with ``user_id``: the same ``D…`` id every time."""
        return self.open_conversation([user_id])[0]

    def open_conversation(self, user_ids: list[str]) -> tuple[str, bool]:
        """The DM (one user) or group DM (several) with these users, and whether it existed."""
        key = ",".join(sorted(set(user_ids)))
        with self.lock:
            existed = key in self._dms
            if not existed:
                self._dms[key] = self.new_id("D" if len(set(user_ids)) == 1 else "G")
            return self._dms[key], existed

    def resolve_channel(self, channel: str) -> str:
        """A user id names the DM with that user, as in ``chat.postMessage``."""
        return self.dm_channel(channel) if is_user_id(channel) else channel

    def user(self, user_id: str) -> dict[str, Any]:
        """The user object for ``user_id``: a configured one, or a plausible default."""
        with self.lock:
            configured = self.users.get(user_id)
        if configured is not None:
            return copy.deepcopy(configured)
        name = user_id.lower()
        return {
            "id": user_id,
            "team_id": self.identity.team_id,
            "name": name,
            "deleted": False,
            "real_name": f"User {user_id}",
            "tz": "Europe/Paris",
            "tz_label": "Central European Time",
            "tz_offset": 3600,
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "profile": {
                "real_name": f"User {user_id}",
                "display_name": name,
                "email": f"{name}@example.com",
                "team": self.identity.team_id,
            },
        }

    # -- triggers and response URLs --------------------------------------------------------------

    def issue_trigger(self, user_id: str, view_id: str | None = None) -> str:
        """A fresh trigger_id for ``user_id`` (from inside ``view_id`` when given)."""
        now = self.clock.monotonic()
        trigger_id = f"{int(self.clock.time())}.{self._next_serial()}.{self.ids.hex(32)}"
        with self.lock:
            self._triggers[trigger_id] = Trigger(trigger_id, now, user_id, view_id)
        return trigger_id

    def redeem_trigger(self, trigger_id: Any) -> Trigger:
        """Use a trigger_id once, or raise the error Slack gives for it."""
        with self.lock:
            trigger = self._triggers.get(trigger_id) if isinstance(trigger_id, str) else None
            if trigger is None:
                raise ApiError("invalid_trigger_id")
            if trigger.used:
                raise ApiError("exchanged_trigger_id")
            if self.clock.monotonic() - trigger.issued_at > TRIGGER_TTL:
                raise ApiError("expired_trigger_id")
            trigger.used = True
            return trigger

    def issue_response_url(
        self, channel_id: str, user_id: str, source: PostedMessage | None = None
    ) -> str:
        """A new response_url token (the path part after ``/response/``)."""
        token = self.ids.hex(32)
        with self.lock:
            self._response_urls[token] = ResponseUrl(
                token, self.clock.monotonic(), channel_id, user_id, source
            )
        return token

    def use_response_url(self, token: str) -> ResponseUrl:
        """Count one use of a response_url, or raise how Slack refuses it."""
        with self.lock:
            entry = self._response_urls.get(token)
            if entry is None:
                raise WebhookError(404, "no_service")
            if self.clock.monotonic() - entry.issued_at > RESPONSE_URL_TTL:
                raise WebhookError(404, "expired_url")
            if entry.uses >= RESPONSE_URL_USES:
                raise WebhookError(404, "used_url")
            entry.uses += 1
            return entry

    # -- messages --------------------------------------------------------------------------------

    def add_message(self, message: PostedMessage) -> PostedMessage:
        """Remember a posted message."""
        with self.lock:
            self.messages.append(message)
        return message

    def find_message(self, channel: str, ts: str) -> PostedMessage | None:
        """The message with this channel and ts, if any."""
        with self.lock:
            for message in reversed(self.messages):
                if message.channel == channel and message.ts == ts:
                    return message
        return None

    def edit_message(self, message: PostedMessage, text: str, blocks: list[dict[str, Any]]) -> None:
        """Record a new version of ``message``."""
        with self.lock:
            message.edits.append(MessageVersion(text, blocks, self.clock.monotonic()))

    # -- views -----------------------------------------------------------------------------------

    def view(self, view_id: str) -> dict[str, Any] | None:
        """A deep copy of an open view, or None."""
        with self.lock:
            found = self.views.open.get(view_id)
            return copy.deepcopy(found) if found is not None else None

    def view_owner(self, view_id: str) -> str | None:
        """The user who has this view open."""
        with self.lock:
            return self.views.owner.get(view_id)

    def find_view_id(self, view_id: Any, external_id: Any) -> str:
        """The open view named by id, else by external_id; ``not_found`` otherwise."""
        with self.lock:
            if isinstance(view_id, str) and view_id:
                if view_id in self.views.open:
                    return view_id
                raise ApiError("not_found")
            if isinstance(external_id, str) and external_id:
                for vid, view in self.views.open.items():
                    if view.get("external_id") == external_id:
                        return vid
                raise ApiError("not_found")
        raise ApiError("invalid_arguments", ["[ERROR] missing required field: view_id"])

    def external_id_taken(self, external_id: Any, except_view: str | None = None) -> bool:
        """Whether another open view already uses ``external_id`` (unique per team)."""
        if not isinstance(external_id, str) or not external_id:
            return False
        with self.lock:
            return any(
                v.get("external_id") == external_id and vid != except_view
                for vid, v in self.views.open.items()
            )

    def open_view(self, view: dict[str, Any], user_id: str, under: str | None) -> dict[str, Any]:
        """Store a new modal: a new stack, or pushed on the stack holding ``under``."""
        with self.lock:
            stack = self._stack_of(under) if under is not None else None
            if stack is not None and len(stack) >= VIEW_STACK_LIMIT:
                raise ApiError("push_limit_reached")
            view_id = self.new_id("V")
            view["id"] = view_id
            view["root_view_id"] = stack[0] if stack else view_id
            view["previous_view_id"] = stack[-1] if stack else None
            if stack is None:
                self.views.stacks[view_id] = [view_id]
            else:
                stack.append(view_id)
            self.views.open[view_id] = view
            self.views.owner[view_id] = user_id
            return copy.deepcopy(view)

    def replace_view(
        self, view_id: str, view: dict[str, Any], expected_hash: Any
    ) -> dict[str, Any]:
        """Replace an open view's content, keeping its id and place; checks ``hash`` if given."""
        with self.lock:
            current = self.views.open.get(view_id)
            if current is None:
                raise ApiError("not_found")
            if expected_hash not in (None, "") and expected_hash != current.get("hash"):
                raise ApiError("hash_conflict")
            for key in ("id", "root_view_id", "previous_view_id"):
                view[key] = current.get(key)
            view["state"] = _kept_state(current.get("state"), view.get("blocks"))
            self.views.open[view_id] = view
            return copy.deepcopy(view)

    def close_view(self, view_id: str, *, clear: bool) -> None:
        """Close ``view_id`` and every view above it; ``clear`` closes the whole stack."""
        with self.lock:
            stack = self._stack_of(view_id)
            if stack is None:
                return
            cut = 0 if clear else stack.index(view_id)
            for closed in stack[cut:]:
                self.views.open.pop(closed, None)
                self.views.owner.pop(closed, None)
            del stack[cut:]
            if not stack:
                self.views.stacks = {k: v for k, v in self.views.stacks.items() if v}

    def set_state(self, view_id: str, values: dict[str, Any]) -> None:
        """Remember input values typed into an open view (sent back with later payloads)."""
        with self.lock:
            view = self.views.open.get(view_id)
            if view is not None:
                view["state"] = {"values": copy.deepcopy(values)}

    def _stack_of(self, view_id: str) -> list[str] | None:
        for stack in self.views.stacks.values():
            if view_id in stack:
                return stack
        return None

    def publish_home(
        self, user_id: str, view: dict[str, Any], expected_hash: Any
    ) -> dict[str, Any]:
        """Store a user's Home tab; its id stays the same across publishes."""
        with self.lock:
            current = self.views.home.get(user_id)
            if (
                current is not None
                and expected_hash not in (None, "")
                and (expected_hash != current.get("hash"))
            ):
                raise ApiError("hash_conflict")
            view_id = current["id"] if current is not None else self.new_id("V")
            view["id"] = view_id
            view["root_view_id"] = view_id
            view["previous_view_id"] = None
            self.views.home[user_id] = view
            return copy.deepcopy(view)


def _kept_state(state: Any, blocks: Any) -> dict[str, Any]:
    """Input values survive an update for blocks that are still there (as in Slack)."""
    values = state.get("values", {}) if isinstance(state, dict) else {}
    block_ids = {b.get("block_id") for b in blocks or [] if isinstance(b, dict)}
    return {"values": {k: v for k, v in values.items() if k in block_ids}}
