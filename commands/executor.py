"""The pipeline every surface shares: authorize → preview → confirm → execute → report → undo.

The console, ``untag run`` and the Slack listeners all drive :class:`Untag`;
they differ only in how they render a :class:`Plan` and a :class:`Report`.

Each step is recorded before its side effect: an operation is ``running`` in
the database before the first provider call, and every record's outcome is
stored when the provider reports it, so a crash leaves an operation visibly
unfinished rather than silently half-done.  The claim
(``previewed`` → ``running``) is a compare-and-set in SQLite, so a double
submit executes once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from commands.actions import Action, Operation, ProviderName
from commands.errors import (
    AuthorizationDenied,
    ConfigError,
    OperationConflict,
    ProviderError,
    StorageError,
    UntagError,
)
from commands.policy import Permissions, Request, Verb
from commands.providers import Provider
from commands.providers.base import no_progress, reporting_batches_to
from commands.results import Outcome, Preview, Progress, RecordPreview, RecordResult
from storage import (
    AuditLog,
    ChildExists,
    EventKind,
    NewResult,
    OperationRecord,
    OperationStore,
    OpKind,
    OpStatus,
    PlanStore,
    ResultRecord,
    StoreError,
    immediate,
)

__all__ = ["Plan", "Report", "Untag"]

log = logging.getLogger(__name__)

_OK = frozenset({Outcome.REMOVED, Outcome.NOT_PRESENT, Outcome.RESTORED, Outcome.SKIPPED})


@dataclass(frozen=True)
class Plan:
    """A previewed operation waiting for the user's yes or no."""

    operation: OperationRecord
    action: Action
    preview: Preview
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """What happened: the operation's final record and one result per record."""

    operation: OperationRecord
    action: Action
    results: tuple[RecordResult, ...]

    @property
    def counts(self) -> Counter[Outcome]:
        return Counter(r.outcome for r in self.results)

    @property
    def undoable(self) -> bool:
        return (
            self.operation.kind == OpKind.REMOVE
            and not self.operation.dry_run
            and any(r.outcome is Outcome.REMOVED for r in self.results)
        )

    @property
    def failed(self) -> tuple[RecordResult, ...]:
        return tuple(r for r in self.results if r.outcome not in _OK)

    def summary(self) -> str:
        """One line: what was done, with a count per outcome."""
        total = len(self.results)
        parts = ", ".join(f"{n} {outcome.value}" for outcome, n in self.counts.most_common())
        verb = {
            OpKind.UNDO: "Undo",
            OpKind.DELETE_TAGS: "Account-wide deletion",
        }.get(OpKind(self.operation.kind), "Removal")
        if self.operation.dry_run:
            verb = f"Dry run: {verb.lower()}"
        state = self.operation.status.replace("_", " ")
        noun = "record" if total == 1 else "records"
        return f"{verb} {state}: {total} {noun} ({parts})" if total else f"{verb} {state}"


