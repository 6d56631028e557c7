"""Constant Contact v3: tag removal through asynchronous bulk activities.

Every write is an *activity*: the POST answers 201 at once and the work happens
later, so each write is followed by polling ``GET /activities/{id}`` until the
activity reaches a terminal state.  Tags are addressed by uuid; users type
names, so each preview reads the account's tag catalogue and resolves names
(case-insensitively) to ids.

Two operations:

- removing tags from listed contacts (``contacts_taggings_remove``, undone by
  ``contacts_taggings_add``);
- deleting tags from the whole account (``contacts_tags_delete``), which
  removes them from every contact and cannot be undone.

Removal groups contacts by the exact set of tags the preview showed on them, so
each activity removes only tags its contacts carry and every contact's
``removed`` is exactly what was on it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from commands.actions import Action, ProviderName
from commands.config import ConstantContactConfig
from commands.errors import (
    ConfigError,
    ProviderError,
    ProviderStatusError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from commands.http import (
    ApiResponse,
    DailyQuota,
    ProviderSession,
    mark_in_doubt,
    next_utc_midnight,
    rate_limit,
)
from commands.oauth import TokenManager, constant_contact_tokens
from commands.providers.base import (
    BatchRunner,
    Wiring,
    chunked,
    preview_from_current,
    read_each,
)
from commands.results import Outcome, Preview, Progress, RecordPreview, RecordResult

__all__ = [
    "Activity",
    "ConstantContact",
    "PollPolicy",
    "Tag",
    "TagCatalogue",
    "build",
    "classify_response",
    "relative_to_base",
]

log = logging.getLogger(__name__)

PROVIDER = "constantcontact"
MAX_CONTACTS_PER_ACTIVITY = 500  # TagAddRemoveContacts.source.contact_ids
MAX_TAGS_PER_TAGGING = 50  # TagAddRemoveContacts.tag_ids
MAX_TAGS_PER_DELETE = 500  # TagIdList500Limit.tag_ids
TAG_PAGE_SIZE = 500
CONTACT_PAGE_SIZE = 500  # GET /contacts?limit=1..500
MAX_LISTING_TAGS = 50  # GET /contacts?tags= takes at most 50 tag ids
LISTING_SAVES = 10
"""Preview through the tag's contact listing only when it takes a tenth of the per-contact reads."""
TERMINAL_STATES = frozenset({"completed", "cancelled", "failed", "timed_out"})

Sleeper = Callable[[float], None]
Failure = tuple[str, str] | None
"""``(code, message)`` when an item did not go through an activity; ``None`` when it did."""
Clock = Callable[[], float]


@dataclass(frozen=True)
class PollPolicy:
    """How to wait for an activity: growing intervals, and a cap on the total wait."""

    initial: float = 0.5
    factor: float = 1.5
    maximum: float = 5.0
    timeout: float = 30 * 60.0


def classify_response(
    provider: str = PROVIDER, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Callable[[ApiResponse], ProviderError | None]:
    """Constant Contact's 429s say in the body which limit was hit; there is no ``Retry-After``.

    ``throttled`` (4/s) is worth a short backoff; ``quota_exceeded`` (10,000/day)
    lasts until 00:00 UTC, so it is never retried and says when it resets.
    """

    def classify(response: ApiResponse) -> ProviderError | None:
        if response.status_code == 429:
            if _error_key(response) == "quota_exceeded":
                resets = next_utc_midnight(clock())
                return QuotaExceeded(
                    provider,
                    "Constant Contact's daily request quota is spent; "
                    f"it resets at {resets:%Y-%m-%d %H:%M} UTC",
                    resets_at=resets,
                )
            return RateLimited(provider, "throttled by Constant Contact (429)", retry_after=None)
        if response.status_code in (502, 503, 504):
            return ProviderUnavailable(
                provider, f"Constant Contact temporarily unavailable ({response.status_code})"
            )
        return None

    return classify


def _error_key(response: ApiResponse) -> str | None:
    """The ``error_key`` of an error body, which is an object or a list of objects."""
    body = response.json()
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict) and body.get("error_key") is not None:
        return str(body["error_key"])
    return None


# --- tags --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tag:
    """One tag of the account."""

    tag_id: str
    name: str
    contacts_count: int | None = None


