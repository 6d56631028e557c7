"""Constant Contact v3 simulator: contacts, the tag catalogue, asynchronous tagging activities, and
the OAuth2 token endpoint.

Activities progress with time at ``items_per_second`` and apply their effects item by item (one
contact for taggings, one tag for ``contacts_tags_delete``), so a half-done activity has half its
effects. Progress is computed from the clock whenever the store is read, which keeps it exact
under a ``ManualClock``. ``contacts_tags_delete`` removes tags from the whole account, like the
real endpoint.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sandbox.core import (
    Clock,
    Context,
    IdSource,
    ProviderApi,
    Request,
    Response,
    active_limit,
    first_values,
    iso,
    json_response,
)
from sandbox.ratelimit import DailyCounter, SlidingWindow
from sandbox.tokens import TokenRegistry

MAX_SOURCE_CONTACTS = 500
MAX_SOURCE_TAGS = 50
MAX_ACTIVITY_TAGS = 50
MAX_DELETE_TAGS = 500
MAX_TAGS_PER_CONTACT = 50
MAX_PAGE = 500
DEFAULT_PAGE = 50
TERMINAL_STATES = ("completed", "cancelled", "failed", "timed_out")
SCOPE = "contact_data offline_access"
_SOURCES = ("contact_ids", "list_ids", "tag_ids", "all_active_contacts", "new_subscriber")
_ERRORS = {
    400: ("bad_request", "Bad request."),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden request."),
    404: ("not_found", "The requested resource was not found."),
    500: ("server_error", "There was a problem with our internal service."),
    503: ("service_unavailable", "Our internal service is temporarily unavailable."),
}


@dataclass
class CcTag:
    """A tag in the account catalogue."""

    tag_id: str
    name: str
    created_at: str
    updated_at: str


@dataclass
class CcContact:
    """A contact and the ids of its tags."""

    contact_id: str
    email: str
    first_name: str
    last_name: str
    created_at: str
    updated_at: str
    taggings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ForcedOutcome:
    """How the next activity should end instead of completing."""

    state: str
    reason: str
    after_items: int


@dataclass
class Activity:
    """One bulk activity: the items it will process and how far it got."""

    activity_id: str
    kind: str  # "remove", "add" or "delete"
    items: list[str]
    tag_ids: list[str]
    started: float
    created_at: str
    updated_at: str
    state: str = "initialized"
    done: int = 0
    errors: list[str] = field(default_factory=list)
    forced: ForcedOutcome | None = None
    completed_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``ActivityTagging`` object."""
        out: dict[str, Any] = {
            "activity_id": self.activity_id,
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "percent_done": self._percent(),
            "activity_errors": list(self.errors),
            "status": {}
            if self.state == "initialized"
            else {
                "items_total_count": len(self.items),
                "items_completed_count": self.done,
            },
            "_links": {"self": {"href": f"/v3/activities/{self.activity_id}"}},
        }
        if self.state != "initialized":
            out["started_at"] = self.created_at
        if self.completed_at is not None:
            out["completed_at"] = self.completed_at
        return out

    def _percent(self) -> int:
        if self.state == "initialized":
            return 1
        if self.state == "completed" or not self.items:
            return 100
        percent = self.done * 100 // len(self.items)
        return percent if self.state in TERMINAL_STATES else min(99, max(1, percent))