class Untag:
    """The engine: providers, the operation ledger, and who may do what."""

    def __init__(
        self,
        providers: Mapping[ProviderName, Provider],
        operations: OperationStore,
        plans: PlanStore,
        *,
        audit: AuditLog | None = None,
        admins: Collection[str] = (),
        dry_run: bool = False,
        permissions: Permissions | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.operations = operations
        self.plans = plans
        self.audit = audit
        self._teams: OrderedDict[str, str | None] = OrderedDict()
        self.admins = frozenset(admins)
        self.dry_run = dry_run
        # No policy: everyone may remove; deletion and audit are for ``admins``.
        self.permissions = permissions or Permissions(None, self.admins)

    @property
    def enabled(self) -> list[ProviderName]:
        return [name for name in ProviderName if name in self.providers]

    def is_admin(self, user: str) -> bool:
        return self.permissions.is_admin(user)

    def may_audit(self, user: str, *, team: str | None = None) -> bool:
        """Whether ``user`` may query the audit log (``authorize`` also records a refusal)."""
        return self.permissions.may_audit(user, team=team)

    def allowed_providers(self, user: str, *, team: str | None = None) -> list[ProviderName]:
        """The enabled providers ``user`` may run something on: what ``help`` lists."""
        allowed = set(self.permissions.allowed_providers(user, team=team))
        return [name for name in self.enabled if name in allowed]

    def authorize(
        self,
        user: str,
        action: Action | Request,
        *,
        op_id: str | None = None,
        team: str | None = None,
    ) -> None:
        """Raise :class:`AuthorizationDenied` unless the permissions allow this.

        ``team`` is the Slack workspace of the signed request (``None`` off
        Slack).  A refusal is itself an event in the audit log.
        """
        decision = self.permissions.decide(user, action, team=team)
        if decision.allowed:
            return
        if isinstance(action, Action):
            detail: dict[str, object] = _about(action)
        else:
            detail = {"operation": action.operation.value, "scope": action.scope or ""}
            if action.provider is not None:
                detail["provider"] = action.provider.value
        detail["reason"] = decision.reason
        self._event(EventKind.DENIED, user, op_id, detail, team=team)
        raise AuthorizationDenied(decision.reason)

    def check(self, user: str, action: Action, *, team: str | None = None) -> None:
        """The checks that need no I/O: the provider is enabled and the user may run this."""
        self._provider(action.provider)
        self.authorize(user, action, team=team)

    def plan(self, user: str, action: Action, *, context: Mapping[str, str] | None = None) -> Plan:
        """Authorize, record the request, read the preview, and keep the plan until confirmed.

        ``context`` is kept with the plan for whoever confirms it (e.g. the Slack
        channel to report to); it must hold no secret.
        """
        provider = self._provider(action.provider)
        self.authorize(user, action, team=(context or {}).get("team") or None)
        with _storage():
            operation = self.operations.create(
                kind=_kind(action),
                requester=user,
                provider=action.provider.value,
                scope=action.scope,
                targets=action.targets,
                tags=action.tags,
                dry_run=self.dry_run,
            )
        self._remember_team(operation.id, (context or {}).get("team") or None)
        self._event(EventKind.REQUESTED, user, operation.id, _about(action))
        try:
            preview = provider.preview(action)
        except ProviderError as exc:
            self._finish(operation.id, OpStatus.FAILED, error=str(exc), actor=user)
            raise
        context = dict(context or {})
        self._event(EventKind.PREVIEWED, user, operation.id, _preview_counts(preview))
        with _storage():
            self.plans.save(
                operation.id,
                action=action.model_dump_json(),
                preview=preview.model_dump_json(),
                context=json.dumps(context),
            )
            self.operations.advance(
                operation.id, to=OpStatus.PREVIEWED, expect={OpStatus.REQUESTED}
            )
            current = self.operations.get(operation.id)
        assert current is not None
        return Plan(operation=current, action=action, preview=preview, context=context)

    def load_plan(self, op_id: str) -> Plan | None:
        """A stored plan, in whatever state its operation is now."""
        with _storage():
            stored = self.plans.load(op_id)
            operation = self.operations.get(op_id)
        if stored is None or operation is None:
            return None
        return Plan(
            operation=operation,
            action=Action.model_validate_json(stored.action),
            preview=Preview.model_validate_json(stored.preview),
            context=json.loads(stored.context),
        )

    def cancel(self, user: str, op_id: str) -> None:
        """The user said no: nothing is sent to the provider."""
        plan = self._stored_plan(op_id)
        self._require_owner(user, plan.operation)
        with _storage():
            cancelled = self.operations.advance(
                op_id, to=OpStatus.CANCELLED, expect={OpStatus.PREVIEWED}
            )
        if cancelled:
            self._event(EventKind.CANCELLED, user, op_id, {"provider": plan.action.provider})

    def confirm(self, user: str, op_id: str, *, team: str | None = None) -> Plan:
        """Claim a previewed plan for execution, exactly once across threads and processes.

        Fast (one SQLite transaction), so a Slack listener can call it before
        its ack and tell a double submit apart at once.
        """
        plan = self._stored_plan(op_id)
        self._require_owner(user, plan.operation)
        # Again: permissions may have changed since the preview.
        self.authorize(user, plan.action, op_id=op_id, team=team)
        self._claim(op_id)
        self._event(EventKind.CONFIRMED, user, op_id, {"provider": plan.action.provider})
        return plan

    def abandon(self, op_id: str, reason: str) -> None:
        """A claimed operation that will not run after all (no capacity): failed, nothing sent."""
        self._finish(op_id, OpStatus.FAILED, error=reason)

    def run(self, plan: Plan, progress: Progress = no_progress) -> Report:
        """Execute a confirmed plan; every record gets an outcome."""
        recording = _Recording.of(plan.operation)
        if self.dry_run or plan.operation.dry_run:
            results = _dry_run_results(plan.preview)
        else:
            provider = self._provider(plan.action.provider)
            action, preview, unread = _without_unreadable(plan.action, plan.preview)

            def remove() -> list[RecordResult]:
                if not unread:
                    return provider.remove(action, preview, progress)
                done = provider.remove(action, preview, progress) if action.targets else []
                return _in_target_order(plan.action, [*done, *unread])

            results = self._run(recording, remove)
        return self._complete(recording, plan.action, results)

    def execute(self, user: str, plan: Plan, progress: Progress = no_progress) -> Report:
        """Confirm and run in one go (console, ``untag run``)."""
        return self.run(self.confirm(user, plan.operation.id), progress)

    def undo(self, user: str, op_id: str | None = None, progress: Progress = no_progress) -> Report:
        """Put back exactly what an operation removed (by default the user's last removal).

        Runs once however often it is asked: the undo is a child operation, and
        the database admits one real undo per operation.
        """
        origin = self._undo_target(user, op_id)
        action = _action_of(origin)
        if action.is_account_wide:
            raise OperationConflict("account-wide deletion cannot be undone")
        self.authorize(user, Request(Verb.UNDO, action.provider, action.scope), op_id=origin.id)
        with _storage():
            removed = [
                _result_of(r)
                for r in self.operations.results(origin.id)
                if r.outcome == Outcome.REMOVED
            ]
        if not removed:
            raise OperationConflict("that operation removed nothing, so there is nothing to undo")
        provider = self._provider(action.provider)
        child = self._child(origin, OpKind.UNDO, user, removed, "was already undone")
        # Each batch is recorded naming the tags it put back, so neither a crash nor
        # the completion needs them added later.
        recording = _Recording.of(child, amend=lambda batch: _with_restored_tags(batch, removed))
        if self.dry_run:
            results = [
                RecordResult(
                    target=r.target,
                    outcome=Outcome.SKIPPED,
                    removed=r.removed,
                    message="dry run: would restore " + ", ".join(r.removed),
                )
                for r in removed
            ]
        else:
            results = self._run(recording, lambda: provider.undo(action, removed, progress))
            results = _with_restored_tags(results, removed)
        report = self._complete(recording, action, results)
        if not self.dry_run and report.operation.status == OpStatus.SUCCEEDED:
            with _storage():
                self.operations.advance(origin.id, to=OpStatus.UNDONE)
            self._event(EventKind.UNDONE, user, origin.id, {"undo": child.id})
        return report

    def retry_failed(self, user: str, op_id: str, progress: Progress = no_progress) -> Report:
        """Run again, once, for the records that failed or were never reached.

        Records that already succeeded are never sent again.  The retry reads a
        fresh preview for the remaining records, since they may have changed.
        """
        with _storage():
            origin = self.operations.get(op_id)
        if origin is None:
            raise OperationConflict("there is no such operation")
        self._require_owner(user, origin)
        if origin.kind not in (OpKind.REMOVE, OpKind.RETRY, OpKind.DELETE_TAGS):
            raise OperationConflict("only a removal can be retried")
        remaining = self._unfinished_targets(origin)
        if not remaining:
            raise OperationConflict("nothing failed, so there is nothing to retry")
        base = _action_of(origin)
        # Account-wide deletion has no targets: its unfinished items are tags.
        action = base.model_copy(
            update={"targets": remaining} if base.targets else {"tags": remaining}
        )
        provider = self._provider(action.provider)
        # Retrying is doing the original again: it needs both permissions.
        self.authorize(user, Request(Verb.RETRY, action.provider, action.scope), op_id=origin.id)
        self.authorize(user, action, op_id=origin.id)
        placeholder = [RecordResult(target=t, outcome=Outcome.FAILED) for t in remaining]
        child = self._child(origin, OpKind.RETRY, user, placeholder, "was already retried")
        self._event(EventKind.RETRIED, user, origin.id, {"retry": child.id, "targets": remaining})
        try:
            preview = provider.preview(action)
        except ProviderError as exc:
            self._finish(child.id, OpStatus.FAILED, error=str(exc))
            raise
        plan = Plan(operation=child, action=action, preview=preview, context={})
        self._claim(child.id, expect=(OpStatus.REQUESTED,))
        return self.run(plan, progress)

    def _unfinished_targets(self, origin: OperationRecord) -> tuple[str, ...]:
        with _storage():
            results = {r.target: r for r in self.operations.results(origin.id)}
        targets = origin.targets or origin.tags  # account-wide deletion reports per tag
        return tuple(
            t for t in targets if t not in results or Outcome(results[t].outcome) not in _OK
        )

    def _child(
        self,
        origin: OperationRecord,
        kind: OpKind,
        user: str,
        records: Sequence[RecordResult],
        conflict: str,
    ) -> OperationRecord:
        try:
            with _storage():
                child = self.operations.create(
                    kind=kind,
                    requester=user,
                    provider=origin.provider,
                    scope=origin.scope,
                    targets=[r.target for r in records],
                    tags=sorted({t for r in records for t in r.removed} or set(origin.tags)),
                    dry_run=self.dry_run,
                    parent_id=origin.id,
                )
        except StorageError as exc:
            if isinstance(exc.__cause__, ChildExists):
                raise OperationConflict(f"that operation {conflict}") from None
            raise
        self._event(
            EventKind.REQUESTED,
            user,
            child.id,
            {
                "kind": kind.value,
                "parent": origin.id,
                "provider": origin.provider,
                "targets": list(child.targets),
                "tags": list(child.tags),
            },
        )
        if kind is OpKind.UNDO:
            self._claim(child.id, expect=(OpStatus.REQUESTED,))
        return child

    def _stored_plan(self, op_id: str) -> Plan:
        plan = self.load_plan(op_id)
        if plan is None:
            raise OperationConflict("this confirmation has expired or was never issued")
        return plan

    def _undo_target(self, user: str, op_id: str | None) -> OperationRecord:
        with _storage():
            origin = self.operations.get(op_id) if op_id else self.operations.last_undoable(user)
        if origin is None:
            raise OperationConflict("there is no operation of yours to undo")
        self._require_owner(user, origin)
        if origin.status == OpStatus.UNDONE:
            raise OperationConflict("that operation was already undone")
        if origin.kind not in (OpKind.REMOVE, OpKind.RETRY) or origin.dry_run:
            raise OperationConflict("only a real removal can be undone")
        return origin

    def _provider(self, name: ProviderName) -> Provider:
        provider = self.providers.get(name)
        if provider is None:
            enabled = ", ".join(self.enabled) or "none"
            raise ConfigError(f"{name} is not configured here (enabled: {enabled})")
        return provider

    def _require_owner(self, user: str, operation: OperationRecord) -> None:
        if operation.requester != user and not self.is_admin(user):
            raise AuthorizationDenied("only the requester or an admin may act on this operation")

    def _claim(self, op_id: str, *, expect: Sequence[OpStatus] = (OpStatus.PREVIEWED,)) -> None:
        with _storage():
            claimed = self.operations.advance(op_id, to=OpStatus.RUNNING, expect=set(expect))
        if not claimed:
            raise OperationConflict("this operation was already executed, cancelled or expired")

    def _run(
        self, recording: _Recording, call: Callable[[], list[RecordResult]]
    ) -> list[RecordResult]:
        op_id = recording.op_id
        try:
            with reporting_batches_to(lambda batch: self._record_batch(recording, batch)):
                return call()
        except UntagError as exc:
            self._finish(op_id, OpStatus.FAILED, error=str(exc))
            raise
        except Exception:
            self._finish(op_id, OpStatus.FAILED, error="internal error; see the server log")
            log.exception("operation %s failed unexpectedly", op_id)
            raise

    def _record_batch(self, recording: _Recording, batch: Sequence[RecordResult]) -> None:
        """A batch's outcomes and their events, committed together before the provider goes on.

        One commit per batch, even a one-record batch, because that commit is what
        a crash (SIGKILL, power loss) leaves recorded; what it costs was cut instead:
        nothing is read back, and a batch's events are appended together.
        """
        batch = recording.amend(batch)
        rows = [_new_result(r) for r in batch]
        with _storage(), self._transaction():
            self.operations.record_results(recording.op_id, rows)
            if self.audit is not None:
                self.audit.append_many(
                    EventKind.RECORD,
                    actor=recording.actor or "unknown",
                    team=self._team_of(recording.op_id),
                    op_id=recording.op_id,
                    details=[_record_detail(recording.provider, r) for r in batch],
                )
        recording.stored.update((row.target, row) for row in rows)

    def _complete(
        self, recording: _Recording, action: Action, results: list[RecordResult]
    ) -> Report:
        """Record only what the batches did not (or not as it ended), then the final status.

        Results a batch already recorded are not written again: for a 10,000-record
        Zoho job that rewrite was about a fifth of the job's time.
        """
        op_id = recording.op_id
        with _storage(), self._transaction():
            late = [r for r in results if r.target not in recording.stored]
            self._record_batch(recording, late)
            # A provider may amend a result after its batch was recorded (Fernand adds
            # the tags a failed conversation did lose): rewrite only those.
            self.operations.record_results(op_id, recording.amended(results))
            status = _final_status(results)
            self._finish(op_id, status)
            operation = self.operations.get(op_id)
        assert operation is not None
        return Report(operation=operation, action=action, results=tuple(results))

    def _finish(
        self, op_id: str, status: OpStatus, *, error: str | None = None, actor: str | None = None
    ) -> None:
        with _storage(), self._transaction():
            self.operations.advance(op_id, to=status, error=error)
            operation = self.operations.get(op_id)
            kind = EventKind.FAILED if status is OpStatus.FAILED else EventKind.COMPLETED
            detail: dict[str, object] = {"status": status.value}
            if operation is not None:
                detail["provider"] = operation.provider
            if error:
                detail["error"] = error
            who = actor or (operation.requester if operation else "system")
            self._event(kind, who, op_id, detail)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One SQLite transaction around a state change and its events (when auditing)."""
        if self.audit is None:
            yield
            return
        with immediate(self.audit.database):
            yield

    def _event(
        self,
        kind: EventKind,
        actor: str,
        op_id: str | None,
        detail: Mapping[str, object],
        *,
        team: str | None = None,
    ) -> None:
        """Append an event; the actor's workspace is the one the operation was asked from."""
        if self.audit is None:
            return
        with _storage():
            team = team or (self._team_of(op_id) if op_id else None)
            self.audit.append(kind, actor=actor or "unknown", team=team, op_id=op_id, detail=detail)

    def _team_of(self, op_id: str) -> str | None:
        """The Slack workspace an operation (or the one it undoes or retries) came from."""
        if op_id in self._teams:
            return self._teams[op_id]
        stored = self.plans.load(op_id)
        team: str | None = None
        if stored is not None:
            team = json.loads(stored.context).get("team") or None
        else:
            operation = self.operations.get(op_id)
            if operation is not None and operation.parent_id:
                team = self._team_of(operation.parent_id)
        self._remember_team(op_id, team)
        return team

    def _remember_team(self, op_id: str, team: str | None) -> None:
        self._teams[op_id] = team
        while len(self._teams) > 1024:  # a cache, not a registry: keep it small
            self._teams.popitem(last=False)


def _unchanged(batch: Sequence[RecordResult]) -> Sequence[RecordResult]:
    return batch


@dataclass
class _Recording:
    """One running operation's per-batch recording: who, where, and what is stored so far.

    Read from the operation once, so recording a batch reads nothing back: an
    operation row holds every target, and decoding it per one-record batch
    made a Fernand job quadratic.
    """

    op_id: str
    actor: str
    provider: str
    amend: Callable[[Sequence[RecordResult]], Sequence[RecordResult]] = _unchanged
    stored: dict[str, NewResult] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        operation: OperationRecord,
        *,
        amend: Callable[[Sequence[RecordResult]], Sequence[RecordResult]] = _unchanged,
    ) -> _Recording:
        """``amend`` completes a batch's results before they are recorded."""
        return cls(operation.id, operation.requester, operation.provider, amend)

    def amended(self, results: Sequence[RecordResult]) -> list[NewResult]:
        """Each target's final result where it differs from the stored one (the last wins)."""
        final = {r.target: _new_result(r) for r in results}
        return [row for target, row in final.items() if self.stored.get(target) != row]


