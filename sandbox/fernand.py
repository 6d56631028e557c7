"""Fernand simulator: conversations, the tag catalogue, and detaching/attaching tags.

Slugs follow the rule ``lowercase, every character outside [a-z0-9] becomes "-"`` with no
collapsing, so ``"Needs Follow-up"`` has slug ``"needs-follow-up"``. Clients should read slugs from
``GET /tags``.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from sandbox.core import Context, ProviderApi, Request, Response, active_limit, json_response
from sandbox.ratelimit import SlidingWindow, WindowResult

MAX_TAG_NAME = 50
_PALETTE = ("#E5484D", "#3E63DD", "#30A46C", "#F76B15", "#8E4EC6", "#FFC53D", "#12A594", "#8D8D8D")
_ERRORS = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Invalid API key"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    429: ("too_many_requests", "Rate limit exceeded"),
    500: ("internal_error", "Internal server error"),
    503: ("service_unavailable", "Service unavailable"),
}
DEFAULT_LAST_UPDATE = "2026-01-21T14:30:00Z"


def slugify(name: str) -> str:
    """Fernand-style slug of a tag name."""
    return re.sub(r"[^a-z0-9]", "-", name.lower())


@dataclass
class FernandTag:
    """A tag in the account-wide catalogue."""

    id: int
    slug: str
    name: str
    color: str
    is_system: bool = False


@dataclass
class Conversation:
    """A conversation; ``tags`` holds tag ids, as the API returns them."""

    id: int
    contact_id: int
    subject: str
    status: str = "OPENED"
    last_update: str = DEFAULT_LAST_UPDATE
    tags: list[int] = field(default_factory=list)
    agent_id: int | None = None
    channel_id: int | None = 1
    snooze_until: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The Conversation object of the API."""
        return {
            "id": self.id,
            "contact_id": self.contact_id,
            "subject": self.subject,
            "status": self.status,
            "last_update": self.last_update,
            "tags": list(self.tags),
            "recipients": [],
            "agent_id": self.agent_id,
            "channel_id": self.channel_id,
            "snooze_until": self.snooze_until,
            "cursor": f"cur_{self.id}",
        }


class FernandStore:
    """Fernand conversations and tag catalogue."""

    def __init__(self) -> None:
        self._tags: dict[int, FernandTag] = {}
        self._conversations: dict[int, Conversation] = {}
        self._lock = threading.RLock()

    def add_tag(
        self,
        name: str,
        *,
        tag_id: int | None = None,
        color: str | None = None,
        is_system: bool = False,
    ) -> FernandTag:
        """The tag called ``name`` (matched like the API does), created if missing."""
        with self._lock:
            existing = self._match(name)
            if existing is not None:
                return existing
            new_id = tag_id if tag_id is not None else max(self._tags, default=0) + 1
            tag = FernandTag(
                new_id, slugify(name), name, color or _PALETTE[new_id % len(_PALETTE)], is_system
            )
            self._tags[new_id] = tag
            return tag

    def add_conversation(
        self,
        conversation_id: int,
        tags: Iterable[str] = (),
        *,
        subject: str = "Conversation",
        contact_id: int | None = None,
        status: str = "OPENED",
        agent_id: int | None = None,
    ) -> None:
        """Create or replace a conversation with tags by name (added to the catalogue if needed)."""
        with self._lock:
            tag_ids = list(dict.fromkeys(self.add_tag(name).id for name in tags))
            self._conversations[conversation_id] = Conversation(
                conversation_id,
                contact_id if contact_id is not None else conversation_id % 1000,
                subject,
                status=status,
                tags=tag_ids,
                agent_id=agent_id,
            )

    def add_conversations(self, conversation_ids: Iterable[int], tags: Iterable[str] = ()) -> None:
        """Create many conversations with the same tags."""
        names = list(tags)
        with self._lock:
            for conversation_id in conversation_ids:
                self.add_conversation(conversation_id, names)

    def tags_of(self, conversation_id: int) -> list[str]:
        """Tag names on a conversation; ``KeyError`` if it does not exist."""
        with self._lock:
            return [self._tags[i].name for i in self._conversations[conversation_id].tags]

    def find_tag(self, ref: str) -> FernandTag | None:
        """A tag by exact slug or case-insensitive name, as ``DELETE .../tags/{tag}`` finds it."""
        with self._lock:
            for tag in self._tags.values():
                if tag.slug == ref:
                    return tag
            folded = ref.casefold()
            return next((t for t in self._tags.values() if t.name.casefold() == folded), None)

    def detach(self, conversation_id: int, ref: str) -> dict[str, Any] | None:
        """Remove a tag by name or slug; the updated conversation, or None if it does not exist."""
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                return None
            tag = self.find_tag(ref)
            if tag is not None and tag.id in conversation.tags:
                conversation.tags.remove(tag.id)
            return conversation.to_json()

    def attach(self, conversation_id: int, name: str) -> dict[str, Any] | None:
        """Add a tag by name, creating it if needed; the Tag, or None if no such conversation."""
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                return None
            tag = self.add_tag(name)
            if tag.id not in conversation.tags:
                conversation.tags.append(tag.id)
            return self._tag_json(tag, self._counts())

    def conversation_json(self, conversation_id: int) -> dict[str, Any] | None:
        """The Conversation object, or None."""
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            return None if conversation is None else conversation.to_json()

    def tags_json(self) -> list[dict[str, Any]]:
        """Every Tag object, by id."""
        with self._lock:
            counts = self._counts()
            return [self._tag_json(tag, counts) for _, tag in sorted(self._tags.items())]

    def _match(self, name: str) -> FernandTag | None:
        folded, slug = name.casefold(), slugify(name)
        return next(
            (t for t in self._tags.values() if t.name.casefold() == folded or t.slug == slug), None
        )

    def _counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for conversation in self._conversations.values():
            for tag_id in conversation.tags:
                counts[tag_id] = counts.get(tag_id, 0) + 1
        return counts

    @staticmethod
    def _tag_json(tag: FernandTag, counts: dict[int, int]) -> dict[str, Any]:
        return {
            "id": tag.id,
            "slug": tag.slug,
            "name": tag.name,
            "color": tag.color,
            "count_conversations": counts.get(tag.id, 0),
            "is_system": tag.is_system,
        }

    def clear(self) -> None:
        """Remove every conversation and tag."""
        with self._lock:
            self._tags.clear()
            self._conversations.clear()

    def dump(self) -> dict[str, Any]:
        """JSON-ready snapshot."""
        with self._lock:
            return {
                "tags": self.tags_json(),
                "conversations": {str(k): c.to_json() for k, c in self._conversations.items()},
            }


