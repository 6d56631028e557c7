"""What providers report back: previews before a removal and outcomes after it."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from commands.actions import Action

__all__ = ["Outcome", "Preview", "Progress", "RecordPreview", "RecordResult"]

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a long removal runs."""


class Outcome(StrEnum):
    """The fate of one record."""

    REMOVED = "removed"  # at least one requested tag was taken off
    NOT_PRESENT = "not present"  # none of the requested tags was on the record: nothing to do
    LOCKED = (
        "locked"  # the provider refused because the record is locked (Zoho approvals, blueprints)
    )
    NOT_FOUND = "not found"
    FAILED = "failed"  # any other refusal; ``code`` and ``message`` say why
    RESTORED = "restored"  # undo put the removed tags back
    SKIPPED = "skipped"  # not attempted (dry run, or the job stopped before reaching it)


class RecordPreview(BaseModel):
    """One record as it is now and as it will be after the removal.

    ``current`` and ``after`` are ``None`` when the provider cannot tell (Alta has
    no endpoint that reads an entity's tags).  ``unreadable`` says why this one
    record could not be read although the others could (its reads kept failing):
    nothing is sent to it, and it is reported failed so that Retry failed reads
    it again.
    """

    model_config = ConfigDict(frozen=True)

    target: str
    found: bool = True
    current: tuple[str, ...] | None = None
    removing: tuple[str, ...] = ()
    after: tuple[str, ...] | None = None
    unreadable: str | None = None

    @property
    def nothing_to_do(self) -> bool:
        return self.found and self.current is not None and not self.removing


class Preview(BaseModel):
    """What the removal would do, read from the provider without changing anything."""

    model_config = ConfigDict(frozen=True)

    action: Action
    records: tuple[RecordPreview, ...] = ()
    readable: bool = True  # False when the provider cannot read current tags
    undoable: bool = True
    notes: tuple[str, ...] = ()
    affected_count: int | None = None  # account-wide deletion: contacts that carry the tags
    resolved_tags: dict[str, str] = {}  # tag name -> provider id, where the provider needs ids

    def record(self, target: str) -> RecordPreview | None:
        return next((r for r in self.records if r.target == target), None)

    def by_target(self) -> dict[str, RecordPreview]:
        """Each target's record, the first when listed twice (as ``record`` finds it).

        For a removal that looks up every target: ``record`` scans the records, so
        looking up each of 2,000 with it is quadratic.
        """
        found: dict[str, RecordPreview] = {}
        for r in self.records:
            found.setdefault(r.target, r)
        return found

    @property
    def nothing_to_do(self) -> bool:
        """The records were read and none carries a requested tag: nothing to send or report."""
        return self.readable and not any(
            r.removing or r.unreadable is not None for r in self.records
        )


class RecordResult(BaseModel):
    """The outcome for one record (or, for account-wide deletion, one tag).

    ``removed`` lists exactly the tags taken off, which is what undo puts back.
    """

    model_config = ConfigDict(frozen=True)

    target: str
    outcome: Outcome
    removed: tuple[str, ...] = ()
    remaining: tuple[str, ...] | None = None
    code: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in {Outcome.REMOVED, Outcome.NOT_PRESENT, Outcome.RESTORED}