class CcStore:
    """Constant Contact contacts, tags and activities."""

    def __init__(self, clock: Clock, ids: IdSource, items_per_second: float | None = 200.0) -> None:
        self.items_per_second = items_per_second
        self._clock = clock
        self._ids = ids
        self._tags: dict[str, CcTag] = {}
        self._contacts: dict[str, CcContact] = {}
        self._activities: dict[str, Activity] = {}
        self._forced: ForcedOutcome | None = None
        self._lock = threading.RLock()

    def add_tag(
        self, name: str, *, tag_id: str | None = None, created_at: str | None = None
    ) -> str:
        """The id of the tag called ``name``, created if missing (names are unique)."""
        with self._lock:
            existing = self.tag_id(name)
            if existing is not None:
                return existing
            stamp = created_at or self._now()
            new_id = tag_id or self._ids.uuid4()
            self._tags[new_id] = CcTag(new_id, name, stamp, stamp)
            return new_id

    def tag_id(self, name: str) -> str | None:
        """The id of the tag with exactly this name, or None."""
        with self._lock:
            self.advance()
            return next((t.tag_id for t in self._tags.values() if t.name == name), None)

    def add_contact(
        self,
        contact_id: str,
        tag_names: Iterable[str] = (),
        *,
        email: str | None = None,
        first_name: str = "",
        last_name: str = "",
        created_at: str | None = None,
    ) -> None:
        """Create or replace a contact carrying tags by name (created if needed)."""
        with self._lock:
            stamp = created_at or self._now()
            taggings = list(dict.fromkeys(self.add_tag(n) for n in tag_names))
            self._contacts[contact_id] = CcContact(
                contact_id,
                email or f"{contact_id[:8]}@example.com",
                first_name,
                last_name,
                stamp,
                stamp,
                taggings,
            )

    def add_contacts(self, contact_ids: Iterable[str], tag_names: Iterable[str] = ()) -> None:
        """Create many contacts with the same tags."""
        names = list(tag_names)
        with self._lock:
            for contact_id in contact_ids:
                self.add_contact(contact_id, names)

    def tag_names_of(self, contact_id: str) -> list[str]:
        """Names of a contact's tags; ``KeyError`` if it does not exist."""
        with self._lock:
            return [self._tags[t].name for t in self.taggings_of(contact_id)]

    def taggings_of(self, contact_id: str) -> list[str]:
        """Tag ids of a contact; ``KeyError`` if it does not exist."""
        with self._lock:
            self.advance()
            return list(self._contacts[contact_id].taggings)

    def fail_next_activity(self, reason: str, state: str = "failed", after_items: int = 0) -> None:
        """Make the next activity end in ``state`` with ``reason`` after ``after_items`` items."""
        if state not in TERMINAL_STATES or state == "completed":
            raise ValueError("state must be failed, cancelled or timed_out")
        with self._lock:
            self._forced = ForcedOutcome(state, reason, after_items)

    def start_activity(
        self, kind: str, items: Sequence[str], tag_ids: Sequence[str]
    ) -> dict[str, Any]:
        """Queue an activity; returns its first (``initialized``) representation."""
        with self._lock:
            self.advance()
            stamp = self._now()
            activity = Activity(
                self._ids.uuid4(),
                kind,
                list(items),
                list(tag_ids),
                self._clock.monotonic(),
                stamp,
                stamp,
                forced=self._forced,
            )
            self._forced = None
            self._activities[activity.activity_id] = activity
            return activity.to_json()

    def activity_json(self, activity_id: str) -> dict[str, Any] | None:
        """The current state of an activity, or None."""
        with self._lock:
            self.advance()
            activity = self._activities.get(activity_id)
            return None if activity is None else activity.to_json()

    def advance(self) -> None:
        """Apply every activity's progress up to now, oldest activity first."""
        with self._lock:
            now = self._clock.monotonic()
            for activity in self._activities.values():
                if activity.state not in TERMINAL_STATES:
                    self._progress(activity, now)

    def _progress(self, activity: Activity, now: float) -> None:
        total = len(activity.items)
        rate = self.items_per_second
        # The epsilon keeps float sums such as 0.1 * 10 from rounding a finished item away.
        reached = total if not rate else min(total, int((now - activity.started) * rate + 1e-9))
        forced = activity.forced
        forced_at = min(forced.after_items, total) if forced else total
        stop = min(reached, forced_at)
        for item in activity.items[activity.done : stop]:
            self._apply(activity, item)
        changed = stop > activity.done
        activity.done = max(activity.done, stop)
        if forced is not None and reached >= forced_at:
            self._finish(activity, forced.state, forced.reason)
        elif activity.done == total:
            self._finish(activity, "completed", None)
        elif changed:
            activity.state, activity.updated_at = "processing", self._now()

    def _finish(self, activity: Activity, state: str, reason: str | None) -> None:
        activity.state = state
        if reason is not None:
            activity.errors.append(reason)
        activity.updated_at = activity.completed_at = self._now()

    def _apply(self, activity: Activity, item: str) -> None:
        if activity.kind == "delete":
            self._delete_tag(activity, item)
            return
        contact = self._contacts.get(item)
        if contact is None:
            activity.errors.append(f"Contact {item} not found")
            return
        if activity.kind == "remove":
            kept = [t for t in contact.taggings if t not in activity.tag_ids]
        else:
            kept = contact.taggings + [
                t for t in activity.tag_ids if t in self._tags and t not in contact.taggings
            ]
            if len(kept) > MAX_TAGS_PER_CONTACT:
                activity.errors.append(
                    f"Contact {item} cannot have more than {MAX_TAGS_PER_CONTACT} tags"
                )
                return
        if kept != contact.taggings:
            contact.taggings, contact.updated_at = kept, self._now()

    def _delete_tag(self, activity: Activity, tag_id: str) -> None:
        if self._tags.pop(tag_id, None) is None:
            activity.errors.append(f"Tag {tag_id} not found")
            return
        for contact in self._contacts.values():
            if tag_id in contact.taggings:
                contact.taggings.remove(tag_id)

    def unknown_tags(self, tag_ids: Iterable[str]) -> list[str]:
        """The given ids that are not in the catalogue."""
        with self._lock:
            self.advance()
            return [t for t in tag_ids if t not in self._tags]

    def contacts_tagged(self, tag_ids: Sequence[str]) -> list[str]:
        """Ids of contacts carrying any of the tags."""
        with self._lock:
            self.advance()
            wanted = set(tag_ids)
            return [c.contact_id for c in self._contacts.values() if wanted & set(c.taggings)]

    def contact_ids(self) -> list[str]:
        """Every contact id, in creation order."""
        with self._lock:
            return list(self._contacts)

    def contact_json(self, contact_id: str, *, taggings: bool) -> dict[str, Any] | None:
        """The contact resource, with ``taggings`` only when asked for."""
        with self._lock:
            self.advance()
            contact = self._contacts.get(contact_id)
            if contact is None:
                return None
            out: dict[str, Any] = {
                "contact_id": contact.contact_id,
                "email_address": {"address": contact.email, "permission_to_send": "implicit"},
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "create_source": "Account",
                "created_at": contact.created_at,
                "updated_at": contact.updated_at,
            }
            if taggings:
                out["taggings"] = list(contact.taggings)
            return out

    def tags_json(self, *, include_count: bool) -> list[dict[str, Any]]:
        """Every tag resource, in creation order."""
        with self._lock:
            self.advance()
            counts: dict[str, int] = {}
            for contact in self._contacts.values():
                for tag_id in contact.taggings:
                    counts[tag_id] = counts.get(tag_id, 0) + 1
            return [
                self._tag_json(t, counts if include_count else None) for t in self._tags.values()
            ]

    @staticmethod
    def _tag_json(tag: CcTag, counts: dict[str, int] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"tag_id": tag.tag_id, "name": tag.name}
        if counts is not None:
            out["contacts_count"] = counts.get(tag.tag_id, 0)
        out.update(tag_source="Contact", created_at=tag.created_at, updated_at=tag.updated_at)
        return out

    def _now(self) -> str:
        return iso(self._clock.time())

    def clear(self) -> None:
        """Remove every contact, tag and activity."""
        with self._lock:
            self._tags.clear()
            self._contacts.clear()
            self._activities.clear()
            self._forced = None

    def dump(self) -> dict[str, Any]:
        """JSON-ready snapshot."""
        with self._lock:
            return {
                "tags": self.tags_json(include_count=True),
                "contacts": {
                    cid: {"email": c.email, "tags": self.tag_names_of(cid)}
                    for cid, c in self._contacts.items()
                },
                "activities": [a.to_json() for a in self._activities.values()],
            }


