"""Fernand: remove tags from conversations.

Requests (base ``https://api.getfernand.com``, header ``X-API-Key``):

- preview: ``GET /tags`` once (the catalogue, to name the tag ids conversations
  carry), then ``GET /conversations/{id}`` per conversation;
- remove: ``DELETE /conversations/{id}/tags/{tag}``, one tag per call, the tag
  name as spelled in the catalogue, percent-encoded as one path segment;
- undo: ``POST /conversations/{id}/tags`` with ``{"name": tag}`` per tag.

Fernand allows 20 reads and 5 writes a minute, so both are paced client-side
and a removal of many tags takes many minutes: progress is reported per call,
``progress(calls done, calls planned)``.  A 429 carries no ``Retry-After``,
only ``X-RateLimit-Reset`` (Unix epoch seconds): the wait is measured from it.

Facts picked where Fernand documents nothing: errors look like
``{"error", "message"}``; ``GET /tags`` is one unpaginated JSON array (a
``{"data": [...]}`` envelope is accepted too); a 404 from a DELETE means the
conversation is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar
from urllib.parse import quote

from commands.actions import Action, ProviderName
from commands.errors import ProviderError, ProviderUnavailable, RateLimited
from commands.http import (
    ApiResponse,
    ProviderSession,
    StaticAuth,
    rate_limit,
    retry_after_seconds,
)
from commands.providers.base import BatchRunner, Wiring, preview_from_current, read_each
from commands.results import Outcome, Preview, Progress, RecordPreview, RecordResult

__all__ = ["MIN_RATE_LIMIT_WAIT", "FernandProvider", "build", "fernand_classifier", "tag_path"]

MIN_RATE_LIMIT_WAIT = 0.5
"""Seconds waited at least after a 429, so a reset already due does not cause a tight loop."""

_EPOCH_THRESHOLD = 1_000_000_000  # a reset below this is a count of seconds, not an epoch

Clock = Callable[[], float]
"""Unix epoch seconds now (``time.time``; tests inject a fixed one)."""


def fernand_classifier(now: Clock = time.time) -> Callable[[ApiResponse], ProviderError | None]:
    """429 waits until ``X-RateLimit-Reset``; 502, 503 and 504 are unavailable."""

    def classify(response: ApiResponse) -> ProviderError | None:
        if response.status_code == 429:
            wait = reset_wait(response, now())
            return RateLimited(ProviderName.FERNAND.value, "rate limited (429)", retry_after=wait)
        if response.status_code in (502, 503, 504):
            return ProviderUnavailable(
                ProviderName.FERNAND.value, f"temporarily unavailable ({response.status_code})"
            )
        return None

    return classify


def reset_wait(response: ApiResponse, now: float) -> float | None:
    """Seconds until Fernand's window resets, at least ``MIN_RATE_LIMIT_WAIT``; None if unsaid."""
    raw = response.header("x-ratelimit-reset")
    try:
        reset = float(raw) if raw is not None else None
    except ValueError:
        reset = None
    if reset is None or reset != reset:  # absent, nonsense or nan
        # Not documented, but honour a Retry-After should Fernand ever send one.
        seconds = retry_after_seconds(response.header("retry-after"))
        return None if seconds is None else max(seconds, MIN_RATE_LIMIT_WAIT)
    if reset < _EPOCH_THRESHOLD:
        return max(reset, MIN_RATE_LIMIT_WAIT)
    return max(reset - now, MIN_RATE_LIMIT_WAIT)


def tag_path(conversation: str, tag: str) -> str:
    """``/conversations/{id}/tags/{tag}`` with the tag as exactly one encoded path segment."""
    return f"/conversations/{conversation}/tags/{quote(tag, safe='')}"


@dataclass
class _CallProgress:
    """Progress counted in API calls, since at 5 writes a minute each one is worth showing."""

    total: int
    report: Progress
    done: int = 0

    def step(self, count: int = 1) -> None:
        """``count`` more calls are settled (made, or no longer going to be made)."""
        if count <= 0 or self.total <= 0:
            return
        self.done = min(self.total, self.done + count)
        self.report(self.done, self.total)

    def settle(self, start: int, planned: int) -> None:
        """Count as settled the calls of a record that failed before making them all."""
        self.step(start + planned - self.done)


