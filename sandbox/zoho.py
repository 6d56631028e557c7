"""Zoho CRM v7 and Bigin v2 simulators (one record store class, two instances) and Zoho OAuth.

Differences between the two APIs that the simulator keeps:

* CRM ``remove_tags`` takes a JSON body; Bigin takes ``ids`` and ``tag_names`` query parameters and
  ignores any body. Bigin splits the raw values on literal commas *before* percent-decoding, so
  ``%2C`` is part of a name and ``+`` is a space.
* CRM action responses list remaining tags as ``{name, id, color_code}``; Bigin lists name strings
  and has no ``locked_count``.
* Tags are per module: each module has its own catalogue ``name -> id``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_plus

from sandbox.core import (
    Context,
    ProviderApi,
    Request,
    Response,
    active_limit,
    first_values,
    json_response,
)
from sandbox.ratelimit import InFlight, SlidingWindow
from sandbox.tokens import TokenRegistry

CRM_MODULES = (
    "Leads",
    "Accounts",
    "Contacts",
    "Deals",
    "Campaigns",
    "Tasks",
    "Cases",
    "Events",
    "Calls",
    "Solutions",
    "Products",
    "Vendors",
    "Price_Books",
    "Quotes",
    "Sales_Orders",
    "Purchase_Orders",
    "Invoices",
)
BIGIN_MODULES = ("Contacts", "Pipelines", "Accounts", "Products", "Tasks", "Events", "Calls")
COLOR_CODES = (
    "#57B1FD",
    "#879BFC",
    "#658BA8",
    "#FD87BD",
    "#969696",
    "#F48435",
    "#1DB9B4",
    "#E7A826",
    "#63C57E",
    "#F17574",
    "#D297EE",
    "#A8C026",
    "#B88562",
)
MAX_ACTION_IDS = 500
MAX_GET_IDS = 100
MAX_PER_PAGE = 200
MAX_TAG_NAME = 25
SCOPE = "ZohoCRM.modules.ALL ZohoBigin.modules.ALL"
_ITEM_MESSAGES = {
    "SUCCESS": "tags updated successfully",
    "INVALID_DATA": "the id given seems to be invalid",
    "RECORD_LOCKED": "cannot update a locked record",
    "LIMIT_EXCEEDED": "the record has reached the maximum number of tags",
}
_TOP_LEVEL = {
    400: ("INVALID_DATA", "invalid data"),
    401: ("INVALID_TOKEN", "invalid oauth token"),
    403: ("NO_PERMISSION", "permission denied"),
    404: ("INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one"),
    429: ("TOO_MANY_REQUESTS", "too many requests"),
    500: ("INTERNAL_ERROR", "Internal Server Error"),
}


@dataclass
class ZohoTag:
    """A tag in one module's catalogue."""

    id: str
    name: str
    color_code: str | None = None


@dataclass
class ZohoRecord:
    """A record: tag ids in the order they were added, a lock flag, and optional other fields."""

    id: str
    tags: list[str] = field(default_factory=list)
    locked: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TagRef:
    """A tag named in a request, by id or by (case-insensitive) name."""

    id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ItemResult:
    """Per-record outcome of a tag action: a Zoho code and the record's tags afterwards."""

    record_id: str
    code: str
    tags: list[ZohoTag]


