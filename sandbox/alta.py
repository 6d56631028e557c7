"""Alta simulator: ``POST /v1/tags/unassign`` and ``POST /v1/tags/assign``.

Alta has no endpoint returning an entity's tags, so the store is only inspectable from Python or the
control API. Tag names match case-sensitively (Alta does not document case rules; strict is safer).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.core import Context, ProviderApi, Request, Response, active_limit, json_response
from sandbox.ratelimit import SlidingWindow, WindowResult

ENTITY_TYPES = ("emailThread", "linkedinConversation")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_ERROR_NAMES = {
    400: ("ValidationError", "Invalid request body"),
    401: ("Unauthorized", "Invalid API token"),
    403: ("Forbidden", "You do not have access to this resource"),
    404: ("NotFound", "Resource not found"),
    500: ("InternalServerError", "Internal server error"),
    502: ("BadGateway", "Bad gateway"),
    503: ("ServiceUnavailable", "Service unavailable"),
}


@dataclass
class AltaEntity:
    """An email thread or LinkedIn conversation and its tag names."""

    entity_type: str
    tags: list[str]


class AltaStore:
    """Taggable Alta entities keyed by lower-case UUID."""

    def __init__(self) -> None:
        self._entities: dict[str, AltaEntity] = {}
        self._lock = threading.Lock()

    def add_entity(self, entity_type: str, entity_id: str, tags: Iterable[str] = ()) -> None:
        """Create or replace one entity."""
        self.add_entities(entity_type, [entity_id], tags)

    def add_entities(
        self, entity_type: str, entity_ids: Iterable[str], tags: Iterable[str] = ()
    ) -> None:
        """Create or replace many entities sharing the same tags."""
        if entity_type not in ENTITY_TYPES:
            raise ValueError(f"entity_type must be one of {ENTITY_TYPES}")
        names = list(dict.fromkeys(tags))
        with self._lock:
            for entity_id in entity_ids:
                self._entities[entity_id.lower()] = AltaEntity(entity_type, list(names))

    def tags_of(self, entity_id: str) -> list[str]:
        """Current tag names of an entity; ``KeyError`` if it does not exist."""
        with self._lock:
            return list(self._entities[entity_id.lower()].tags)

    def unassign(self, entity_type: str, entity_id: str, tags: Sequence[str]) -> bool:
        """Remove tags; absent ones are ignored. False when the entity does not exist."""
        with self._lock:
            entity = self._find(entity_type, entity_id)
            if entity is None:
                return False
            entity.tags = [tag for tag in entity.tags if tag not in tags]
            return True

    def assign(self, entity_type: str, entity_id: str, tags: Sequence[str]) -> bool:
        """Add tags not already present. False when the entity does not exist."""
        with self._lock:
            entity = self._find(entity_type, entity_id)
            if entity is None:
                return False
            entity.tags.extend(tag for tag in dict.fromkeys(tags) if tag not in entity.tags)
            return True

    def _find(self, entity_type: str, entity_id: str) -> AltaEntity | None:
        entity = self._entities.get(entity_id.lower())
        # Alta answers NotFound for an id of another type or account rather than revealing it.
        return entity if entity is not None and entity.entity_type == entity_type else None

    def clear(self) -> None:
        """Remove every entity."""
        with self._lock:
            self._entities.clear()

    def dump(self) -> dict[str, Any]:
        """JSON-ready snapshot."""
        with self._lock:
            return {
                "entities": {
                    key: {"entityType": e.entity_type, "tags": list(e.tags)}
                    for key, e in self._entities.items()
                }
            }


def alta_error(status: int, error: str, message: str) -> Response:
    """Alta's ``{error, message}`` error body."""
    return json_response(status, {"error": error, "message": message})


class AltaApi(ProviderApi):
    """HTTP behaviour of Alta's public API under ``/v1``."""

    def __init__(self, store: AltaStore, ctx: Context) -> None:
        self.store = store
        self._ctx = ctx
        self.window = SlidingWindow(60.0)

    def handle(self, req: Request) -> Response:
        """Authenticate, count against the per-account limit, then route."""
        account = self._account(req)
        if account is None:
            return self.error(401, req)
        limit = active_limit(self._ctx.limits.alta_per_minute)
        headers: dict[str, str] = {}
        if limit is not None:
            result = self.window.hit(account, limit, req.arrived)
            if not result.allowed:
                return self._throttled(result, req.arrived)
            # Alta only sends RateLimit-* "when you approach or exceed" the limit.
            if result.remaining <= limit * 0.1:
                headers = _rate_headers(result, req.arrived)
        response = self._route(req)
        response.headers.update(headers)
        return response

    def error(self, status: int, req: Request) -> Response:
        """Alta's error body for ``status``; 429 carries the rate-limit headers."""
        if status == 429:
            limit = active_limit(self._ctx.limits.alta_per_minute) or 100
            now = self._ctx.clock.monotonic()
            return self._throttled(WindowResult(False, limit, 0, now + 60.0), now)
        error, message = _ERROR_NAMES.get(status, ("Error", f"HTTP {status}"))
        return alta_error(status, error, message)

    def _account(self, req: Request) -> str | None:
        creds = self._ctx.credentials
        if req.header("authorization") != f"Bearer {creds.alta_token}":
            return None
        if creds.alta_account_id is None:
            return creds.alta_token
        return (
            creds.alta_account_id if req.header("x-account-id") == creds.alta_account_id else None
        )

    def _throttled(self, result: WindowResult, now: float) -> Response:
        wait = result.seconds_to_reset(now)
        message = f"Rate limit exceeded. Please retry after {wait} seconds."
        response = alta_error(429, "TooManyRequests", message)
        response.headers.update(_rate_headers(result, now))
        response.headers["Retry-After"] = str(wait)
        return response

    def _route(self, req: Request) -> Response:
        segments = req.segments()
        if req.method == "POST" and segments in (
            ["v1", "tags", "unassign"],
            ["v1", "tags", "assign"],
        ):
            return self._tags(req, unassign=segments[2] == "unassign")
        return alta_error(404, "NotFound", f"Route {req.method} {req.path} not found")

    def _tags(self, req: Request, *, unassign: bool) -> Response:
        parsed = _parse_tag_request(req)
        if isinstance(parsed, str):
            return alta_error(400, "ValidationError", parsed)
        entity_type, entity_id, tags = parsed
        action = self.store.unassign if unassign else self.store.assign
        if not action(entity_type, entity_id, tags):
            return alta_error(404, "NotFound", f"{entity_type} {entity_id} not found")
        return Response(200)


def _rate_headers(result: WindowResult, now: float) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(result.limit),
        "RateLimit-Remaining": str(result.remaining),
        "RateLimit-Reset": str(result.seconds_to_reset(now)),
        "RateLimit-Policy": f"{result.limit};w=60",
    }


def _parse_tag_request(req: Request) -> tuple[str, str, list[str]] | str:
    """The validated ``TagRequest`` fields, or the validation message."""
    try:
        body = req.json()
    except ValueError:
        return "Invalid request body"
    if not isinstance(body, dict):
        return "Invalid request body"
    entity_id, entity_type, tags = body.get("entityId"), body.get("entityType"), body.get("tags")
    if not isinstance(entity_id, str) or not _UUID.match(entity_id):
        return "entityId must be a valid UUID"
    if entity_type not in ENTITY_TYPES:
        return "entityType must be one of: emailThread, linkedinConversation"
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        return "tags must be an array of at least 1 string"
    return str(entity_type), entity_id, [str(t) for t in tags]
