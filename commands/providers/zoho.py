"""Zoho CRM v7: take tags off records of one module, up to 500 records per call.

Bigin v2 (:mod:`commands.providers.bigin`) is the same API family and reuses
:class:`ZohoProvider`, overriding only where Bigin differs (its base path, its
config section and the shape of its remove request).

Facts this module relies on (see ``docs/providers.md`` §3, §4 and §6):

- every call goes to the ``api_domain`` the token grant names, with
  ``Authorization: Zoho-oauthtoken <token>``;
- record ids are 18-digit strings, above 2**53: they stay strings throughout;
- a bulk answer carries one ``data[i]`` per record, whatever the HTTP status
  (200, 207 and 400 all may), so every item is read, never the status alone;
- a 429 ``TOO_MANY_REQUESTS`` is about concurrency and clears when one of our
  requests finishes: Zoho sends no ``Retry-After``, so we back off and retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, Self
from urllib.parse import quote

from commands.actions import Action, ProviderName
from commands.config import ProvidersConfig, RateLimits, ZohoConfig
from commands.errors import (
    ProviderError,
    ProviderStatusError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from commands.http import ApiResponse, HttpClient, ProviderSession, concurrency_cap
from commands.oauth import zoho_tokens
from commands.providers.base import (
    BatchRunner,
    Provider,
    Wiring,
    chunked,
    preview_from_current,
)
from commands.results import Outcome, Preview, Progress, RecordPreview, RecordResult
from storage import TokenStore

__all__ = [
    "ZohoProvider",
    "build",
    "comma_query",
    "error_code",
    "tag_names",
    "zoho_classifier",
    "zoho_session",
]

log = logging.getLogger(__name__)

Item = Mapping[str, Any]
"""One ``data[i]`` entry of a Zoho answer."""

CONCURRENCY_CODE = "TOO_MANY_REQUESTS"


def build(wiring: Wiring) -> Provider | None:
    """Zoho CRM, or ``None`` when ``wiring.config.zoho`` is not configured."""
    return ZohoProvider.from_wiring(wiring)


class ZohoProvider:
    """Zoho CRM v7 tag removal; subclassed for Bigin.

    ``preview`` reads the ``Tag`` field of up to 100 records per call;
    ``remove`` and ``undo`` send up to 500 ids per call and read every
    record's own result.
    """

    name: ClassVar[ProviderName] = ProviderName.ZOHO
    batch_size: ClassVar[int] = 500
    read_batch_size: ClassVar[int] = 100  # GET /{module}?ids= takes at most 100 ids
    api_path: ClassVar[str] = "/crm/v7"

    def __init__(self, session: ProviderSession) -> None:
        self.session = session

    # -- construction -----------------------------------------------------

    @classmethod
    def from_wiring(cls, wiring: Wiring) -> Self | None:
        """Build from the wiring, or ``None`` when this provider's config section is absent."""
        config = cls.config_of(wiring.config)
        if config is None:
            return None
        session = zoho_session(
            wiring.http,
            config,
            wiring.tokens,
            provider=cls.name,
            api_path=cls.api_path,
            concurrency=cls.concurrency_of(wiring.config.limits),
        )
        return cls(session)

    @staticmethod
    def config_of(config: ProvidersConfig) -> ZohoConfig | None:
        """This provider's config section."""
        return config.zoho

    @staticmethod
    def concurrency_of(limits: RateLimits) -> int:
        """How many requests this provider may have in flight at once."""
        return limits.zoho_concurrency

    # -- the Provider protocol -------------------------------------------

    def preview(self, action: Action) -> Preview:
        """Read each target's ``Tag`` field; a record Zoho does not return is not found."""
        module = module_of(action)
        current: dict[str, tuple[str, ...]] = {}
        # Zoho record ids are all digits; anything else cannot exist, and one
        # malformed id would make Zoho refuse the whole read of its batch.
        readable = [t for t in unique(action.targets) if is_record_id(t)]
        for ids in chunked(readable, self.read_batch_size):
            current.update(self._read_tags(module, ids))
        records = tuple(
            preview_from_current(t, action.tags, current.get(t)) for t in action.targets
        )
        return Preview(action=action, records=records, notes=self.notes_for(action))

    def remove(self, action: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        """Remove the requested tags from every record the preview shows carrying one of them."""
        module = module_of(action)
        targets = unique(action.targets)
        runner = BatchRunner(len(targets), progress)
        results: dict[str, RecordResult] = {}
        to_send: list[RecordPreview] = []
        previews: dict[str, RecordPreview] = {}
        for shown in preview.records:
            previews.setdefault(shown.target, shown)
        for target in targets:
            record = previews.get(target)
            settled = settle_without_call(target, record)
            if settled is not None:
                results[target] = settled
            elif record is not None:
                to_send.append(record)
        runner.advance(len(results))
        refusal = self.refusal_for(action.tags)
        if refusal is not None and to_send:
            results.update((r.target, refused(r.target, refusal)) for r in to_send)
            runner.advance(len(to_send))
            to_send = []
        tags = unique(action.tags)
        for batch in chunked(to_send, self.batch_size):
            ids = [r.target for r in batch]
            call = partial(self._remove_batch, module, tags, batch)
            results.update((r.target, r) for r in runner.run(ids, call))
        return [results[t] for t in action.targets]

    def undo(
        self, action: Action, removed: Sequence[RecordResult], progress: Progress
    ) -> list[RecordResult]:
        """Re-add exactly the tags each record lost, one call per identical tag set and 500 ids."""
        module = module_of(action)
        runner = BatchRunner(len(unique(r.target for r in removed)), progress)
        results: dict[str, RecordResult] = {}
        groups: dict[tuple[str, ...], list[str]] = {}
        seen: set[str] = set()
        for result in removed:
            if result.target in seen:
                continue
            seen.add(result.target)
            if result.outcome is Outcome.REMOVED and result.removed:
                groups.setdefault(result.removed, []).append(result.target)
            else:
                results[result.target] = RecordResult(
                    target=result.target, outcome=Outcome.SKIPPED, message="nothing to restore"
                )
        runner.advance(len(results))
        for tags, group in groups.items():
            for ids in chunked(group, self.batch_size):
                call = partial(self._restore_batch, module, tags, ids)
                results.update((r.target, r) for r in runner.run(ids, call))
        return [results[r.target] for r in removed]

    # -- what Bigin overrides --------------------------------------------

    def send_remove(self, module: str, ids: Sequence[str], tags: Sequence[str]) -> ApiResponse:
        """CRM: ``POST /{module}/actions/remove_tags`` with the tags and ids in a JSON body."""
        body = {"tags": tag_objects(tags), "ids": list(ids)}
        return self.session.post(f"{module_path(module)}/actions/remove_tags", json=body)

    def refusal_for(self, tags: Sequence[str]) -> str | None:
        """Why these tag names cannot be sent at all (``None``: they can)."""
        return None

    def notes_for(self, action: Action) -> tuple[str, ...]:
        """Warnings to show with the preview."""
        refusal = self.refusal_for(action.tags)
        return (refusal,) if refusal else ()

    # -- calls -----------------------------------------------------------

    def _read_tags(self, module: str, ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        # Built by hand so the commas separating ids stay literal (params= would send %2C).
        response = self.session.get(f"{module_path(module)}?ids={comma_query(ids)}&fields=Tag")
        if response.status_code == 204:  # none of the ids exists
            return {}
        body = response.json()
        self.session.raise_for_status(response, code=error_code(body))
        found: dict[str, tuple[str, ...]] = {}
        for item in data_items(body) or []:
            record_id = item.get("id")
            if record_id is not None:
                found[str(record_id)] = tag_names(item.get("Tag"))
        return found

    def _remove_batch(
        self, module: str, tags: Sequence[str], batch: Sequence[RecordPreview]
    ) -> list[RecordResult]:
        ids = [r.target for r in batch]
        items = self._items_or_raise(self.send_remove(module, ids, tags))
        return [
            removal_result(record, item)
            for record, item in zip(batch, match_items(ids, items), strict=True)
        ]

    def _restore_batch(
        self, module: str, tags: tuple[str, ...], ids: Sequence[str]
    ) -> list[RecordResult]:
        body = {"tags": tag_objects(tags), "ids": list(ids), "over_write": False}
        response = self.session.post(f"{module_path(module)}/actions/add_tags", json=body)
        items = self._items_or_raise(response)
        return [
            restore_result(target, item)
            for target, item in zip(ids, match_items(ids, items), strict=True)
        ]

    def _items_or_raise(self, response: ApiResponse) -> list[Item]:
        """The per-record items, or raise: a body without ``data`` refuses the whole batch."""
        body = response.json()
        items = data_items(body)
        if items is not None:
            return items
        self.session.raise_for_status(response, code=error_code(body))
        raise ProviderStatusError(
            self.name,
            f"{response.method} answered {response.status_code} without per-record results",
            status_code=response.status_code,
            code="NO_DATA",
        )


# -- session ---------------------------------------------------------------


def zoho_session(
    http: HttpClient,
    config: ZohoConfig,
    token_store: TokenStore,
    *,
    provider: str,
    api_path: str,
    concurrency: int,
) -> ProviderSession:
    """A session on the token grant's ``api_domain`` + ``api_path``, capped at ``concurrency``."""
    tokens = zoho_tokens(http, config, token_store, provider=provider)

    def base_url() -> str:
        # Read per request: the session fetches the token (and learns the
        # api_domain) before it builds the URL, and a refresh may move it.
        return (tokens.api_domain or config.api_domain).rstrip("/") + api_path

    return http.session(
        provider,
        base_url=base_url,
        auth=tokens,
        pacers=(concurrency_cap(concurrency),),
        classify=zoho_classifier(provider),
    )


def zoho_classifier(provider: str) -> Callable[[ApiResponse], ProviderError | None]:
    """Retryable Zoho answers: 429 ``TOO_MANY_REQUESTS`` (backoff) and 502/503/504.

    A 429 carrying another code (spent API credits) will not clear with a few
    seconds' backoff, so it is reported as a spent quota and not retried.
    """

    def classify(response: ApiResponse) -> ProviderError | None:
        if response.status_code == 429:
            code = error_code(response.json())
            if code in (None, CONCURRENCY_CODE):
                # No Retry-After from Zoho: None lets stamina back off exponentially.
                return RateLimited(provider, f"429 {CONCURRENCY_CODE}", retry_after=None)
            return QuotaExceeded(provider, f"429 {code}: Zoho API credits may be spent")
        if response.status_code in (502, 503, 504):
            return ProviderUnavailable(
                provider, f"temporarily unavailable ({response.status_code})"
            )
        return None

    return classify


# -- request building ------------------------------------------------------


def module_of(action: Action) -> str:
    """The module API name (``Leads``, ``Price_Books``) the parser put in ``scope``."""
    if not action.scope:
        raise ValueError(f"{action.provider}: an action needs a module (scope)")
    return action.scope


def module_path(module: str) -> str:
    return "/" + quote(module, safe="")


def comma_query(values: Iterable[str]) -> str:
    """Comma-separated, each value percent-encoded (spaces as ``%20``), the commas literal."""
    return ",".join(quote(v, safe="") for v in values)


def tag_objects(tags: Iterable[str]) -> list[dict[str, str]]:
    return [{"name": t} for t in tags]


def is_record_id(value: str) -> bool:
    """Whether ``value`` looks like a Zoho record id (ASCII digits)."""
    return value.isascii() and value.isdigit()


def unique(values: Iterable[str]) -> list[str]:
    """Values in first-seen order, each once."""
    return list(dict.fromkeys(values))


# -- response reading ------------------------------------------------------


def data_items(body: Any) -> list[Item] | None:
    """``body["data"]`` as a list of objects, or ``None`` when the body has no ``data`` list."""
    if not isinstance(body, Mapping):
        return None
    data = body.get("data")
    if not isinstance(data, list):
        return None
    return [item if isinstance(item, Mapping) else {} for item in data]


def error_code(body: Any) -> str | None:
    """The error code of a whole-request refusal (top level, or the only ``data`` item)."""
    if not isinstance(body, Mapping):
        return None
    code = body.get("code")
    if code is None:
        items = data_items(body)
        if items:
            code = items[0].get("code")
    return str(code) if code is not None else None


def tag_names(raw: Any) -> tuple[str, ...]:
    """Tag names from either shape: CRM objects ``[{"name", "id", ...}]`` or Bigin strings."""
    if not isinstance(raw, list):
        return ()
    names: list[str] = []
    for tag in raw:
        if isinstance(tag, str):
            names.append(tag)
        elif isinstance(tag, Mapping) and isinstance(tag.get("name"), str):
            names.append(tag["name"])
    return tuple(names)


def details_of(item: Item) -> Mapping[str, Any]:
    details = item.get("details")
    return details if isinstance(details, Mapping) else {}


def detail_id(item: Item) -> str | None:
    record_id = details_of(item).get("id")
    return str(record_id) if record_id is not None else None


def match_items(ids: Sequence[str], items: Sequence[Item]) -> list[Item | None]:
    """Each id's item: by ``details.id``, else by position (Zoho answers in request order)."""
    wanted = set(ids)
    matched: dict[str, Item] = {}
    for position, item in enumerate(items):
        record_id = detail_id(item)
        if record_id is None and position < len(ids):
            record_id = ids[position]
        if record_id in wanted and record_id not in matched:
            matched[record_id] = item
    return [matched.get(i) for i in ids]


def item_outcome(item: Item, target: str, success: Outcome) -> Outcome:
    """What one ``data[i]`` means for ``target``."""
    code = str(item.get("code") or "").upper()
    if code == "SUCCESS" or (not code and item.get("status") == "success"):
        return success
    if code == "RECORD_LOCKED":
        return Outcome.LOCKED
    if code == "INVALID_DATA" and detail_id(item) == target:
        return Outcome.NOT_FOUND  # the id itself is what Zoho found invalid
    return Outcome.FAILED


def removal_result(record: RecordPreview, item: Item | None) -> RecordResult:
    """One record's result of a ``remove_tags`` call."""
    if item is None:
        return missing_result(record.target)
    outcome = item_outcome(item, record.target, Outcome.REMOVED)
    if outcome is Outcome.REMOVED:
        return RecordResult(
            target=record.target,
            outcome=outcome,
            removed=record.removing,
            remaining=remaining_tags(item),
        )
    return refusal_result(record.target, outcome, item)


def restore_result(target: str, item: Item | None) -> RecordResult:
    """One record's result of an ``add_tags`` call."""
    if item is None:
        return missing_result(target)
    outcome = item_outcome(item, target, Outcome.RESTORED)
    if outcome is Outcome.RESTORED:
        return RecordResult(target=target, outcome=outcome, remaining=remaining_tags(item))
    return refusal_result(target, outcome, item)


def remaining_tags(item: Item) -> tuple[str, ...] | None:
    """The record's tags after the call (``details.tags``), when Zoho listed them."""
    details = details_of(item)
    return tag_names(details["tags"]) if "tags" in details else None


def refusal_result(target: str, outcome: Outcome, item: Item) -> RecordResult:
    code = item.get("code")
    message = item.get("message")
    return RecordResult(
        target=target,
        outcome=outcome,
        code=str(code) if code is not None else None,
        message=str(message) if message is not None else None,
    )


def missing_result(target: str) -> RecordResult:
    return RecordResult(
        target=target,
        outcome=Outcome.FAILED,
        code="NO_RESULT",
        message="the provider's answer had no result for this record",
    )


def refused(target: str, reason: str) -> RecordResult:
    return RecordResult(
        target=target, outcome=Outcome.FAILED, code="UNSUPPORTED_TAG_NAME", message=reason
    )


def settle_without_call(target: str, record: RecordPreview | None) -> RecordResult | None:
    """The result of a record that needs no call, or ``None`` when it must be sent."""
    if record is None:
        # Only what the user confirmed is removed.
        return RecordResult(
            target=target,
            outcome=Outcome.FAILED,
            code="NOT_PREVIEWED",
            message="the record was not in the confirmed preview",
        )
    if not record.found:
        return RecordResult(target=target, outcome=Outcome.NOT_FOUND)
    if not record.removing:
        return RecordResult(target=target, outcome=Outcome.NOT_PRESENT, remaining=record.current)
    return None