class ZohoStore:
    """Records and per-module tag catalogues for one Zoho product (CRM or Bigin)."""

    def __init__(self, api: str, modules: Sequence[str], tag_id_base: int) -> None:
        self.api = api
        self.modules = tuple(modules)
        self.max_tags_per_record = 10
        self._tags: dict[str, dict[str, ZohoTag]] = {m: {} for m in self.modules}
        self._names: dict[str, dict[str, str]] = {m: {} for m in self.modules}
        self._records: dict[str, dict[str, ZohoRecord]] = {m: {} for m in self.modules}
        self._tag_id_base = tag_id_base
        self._next_tag_id = tag_id_base
        self._lock = threading.RLock()

    def add_tag(
        self, module: str, name: str, *, tag_id: str | None = None, color_code: str | None = None
    ) -> ZohoTag:
        """The module's tag called ``name`` (case-insensitively), created if missing."""
        with self._lock:
            existing = self._names[self._check(module)].get(name.casefold())
            if existing is not None:
                return self._tags[module][existing]
            if tag_id is None:
                self._next_tag_id += 1
                tag_id = str(self._next_tag_id)
            tag = ZohoTag(tag_id, name, color_code)
            self._tags[module][tag_id] = tag
            self._names[module][name.casefold()] = tag_id
            return tag

    def find_tag(self, module: str, ref: TagRef) -> ZohoTag | None:
        """A catalogue tag by id (preferred, as Zoho does) or by name."""
        with self._lock:
            catalogue = self._tags[self._check(module)]
            if ref.id is not None:
                return catalogue.get(ref.id)
            tag_id = self._names[module].get((ref.name or "").casefold())
            return None if tag_id is None else catalogue[tag_id]

    def catalogue(self, module: str) -> list[ZohoTag]:
        """Every tag of a module."""
        with self._lock:
            return list(self._tags[self._check(module)].values())

    def add_record(
        self,
        module: str,
        record_id: str,
        tags: Iterable[str] = (),
        *,
        locked: bool = False,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """Create or replace a record with tags by name (created in the catalogue if needed)."""
        self.add_records(module, [record_id], tags, locked=locked, fields=fields)

    def add_records(
        self,
        module: str,
        record_ids: Iterable[str],
        tags: Iterable[str] = (),
        *,
        locked: bool = False,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """Create many records sharing the same tags; fast enough for tens of thousands."""
        with self._lock:
            tag_ids = list(dict.fromkeys(self.add_tag(module, name).id for name in tags))
            records = self._records[module]
            for record_id in record_ids:
                records[str(record_id)] = ZohoRecord(
                    str(record_id), list(tag_ids), locked, dict(fields or {})
                )

    def has_record(self, module: str, record_id: str) -> bool:
        """Whether the record exists."""
        with self._lock:
            return record_id in self._records[self._check(module)]

    def tags_of(self, module: str, record_id: str) -> list[str]:
        """Tag names on a record, in order; ``KeyError`` if it does not exist."""
        return [tag.name for tag in self.tag_objects_of(module, record_id)]

    def tag_objects_of(self, module: str, record_id: str) -> list[ZohoTag]:
        """Tags on a record; ``KeyError`` if it does not exist."""
        with self._lock:
            record = self._records[self._check(module)][record_id]
            return [self._tags[module][tag_id] for tag_id in record.tags]

    def lock(self, module: str, record_id: str, locked: bool = True) -> None:
        """Lock a record (approval/blueprint): tag actions on it fail with RECORD_LOCKED."""
        with self._lock:
            self._records[self._check(module)][record_id].locked = locked

    def unlock(self, module: str, record_id: str) -> None:
        """Undo ``lock``."""
        self.lock(module, record_id, locked=False)

    def remove_tags(
        self, module: str, record_ids: Sequence[str], refs: Sequence[TagRef]
    ) -> list[ItemResult]:
        """Detach tags from each record; unknown tags are ignored (Zoho reports success)."""
        with self._lock:
            doomed = {tag.id for ref in refs if (tag := self.find_tag(module, ref)) is not None}
            return [
                self._apply(module, rid, lambda tags: [t for t in tags if t not in doomed])
                for rid in record_ids
            ]

    def add_tags(
        self, module: str, record_ids: Sequence[str], tag_ids: Sequence[str], *, over_write: bool
    ) -> list[ItemResult]:
        """Attach existing catalogue tags; ``over_write`` replaces the record's tags."""
        wanted = list(dict.fromkeys(tag_ids))

        def merge(tags: list[str]) -> list[str]:
            return wanted if over_write else tags + [t for t in wanted if t not in tags]

        with self._lock:
            return [self._apply(module, rid, merge) for rid in record_ids]

    def _apply(
        self, module: str, record_id: str, change: Callable[[list[str]], list[str]]
    ) -> ItemResult:
        record = self._records[module].get(record_id)
        if record is None:
            return ItemResult(record_id, "INVALID_DATA", [])
        if record.locked:
            return ItemResult(record_id, "RECORD_LOCKED", [])
        after = change(record.tags)
        if len(after) > max(self.max_tags_per_record, len(record.tags)):
            return ItemResult(record_id, "LIMIT_EXCEEDED", [])
        record.tags = after
        return ItemResult(record_id, "SUCCESS", [self._tags[module][t] for t in after])

    def record_json(
        self, module: str, record_id: str, fields: Sequence[str] | None, *, tag_color: bool
    ) -> dict[str, Any] | None:
        """The API's record object with ``id``, ``Tag`` and the requested (or all) fields."""
        with self._lock:
            record = self._records[self._check(module)].get(record_id)
            if record is None:
                return None
            names = [*record.fields, "Tag"] if fields is None else fields
            out: dict[str, Any] = {"id": record.id}
            for name in names:
                if name == "Tag":
                    out["Tag"] = [_tag_json(self._tags[module][t], tag_color) for t in record.tags]
                elif name != "id":
                    out[name] = record.fields.get(name)
            return out

    def record_ids(self, module: str) -> list[str]:
        """Ids of a module's records, in creation order."""
        with self._lock:
            return list(self._records[self._check(module)])

    def _check(self, module: str) -> str:
        if module not in self._records:
            raise KeyError(f"{module} is not a {self.api} module")
        return module

    def clear(self) -> None:
        """Remove every record and tag."""
        with self._lock:
            for module in self.modules:
                self._tags[module].clear()
                self._names[module].clear()
                self._records[module].clear()
            self._next_tag_id = self._tag_id_base

    def dump(self) -> dict[str, Any]:
        """JSON-ready snapshot of non-empty modules."""
        with self._lock:
            return {
                module: {
                    "tags": [_tag_json(t, True) for t in self._tags[module].values()],
                    "records": {
                        r.id: {"tags": self.tags_of(module, r.id), "locked": r.locked, **r.fields}
                        for r in self._records[module].values()
                    },
                }
                for module in self.modules
                if self._records[module] or self._tags[module]
            }


def _tag_json(tag: ZohoTag, with_color: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tag.name, "id": tag.id}
    if with_color:
        out["color_code"] = tag.color_code
    return out


def zoho_error(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """Zoho's top-level ``{code, details, message, status}`` error."""
    body = {"code": code, "details": details or {}, "message": message, "status": "error"}
    return json_response(status, body)


def _missing(param: str) -> Response:
    return zoho_error(
        400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": param}
    )


def _invalid(details: dict[str, Any], message: str = "invalid data") -> Response:
    return zoho_error(400, "INVALID_DATA", message, details)


def _too_many(limit: int, param: str) -> Response:
    return zoho_error(
        400,
        "LIMIT_EXCEEDED",
        f"you can give a maximum of {limit} {param} per request",
        {"maximum_length": limit, "api_name": param},
    )


@dataclass(frozen=True)
class _Route:
    kind: str  # "list", "get", "bulk" or "single"
    module: str
    record_id: str | None = None
    action: str | None = None

    @property
    def method(self) -> str:
        return "GET" if self.kind in ("list", "get") else "POST"


def _parse_route(rest: list[str]) -> _Route | None:
    module = unquote(rest[0]) if rest else ""
    match rest:
        case [_]:
            return _Route("list", module)
        case [_, record_id]:
            return _Route("get", module, unquote(record_id))
        case [_, "actions", ("remove_tags" | "add_tags") as action]:
            return _Route("bulk", module, None, action)
        case [_, record_id, "actions", ("remove_tags" | "add_tags") as action]:
            return _Route("single", module, unquote(record_id), action)
    return None


class ZohoApi(ProviderApi):
    """HTTP behaviour of Zoho CRM (``/crm/v7``) or Bigin (``/bigin/v2``) over one store."""

    def __init__(
        self,
        store: ZohoStore,
        ctx: Context,
        tokens: TokenRegistry,
        in_flight: InFlight,
        *,
        bigin: bool,
    ) -> None:
        self.store = store
        self.bigin = bigin
        self._ctx = ctx
        self._tokens = tokens
        self._in_flight = in_flight
        self._root = ["bigin", "v2"] if bigin else ["crm", "v7"]

    @contextmanager
    def admit(self, req: Request) -> Iterator[Response | None]:
        """Refuse with TOO_MANY_REQUESTS when ``zoho_concurrency`` calls are already in flight."""
        limit = active_limit(self._ctx.limits.zoho_concurrency)
        with self._in_flight.enter(self.store.api, limit) as admitted:
            yield None if admitted else self.error(429, req)

    def handle(self, req: Request) -> Response:
        """Authenticate and route."""
        if self._token(req) is None:
            return self.error(401, req)
        segments = req.segments()
        if segments[:2] != self._root:
            return self.error(404, req)
        rest = segments[2:]
        if rest == ["settings", "tags"]:
            return self._settings_tags(req)
        route = _parse_route(rest)
        if route is None:
            return self.error(404, req)
        if req.method != route.method:
            return zoho_error(
                400, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one"
            )
        if route.module not in self.store.modules:
            return _invalid_module()
        return self._dispatch(req, route)

    def error(self, status: int, req: Request) -> Response:
        """Zoho's error body for ``status``; 429 is TOO_MANY_REQUESTS with ``retry_after``."""
        code, message = _TOP_LEVEL.get(status, ("INTERNAL_ERROR", f"HTTP {status}"))
        details: dict[str, Any] = {"retry_after": 60} if status == 429 else {}
        return zoho_error(status, code, message, details)

    def expired(self, req: Request) -> Response:
        """Revoke the presented token and answer INVALID_TOKEN."""
        token = self._token(req)
        if token is not None:
            self._tokens.revoke("zoho", token)
        return self.error(401, req)

    def _token(self, req: Request) -> str | None:
        scheme, _, token = (req.header("authorization") or "").partition(" ")
        if scheme != "Zoho-oauthtoken" or not self._tokens.valid("zoho", token.strip()):
            return None
        return token.strip()

    def _dispatch(self, req: Request, route: _Route) -> Response:
        if route.kind == "list":
            return self._list(req, route.module)
        if route.kind == "get":
            return self._get(route.module, route.record_id or "")
        if route.action == "add_tags":
            return self._add(req, route)
        if self.bigin:
            return self._bigin_remove(req, route)
        return self._crm_remove(req, route)

    def _list(self, req: Request, module: str) -> Response:
        params = req.params()
        fields = [f for f in params.get("fields", "").split(",") if f]
        if not fields:
            return _missing("fields")
        if "ids" in params:
            ids = [i for i in params["ids"].split(",") if i]
            if len(ids) > MAX_GET_IDS:
                return _too_many(MAX_GET_IDS, "ids")
            return self._records_page(module, ids, fields, page=1, more=False)
        try:
            page = max(1, int(params.get("page", "1")))
            per_page = min(MAX_PER_PAGE, max(1, int(params.get("per_page", str(MAX_PER_PAGE)))))
        except ValueError:
            return _invalid({"api_name": "page"})
        all_ids = self.store.record_ids(module)
        chunk = all_ids[(page - 1) * per_page : page * per_page]
        return self._records_page(
            module, chunk, fields, page=page, more=page * per_page < len(all_ids)
        )

    def _records_page(
        self, module: str, ids: list[str], fields: list[str], *, page: int, more: bool
    ) -> Response:
        color = not self.bigin
        found = [
            r for i in ids if (r := self.store.record_json(module, i, fields, tag_color=color))
        ]
        if not found:
            return Response(204)
        info = {"per_page": len(found), "count": len(found), "page": page, "more_records": more}
        return json_response(200, {"data": found, "info": info})

    def _get(self, module: str, record_id: str) -> Response:
        record = self.store.record_json(module, record_id, None, tag_color=not self.bigin)
        return Response(204) if record is None else json_response(200, {"data": [record]})

    def _settings_tags(self, req: Request) -> Response:
        if req.method != "GET":
            return zoho_error(
                400, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one"
            )
        module = req.params().get("module")
        if not module:
            return _missing("module")
        if module not in self.store.modules:
            return _invalid_module()
        tags = [_tag_json(t, True) for t in self.store.catalogue(module)]
        return json_response(
            200, {"tags": tags, "info": {"count": len(tags), "allowed_count": 200}}
        )

    def _crm_remove(self, req: Request, route: _Route) -> Response:
        parsed = _tagging_request(req, route)
        if isinstance(parsed, Response):
            return parsed
        _, refs, ids = parsed
        results = self.store.remove_tags(route.module, ids, refs)
        return self._results(results, bulk=route.record_id is None)

    def _bigin_remove(self, req: Request, route: _Route) -> Response:
        raw = req.raw_params()
        names = _split_raw(raw.get("tag_names", ""))
        if not names:
            return _missing("tag_names")
        ids = [route.record_id] if route.record_id is not None else _split_raw(raw.get("ids", ""))
        if not ids:
            return _missing("ids")
        if len(ids) > MAX_ACTION_IDS:
            return _too_many(MAX_ACTION_IDS, "ids")
        results = self.store.remove_tags(route.module, ids, [TagRef(name=n) for n in names])
        return self._results(results, bulk=False)

    def _add(self, req: Request, route: _Route) -> Response:
        parsed = _tagging_request(req, route)
        if isinstance(parsed, Response):
            return parsed
        body, refs, ids = parsed
        tag_ids = self._resolve_for_add(route.module, refs, body)
        if isinstance(tag_ids, Response):
            return tag_ids
        over_write = body.get("over_write") is True or req.params().get("over_write") == "true"
        results = self.store.add_tags(route.module, ids, tag_ids, over_write=over_write)
        return self._results(results, bulk=route.record_id is None and not self.bigin)

    def _resolve_for_add(
        self, module: str, refs: list[TagRef], body: dict[str, Any]
    ) -> list[str] | Response:
        """Catalogue ids for the requested tags, creating unknown names as Zoho does."""
        items = body["tags"]
        ids: list[str] = []
        for index, ref in enumerate(refs):
            path = f"$.tags[{index}]"
            if ref.id is not None:
                tag = self.store.find_tag(module, ref)
                if tag is None:
                    return _invalid({"api_name": "id", "json_path": f"{path}.id"})
                ids.append(tag.id)
                continue
            name = ref.name or ""
            if len(name) > MAX_TAG_NAME:
                return _invalid(
                    {
                        "api_name": "name",
                        "json_path": f"{path}.name",
                        "maximum_length": MAX_TAG_NAME,
                    }
                )
            color = items[index].get("color_code")
            if color is not None and color not in COLOR_CODES:
                return _invalid({"api_name": "color_code", "json_path": f"{path}.color_code"})
            ids.append(self.store.add_tag(module, name, color_code=color).id)
        return ids

    def _results(self, results: list[ItemResult], *, bulk: bool) -> Response:
        data = [self._item(r) for r in results]
        ok = sum(1 for r in results if r.code == "SUCCESS")
        status = 200 if ok == len(results) else 400 if ok == 0 else 207
        body: dict[str, Any] = {"data": data}
        if bulk:
            body["locked_count"] = str(sum(1 for r in results if r.code == "RECORD_LOCKED"))
        return json_response(status, body)

    def _item(self, result: ItemResult) -> dict[str, Any]:
        details: dict[str, Any] = {"id": result.record_id}
        if result.code == "SUCCESS":
            details["tags"] = [t.name if self.bigin else _tag_json(t, True) for t in result.tags]
        elif result.code == "LIMIT_EXCEEDED":
            details["limit"] = self.store.max_tags_per_record
        status = "success" if result.code == "SUCCESS" else "error"
        return {
            "code": result.code,
            "details": details,
            "message": _ITEM_MESSAGES[result.code],
            "status": status,
        }


def _invalid_module() -> Response:
    return zoho_error(400, "INVALID_MODULE", "the module name given seems to be invalid")


def _json_object(req: Request) -> dict[str, Any] | Response:
    try:
        body = req.json()
    except ValueError:
        return _invalid({}, "the input JSON is invalid")
    return body if isinstance(body, dict) else _invalid({}, "the input JSON is invalid")


def _tag_refs(tags: Any) -> list[TagRef] | Response:
    if not isinstance(tags, list) or not tags:
        return _missing("tags")
    refs: list[TagRef] = []
    for index, item in enumerate(tags):
        tag_id = item.get("id") if isinstance(item, dict) else None
        name = item.get("name") if isinstance(item, dict) else None
        usable = isinstance(tag_id, str) or (tag_id is None and isinstance(name, str) and name)
        if not usable:
            return _invalid({"api_name": "tags", "json_path": f"$.tags[{index}]"})
        refs.append(TagRef(tag_id, name if isinstance(name, str) else None))
    return refs


def _body_ids(body: dict[str, Any]) -> list[str] | Response:
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids:
        return _missing("ids")
    if len(ids) > MAX_ACTION_IDS:
        return _too_many(MAX_ACTION_IDS, "ids")
    for index, value in enumerate(ids):
        # Record ids exceed 2**53: a number here means the client already lost precision.
        if not isinstance(value, str):
            return _invalid(
                {"api_name": "ids", "json_path": f"$.ids[{index}]", "expected_data_type": "string"}
            )
    return [str(v) for v in ids]


def _split_raw(raw: str) -> list[str]:
    """Split on literal commas first, then decode each piece form-style."""
    return [piece for part in raw.split(",") if (piece := unquote_plus(part))]


class ZohoAccountsApi(ProviderApi):
    """Zoho's OAuth token endpoint (``POST /oauth/v2/token``, refresh-token grant only)."""

    def __init__(self, ctx: Context, tokens: TokenRegistry, ttl: float) -> None:
        self._ctx = ctx
        self._tokens = tokens
        self.ttl = ttl
        self.window = SlidingWindow(600.0)

    def handle(self, req: Request) -> Response:
        """Issue an access token, or answer Zoho's error (with HTTP 200, as Zoho does)."""
        if req.method != "POST" or req.path != "/oauth/v2/token":
            return json_response(
                404, {"error": "invalid_request", "error_description": "not found"}
            )
        params = {**req.params(), **first_values(req.body.decode("utf-8", "replace"))}
        creds = self._ctx.credentials
        if params.get("grant_type") != "refresh_token":
            return json_response(200, {"error": "unsupported_grant_type"})
        if (params.get("client_id"), params.get("client_secret")) != (
            creds.zoho_client_id,
            creds.zoho_client_secret,
        ):
            return json_response(200, {"error": "invalid_client"})
        refresh = params.get("refresh_token", "")
        if refresh != creds.zoho_refresh_token:
            return json_response(200, {"error": "invalid_code"})
        limit = active_limit(self._ctx.limits.zoho_tokens_per_10_min)
        if limit is not None and not self.window.hit(refresh, limit, req.arrived).allowed:
            return _access_denied()
        return self._grant()

    def _grant(self) -> Response:
        token = f"1000.{self._ctx.ids.hex(32)}.{self._ctx.ids.hex(32)}"
        self._tokens.add("zoho", token, self.ttl)
        self._tokens.count_grant("zoho")
        return json_response(
            200,
            {
                "access_token": token,
                "expires_in": int(self.ttl),
                "api_domain": self._ctx.base_url() + "/zoho",
                "token_type": "Bearer",
                "scope": SCOPE,
            },
        )

    def error(self, status: int, req: Request) -> Response:
        """Token-endpoint errors; throttling is Zoho's 400 "Access Denied"."""
        if status in (400, 429):
            return _access_denied()
        return json_response(
            status, {"error": "server_error" if status >= 500 else "invalid_client"}
        )

    def expired(self, req: Request) -> Response:
        """A refresh token that stopped working looks like ``invalid_code``."""
        return json_response(200, {"error": "invalid_code"})


def _access_denied() -> Response:
    return json_response(
        400,
        {
            "error": "Access Denied",
            "error_description": "You have made too many requests continuously. "
            "Please try again after some time.",
            "status": "failure",
        },
    )


def _tagging_request(
    req: Request, route: _Route
) -> tuple[dict[str, Any], list[TagRef], list[str]] | Response:
    """The JSON body, tags and ids of a CRM remove or any add: the shape both share."""
    body = _json_object(req)
    if isinstance(body, Response):
        return body
    refs = _tag_refs(body.get("tags"))
    if isinstance(refs, Response):
        return refs
    ids = _body_ids(body) if route.record_id is None else [route.record_id]
    if isinstance(ids, Response):
        return ids
    return body, refs, ids
