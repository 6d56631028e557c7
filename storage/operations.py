"""The operation ledger: one row per requested action, plus its per-target results.

An operation is created when a modal opens (``requested``), and moves through
its statuses with :meth:`OperationStore.advance`, a compare-and-set.  Claiming a
submit exactly once is ``advance(op, to="running", expect={"previewed",
"confirmed"})``: of any number of racing callers, threads or processes,
exactly one gets ``True``, and the row records that caller's process as its
``owner`` (:mod:`storage.owners`).  Recovery after a crash,
:meth:`OperationStore.interrupt_orphaned`, interrupts only the ``running``
operations whose owner is gone.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from storage._codec import (
    Row,
    dump_strings,
    dump_time,
    integer,
    load_strings,
    load_time,
    opt_text,
    text,
    utc_now,
)
from storage.db import Database, immediate
from storage.errors import ChildExists, UnknownOperation
from storage.owners import Liveness, current_owner, owner_liveness

__all__ = [
    "NewResult",
    "OpKind",
    "OpStatus",
    "OperationRecord",
    "OperationStore",
    "Recovery",
    "ResultRecord",
]


class OpKind(StrEnum):
    """What an operation does."""

    REMOVE = "remove"
    DELETE_TAGS = "delete-tags"
    UNDO = "undo"
    RETRY = "retry"


class OpStatus(StrEnum):
    """Where an operation is in its life."""

    REQUESTED = "requested"
    PREVIEWED = "previewed"
    CONFIRMED = "confirmed"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    UNDONE = "undone"


@dataclass(frozen=True)
class OperationRecord:
    """One operation as stored.  ``parent_id`` links an undo or retry to its origin.

    ``owner`` is the process that last claimed it for ``running``
    (:func:`storage.owners.current_owner`), ``None`` until then.
    """

    id: str
    kind: str
    requester: str
    provider: str
    scope: str | None
    targets: tuple[str, ...]
    tags: tuple[str, ...]
    status: str
    dry_run: bool
    parent_id: str | None
    created_at: datetime
    updated_at: datetime
    error: str | None
    owner: str | None = None


@dataclass(frozen=True)
class NewResult:
    """The outcome for one target, as handed to :meth:`OperationStore.record_results`.

    ``remaining`` is ``None`` when the provider did not say what is left.
    """

    target: str
    outcome: str
    removed: tuple[str, ...] = ()
    remaining: tuple[str, ...] | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class ResultRecord:
    """The stored outcome for one target of one operation."""

    op_id: str
    target: str
    outcome: str
    removed: tuple[str, ...]
    remaining: tuple[str, ...] | None
    code: str | None
    message: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class Recovery:
    """What :meth:`OperationStore.interrupt_orphaned` did, oldest operation first.

    ``elsewhere`` are still ``running`` under an owner that cannot be checked
    from this host: left alone, for the caller to report.
    """

    interrupted: list[OperationRecord]
    elsewhere: list[OperationRecord]


_OP_COLUMNS = (
    "id, kind, requester, provider, scope, targets, tags, status, dry_run, parent_id,"
    " created_at, updated_at, error, owner"
)
_RESULT_COLUMNS = "op_id, target, outcome, removed, remaining, code, message, recorded_at"
# ON CONFLICT DO UPDATE rewrites the row in place, so it keeps its rowid (its position).
# Written out rather than sqlite-utils' upsert_all, which reads the table's schema on
# every call: a one-record batch (Fernand, Alta) paid that once per record.
_UPSERT_RESULT = (
    f"INSERT INTO results ({_RESULT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (op_id, target) DO UPDATE SET outcome = excluded.outcome,"
    " removed = excluded.removed, remaining = excluded.remaining, code = excluded.code,"
    " message = excluded.message, recorded_at = excluded.recorded_at"
)
# An undo child in one of these states means its parent is (being) undone.
_UNDO_TAKEN = (OpStatus.SUCCEEDED, OpStatus.PARTIALLY_FAILED, OpStatus.RUNNING)


class OperationStore:
    """Create operations, move them along, and record what happened to each target."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = db
        self._clock = clock

    def create(
        self,
        *,
        kind: str,
        requester: str,
        provider: str,
        scope: str | None,
        targets: Sequence[str],
        tags: Sequence[str],
        dry_run: bool = False,
        parent_id: str | None = None,
    ) -> OperationRecord:
        """Insert a new ``requested`` operation with a fresh uuid4 hex id and return it.

        Raises ``ValueError`` for an unknown ``kind`` and :class:`UnknownOperation`
        for a ``parent_id`` that does not exist.
        """
        now = self._now()
        record = OperationRecord(
            id=uuid.uuid4().hex,
            kind=OpKind(kind).value,
            requester=requester,
            provider=provider,
            scope=scope,
            targets=_strings(targets),
            tags=_strings(tags),
            status=OpStatus.REQUESTED.value,
            dry_run=bool(dry_run),
            parent_id=parent_id,
            created_at=now,
            updated_at=now,
            error=None,
        )
        try:
            with immediate(self._db) as db:
                if parent_id is not None:
                    _require(db, parent_id)
                db.utils["operations"].insert(_op_row(record))
        except sqlite3.IntegrityError:
            if parent_id is None:
                raise
            raise ChildExists(parent_id, record.kind) from None
        return record

    def get(self, op_id: str) -> OperationRecord | None:
        """The operation ``op_id``, or ``None``."""
        rows = self._db.query(f"SELECT {_OP_COLUMNS} FROM operations WHERE id = ?", (op_id,))
        return _op_record(rows[0]) if rows else None

    def advance(
        self,
        op_id: str,
        *,
        to: str,
        expect: Collection[str] | None = None,
        error: str | None = None,
    ) -> bool:
        """Set the status to ``to`` if it is now one of ``expect`` (any, when ``None``).

        Returns whether the row moved: ``False`` for another status or an unknown
        id.  ``error``, when given, replaces the stored error; otherwise the old
        one stays, so a failure reason is not lost by a later move.  A move to
        ``running`` records the calling process as the owner: call it in the
        process that will do the work.
        """
        if isinstance(expect, str):
            # A bare string is a collection of characters: almost surely a typo for {…}.
            raise TypeError("expect takes a collection of statuses, e.g. {'previewed'}")
        new_status = OpStatus(to)
        sql = "UPDATE operations SET status = ?, updated_at = ?, error = COALESCE(?, error)"
        params: list[object] = [new_status.value, dump_time(self._now()), error]
        if new_status is OpStatus.RUNNING:
            sql += ", owner = ?"
            params.append(current_owner())
        sql += " WHERE id = ?"
        params.append(op_id)
        if expect is not None:
            allowed = sorted({OpStatus(status).value for status in expect})
            sql += f" AND status IN ({', '.join('?' * len(allowed))})"
            params.extend(allowed)
        # One UPDATE is already atomic; IMMEDIATE makes racing writers queue on
        # the busy timeout instead of failing, and holds the per-Database lock.
        with immediate(self._db) as db:
            return db.execute(sql, params) == 1

    def record_results(self, op_id: str, results: Iterable[NewResult]) -> None:
        """Store the outcome of each target, in one transaction.

        A target already recorded for ``op_id`` is overwritten in place (a
        retry's newer outcome wins) and keeps its original position.  Raises
        :class:`UnknownOperation` when ``op_id`` does not exist.
        """
        recorded_at = dump_time(self._now())
        rows = [
            (
                op_id,
                result.target,
                result.outcome,
                dump_strings(result.removed),
                None if result.remaining is None else dump_strings(result.remaining),
                result.code,
                result.message,
                recorded_at,
            )
            for result in results
        ]
        with immediate(self._db) as db:
            _require(db, op_id)
            if rows:
                db.execute_many(_UPSERT_RESULT, rows)

    def results(self, op_id: str) -> list[ResultRecord]:
        """The results of ``op_id`` in the order their targets were first recorded."""
        rows = self._db.query(
            f"SELECT {_RESULT_COLUMNS} FROM results WHERE op_id = ? ORDER BY rowid", (op_id,)
        )
        return [_result_record(row) for row in rows]

    def recent(self, *, requester: str | None = None, limit: int = 20) -> list[OperationRecord]:
        """The newest ``limit`` operations, of everyone or of ``requester``, newest first."""
        if limit <= 0:
            return []  # SQLite reads a negative LIMIT as "no limit"
        where, params = ("WHERE requester = ?", [requester]) if requester is not None else ("", [])
        rows = self._db.query(
            f"SELECT {_OP_COLUMNS} FROM operations {where}"
            " ORDER BY created_at DESC, rowid DESC LIMIT ?",
            [*params, limit],
        )
        return [_op_record(row) for row in rows]

    def last_undoable(self, requester: str) -> OperationRecord | None:
        """The newest real removal by ``requester`` that worked and is not (being) undone."""
        rows = self._db.query(
            f"""
            SELECT {_OP_COLUMNS} FROM operations AS op
            WHERE requester = ? AND kind = ? AND status IN (?, ?) AND dry_run = 0
              AND NOT EXISTS (
                SELECT 1 FROM operations AS child
                WHERE child.parent_id = op.id AND child.kind = ?
                  AND child.status IN (?, ?, ?)
              )
            ORDER BY created_at DESC, rowid DESC LIMIT 1
            """,
            (
                requester,
                OpKind.REMOVE.value,
                OpStatus.SUCCEEDED.value,
                OpStatus.PARTIALLY_FAILED.value,
                OpKind.UNDO.value,
                *(status.value for status in _UNDO_TAKEN),
            ),
        )
        return _op_record(rows[0]) if rows else None

    def interrupt_orphaned(self) -> Recovery:
        """Mark ``interrupted`` every ``running`` operation whose owner process is gone.

        Call it at start-up, in any process: the running jobs of a live process
        (another server on the same file, a sibling gunicorn worker, an
        ``untag run``) are left alone.  Recorded results stay, so the report
        shows what was done before the crash.  Of racing callers, one
        interrupts each operation and returns it.
        """
        rows = self._db.query(
            f"SELECT {_OP_COLUMNS} FROM operations"
            # A literal, not a parameter: only then can SQLite use the partial index.
            f" WHERE status = '{OpStatus.RUNNING.value}' ORDER BY created_at, rowid"
        )
        running = [_op_record(row) for row in rows]
        liveness = {op.id: owner_liveness(op.owner) for op in running}
        orphans = [op for op in running if liveness[op.id] is Liveness.GONE]
        return Recovery(
            interrupted=self._interrupt(orphans),
            elsewhere=[op for op in running if liveness[op.id] is Liveness.ELSEWHERE],
        )

    def _interrupt(self, orphans: Sequence[OperationRecord]) -> list[OperationRecord]:
        now = self._now()
        interrupted: list[OperationRecord] = []
        with immediate(self._db) as db:
            for op in orphans:
                # Compare-and-set on the owner read: had the operation been claimed
                # again since, or interrupted by another process, it is not ours.
                moved = db.execute(
                    "UPDATE operations SET status = ?, updated_at = ?"
                    " WHERE id = ? AND status = ? AND owner IS ?",
                    (
                        OpStatus.INTERRUPTED.value,
                        dump_time(now),
                        op.id,
                        OpStatus.RUNNING.value,
                        op.owner,
                    ),
                )
                if moved:
                    interrupted.append(
                        replace(op, status=OpStatus.INTERRUPTED.value, updated_at=now)
                    )
        return interrupted

    def _now(self) -> datetime:
        # Normalized through the stored form, so returned records equal read-back ones.
        return load_time(dump_time(self._clock()))