@contextmanager
def _storage() -> Iterator[None]:
    """Translate the storage layer's errors into the project's tree."""
    try:
        yield
    except StoreError as exc:
        raise StorageError(f"database error: {exc}; nothing further was executed") from exc


def _kind(action: Action) -> OpKind:
    return OpKind.DELETE_TAGS if action.operation is Operation.DELETE_TAGS else OpKind.REMOVE


def _final_status(results: Sequence[RecordResult]) -> OpStatus:
    ok = sum(1 for r in results if r.outcome in _OK)
    if ok == len(results):
        return OpStatus.SUCCEEDED
    return OpStatus.FAILED if ok == 0 else OpStatus.PARTIALLY_FAILED


def _without_unreadable(
    action: Action, preview: Preview
) -> tuple[Action, Preview, list[RecordResult]]:
    """The plan without the records the preview could not read, and their (failed) results:
    nothing is sent to a record whose tags were not seen."""
    unread = [_unreadable_result(r) for r in preview.records if r.unreadable is not None]
    if not unread:
        return action, preview, []
    skipped = {r.target for r in unread}
    readable = action.model_copy(
        update={"targets": tuple(t for t in action.targets if t not in skipped)}
    )
    records = tuple(r for r in preview.records if r.target not in skipped)
    return readable, preview.model_copy(update={"action": readable, "records": records}), unread