def fernand_error(status: int, message: str | None = None) -> Response:
    """Fernand's ``{error, message}`` body (the format is undocumented; this is the assumed one)."""
    error, default = _ERRORS.get(status, ("error", f"HTTP {status}"))
    return json_response(status, {"error": error, "message": message or default})


class FernandApi(ProviderApi):
    """HTTP behaviour of Fernand's API."""

    def __init__(self, store: FernandStore, ctx: Context) -> None:
        self.store = store
        self._ctx = ctx
        self.window = SlidingWindow(60.0)

    def handle(self, req: Request) -> Response:
        """Authenticate, count against the read or write bucket, route, and attach X-RateLimit-*."""
        key = req.header("x-api-key")
        if key != self._ctx.credentials.fernand_key:
            return fernand_error(401)
        bucket, limit = self._bucket(req)
        if limit is None:
            return self._route(req)
        result = self.window.hit(f"{key}:{bucket}", limit, req.arrived)
        response = self._route(req) if result.allowed else fernand_error(429)
        response.headers.update(self._rate_headers(result, req.arrived))
        return response

    def error(self, status: int, req: Request) -> Response:
        """Fernand's error body; a 429 carries the bucket's headers as if it were exhausted."""
        response = fernand_error(status)
        if status == 429:
            bucket, limit = self._bucket(req)
            # An injected 429 still needs the headers a client sleeps on, even with limits off.
            limit = limit or (20 if bucket == "reads" else 5)
            now = self._ctx.clock.monotonic()
            exhausted = WindowResult(False, limit, 0, now + 60.0)
            response.headers.update(self._rate_headers(exhausted, now))
        return response

    def _bucket(self, req: Request) -> tuple[str, int | None]:
        limits = self._ctx.limits
        if req.method in ("GET", "HEAD"):
            return "reads", active_limit(limits.fernand_reads_per_minute)
        return "writes", active_limit(limits.fernand_writes_per_minute)

    def _rate_headers(self, result: WindowResult, now: float) -> dict[str, str]:
        reset_epoch = self._ctx.clock.time() + (result.reset_at - now)
        return {
            "X-RateLimit-Limit": str(result.limit),
            "X-RateLimit-Remaining": str(result.remaining),
            "X-RateLimit-Reset": str(math.ceil(reset_epoch)),
        }

    def _route(self, req: Request) -> Response:
        segments, method = req.segments(), req.method
        if method == "GET" and segments == ["tags"]:
            return json_response(200, self.store.tags_json())
        if len(segments) < 2 or segments[0] != "conversations":
            return fernand_error(404)
        conversation_id = _conversation_id(segments[1])
        if method == "GET" and len(segments) == 2:
            return self._conversation(conversation_id)
        if method == "POST" and segments[2:] == ["tags"]:
            return self._attach(req, conversation_id)
        if method == "DELETE" and len(segments) == 4 and segments[2] == "tags":
            return self._detach(conversation_id, unquote(segments[3]))
        return fernand_error(404)

    def _conversation(self, conversation_id: int | None) -> Response:
        found = None if conversation_id is None else self.store.conversation_json(conversation_id)
        return json_response(200, found) if found is not None else _conversation_not_found()

    def _detach(self, conversation_id: int | None, ref: str) -> Response:
        found = None if conversation_id is None else self.store.detach(conversation_id, ref)
        return json_response(200, found) if found is not None else _conversation_not_found()

    def _attach(self, req: Request, conversation_id: int | None) -> Response:
        try:
            body = req.json()
        except ValueError:
            return fernand_error(400, "Request body must be valid JSON")
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_TAG_NAME:
            return fernand_error(400, f"name must be a string of 1 to {MAX_TAG_NAME} characters")
        tag = None if conversation_id is None else self.store.attach(conversation_id, name)
        return json_response(200, tag) if tag is not None else _conversation_not_found()


def _conversation_id(segment: str) -> int | None:
    """The int64 id in a path segment, or None (Fernand answers 404 for non-integer ids)."""
    if not segment.isascii() or not segment.isdigit() or int(segment) >= 2**63:
        return None
    return int(segment)


def _conversation_not_found() -> Response:
    return fernand_error(404, "Conversation not found")