def _require(db: Database, op_id: str) -> None:
    if not db.query("SELECT 1 FROM operations WHERE id = ?", (op_id,)):
        raise UnknownOperation(op_id)


def _strings(items: Sequence[str]) -> tuple[str, ...]:
    if isinstance(items, str):
        # tuple("abc") would silently store three one-letter targets.
        raise TypeError("expected a sequence of strings, got a single string")
    return tuple(items)


def _op_row(record: OperationRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "kind": record.kind,
        "requester": record.requester,
        "provider": record.provider,
        "scope": record.scope,
        "targets": dump_strings(record.targets),
        "tags": dump_strings(record.tags),
        "status": record.status,
        "dry_run": int(record.dry_run),
        "parent_id": record.parent_id,
        "created_at": dump_time(record.created_at),
        "updated_at": dump_time(record.updated_at),
        "error": record.error,
        "owner": record.owner,
    }


def _op_record(row: Row) -> OperationRecord:
    return OperationRecord(
        id=text(row, "id"),
        kind=text(row, "kind"),
        requester=text(row, "requester"),
        provider=text(row, "provider"),
        scope=opt_text(row, "scope"),
        targets=load_strings(row["targets"]),
        tags=load_strings(row["tags"]),
        status=text(row, "status"),
        dry_run=bool(integer(row, "dry_run")),
        parent_id=opt_text(row, "parent_id"),
        created_at=load_time(row["created_at"]),
        updated_at=load_time(row["updated_at"]),
        error=opt_text(row, "error"),
        owner=opt_text(row, "owner"),
    )


def _result_record(row: Row) -> ResultRecord:
    remaining = row["remaining"]
    return ResultRecord(
        op_id=text(row, "op_id"),
        target=text(row, "target"),
        outcome=text(row, "outcome"),
        removed=load_strings(row["removed"]),
        remaining=None if remaining is None else load_strings(remaining),
        code=opt_text(row, "code"),
        message=opt_text(row, "message"),
        recorded_at=load_time(row["recorded_at"]),
    )
