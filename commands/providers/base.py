"""The Protocol every provider module implements, and the helpers they share."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

from commands.actions import Action, ProviderName
from commands.config import ProvidersConfig
from commands.errors import (
    AuthenticationFailed,
    DryRunRefused,
    ProviderError,
    ProviderUnreachable,
    QuotaExceeded,
)
from commands.http import IN_DOUBT_NOTE, HttpClient
from commands.results import Outcome, Preview, Progress, RecordPreview, RecordResult
from storage import QuotaLedger, TokenStore

__all__ = [
    "IN_DOUBT",
    "BatchRunner",
    "Provider",
    "ProviderFactory",
    "Wiring",
    "chunked",
    "failed_results",
    "match_tags",
    "no_progress",
    "preview_from_current",
    "read_each",
    "reporting_batches_to",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Provider(Protocol):
    """One SaaS tool. Adding a sixth provider is one module implementing this and one registry line.

    - ``preview`` reads, never writes: what each record has now and will have after.
    - ``remove`` takes off the tags the confirmed ``preview`` showed, batched to the
      provider's maximum, and reports every record's outcome; it raises only when
      nothing could be attempted at all.
    - ``undo`` puts back exactly what ``remove`` reported as removed.
    """

    name: ClassVar[ProviderName]
    batch_size: ClassVar[int]

    def preview(self, action: Action) -> Preview: ...

    def remove(
        self, action: Action, preview: Preview, progress: Progress
    ) -> list[RecordResult]: ...

    def undo(
        self, action: Action, removed: Sequence[RecordResult], progress: Progress
    ) -> list[RecordResult]: ...


@dataclass(frozen=True)
class Wiring:
    """What a provider module needs to build itself: config, the shared client, the token
    store, and the ledger of daily quotas (``None``: each process counts its own)."""

    config: ProvidersConfig
    http: HttpClient
    tokens: TokenStore
    quotas: QuotaLedger | None = None


ProviderFactory = Callable[[Wiring], "Provider | None"]
"""A module's ``build``: returns ``None`` when the provider is not configured."""


def no_progress(done: int, total: int) -> None:
    """A progress callback that ignores progress."""


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def match_tags(requested: Iterable[str], current: Iterable[str]) -> tuple[str, ...]:
    """The record's own spelling of each requested tag it carries (case-insensitive match)."""
    by_key = {tag.casefold(): tag for tag in current}
    found: list[str] = []
    for tag in requested:
        hit = by_key.get(tag.casefold())
        if hit is not None and hit not in found:
            found.append(hit)
    return tuple(found)


def preview_from_current(
    target: str, requested: Sequence[str], current: Sequence[str] | None
) -> RecordPreview:
    """Build a record's preview from its current tags (``None``: the record does not exist)."""
    if current is None:
        return RecordPreview(target=target, found=False)
    removing = match_tags(requested, current)
    gone = {t.casefold() for t in removing}
    after = tuple(t for t in current if t.casefold() not in gone)
    return RecordPreview(target=target, current=tuple(current), removing=removing, after=after)


def read_each(targets: Sequence[str], read: Callable[[str], RecordPreview]) -> list[RecordPreview]:
    """``read`` each target; a target whose read fails on its own is marked unreadable.

    One record whose reads keep failing (a 500 that outlasts the retries, say) must
    not cost the preview of all the others.  Errors about the provider as a whole
    (credentials, no connection, the daily quota, dry-run) still end the preview, and
    so does every read failing: then it is the provider, not a record.
    """
    records: list[RecordPreview] = []
    first: ProviderError | None = None
    for target in targets:
        try:
            records.append(read(target))
        except _WHOLE_PROVIDER:
            raise
        except ProviderError as exc:
            first = first or exc
            records.append(RecordPreview(target=target, unreadable=exc.message))
    if first is not None and all(r.unreadable for r in records):
        raise first
    return records


_WHOLE_PROVIDER = (AuthenticationFailed, ProviderUnreachable, QuotaExceeded, DryRunRefused)


IN_DOUBT = "in_doubt"
"""The code of a result whose change may have been applied although no success was seen."""


def failed_results(
    targets: Iterable[str], error: ProviderError, *, sent: bool = True
) -> list[RecordResult]:
    """Every target failed for the same reason (a whole batch refused).

    ``sent=False`` for targets that were never sent because an earlier batch's error
    stopped the job: even if that error was in doubt, they are not.
    """
    code = getattr(error, "code", None) or type(error).__name__
    message = error.message
    if sent and error.in_doubt:
        code = IN_DOUBT
        message += "; " + (error.doubt or IN_DOUBT_NOTE.format(provider=error.provider))
    return [
        RecordResult(target=t, outcome=Outcome.FAILED, code=code, message=message) for t in targets
    ]


BatchSink = Callable[[Sequence[RecordResult]], None]
_batch_sink: ContextVar[BatchSink | None] = ContextVar("untag_batch_sink", default=None)


@contextmanager
def reporting_batches_to(sink: BatchSink) -> Iterator[None]:
    """Within this block, every batch's results go to ``sink`` as soon as the batch ends.

    The executor records them there, so a crash in the middle of a long job
    leaves each finished batch recorded as done: a retry never sends it again.
    A context variable keeps the provider Protocol free of bookkeeping.
    """
    token = _batch_sink.set(sink)
    try:
        yield
    finally:
        _batch_sink.reset(token)


class BatchRunner:
    """Runs a job's batches, turning one batch's failure into that batch's failed records.

    A failed batch does not stop the job, except when every later batch would
    fail the same way: credentials refused, a daily quota spent, or the provider
    not reachable at all (each later record would sit out the same retries).
    Then the remaining records are reported as failed with that reason, without
    calls.
    """

    def __init__(self, total: int, progress: Progress) -> None:
        self.total = total
        self.done = 0
        self._progress = progress
        self._fatal: ProviderError | None = None

    def run(
        self,
        targets: Sequence[str],
        call: Callable[[], list[RecordResult]],
        *,
        salvage: Callable[[list[RecordResult]], list[RecordResult]] | None = None,
    ) -> list[RecordResult]:
        """Run one batch covering ``targets``; report progress; never raise a ProviderError.

        ``salvage`` completes the failed results of a batch whose call raised part-way
        with what it did do before that (the tags already off): they are recorded with
        the batch, so that an undo after a crash still puts them back.
        """
        if self._fatal is not None:
            results = failed_results(targets, self._fatal, sent=False)
        else:
            try:
                results = call()
            except (AuthenticationFailed, QuotaExceeded, ProviderUnreachable) as exc:
                self._fatal = exc
                results = failed_results(targets, exc)
            except ProviderError as exc:
                log.warning("batch of %d failed: %s", len(targets), exc)
                results = failed_results(targets, exc)
            else:
                salvage = None
            if salvage is not None:
                results = salvage(results)
        sink = _batch_sink.get()
        if sink is not None:
            sink(results)
        self.advance(len(targets))
        return results

    def advance(self, count: int) -> None:
        self.done = min(self.total, self.done + count)
        self._progress(self.done, self.total)