def _unreadable_result(record: RecordPreview) -> RecordResult:
    return RecordResult(
        target=record.target,
        outcome=Outcome.FAILED,
        code="unreadable",
        message=f"its current tags could not be read ({record.unreadable}); nothing was sent "
        "to it. Retry failed reads it again",
    )


def _in_target_order(action: Action, results: list[RecordResult]) -> list[RecordResult]:
    rank = {target: n for n, target in enumerate(action.targets)}
    return sorted(results, key=lambda r: rank.get(r.target, len(rank)))


def _dry_run_results(preview: Preview) -> list[RecordResult]:
    results: list[RecordResult] = []
    for record in preview.records:
        if record.unreadable is not None:
            results.append(_unreadable_result(record))
        elif not record.found:
            results.append(RecordResult(target=record.target, outcome=Outcome.NOT_FOUND))
        elif record.nothing_to_do:
            results.append(RecordResult(target=record.target, outcome=Outcome.NOT_PRESENT))
        else:
            results.append(
                RecordResult(
                    target=record.target,
                    outcome=Outcome.SKIPPED,
                    removed=record.removing,
                    remaining=record.after,
                    message="dry run: would remove " + ", ".join(record.removing),
                )
            )
    return results


def _with_restored_tags(
    results: Sequence[RecordResult], removed: Sequence[RecordResult]
) -> list[RecordResult]:
    """Undo results name the tags put back: exactly what the original removal took off."""
    taken = {r.target: r.removed for r in removed}
    return [
        r.model_copy(update={"removed": taken.get(r.target, ())})
        if r.outcome is Outcome.RESTORED and not r.removed
        else r
        for r in results
    ]