class TagCatalogue:
    """The account's tags, looked up by uuid or by name (case-insensitively)."""

    def __init__(self, tags: Iterable[Tag]) -> None:
        self.tags = tuple(tags)
        self._by_id = {t.tag_id.casefold(): t for t in self.tags}
        self._by_name = {t.name.casefold(): t for t in self.tags}

    def find(self, name_or_id: str) -> Tag | None:
        """The tag a user means by ``name_or_id`` (an id wins over a name that looks like one)."""
        key = name_or_id.strip().casefold()
        return self._by_id.get(key) or self._by_name.get(key)

    def name_of(self, tag_id: str) -> str:
        """The tag's name; the id itself when the tag is not (or no longer) in the catalogue."""
        tag = self._by_id.get(tag_id.casefold())
        return tag.name if tag else tag_id

    def resolve(self, requested: Iterable[str]) -> tuple[list[Tag], list[str]]:
        """The tags found, without duplicates, and the requested values that match none."""
        found: list[Tag] = []
        missing: list[str] = []
        for value in requested:
            tag = self.find(value)
            if tag is None:
                missing.append(value)
            elif tag not in found:
                found.append(tag)
        return found, missing


def _parse_tag(item: Mapping[str, Any]) -> Tag | None:
    if not item.get("tag_id") or item.get("name") is None:
        return None
    count = item.get("contacts_count")
    return Tag(
        tag_id=str(item["tag_id"]),
        name=str(item["name"]),
        contacts_count=count if isinstance(count, int) else None,
    )


def relative_to_base(href: str, base_path: str) -> str:
    """Turn a ``_links`` href (``/v3/contact_tags?cursor=…``) into a path under the base URL.

    Constant Contact's hrefs start with its own ``/v3``; the configured base may
    sit under a longer path (a proxy, the sandbox's ``/cc/v3``), so any trailing
    part of the base path that the href starts with is dropped.
    """
    parts = urlsplit(href)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    segments = [s for s in base_path.split("/") if s]
    for start in range(len(segments)):
        prefix = "/" + "/".join(segments[start:])
        if path == prefix or path.startswith((prefix + "/", prefix + "?")):
            return path[len(prefix) :]
    return path


# --- activities --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """The last known state of one bulk activity."""

    activity_id: str
    state: str
    errors: tuple[str, ...] = ()
    items_completed: int | None = None
    items_total: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def fraction(self) -> float | None:
        """How much is done, from ``status``; ``None`` before the activity reports it."""
        if self.items_total and self.items_completed is not None:
            return max(0.0, min(1.0, self.items_completed / self.items_total))
        return None

    def errors_naming(self, key: str) -> tuple[str, ...]:
        """The activity errors that mention ``key`` (a contact or tag id, or a tag name)."""
        folded = key.casefold()
        return tuple(e for e in self.errors if folded in e.casefold())

    def failure(self, key: str) -> Failure:
        """``(code, message)`` when the item ``key`` did not go through; ``None`` when it did.

        Errors that name no item of ours are not held against anyone: calling a
        contact failed when its tags are in fact gone would keep undo from
        putting them back.
        """
        if not self.finished:
            return "activity_running", f"activity {self.activity_id} still running; check later"
        if self.state != "completed":
            detail = "; ".join(self.errors) or "no details given"
            return self.state, (
                f"activity {self.activity_id} {self.state.replace('_', ' ')}: {detail} "
                "(part of it may have been applied; preview again to see)"
            )
        named = self.errors_naming(key)
        if named:
            return "activity_error", "; ".join(named)
        return None


def _parse_activity(body: Any, fallback_id: str = "") -> Activity:
    body = body if isinstance(body, dict) else {}
    activity_id = str(body.get("activity_id") or "") or _id_from_self_link(body) or fallback_id
    status = body.get("status") if isinstance(body.get("status"), dict) else {}
    errors = body.get("activity_errors") or []
    return Activity(
        activity_id=activity_id,
        state=str(body.get("state") or "unknown"),
        errors=tuple(str(e) for e in errors) if isinstance(errors, list) else (str(errors),),
        items_completed=_int_or_none(status.get("items_completed_count")),
        items_total=_int_or_none(status.get("items_total_count")),
    )


def _id_from_self_link(body: Mapping[str, Any]) -> str:
    links = body.get("_links")
    href = links.get("self", {}).get("href") if isinstance(links, dict) else None
    return str(href).rstrip("/").rsplit("/", 1)[-1] if href else ""


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- the provider ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    """Contacts that get the same tags added or removed by one activity (or a few, past 50 tags)."""

    contact_ids: Sequence[str]
    tag_names: tuple[str, ...]


