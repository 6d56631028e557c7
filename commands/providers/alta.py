"""Alta: remove tags from email threads and LinkedIn conversations.

Requests (base ``https://api.altahq.com/v1``, ``Authorization: Bearer <token>``,
plus ``x-account-id`` for logins that reach several accounts):

- remove: ``POST /tags/unassign`` with ``{"entityId", "entityType", "tags"}``, one
  call per entity carrying all of its tags;
- undo: ``POST /tags/assign`` with the same body.

Alta has no endpoint that reads an entity's tags, so the preview cannot show
current tags (``Preview.readable`` is False) and a successful unassign cannot
tell which requested tags the entity actually carried.  Every requested tag is
therefore reported as removed, and **undo re-assigns all requested tags**, even
one the entity did not carry before the removal.

Facts picked where Alta documents nothing: a ``200`` has no body worth
reading; unassigning an absent tag is a harmless ``200``; ``/tags/assign``
takes the same body as ``/tags/unassign``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import ClassVar

from commands.actions import Action, ProviderName
from commands.http import ApiResponse, ProviderSession, StaticAuth, rate_limit
from commands.providers.base import BatchRunner, Wiring
from commands.results import Outcome, Preview, Progress, RecordPreview, RecordResult

__all__ = ["ENTITY_TYPES", "UNREADABLE_NOTE", "AltaProvider", "build"]

ENTITY_TYPES = frozenset({"emailThread", "linkedinConversation"})
"""The ``entityType`` values Alta accepts; ``Action.scope`` must be one of them."""

UNREADABLE_NOTE = (
    "Alta has no API to read an entity's tags: current tags cannot be shown. "
    "Removing a tag the entity does not carry changes nothing."
)
"""The note every Alta preview carries."""

_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class AltaProvider:
    """Alta, through one paced, authenticated session."""

    name: ClassVar[ProviderName] = ProviderName.ALTA
    batch_size: ClassVar[int] = 1  # one entity per unassign call

    def __init__(self, session: ProviderSession) -> None:
        self._session = session

    def preview(self, action: Action) -> Preview:
        """What would be removed; makes no call, since Alta cannot read an entity's tags."""
        entity_type(action)  # refuse a bad scope before the user confirms anything
        records = tuple(
            RecordPreview(target=target, current=None, removing=action.tags, after=None)
            for target in action.targets
        )
        notes = [UNREADABLE_NOTE]
        odd = [t for t in action.targets if not _UUID.match(t)]
        if odd:
            # LinkedIn conversation ids are plain strings, but unassign wants a uuid.
            notes.append("Not UUIDs, Alta will probably refuse them: " + ", ".join(odd))
        return Preview(action=action, records=records, readable=False, notes=tuple(notes))

    def remove(self, action: Action, preview: Preview, progress: Progress) -> list[RecordResult]:
        """One ``POST /tags/unassign`` per entity, in target order."""
        kind = entity_type(action)
        runner = BatchRunner(len(action.targets), progress)
        results: list[RecordResult] = []
        records = preview.by_target()
        for target in action.targets:
            record = records.get(target)
            if record is None:
                results.append(not_in_preview(target))
                runner.advance(1)
            elif not record.removing:
                results.append(RecordResult(target=target, outcome=Outcome.NOT_PRESENT))
                runner.advance(1)
            else:
                results += runner.run(
                    [target], partial(self._unassign, kind, target, record.removing)
                )
        return results

    def undo(
        self, action: Action, removed: Sequence[RecordResult], progress: Progress
    ) -> list[RecordResult]:
        """One ``POST /tags/assign`` per entity with exactly the tags reported removed."""
        kind = entity_type(action)
        runner = BatchRunner(len(removed), progress)
        results: list[RecordResult] = []
        for result in removed:
            target, tags = result.target, result.removed
            if not tags:
                results.append(RecordResult(target=target, outcome=Outcome.RESTORED))
                runner.advance(1)
                continue
            results += runner.run([target], partial(self._assign, kind, target, tags))
        return results

    def _unassign(self, kind: str, target: str, tags: tuple[str, ...]) -> list[RecordResult]:
        response = self._session.post("/tags/unassign", json=tag_request(kind, target, tags))
        if response.ok:
            return [RecordResult(target=target, outcome=Outcome.REMOVED, removed=tags)]
        return [refusal(target, response)]

    def _assign(self, kind: str, target: str, tags: tuple[str, ...]) -> list[RecordResult]:
        response = self._session.post("/tags/assign", json=tag_request(kind, target, tags))
        if response.ok:
            return [RecordResult(target=target, outcome=Outcome.RESTORED, removed=tags)]
        return [refusal(target, response)]


def build(wiring: Wiring) -> AltaProvider | None:
    """The Alta provider, or ``None`` when Alta is not configured."""
    config = wiring.config.alta
    if config is None:
        return None
    headers = {"Authorization": f"Bearer {config.api_token.get_secret_value()}"}
    if config.account_id:
        # Logins that reach several accounts get a 401 without it.
        headers["x-account-id"] = config.account_id
    session = wiring.http.session(
        ProviderName.ALTA.value,
        base_url=config.base_url,
        auth=StaticAuth(headers),
        pacers=(rate_limit(wiring.config.limits.alta_per_minute, 60.0, name="alta"),),
    )
    return AltaProvider(session)


def entity_type(action: Action) -> str:
    """Alta's ``entityType`` for the action; raises ``ValueError`` for anything else."""
    if action.scope not in ENTITY_TYPES:
        raise ValueError(
            f"Alta entity type must be one of {sorted(ENTITY_TYPES)}, not {action.scope!r}"
        )
    return action.scope


def tag_request(kind: str, target: str, tags: Sequence[str]) -> dict[str, object]:
    """Alta's ``TagRequest`` body, shared by assign and unassign."""
    return {"entityId": target, "entityType": kind, "tags": list(tags)}


def refusal(target: str, response: ApiResponse) -> RecordResult:
    """A non-2xx answer about one entity: not found, or failed with Alta's own error."""
    if response.status_code == 404:
        return RecordResult(target=target, outcome=Outcome.NOT_FOUND)
    code, message = error_details(response)
    return RecordResult(target=target, outcome=Outcome.FAILED, code=code, message=message)


def error_details(response: ApiResponse) -> tuple[str, str]:
    """Alta's ``{error, message}`` body, or the status when the body says nothing."""
    body = response.json()
    fallback = f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return fallback, f"{response.method} {response.path} answered {response.status_code}"
    error, message = body.get("error"), body.get("message")
    code = error if isinstance(error, str) and error else fallback
    return code, message if isinstance(message, str) and message else code


def not_in_preview(target: str) -> RecordResult:
    """A target the confirmed preview does not cover is left alone."""
    return RecordResult(
        target=target, outcome=Outcome.SKIPPED, message="not in the confirmed preview"
    )