def cc_errors(status: int, key: str, message: str) -> Response:
    """Constant Contact's usual error body: an array of ``{error_key, error_message}``."""
    return json_response(status, [{"error_key": key, "error_message": message}])


def _throttled() -> Response:
    return json_response(429, {"error_key": "throttled", "error_message": "Too Many Requests"})


def _quota_exceeded() -> Response:
    return json_response(429, {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"})


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"next={offset}".encode()).decode()


def _offset(cursor: str | None) -> int | None:
    """The offset in a cursor; 0 when absent, None when it is not one of ours."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    name, _, value = text.partition("=")
    return int(value) if name == "next" and value.isdigit() else None


class CcApi(ProviderApi):
    """HTTP behaviour of the v3 API under ``/v3``."""

    def __init__(self, store: CcStore, ctx: Context, tokens: TokenRegistry) -> None:
        self.store = store
        self._ctx = ctx
        self._tokens = tokens
        self.per_second = SlidingWindow(1.0)
        self.per_day = DailyCounter()
        self._limit_lock = threading.Lock()

    def handle(self, req: Request) -> Response:
        """Authenticate, apply the per-second and per-day limits, then route."""
        if self._token(req) is None:
            return self.error(401, req)
        refusal = self._rate_limit(req)
        return refusal if refusal is not None else self._route(req)

    def error(self, status: int, req: Request) -> Response:
        """Constant Contact's error body; 429 is the ``throttled`` object."""
        if status == 429:
            return _throttled()
        key, message = _ERRORS.get(status, ("error", f"HTTP {status}"))
        return cc_errors(status, key, message)

    def expired(self, req: Request) -> Response:
        """Revoke the presented token and answer 401."""
        token = self._token(req)
        if token is not None:
            self._tokens.revoke("constantcontact", token)
        return self.error(401, req)

    def _token(self, req: Request) -> str | None:
        scheme, _, token = (req.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not self._tokens.valid("constantcontact", token.strip()):
            return None
        return token.strip()

    def _rate_limit(self, req: Request) -> Response | None:
        limits = self._ctx.limits
        per_day, per_second = active_limit(limits.cc_per_day), active_limit(limits.cc_per_second)
        wall = self._ctx.clock.time()
        with self._limit_lock:
            if per_day is not None and self.per_day.exhausted(per_day, wall):
                return _quota_exceeded()
            if (
                per_second is not None
                and not self.per_second.hit("api", per_second, req.arrived).allowed
            ):
                return _throttled()
            self.per_day.add(wall)
        return None

    def _route(self, req: Request) -> Response:
        segments, method = req.segments(), req.method
        match (method, segments):
            case ("GET", ["v3", "contacts", contact_id]):
                return self._contact(req, contact_id)
            case ("GET", ["v3", "contacts"]):
                return self._contacts(req)
            case ("GET", ["v3", "contact_tags"]):
                return self._tags(req)
            case ("POST", ["v3", "activities", "contacts_taggings_remove"]):
                return self._taggings(req, "remove")
            case ("POST", ["v3", "activities", "contacts_taggings_add"]):
                return self._taggings(req, "add")
            case ("POST", ["v3", "activities", "contacts_tags_delete"]):
                return self._delete_tags(req)
            case ("GET", ["v3", "activities", activity_id]):
                found = self.store.activity_json(activity_id)
                return json_response(200, found) if found else self.error(404, req)
        return self.error(404, req)

    def _contact(self, req: Request, contact_id: str) -> Response:
        include = req.params().get("include", "").split(",")
        found = self.store.contact_json(contact_id, taggings="taggings" in include)
        if found is None:
            return cc_errors(404, "contacts.api.not_found", "Contact not found.")
        return json_response(200, found)

    def _page(self, req: Request) -> tuple[int, int] | Response:
        params = req.params()
        raw_limit = params.get("limit", str(DEFAULT_PAGE))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            return cc_errors(400, "query.limit.invalid", f"limit must be between 1 and {MAX_PAGE}.")
        offset = _offset(params.get("cursor"))
        if offset is None:
            return cc_errors(400, "query.cursor.invalid", "The cursor is invalid.")
        return offset, int(raw_limit)

    def _tags(self, req: Request) -> Response:
        page = self._page(req)
        if isinstance(page, Response):
            return page
        offset, limit = page
        include_count = req.params().get("include_count", "false").lower() == "true"
        tags = self.store.tags_json(include_count=include_count)
        body: dict[str, Any] = {"tags": tags[offset : offset + limit]}
        if offset + limit < len(tags):
            query = urlencode(
                {
                    "cursor": _cursor(offset + limit),
                    "limit": limit,
                    "include_count": str(include_count).lower(),
                }
            )
            body["_links"] = {"next": {"href": f"/v3/contact_tags?{query}"}}
        return json_response(200, body)

    def _contacts(self, req: Request) -> Response:
        page = self._page(req)
        if isinstance(page, Response):
            return page
        offset, limit = page
        params = req.params()
        tag_filter = [t for t in params.get("tags", "").split(",") if t]
        if len(tag_filter) > MAX_SOURCE_TAGS:
            return cc_errors(
                400, "query.tags.invalid", f"tags accepts at most {MAX_SOURCE_TAGS} ids."
            )
        ids = self.store.contacts_tagged(tag_filter) if tag_filter else self.store.contact_ids()
        taggings = "taggings" in params.get("include", "").split(",")
        chosen = ids[offset : offset + limit]
        contacts = [c for i in chosen if (c := self.store.contact_json(i, taggings=taggings))]
        body: dict[str, Any] = {"contacts": contacts}
        if params.get("include_count", "").lower() == "true":
            body["contacts_count"] = len(ids)
        if offset + limit < len(ids):
            kept = {k: v for k, v in params.items() if k != "cursor"}
            query = urlencode({"cursor": _cursor(offset + limit), **kept, "limit": limit})
            body["_links"] = {"next": {"href": f"/v3/contacts?{query}"}}
        return json_response(200, body)

    def _taggings(self, req: Request, kind: str) -> Response:
        body = _json_object(req)
        if isinstance(body, Response):
            return body
        tag_ids = self._known_tag_ids(body, MAX_ACTIVITY_TAGS)
        if isinstance(tag_ids, Response):
            return tag_ids
        items = self._source_contacts(body)
        if isinstance(items, Response):
            return items
        return json_response(201, self.store.start_activity(kind, items, tag_ids))

    def _known_tag_ids(self, body: dict[str, Any], limit: int) -> list[str] | Response:
        """``tag_ids`` from the body: a bounded list of tags that exist in the account."""
        tag_ids = _id_list(body.get("tag_ids"), "tag_ids", limit)
        if isinstance(tag_ids, Response):
            return tag_ids
        unknown = self.store.unknown_tags(tag_ids)
        if unknown:
            return cc_errors(
                400, "activity.tag_ids.invalid", f"Unknown tag ids: {', '.join(unknown)}"
            )
        return tag_ids

    def _source_contacts(self, body: dict[str, Any]) -> list[str] | Response:
        source = body.get("source")
        if not isinstance(source, dict):
            return cc_errors(400, "activity.source.required", "source is required.")
        chosen = [k for k in _SOURCES if source.get(k) not in (None, False)]
        if len(chosen) != 1:
            return cc_errors(
                400, "activity.source.invalid", "Exactly one source type must be specified."
            )
        kind = chosen[0]
        exclude = _exclusions(body, allowed=kind in ("all_active_contacts", "list_ids"))
        if isinstance(exclude, Response):
            return exclude
        if kind == "contact_ids":
            ids = _id_list(source[kind], "source.contact_ids", MAX_SOURCE_CONTACTS)
            return ids if isinstance(ids, Response) else list(dict.fromkeys(ids))
        if kind == "tag_ids":
            ids = _id_list(source[kind], "source.tag_ids", MAX_SOURCE_TAGS)
            return ids if isinstance(ids, Response) else self.store.contacts_tagged(ids)
        if kind == "all_active_contacts" and source[kind] in (True, "true"):
            return [c for c in self.store.contact_ids() if c not in exclude]
        return cc_errors(
            400, "activity.source.unsupported", f"The sandbox does not simulate the {kind} source."
        )

    def _delete_tags(self, req: Request) -> Response:
        body = _json_object(req)
        if isinstance(body, Response):
            return body
        tag_ids = self._known_tag_ids(body, MAX_DELETE_TAGS)
        if isinstance(tag_ids, Response):
            return tag_ids
        return json_response(
            201, self.store.start_activity("delete", list(dict.fromkeys(tag_ids)), [])
        )


def _json_object(req: Request) -> dict[str, Any] | Response:
    try:
        body = req.json()
    except ValueError:
        return cc_errors(400, "request.body.invalid", "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return cc_errors(400, "request.body.invalid", "The request body must be a JSON object.")
    return body


def _id_list(value: Any, name: str, maximum: int) -> list[str] | Response:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return cc_errors(400, f"activity.{name}.invalid", f"{name} must be an array of strings.")
    if not 1 <= len(value) <= maximum:
        return cc_errors(400, f"activity.{name}.size", f"{name} must hold 1 to {maximum} items.")
    return [str(v) for v in value]


def _exclusions(body: dict[str, Any], *, allowed: bool) -> set[str] | Response:
    exclude = body.get("exclude")
    if exclude is None:
        return set()
    ids = exclude.get("contact_ids") if isinstance(exclude, dict) else None
    if not allowed or not isinstance(ids, list):
        return cc_errors(
            400,
            "activity.exclude.invalid",
            "exclude is only allowed with all_active_contacts or list_ids.",
        )
    return {str(i) for i in ids}


class CcTokenApi(ProviderApi):
    """The authorization server's token endpoint (``POST /oauth2/default/v1/token``)."""

    def __init__(self, ctx: Context, tokens: TokenRegistry, ttl: float) -> None:
        self._ctx = ctx
        self._tokens = tokens
        self.ttl = ttl
        self._refresh = ctx.credentials.cc_refresh_token
        self._lock = threading.Lock()

    @property
    def refresh_token(self) -> str:
        """The refresh token that currently works (rotation replaces it on every grant)."""
        with self._lock:
            return self._refresh

    def handle(self, req: Request) -> Response:
        """Exchange a refresh token for an access token (and a new refresh token when rotating)."""
        if req.method != "POST" or req.path != "/oauth2/default/v1/token":
            return _oauth_error(404, "not_found", "Not found")
        creds = self._ctx.credentials
        if _basic_auth(req) != (creds.cc_client_id, creds.cc_client_secret):
            return _oauth_error(401, "invalid_client", "Client authentication failed.")
        params = first_values(req.body.decode("utf-8", "replace"))
        if params.get("grant_type") != "refresh_token":
            return _oauth_error(
                400, "unsupported_grant_type", "The authorization grant type is not supported."
            )
        with self._lock:
            if params.get("refresh_token") != self._refresh:
                return _oauth_error(
                    400, "invalid_grant", "The refresh token is invalid or expired."
                )
            if creds.cc_rotating:
                self._refresh = self._ctx.ids.hex(40)
            refresh = self._refresh
        access = self._jwt()
        self._tokens.add("constantcontact", access, self.ttl)
        self._tokens.count_grant("constantcontact")
        return json_response(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "Bearer",
                "expires_in": int(self.ttl),
                "scope": SCOPE,
            },
        )

    def _jwt(self) -> str:
        """An access token shaped like the real JWT, so clients may read ``exp`` from it."""
        now = int(self._ctx.clock.time())
        header = {"kid": "sandbox", "alg": "RS256"}
        claims = {
            "ver": 1,
            "jti": f"AT.{self._ctx.ids.hex(32)}",
            "iss": f"{self._ctx.base_url()}/cc-auth/oauth2/default",
            "aud": "https://api.cc.email/v3",
            "iat": now,
            "exp": now + int(self.ttl),
            "cid": self._ctx.credentials.cc_client_id,
            "scp": SCOPE.split(),
        }
        parts = [
            _b64(json.dumps(header).encode()),
            _b64(json.dumps(claims).encode()),
            _b64(bytes.fromhex(self._ctx.ids.hex(64))),
        ]
        return ".".join(parts)

    def error(self, status: int, req: Request) -> Response:
        """Token-endpoint errors; 429 uses the authorization server's rate-limit body."""
        if status == 429:
            return json_response(
                429,
                {
                    "errorCode": "E0000047",
                    "errorSummary": "API call exceeded rate limit due to too many requests.",
                    "errorLink": "E0000047",
                    "errorCauses": [],
                },
            )
        if status == 401:
            return _oauth_error(401, "invalid_client", "Client authentication failed.")
        if status < 500:
            return _oauth_error(status, "invalid_request", "The request is invalid.")
        return _oauth_error(status, "server_error", "The server encountered an internal error.")

    def expired(self, req: Request) -> Response:
        """A refresh token that stopped working: ``invalid_grant``."""
        return _oauth_error(400, "invalid_grant", "The refresh token is invalid or expired.")


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def _basic_auth(req: Request) -> tuple[str, str] | None:
    scheme, _, encoded = (req.header("authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