class FernandProvider:
    """Fernand, through one session paced separately for reads and writes."""

    name: ClassVar[ProviderName] = ProviderName.FERNAND
    batch_size: ClassVar[int] = 1  # one conversation, and one tag, per call

    def __init__(self, session: ProviderSession) -> None:
        self._session = session

    def preview(self, action: Action) -> Preview:
        """Each conversation's current tags by name, and what removing the requested ones leaves."""
        catalogue: dict[int, str] | None = None  # read once, and only if some tag needs a name
        seen: dict[str, str] = {}

        def read(target: str) -> RecordPreview:
            nonlocal catalogue
            ids = self._conversation_tag_ids(target)
            if ids is None:
                return RecordPreview(target=target, found=False)
            if catalogue is None and ids:
                catalogue = self._catalogue()
            names = [tag_name(catalogue or {}, i) for i in ids]
            seen.update(zip(names, map(str, ids), strict=True))
            return preview_from_current(target, action.tags, names)

        records = read_each(action.targets, read)
        # The names of the tags seen, so remove can name what a conversation keeps.
        return Preview(action=action, records=tuple(records), resolved_tags=seen)

    def remove(self, action: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        """One ``DELETE`` per previewed tag per conversation, in target order."""
        names = {int(i): n for n, i in preview.resolved_tags.items() if i.isdigit()}
        records = preview.by_target()
        plan = [(target, records.get(target)) for target in action.targets]
        calls = _CallProgress(sum(len(r.removing) for _, r in plan if r and r.found), progress)
        runner = BatchRunner(len(plan), _ignore)
        results: list[RecordResult] = []
        for target, record in plan:
            if record is None:
                results.append(not_in_preview(target))
            elif not record.found:
                results.append(RecordResult(target=target, outcome=Outcome.NOT_FOUND))
            elif not record.removing:
                results.append(RecordResult(target=target, outcome=Outcome.NOT_PRESENT))
            else:
                results.append(self._untag_one(runner, calls, target, record.removing, names))
        return results

    def undo(
        self, action: Action, removed: Sequence[RecordResult], progress: Progress
    ) -> list[RecordResult]:
        """One ``POST /conversations/{id}/tags`` per tag reported removed."""
        calls = _CallProgress(sum(len(r.removed) for r in removed), progress)
        runner = BatchRunner(len(removed), _ignore)
        results: list[RecordResult] = []
        for result in removed:
            target, tags = result.target, result.removed
            restored: list[str] = []
            start = calls.done
            outcome = runner.run([target], partial(self._retag, target, tags, restored, calls))[0]
            calls.settle(start, len(tags))
            if outcome.outcome is Outcome.FAILED and restored:
                outcome = with_note(outcome, "restored before the failure: " + ", ".join(restored))
            results.append(outcome)
        return results

    def _untag_one(
        self,
        runner: BatchRunner,
        calls: _CallProgress,
        target: str,
        tags: tuple[str, ...],
        names: Mapping[int, str],
    ) -> RecordResult:
        taken: list[str] = []
        start = calls.done

        def with_taken(results: list[RecordResult]) -> list[RecordResult]:
            # The call raised after some tags were off: undo must still see them.
            return [r.model_copy(update={"removed": tuple(taken)}) for r in results]

        [result] = runner.run(
            [target], lambda: [self._untag(target, tags, names, taken, calls)], salvage=with_taken
        )
        calls.settle(start, len(tags))
        return result

    def _untag(
        self,
        target: str,
        tags: tuple[str, ...],
        names: Mapping[int, str],
        taken: list[str],
        calls: _CallProgress,
    ) -> RecordResult:
        if not is_conversation_id(target):
            return RecordResult(target=target, outcome=Outcome.NOT_FOUND)
        remaining: tuple[str, ...] | None = None
        for tag in tags:
            response = self._session.delete(tag_path(target, tag))
            calls.step()
            if not response.ok:
                return self._untag_refused(target, response, taken)
            body = response.json()
            if still_tagged(body, tag, names):
                return still_tagged_result(target, tag, taken)
            taken.append(tag)
            remaining = remaining_tags(body, names)
        return RecordResult(
            target=target, outcome=Outcome.REMOVED, removed=tuple(taken), remaining=remaining
        )

    def _untag_refused(self, target: str, response: ApiResponse, taken: list[str]) -> RecordResult:
        if response.status_code == 404 and not taken:
            return RecordResult(target=target, outcome=Outcome.NOT_FOUND)
        code, message = error_details(response)
        return RecordResult(
            target=target, outcome=Outcome.FAILED, removed=tuple(taken), code=code, message=message
        )

    def _retag(
        self, target: str, tags: tuple[str, ...], restored: list[str], calls: _CallProgress
    ) -> list[RecordResult]:
        for tag in tags:
            response = self._session.post(f"/conversations/{target}/tags", json={"name": tag})
            calls.step()
            if not response.ok:
                return [retag_refused(target, response, restored)]
            restored.append(tag)
        return [RecordResult(target=target, outcome=Outcome.RESTORED, removed=tuple(restored))]

    def _conversation_tag_ids(self, target: str) -> list[int] | None:
        """The conversation's tag ids, or ``None`` when it does not exist."""
        if not is_conversation_id(target):
            return None  # never put a non-integer in the path: it cannot name a conversation
        response = self._session.get(f"/conversations/{target}")
        if response.status_code == 404:
            return None
        self._session.raise_for_status(response, code=error_details(response)[0])
        body = response.json()
        raw = body.get("tags") if isinstance(body, dict) else None
        return [i for i in raw if isinstance(i, int)] if isinstance(raw, list) else []

    def _catalogue(self) -> dict[int, str]:
        """Every tag of the account, id to name."""
        response = self._session.get("/tags")
        self._session.raise_for_status(response, code=error_details(response)[0])
        return parse_catalogue(response.json())


def build(wiring: Wiring, *, now: Clock = time.time) -> FernandProvider | None:
    """The Fernand provider, or ``None`` when Fernand is not configured."""
    config = wiring.config.fernand
    if config is None:
        return None
    limits = wiring.config.limits
    session = wiring.http.session(
        ProviderName.FERNAND.value,
        base_url=config.base_url,
        auth=StaticAuth({"X-API-Key": config.api_key.get_secret_value()}),
        pacers=(
            rate_limit(
                limits.fernand_writes_per_minute, 60.0, name="fernand-writes", writes_only=True
            ),
            rate_limit(
                limits.fernand_reads_per_minute, 60.0, name="fernand-reads", reads_only=True
            ),
        ),
        classify=fernand_classifier(now),
    )
    return FernandProvider(session)


def is_conversation_id(target: str) -> bool:
    """Fernand conversation ids are positive integers."""
    return target.isascii() and target.isdigit()


def parse_catalogue(body: Any) -> dict[int, str]:
    """``GET /tags`` as id to name, from a bare array or a ``{"data": [...]}`` envelope."""
    items = body.get("data") if isinstance(body, dict) else body
    catalogue: dict[int, str] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), int):
            name = item.get("name") or item.get("slug")
            if isinstance(name, str) and name:
                catalogue[item["id"]] = name
    return catalogue