def _new_result(result: RecordResult) -> NewResult:
    return NewResult(
        target=result.target,
        outcome=result.outcome.value,
        removed=result.removed,
        remaining=result.remaining,
        code=result.code,
        message=result.message,
    )


def _result_of(stored: ResultRecord) -> RecordResult:
    return RecordResult(
        target=stored.target,
        outcome=Outcome(stored.outcome),
        removed=stored.removed,
        remaining=stored.remaining,
        code=stored.code,
        message=stored.message,
    )


def _action_of(operation: OperationRecord) -> Action:
    return Action(
        provider=ProviderName(operation.provider),
        operation=Operation.DELETE_TAGS
        if operation.kind == OpKind.DELETE_TAGS
        else Operation.REMOVE,
        scope=operation.scope,
        targets=operation.targets,
        tags=operation.tags,
    )


def _about(action: Action) -> dict[str, object]:
    """An action as audit detail: what, where, which records, which tags."""
    return {
        "provider": action.provider.value,
        "operation": action.operation.value,
        "scope": action.scope or "",
        "targets": list(action.targets),
        "tags": list(action.tags),
    }


def _preview_counts(preview: Preview) -> dict[str, object]:
    records = preview.records
    return {
        "provider": preview.action.provider.value,
        "to_change": sum(1 for r in records if r.found and r.removing),
        "nothing_to_do": sum(1 for r in records if r.nothing_to_do),
        "not_found": sum(1 for r in records if not r.found),
        "unreadable": sum(1 for r in records if r.unreadable is not None),
        "readable": preview.readable,
        "affected_count": preview.affected_count,
    }


def _record_detail(provider: str, result: RecordResult) -> dict[str, object]:
    detail: dict[str, object] = {
        "provider": provider,
        "target": result.target,
        "outcome": result.outcome.value,
        "removed": list(result.removed),
    }
    if result.remaining is not None:
        detail["remaining"] = list(result.remaining)
    if result.code:
        detail["code"] = result.code
    if result.message:
        detail["message"] = result.message
    return detail