class ConstantContact:
    """Removes tags from Constant Contact contacts, or deletes tags from the whole account."""

    name: ClassVar[ProviderName] = ProviderName.CONSTANT_CONTACT
    batch_size: ClassVar[int] = MAX_CONTACTS_PER_ACTIVITY

    def __init__(
        self,
        session: ProviderSession,
        *,
        sleep: Sleeper = time.sleep,
        poll: PollPolicy = PollPolicy(),
        clock: Clock = time.monotonic,
    ) -> None:
        self._session = session
        self._sleep = sleep
        self._poll = poll
        self._clock = clock
        self._catalogue: TagCatalogue | None = None  # the last one read; undo reuses it

    # --- preview ---

    def preview(self, action: Action) -> Preview:
        """Read the tag catalogue (fresh, for current counts), then each contact or tag."""
        catalogue = self._read_catalogue()
        found, missing = catalogue.resolve(action.tags)
        notes = [f'tag "{m}" does not exist in this account' for m in missing]
        resolved = {t.name: t.tag_id for t in found}
        if action.is_account_wide:
            return _deletion_preview(action, catalogue, notes, resolved)
        names = [t.name for t in found]
        current = self._current_tags(action.targets, found, catalogue)
        records = read_each(
            action.targets, lambda target: preview_from_current(target, names, current(target))
        )
        return Preview(
            action=action, records=tuple(records), notes=tuple(notes), resolved_tags=resolved
        )

    def _current_tags(
        self, targets: Sequence[str], found: Sequence[Tag], catalogue: TagCatalogue
    ) -> Callable[[str], list[str] | None]:
        """How to get each target's tag names (``None``: no such contact), in as few reads
        as it takes.

        A read per contact costs a request each, and at 4 a second 5,000 contacts
        take 21 minutes.  When the requested tags sit on few enough contacts, the
        pages of ``GET /contacts?tags=…&include=taggings`` (500 a page) name every
        target carrying one of them, with all its taggings; only the targets not
        listed there are read one by one, to tell a contact without the tags from
        one that does not exist.
        """
        known: dict[str, list[str] | None] = {}
        if _listing_pays(found, len(set(targets))):
            known.update(self._tagged_contacts(found, catalogue))

        def current(target: str) -> list[str] | None:
            if target not in known:
                known[target] = self._contact_tags(target, catalogue)
            return known[target]

        return current

    def _tagged_contacts(
        self, found: Sequence[Tag], catalogue: TagCatalogue
    ) -> dict[str, list[str]]:
        """Every contact carrying one of ``found``, with its tag names, page by page."""
        contacts: dict[str, list[str]] = {}
        path = "/contacts"
        params: dict[str, str] | None = {
            "tags": ",".join(t.tag_id for t in found),
            "include": "taggings",
            "limit": str(CONTACT_PAGE_SIZE),
        }
        seen: set[str] = set()
        while path and path not in seen:  # a repeated cursor would loop forever
            seen.add(path)
            body = self._read(path, params)
            for item in body.get("contacts") or []:
                if isinstance(item, dict) and item.get("contact_id"):
                    contacts[str(item["contact_id"])] = [
                        catalogue.name_of(str(t)) for t in item.get("taggings") or []
                    ]
            path, params = self._next_page(body), None
        return contacts

    def _read_catalogue(self) -> TagCatalogue:
        """Every tag of the account, following ``_links.next`` to the last page."""
        tags: list[Tag] = []
        path = "/contact_tags"
        params: dict[str, str] | None = {"limit": str(TAG_PAGE_SIZE), "include_count": "true"}
        seen: set[str] = set()
        while path and path not in seen:  # a repeated cursor would loop forever
            seen.add(path)
            body = self._read(path, params)
            items = body.get("tags") or []
            tags += [t for t in (_parse_tag(i) for i in items if isinstance(i, dict)) if t]
            path, params = self._next_page(body), None  # the next href carries its own query
        self._catalogue = TagCatalogue(tags)
        return self._catalogue

    def _next_page(self, body: Mapping[str, Any]) -> str:
        links = body.get("_links")
        following = links.get("next") if isinstance(links, dict) else None
        href = following.get("href") if isinstance(following, dict) else None
        if not href:
            return ""
        return relative_to_base(str(href), urlsplit(self._session.base_url()).path)

    def _contact_tags(self, contact_id: str, catalogue: TagCatalogue) -> list[str] | None:
        """The contact's tag names, or ``None`` when there is no such contact."""
        path = f"/contacts/{quote(contact_id, safe='')}"
        response = self._session.get(path, params={"include": "taggings"})
        if response.status_code == 404:
            return None
        body = self._body(response)
        return [catalogue.name_of(str(t)) for t in body.get("taggings") or []]

    def _read(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self._body(self._session.get(path, params=params))

    def _body(self, response: ApiResponse) -> dict[str, Any]:
        """The JSON object of a 2xx answer; any other answer raises with CC's error key."""
        self._session.raise_for_status(response, code=_error_key(response))
        body = response.json()
        return body if isinstance(body, dict) else {}

    # --- remove ---

    def remove(self, action: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        """Take off what the preview showed, one activity per group of alike contacts."""
        if action.is_account_wide:
            return self._delete_tags(preview, progress)
        targets = list(dict.fromkeys(action.targets))
        records = {r.target: r for r in preview.records}
        results: dict[str, RecordResult] = {}
        groups: dict[tuple[str, ...], list[str]] = {}
        for target in targets:
            record = records.get(target)
            if record is None or not record.found:
                results[target] = RecordResult(target=target, outcome=Outcome.NOT_FOUND)
            elif not record.removing:
                results[target] = RecordResult(
                    target=target, outcome=Outcome.NOT_PRESENT, remaining=record.current
                )
            else:
                groups.setdefault(record.removing, []).append(target)
        runner = BatchRunner(len(targets), progress)
        runner.advance(len(results))
        for batch in _batches(groups):
            ids = _tag_ids(batch.tag_names, preview.resolved_tags)

            def removal(
                target: str, failure: Failure, names: tuple[str, ...] = batch.tag_names
            ) -> RecordResult:
                return _removal_result(target, names, records.get(target), failure)

            for result in self._run_tagging(
                "/activities/contacts_taggings_remove", batch, ids, runner, progress, removal
            ):
                results[result.target] = result
        return [results[t] for t in action.targets]

    def _delete_tags(self, preview: Preview, progress: Progress) -> list[RecordResult]:
        """Account-wide: one ``contacts_tags_delete`` activity per 500 tags."""
        results: dict[str, RecordResult] = {}
        existing: list[str] = []
        for record in preview.records:
            if record.found and record.target in preview.resolved_tags:
                existing.append(record.target)
            else:
                results[record.target] = RecordResult(
                    target=record.target, outcome=Outcome.NOT_FOUND, message="no such tag"
                )
        runner = BatchRunner(len(preview.records), progress)
        runner.advance(len(results))
        for names in chunked(existing, MAX_TAGS_PER_DELETE):
            ids = [preview.resolved_tags[n] for n in names]

            def call(names: Sequence[str] = names, ids: list[str] = ids) -> list[RecordResult]:
                activity = self._execute(
                    "/activities/contacts_tags_delete",
                    {"tag_ids": ids},
                    lambda f: progress(runner.done + int(f * len(names)), runner.total),
                )
                return [
                    _deletion_result(name, activity.failure(tag_id))
                    for name, tag_id in zip(names, ids, strict=True)
                ]

            for result in runner.run(names, call):
                results[result.target] = result
        return [results[r.target] for r in preview.records]

    # --- undo ---

    def undo(
        self, action: Action, removed: Sequence[RecordResult], progress: Progress
    ) -> list[RecordResult]:
        """Add back exactly the tags each contact lost; account-wide deletion refuses."""
        if action.is_account_wide:
            return [
                RecordResult(
                    target=r.target,
                    outcome=Outcome.FAILED,
                    code="irreversible",
                    message="account-wide deletion cannot be undone",
                )
                for r in removed
            ]
        wanted = {n for r in removed if r.outcome is Outcome.REMOVED for n in r.removed}
        ids_by_name = self._tag_ids_for_undo(wanted) if wanted else {}
        results: dict[str, RecordResult] = {}
        groups: dict[tuple[str, ...], list[str]] = {}
        queued: set[str] = set()
        for record in removed:
            restorable = tuple(n for n in record.removed if n in ids_by_name)
            if record.outcome is not Outcome.REMOVED or not record.removed:
                results[record.target] = RecordResult(
                    target=record.target, outcome=Outcome.NOT_PRESENT, message="nothing to restore"
                )
            elif not restorable:
                results[record.target] = _undo_result(record, (), None)
            elif record.target not in queued:  # a contact id twice in one activity is refused
                queued.add(record.target)
                groups.setdefault(restorable, []).append(record.target)
        runner = BatchRunner(len(removed), progress)
        runner.advance(len(removed) - len(queued))
        by_target = {r.target: r for r in removed}
        for batch in _batches(groups):
            ids = _tag_ids(batch.tag_names, ids_by_name)

            def restoral(
                target: str, failure: Failure, names: tuple[str, ...] = batch.tag_names
            ) -> RecordResult:
                return _undo_result(by_target[target], names, failure)

            for result in self._run_tagging(
                "/activities/contacts_taggings_add", batch, ids, runner, progress, restoral
            ):
                results[result.target] = result
        return [results[r.target] for r in removed]

    def _tag_ids_for_undo(self, names: set[str]) -> dict[str, str]:
        """name → id for the removed tags, re-reading the catalogue if one is unknown."""
        catalogue = self._catalogue
        if catalogue is None or any(catalogue.find(n) is None for n in names):
            catalogue = self._read_catalogue()
        return {n: tag.tag_id for n in names if (tag := catalogue.find(n)) is not None}

    # --- activities ---

    def _run_tagging(
        self,
        endpoint: str,
        batch: _Batch,
        tag_ids: Sequence[str],
        runner: BatchRunner,
        progress: Progress,
        result_for: Callable[[str, Failure], RecordResult],
    ) -> list[RecordResult]:
        """Run one batch's tagging activities and turn them into one result per contact."""
        contacts = batch.contact_ids
        # A contact carries at most 50 tags, so there is nearly always a single chunk.
        chunks = list(chunked(tag_ids, MAX_TAGS_PER_TAGGING))

        def call() -> list[RecordResult]:
            activities = []
            for index, chunk in enumerate(chunks):
                body = {"source": {"contact_ids": list(contacts)}, "tag_ids": list(chunk)}

                def report(fraction: float, index: int = index) -> None:
                    done = int((index + fraction) / len(chunks) * len(contacts))
                    progress(runner.done + done, runner.total)

                activities.append(self._execute(endpoint, body, report))
            return [result_for(c, _first_failure(activities, c)) for c in contacts]

        return runner.run(contacts, call)

    def _execute(
        self, endpoint: str, body: Mapping[str, Any], report: Callable[[float], None]
    ) -> Activity:
        """Start an activity and wait for it to finish (or for the polling cap)."""
        response = self._session.post(endpoint, json=body)
        activity = _parse_activity(self._body(response))
        if not activity.activity_id:
            raise ProviderStatusError(
                PROVIDER,
                f"POST {endpoint} answered without an activity id",
                status_code=response.status_code,
                code="no_activity_id",
            )
        log.info("constantcontact: activity %s started (%s)", activity.activity_id, endpoint)
        try:
            return self._wait(activity, report)
        except ProviderError as exc:
            # The activity was accepted and runs on without us: its contacts may well be
            # done.  Failing them plainly would claim nothing changed.
            raise mark_in_doubt(
                exc,
                f"activity {activity.activity_id} was accepted but could not be checked, "
                "so Constant Contact may have applied it; Retry failed checks and finishes it",
            ) from None

    def _wait(self, activity: Activity, report: Callable[[float], None]) -> Activity:
        """Poll with growing intervals until a terminal state or the total cap."""
        deadline = self._clock() + self._poll.timeout
        interval = self._poll.initial
        while not activity.finished and self._clock() < deadline:
            self._sleep(interval)
            interval = min(interval * self._poll.factor, self._poll.maximum)
            body = self._read(f"/activities/{quote(activity.activity_id, safe='')}")
            activity = _parse_activity(body, activity.activity_id)
            if activity.fraction is not None:
                report(activity.fraction)
        if not activity.finished:
            log.warning("constantcontact: activity %s still running", activity.activity_id)
        return activity


# --- results -----------------------------------------------------------------------------------


def _listing_pays(found: Sequence[Tag], targets: int) -> bool:
    """Whether listing the contacts carrying ``found`` costs far fewer reads than ``targets``."""
    counts = [t.contacts_count for t in found]
    if not counts or len(counts) > MAX_LISTING_TAGS or None in counts:
        return False
    pages = max(1, math.ceil(sum(c or 0 for c in counts) / CONTACT_PAGE_SIZE))
    return pages * LISTING_SAVES <= targets


def _deletion_preview(
    action: Action, catalogue: TagCatalogue, notes: list[str], resolved: dict[str, str]
) -> Preview:
    """One record per requested tag (target: the account's spelling), and the blast radius."""
    records: list[RecordPreview] = []
    counted: list[Tag] = []
    for value in action.tags:
        tag = catalogue.find(value)
        if tag is None:
            records.append(RecordPreview(target=value, found=False))
        elif tag not in counted:
            counted.append(tag)
            records.append(
                RecordPreview(target=tag.name, current=(tag.name,), removing=(tag.name,), after=())
            )
    affected = sum(t.contacts_count or 0 for t in counted)
    notes.insert(
        0,
        "this deletes the tags from the whole account, taking them off every contact; "
        "it cannot be undone",
    )
    if len(counted) > 1:
        notes.append(
            f"{affected} contacts is an upper bound: a contact with several of these tags "
            "is counted once per tag"
        )
    return Preview(
        action=action,
        records=tuple(records),
        undoable=False,
        notes=tuple(notes),
        affected_count=affected,
        resolved_tags=resolved,
    )


def _batches(groups: Mapping[tuple[str, ...], Sequence[str]]) -> list[_Batch]:
    return [
        _Batch(contact_ids=chunk, tag_names=names)
        for names, contacts in groups.items()
        for chunk in chunked(contacts, MAX_CONTACTS_PER_ACTIVITY)
    ]


def _tag_ids(names: Iterable[str], ids_by_name: Mapping[str, str]) -> list[str]:
    return [ids_by_name[n] for n in names]


def _first_failure(activities: Sequence[Activity], contact_id: str) -> Failure:
    return next((f for a in activities if (f := a.failure(contact_id)) is not None), None)


def _removal_result(
    target: str, removing: tuple[str, ...], record: RecordPreview | None, failure: Failure
) -> RecordResult:
    if failure is not None:
        return RecordResult(
            target=target, outcome=Outcome.FAILED, code=failure[0], message=failure[1]
        )
    return RecordResult(
        target=target,
        outcome=Outcome.REMOVED,
        removed=removing,
        remaining=record.after if record else None,
    )


def _deletion_result(name: str, failure: Failure) -> RecordResult:
    # Only the tag id is looked for in activity errors: a short tag name would
    # match unrelated words and report a deleted tag as failed.
    if failure is not None:
        return RecordResult(
            target=name, outcome=Outcome.FAILED, code=failure[0], message=failure[1]
        )
    return RecordResult(target=name, outcome=Outcome.REMOVED, removed=(name,))


def _undo_result(record: RecordResult, restored: tuple[str, ...], failure: Failure) -> RecordResult:
    if failure is not None:
        return RecordResult(
            target=record.target, outcome=Outcome.FAILED, code=failure[0], message=failure[1]
        )
    gone = [n for n in record.removed if n not in restored]
    if gone:
        listed = ", ".join(f'"{n}"' for n in gone)
        done = ", ".join(f'"{n}"' for n in restored)
        return RecordResult(
            target=record.target,
            outcome=Outcome.FAILED,
            removed=restored,
            code="tag_missing",
            message=(f"restored {done}; " if restored else "")
            + f"{listed} no longer {'exists' if len(gone) == 1 else 'exist'} in this account",
        )
    return RecordResult(target=record.target, outcome=Outcome.RESTORED, removed=restored)


# --- wiring ------------------------------------------------------------------------------------


def build(
    wiring: Wiring,
    *,
    sleep: Sleeper = time.sleep,
    poll: PollPolicy = PollPolicy(),
    clock: Clock = time.monotonic,
) -> ConstantContact | None:
    """The Constant Contact provider, or ``None`` when it is not configured.

    ``sleep``, ``poll`` and ``clock`` control activity polling (tests inject them).
    """
    config = wiring.config.constant_contact
    if config is None:
        return None
    limits = wiring.config.limits
    session = wiring.http.session(
        PROVIDER,
        base_url=config.base_url,
        auth=_auth(wiring, config),
        pacers=(
            rate_limit(limits.constant_contact_per_second, 1.0, name=PROVIDER),
            DailyQuota(
                PROVIDER,
                limits.constant_contact_per_day,
                claim=wiring.quotas.claim if wiring.quotas else None,
            ),
        ),
        classify=classify_response(PROVIDER),
    )
    return ConstantContact(session, sleep=sleep, poll=poll, clock=clock)


def _auth(wiring: Wiring, config: ConstantContactConfig) -> TokenManager:
    try:
        return constant_contact_tokens(wiring.http, config, wiring.tokens)
    except ValueError:
        raise ConfigError(
            "Constant Contact needs CONSTANT_CONTACT_ACCESS_TOKEN, or "
            "CONSTANT_CONTACT_REFRESH_TOKEN with CONSTANT_CONTACT_CLIENT_ID and "
            "CONSTANT_CONTACT_CLIENT_SECRET"
        ) from None