def tag_name(catalogue: Mapping[int, str], tag_id: int) -> str:
    """A tag's name; an id missing from the catalogue shows as ``#<id>``."""
    return catalogue.get(tag_id, f"#{tag_id}")


def remaining_tags(body: Any, names: Mapping[int, str]) -> tuple[str, ...] | None:
    """The names of the tags a returned conversation still carries, when it lists them."""
    raw = body.get("tags") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        return None
    return tuple(tag_name(names, i) for i in raw if isinstance(i, int))


def still_tagged(body: Any, tag: str, names: Mapping[int, str]) -> bool:
    """Whether the conversation a DELETE returned still lists ``tag`` (a 200 is not proof)."""
    raw = body.get("tags") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        return False
    return any(isinstance(i, int) and names.get(i) == tag for i in raw)


def still_tagged_result(target: str, tag: str, taken: Sequence[str]) -> RecordResult:
    """Fernand said 200 yet kept the tag: report it, with what did come off before."""
    return RecordResult(
        target=target,
        outcome=Outcome.FAILED,
        removed=tuple(taken),
        code="NotRemoved",
        message=f"Fernand answered 200 but the conversation still carries {tag!r}",
    )


def error_details(response: ApiResponse) -> tuple[str, str]:
    """Fernand's ``{error, message}`` body [assumed], or the status when the body says nothing."""
    body = response.json()
    fallback = f"HTTP {response.status_code}"
    summary = f"{response.method} {response.path} answered {response.status_code}"
    if not isinstance(body, dict):
        return fallback, summary
    error, message = body.get("error"), body.get("message")
    code = error if isinstance(error, str) and error else fallback
    return code, message if isinstance(message, str) and message else summary


def retag_refused(target: str, response: ApiResponse, restored: Sequence[str]) -> RecordResult:
    """An undo call refused: not found if nothing was restored yet, else failed."""
    if response.status_code == 404 and not restored:
        return RecordResult(target=target, outcome=Outcome.NOT_FOUND)
    code, message = error_details(response)
    return RecordResult(target=target, outcome=Outcome.FAILED, code=code, message=message)


def with_note(result: RecordResult, note: str) -> RecordResult:
    """The result with ``note`` appended to its message."""
    message = f"{result.message} ({note})" if result.message else note
    return result.model_copy(update={"message": message})


def not_in_preview(target: str) -> RecordResult:
    """A target the confirmed preview does not cover is left alone."""
    return RecordResult(
        target=target, outcome=Outcome.SKIPPED, message="not in the confirmed preview"
    )


def _ignore(done: int, total: int) -> None:
    """BatchRunner's record-level progress is replaced by per-call progress here."""
