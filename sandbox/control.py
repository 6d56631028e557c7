"""The ``/_sandbox`` control API, so another process can drive a running sandbox.

Control routes need no auth, are never faulted and are not recorded in the request log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.core import Response, first_values, json_response
from sandbox.faults import Fault

if TYPE_CHECKING:
    from sandbox.server import Sandbox

Handler = Callable[["Sandbox", Any, dict[str, str]], Response]


def handle_control(sandbox: Sandbox, method: str, path: str, query: str, body: bytes) -> Response:
    """Answer a ``/_sandbox/...`` request."""
    name = path.removeprefix("/_sandbox").strip("/")
    handler = _ROUTES.get((method, name))
    if handler is None:
        return _error(404, f"no control route {method} /_sandbox/{name}")
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        return _error(400, "body must be JSON")
    try:
        return handler(sandbox, payload, first_values(query))
    except (AttributeError, KeyError, ValueError, TypeError) as exc:
        return _error(400, f"{type(exc).__name__}: {exc}")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def _ok(**extra: Any) -> Response:
    return json_response(200, {"ok": True, **extra})


def _health(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    return _ok(url=sb.url)


def _requests(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    """The log, or its part from position ``since`` on; of one ``provider`` if given."""
    provider = query.get("provider")
    logged = sb.requests_since(_since(query))
    recorded = [r.to_json() for r in logged if provider in (None, r.provider)]
    return json_response(200, recorded)


def _request_summary(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    """Counts instead of requests, with ``end`` to pass as the next ``since`` and the
    sandbox's clock ``now`` (what ``last_at`` is measured on)."""
    summary = sb.request_summary(_since(query), query.get("provider"))
    return json_response(200, {**summary.to_json(), "now": sb.clock.time()})


def _since(query: dict[str, str]) -> int:
    return int(query.get("since", "0"))


def _clear_requests(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    sb.clear_requests()
    return _ok()


def _faults(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    active = [{**f.to_json(), "remaining": left} for f, left in sb.faults]
    return json_response(200, active)


def _add_fault(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    sb.add_fault(Fault.from_json(payload))
    return _ok()


def _clear_faults(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    sb.clear_faults()
    return _ok()


def _expire_tokens(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    sb.expire_tokens()
    return _ok()


def _state(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    return json_response(200, sb.state.dump())


def _limits(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    return json_response(200, vars(sb.limits))


def _set_limits(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    sb.limits.update(payload)
    return json_response(200, vars(sb.limits))


def _token_requests(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    return json_response(200, {p: sb.token_requests(p) for p in ("zoho", "constantcontact")})


def _in_flight(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    """Zoho requests in flight now, and the most at once since the peaks were last reset."""
    apis = ("zoho", "bigin")
    return json_response(
        200, {api: {"now": sb.in_flight(api), "peak": sb.peak_in_flight(api)} for api in apis}
    )


def _reset_in_flight(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    sb.reset_in_flight_peaks()
    return _ok()


def _cc_activities(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    return json_response(200, {"items_per_second": sb.state.constantcontact.items_per_second})


def _set_cc_activities(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    """How fast Constant Contact activities progress: ``{"items_per_second": n}``; 0 or null
    completes them at once (what ``Sandbox(cc_items_per_second=...)`` sets in-process)."""
    rate = payload["items_per_second"]
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise ValueError("items_per_second must be a number or null")
    if rate is not None and rate < 0:
        raise ValueError("items_per_second must not be negative")
    sb.state.constantcontact.items_per_second = rate
    return _cc_activities(sb, payload, query)


def _env(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    return json_response(200, sb.env())


def _reset(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    sb.reset(seed_demo=bool(payload.get("seed_demo", True)))
    return _ok()


def _seed(sb: Sandbox, payload: Any, query: dict[str, str]) -> Response:
    """Seed records: ``{"provider", "ids", "tags"}`` plus ``module`` (Zoho/Bigin, optionally
    ``locked``) or ``entity_type`` (Alta)."""
    provider = payload["provider"]
    ids = [str(i) for i in payload["ids"]]
    tags = [str(t) for t in payload.get("tags", [])]
    state = sb.state
    if provider in ("zoho", "bigin"):
        store = state.zoho if provider == "zoho" else state.bigin
        store.add_records(payload["module"], ids, tags, locked=bool(payload.get("locked", False)))
    elif provider == "fernand":
        state.fernand.add_conversations([int(i) for i in ids], tags)
    elif provider == "alta":
        state.alta.add_entities(payload["entity_type"], ids, tags)
    elif provider == "constantcontact":
        state.constantcontact.add_contacts(ids, tags)
        tag_ids = {t: state.constantcontact.tag_id(t) for t in tags}
        return _ok(seeded=len(ids), tag_ids=tag_ids)
    else:
        raise ValueError(f"unknown provider {provider!r}")
    return _ok(seeded=len(ids))


_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "health"): _health,
    ("GET", "requests"): _requests,
    ("GET", "requests/summary"): _request_summary,
    ("DELETE", "requests"): _clear_requests,
    ("GET", "faults"): _faults,
    ("POST", "faults"): _add_fault,
    ("DELETE", "faults"): _clear_faults,
    ("POST", "expire-tokens"): _expire_tokens,
    ("GET", "state"): _state,
    ("POST", "seed"): _seed,
    ("GET", "limits"): _limits,
    ("POST", "limits"): _set_limits,
    ("GET", "token-requests"): _token_requests,
    ("GET", "in-flight"): _in_flight,
    ("DELETE", "in-flight"): _reset_in_flight,
    ("GET", "cc-activities"): _cc_activities,
    ("POST", "cc-activities"): _set_cc_activities,
    ("GET", "env"): _env,
    ("POST", "reset"): _reset,
}
