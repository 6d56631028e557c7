"""The audit log: an append-only, hash-chained, keyed record of everything untag does.

Each row of ``events`` is one step (requested, previewed, each record's outcome,
audit queried, …)::

    seq | at | actor | team | kind | op_id | detail | prev_hash | hash
    hash = HMAC-SHA256(key, prev_hash + canonical_json(row without hash))

``prev_hash`` is the previous row's ``hash`` (:data:`GENESIS_HASH` for row 1),
so changing, removing, reordering or inserting any row breaks the chain at that
row, and without the key nobody can recompute it (reliability doc, B.9).  The
key comes from ``UNTAG_AUDIT_KEY`` or from a key file kept *next to*, never
inside, the database (:func:`load_audit_key`); the database keeps only a
fingerprint of it, so a process started with the wrong key fails at once
instead of writing rows that can never verify.

Append-only is enforced twice: triggers refuse ``UPDATE`` and ``DELETE`` (a
deterrent and a bug-catcher: whoever can write the file can drop them), and
:meth:`AuditLog.verify` recomputes the chain.  The one sanctioned deletion is
:meth:`AuditLog.prune`: inside its own ``BEGIN IMMEDIATE`` it raises the
``audit_state.pruning`` flag that the delete trigger checks, deletes the oldest
rows, lowers the flag and appends a ``checkpoint`` event recording the seq and
hash of the last removed row.  Other connections never see the flag raised
(it is never committed as 1), and the checkpoint, itself chained and keyed, is
what lets the remaining rows verify from a row other than row 1.

``detail`` is free-form JSON; these keys have a meaning for the filters of
:class:`AuditFilter` (values are strings, lists are lists of strings):
``provider``, ``scope``, ``target`` (one record id), ``targets``, ``tag``,
``tags``, ``outcome`` / ``status``, plus ``removed``, ``remaining``, ``code``,
``message`` for record outcomes.  Never put tokens or ``response_url`` in it.

Errors (all :class:`~storage.errors.StoreError`)::

    AuditError
    ├── AuditKeyError       the key is missing, too short, or not this log's key
    └── AuditChainBroken    prune refused: the chain does not verify
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import math
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) uses for str
from pathlib import Path

from storage._codec import Row, dump_time, integer, load_time, opt_text, text, utc_now
from storage.db import Database, immediate
from storage.errors import StoreError

__all__ = [
    "GENESIS_HASH",
    "MIN_KEY_BYTES",
    "AuditChainBroken",
    "AuditError",
    "AuditFilter",
    "AuditKeyError",
    "AuditLog",
    "Event",
    "EventKind",
    "PruneResult",
    "VerifyResult",
    "audit_key_recorded",
    "canonical_json",
    "default_key_file",
    "event_hash",
    "load_audit_key",
]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the very first event."""

MIN_KEY_BYTES = 16
"""Shorter keys are refused: the HMAC is only as strong as its key."""

_KEY_CHECK_LABEL = b"untag audit key check v1"
_COLUMNS = "seq, at, actor, team, kind, op_id, detail, prev_hash, hash"
_FETCH = 10_000  # rows per fetchmany() while verifying: memory stays flat


class AuditError(StoreError):
    """Root of the audit log's errors."""


class AuditKeyError(AuditError):
    """No usable key, or not the key this database's log was written with."""


class AuditChainBroken(AuditError):
    """The chain does not verify, so pruning (which would erase evidence) was refused."""

    def __init__(self, result: VerifyResult) -> None:
        super().__init__(
            f"audit log fails verification at seq {result.first_bad_seq}: {result.reason}"
        )
        self.result = result


class EventKind(StrEnum):
    """What an event records.  ``checkpoint`` is written by :meth:`AuditLog.prune` only."""

    REQUESTED = "requested"
    DENIED = "denied"
    PREVIEWED = "previewed"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    RECORD = "record"  # one per record outcome
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    UNDONE = "undone"
    RETRIED = "retried"
    AUDIT_QUERIED = "audit_queried"
    CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class Event:
    """One row of the audit log, exactly as stored (``detail`` decoded)."""

    seq: int
    at: datetime
    actor: str
    team: str | None
    kind: str
    op_id: str | None
    detail: Mapping[str, object] = field(hash=False)  # a dict cannot be hashed; the rest can
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`AuditLog.verify` found.

    ``checked`` counts the rows that verified before the first bad one (all of
    them when ``ok``).  ``first_bad_seq`` is the first row that is wrong, or
    the first that is missing; ``bad_row`` holds its raw columns when it exists.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    bad_row: Mapping[str, object] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class PruneResult:
    """What :meth:`AuditLog.prune` removed; ``checkpoint`` is ``None`` when nothing was."""

    removed: int
    through_seq: int | None
    checkpoint: Event | None


@dataclass(frozen=True)
class AuditFilter:
    """Which events (or operations) an admin asks for; ``None`` means "any".

    ``user`` is the actor (for operations, the requester); ``record`` and
    ``tag`` match a target id or tag of the event's detail or of its operation;
    ``status`` matches an outcome or status; ``since`` is inclusive, ``until``
    exclusive.
    """

    user: str | None = None
    provider: str | None = None
    record: str | None = None
    tag: str | None = None
    status: str | None = None
    kind: str | None = None
    op_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_detail(self) -> dict[str, str]:
        """The fields that are set, as text: what an ``audit_queried`` event records."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = dump_time(value) if isinstance(value, datetime) else str(value)
        return out


def canonical_json(value: object) -> str:
    """Sorted keys, no whitespace, UTF-8 text (``ensure_ascii=False``); NaN and ∞ refused.

    Equal values give equal text whatever their key order, which is what makes
    a hash over it reproducible.  Raises ``TypeError`` for values JSON cannot
    hold (or non-string keys) and ``ValueError`` for text that is not valid
    Unicode (lone surrogates).
    """
    _check_keys(value)
    out = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    out.encode("utf-8")  # a lone surrogate passes json.dumps but cannot be stored or hashed
    return out


def _check_keys(value: object) -> None:
    # json.dumps would turn 1 into "1" and then {1: .., "1": ..} into a duplicate key.
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {type(key).__name__}")
            _check_keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_keys(item)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("NaN and infinity have no JSON form")


def _content(
    seq: int,
    at: str,
    actor: str,
    team: str | None,
    kind: str,
    op_id: str | None,
    detail: str,
    prev_hash: str,
) -> str:
    # canonical_json() of the row without its hash, assembled by hand because
    # verify() runs it a million times.  `detail` is already canonical JSON text,
    # so it is embedded as is; keys are in sorted order.  test_audit checks that
    # this equals canonical_json({...}) for arbitrary rows.
    if type(seq) is not int:
        raise TypeError("seq must be an integer")
    return (
        f'{{"actor":{encode_basestring(actor)},"at":{encode_basestring(at)},'
        f'"detail":{detail},"kind":{encode_basestring(kind)},'
        f'"op_id":{_opt(op_id)},"prev_hash":{encode_basestring(prev_hash)},'
        f'"seq":{seq},"team":{_opt(team)}}}'
    )


def _opt(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def event_hash(
    key: bytes,
    *,
    seq: int,
    at: str,
    actor: str,
    team: str | None,
    kind: str,
    op_id: str | None,
    detail: str,
    prev_hash: str,
) -> str:
    """The ``hash`` column of a row: hex HMAC-SHA256 over ``prev_hash`` + its canonical JSON.

    ``at`` and ``detail`` are the stored text (``detail`` canonical JSON).
    """
    return _hasher(key)(seq, at, actor, team, kind, op_id, detail, prev_hash)


@functools.lru_cache(maxsize=4)
def _hasher(key: bytes) -> _Hasher:
    return _Hasher(key)


class _Hasher:
    """:func:`event_hash` with the key schedule done once (verify hashes every row)."""

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def __call__(
        self,
        seq: int,
        at: str,
        actor: str,
        team: str | None,
        kind: str,
        op_id: str | None,
        detail: str,
        prev_hash: str,
    ) -> str:
        content = _content(seq, at, actor, team, kind, op_id, detail, prev_hash)
        mac = self._base.copy()
        mac.update((prev_hash + content).encode("utf-8"))
        return mac.hexdigest()


def default_key_file(database: str | Path) -> Path:
    """Where the audit key lives when ``UNTAG_AUDIT_KEY`` is unset: ``<database>.key``."""
    return Path(f"{database}.key")


def load_audit_key(explicit: str | None, key_file: Path, *, create: bool = True) -> bytes:
    """The audit key: ``explicit`` (``UNTAG_AUDIT_KEY``) if set, else the key file's.

    A missing key file is created (with ``create``) holding 32 random bytes in
    hex, readable by its owner only (mode 0o600); processes racing to create it
    all end up with the same key.  Surrounding whitespace is ignored.  Raises
    :class:`AuditKeyError` for a key shorter than :data:`MIN_KEY_BYTES`, or a
    missing file when ``create`` is false.
    """
    if explicit is not None and explicit.strip():
        return _checked(explicit.strip().encode("utf-8"), "UNTAG_AUDIT_KEY")
    try:
        stored = key_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not create:
            raise AuditKeyError(
                f"no audit key: set UNTAG_AUDIT_KEY or restore the key file {key_file}"
            ) from None
        _create_key_file(key_file)
        stored = key_file.read_text(encoding="utf-8")
    return _checked(stored.strip().encode("utf-8"), f"audit key file {key_file}")


def _checked(key: bytes, source: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyError(f"{source}: the key must be at least {MIN_KEY_BYTES} bytes")
    return key


def _create_key_file(key_file: Path) -> None:
    # Write a private temporary file completely, then link it into place: link
    # fails if the name exists, so a racing process never reads a half-written
    # key and never replaces one that is already in use.
    tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(tmp, key_file)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(key_file.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the new directory entry durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def audit_key_recorded(db: Database) -> bool:
    """Whether this database's log already has a key (its fingerprint is stored)."""
    rows = db.query("SELECT key_check FROM audit_state WHERE id = 1")
    return bool(rows) and rows[0]["key_check"] is not None


class AuditLog:
    """Append events, verify the chain, prune old rows, and query.

    Construction checks ``key`` against the fingerprint stored by the first
    process that used the log (storing it if this is the first), and raises
    :class:`AuditKeyError` on a mismatch.
    """

    def __init__(
        self, db: Database, key: bytes, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._db = db
        self._hash = _Hasher(_checked(key, "audit key"))
        self._clock = clock
        self._record_key_check(hmac.new(key, _KEY_CHECK_LABEL, hashlib.sha256).hexdigest())

    @property
    def database(self) -> Database:
        """The database the log lives in, for callers committing a change and its event together."""
        return self._db

    def _record_key_check(self, check: str) -> None:
        if not audit_key_recorded(self._db):
            # The first user of the log records the fingerprint; racing first
            # users queue on the lock and the later ones compare below.
            with immediate(self._db) as db:
                db.execute(
                    "UPDATE audit_state SET key_check = ? WHERE id = 1 AND key_check IS NULL",
                    (check,),
                )
        rows = self._db.query("SELECT key_check FROM audit_state WHERE id = 1")
        if not rows or not hmac.compare_digest(str(rows[0]["key_check"]), check):
            raise AuditKeyError(
                "this is not the key the audit log was written with "
                "(check UNTAG_AUDIT_KEY and the key file)"
            )

    def append(
        self,
        kind: str,
        *,
        actor: str,
        team: str | None = None,
        op_id: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> Event:
        """Add one event at the end of the chain; durable when this returns.

        Runs in ``BEGIN IMMEDIATE`` (or joins the caller's :func:`immediate`, so
        a status change and its event can commit together).  Raises
        ``ValueError`` for an unknown kind or an empty actor, ``TypeError`` for
        a detail JSON cannot hold, :class:`~storage.errors.DatabaseBusy` when
        the write lock stays taken: in each case nothing was written.
        """
        event_kind = _appendable(kind, actor)
        detail_text = canonical_json(dict(detail or {}))
        with immediate(self._db) as db:
            return self._append(db, event_kind, actor, team, op_id, detail_text)

    def append_many(
        self,
        kind: str,
        *,
        actor: str,
        team: str | None = None,
        op_id: str | None = None,
        details: Sequence[Mapping[str, object]],
    ) -> None:
        """Add one event per detail, in order, all of one kind, actor and operation.

        What :meth:`append` does for each, with the chain's head read once and
        the rows inserted together: a 500-record batch's outcomes cost one
        append's reads instead of 500.  Atomic: all are written or none.
        """
        event_kind = _appendable(kind, actor)
        texts = [canonical_json(dict(detail)) for detail in details]
        if not texts:
            return
        with immediate(self._db) as db:
            self._append_rows(db, event_kind, actor, team, op_id, texts)

    def _append(
        self,
        db: Database,
        kind: EventKind,
        actor: str,
        team: str | None,
        op_id: str | None,
        detail: str,
    ) -> Event:
        [row] = self._append_rows(db, kind, actor, team, op_id, [detail])
        seq, at, prev_hash, digest = row
        return Event(
            seq=seq,
            at=load_time(at),
            actor=actor,
            team=team,
            kind=kind.value,
            op_id=op_id,
            detail=json.loads(detail),
            prev_hash=prev_hash,
            hash=digest,
        )

    def _append_rows(
        self,
        db: Database,
        kind: EventKind,
        actor: str,
        team: str | None,
        op_id: str | None,
        details: Sequence[str],
    ) -> list[tuple[int, str, str, str]]:
        """Chain and insert one row per detail; ``(seq, at, prev_hash, hash)`` of each."""
        # Caller holds the write lock.  The next seq is one past the highest ever
        # used (sqlite_sequence survives deleting the newest rows), so removing
        # the tail and appending leaves a visible gap rather than a seamless chain.
        last = db.query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        seq = max(_high_water(db), integer(last[0], "seq") if last else 0)
        prev_hash = text(last[0], "hash") if last else GENESIS_HASH
        at = dump_time(self._clock())  # read under the lock: `at` follows seq
        chained: list[tuple[int, str, str, str]] = []
        rows: list[tuple[object, ...]] = []
        for detail in details:
            seq += 1
            digest = self._hash(seq, at, actor, team, kind.value, op_id, detail, prev_hash)
            chained.append((seq, at, prev_hash, digest))
            rows.append((seq, at, actor, team, kind.value, op_id, detail, prev_hash, digest))
            prev_hash = digest
        db.execute_many(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return chained

    def head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the newest event: worth recording outside the database."""
        rows = self._db.query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        return (integer(rows[0], "seq"), text(rows[0], "hash")) if rows else None

    def verify(self) -> VerifyResult:
        """Recompute the whole chain and report the first row that is wrong or missing.

        Streams the committed rows from one consistent snapshot (its own read
        connection for a file database, so appends go on meanwhile) and never
        holds them all in memory.
        """
        with _snapshot(self._db) as cursor:
            return self._verify(cursor)

    def _verify(self, cursor: sqlite3.Cursor) -> VerifyResult:
        hwm_row = cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        high_water = int(hwm_row[0]) if hwm_row else 0
        cursor.execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq")
        check = _Checker(self._hash)
        while batch := cursor.fetchmany(_FETCH):
            for row in batch:
                problem = check.feed(row)
                if problem is not None:
                    return _bad(cursor, check.checked, *problem)
        problem = check.finish(high_water)
        if problem is not None:
            return _bad(cursor, check.checked, *problem)
        return VerifyResult(ok=True, checked=check.checked)

    def prune(self, before: datetime, *, actor: str = "system") -> PruneResult:
        """Remove the events older than ``before``; the rest still verifies.

        Refuses (:class:`AuditChainBroken`) when the chain does not verify, as
        pruning could erase the evidence, and refuses a ``before`` in the
        future.  Removes the longest run of oldest rows all older than
        ``before`` and appends a ``checkpoint`` event holding the seq and hash
        of the last one removed, in one transaction.
        """
        cutoff = dump_time(before)
        if before > self._clock():
            raise ValueError("refusing to prune events from the future")
        # Verified before taking the write lock, so appends go on meanwhile;
        # whatever they add is newer than `before` and is kept.
        result = self.verify()
        if not result.ok:
            raise AuditChainBroken(result)
        with immediate(self._db) as db:
            kept = db.query("SELECT MIN(seq) AS seq FROM events WHERE at >= ?", (cutoff,))
            if kept[0]["seq"] is None:  # every row is older: remove them all
                kept = db.query("SELECT MAX(seq) + 1 AS seq FROM events")
            if kept[0]["seq"] is None:
                return PruneResult(removed=0, through_seq=None, checkpoint=None)
            through = integer(kept[0], "seq") - 1
            last = db.query("SELECT hash FROM events WHERE seq = ?", (through,))
            if not last:  # the oldest row is already new enough
                return PruneResult(removed=0, through_seq=None, checkpoint=None)
            counted = db.query("SELECT COUNT(*) AS n FROM events WHERE seq <= ?", (through,))
            removed = integer(counted[0], "n")
            detail = canonical_json(
                {
                    "through_seq": through,
                    "through_hash": text(last[0], "hash"),
                    "removed": removed,
                    "before": cutoff,
                }
            )
            # Appended first, so it chains on from the current head even when
            # every older row is about to go.
            checkpoint = self._append(db, EventKind.CHECKPOINT, actor, None, None, detail)
            db.execute("UPDATE audit_state SET pruning = 1 WHERE id = 1")
            db.execute("DELETE FROM events WHERE seq <= ?", (through,))
            db.execute("UPDATE audit_state SET pruning = 0 WHERE id = 1")
        return PruneResult(removed=removed, through_seq=through, checkpoint=checkpoint)

    def query(
        self, filters: AuditFilter | None = None, *, limit: int | None = 50, offset: int = 0
    ) -> list[Event]:
        """The matching events, newest first; ``limit=None`` returns them all."""
        if limit is not None and limit <= 0:
            return []  # SQLite reads a negative LIMIT as "no limit"
        where, params = _event_where(filters or AuditFilter())
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM events {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            [*params, -1 if limit is None else limit, max(offset, 0)],
        )
        return [_event(row) for row in rows]

    def count(self, filters: AuditFilter | None = None) -> int:
        """How many events match."""
        where, params = _event_where(filters or AuditFilter())
        rows = self._db.query(f"SELECT COUNT(*) AS n FROM events {where}", params)
        return integer(rows[0], "n")


def _appendable(kind: str, actor: str) -> EventKind:
    """The kind of an event a caller may append, or ``ValueError``."""
    event_kind = EventKind(kind)
    if event_kind is EventKind.CHECKPOINT:
        raise ValueError("checkpoint events are written by prune() only")
    if not actor:
        raise ValueError("an event needs an actor")
    return event_kind


def _high_water(db: Database) -> int:
    rows = db.query("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
    return integer(rows[0], "seq") if rows else 0


class _Checker:
    """The chain rules, fed one raw row at a time in seq order.

    Rows after the first must follow on (seq + 1, ``prev_hash`` = previous
    ``hash``) and every row's HMAC must match.  The first row needs an anchor:
    the genesis hash at seq 1, or the newest checkpoint's record of the last
    pruned row; that is only known at the end, so :meth:`finish` checks it.
    """

    def __init__(self, hasher: _Hasher) -> None:
        self._hash = hasher
        self.checked = 0
        self._first: tuple[int, object] | None = None  # seq and prev_hash of the first row
        self._next_seq = 0
        self._prev_hash: object = None
        self._anchor: tuple[int, object] | None = None  # newest checkpoint's through_seq, hash

    def feed(self, row: Sequence[object]) -> tuple[int, str] | None:
        seq, at, actor, team, kind, op_id, detail, prev_hash, stored = row
        if not isinstance(seq, int):
            return (self._next_seq, "seq is not an integer")
        if self._first is None:
            self._first = (seq, prev_hash)
        elif seq != self._next_seq:
            missing = self._next_seq
            last = seq - 1
            span = f"row {missing} is" if missing == last else f"rows {missing}–{last} are"
            return (missing, f"{span} missing")
        elif prev_hash != self._prev_hash:
            return (seq, f"prev_hash does not match the hash of row {seq - 1}")
        try:
            digest = self._hash(seq, at, actor, team, kind, op_id, detail, prev_hash)  # type: ignore[arg-type]
        except (TypeError, ValueError, UnicodeError):
            return (seq, "malformed row (a column holds the wrong type)")
        if digest != stored:
            return (seq, "hash mismatch: the row was changed, or written with another key")
        if kind == EventKind.CHECKPOINT.value:
            anchor = _anchor(detail)
            if anchor is None:
                return (seq, "checkpoint detail is unreadable")
            self._anchor = anchor
        self.checked += 1
        self._next_seq = seq + 1
        self._prev_hash = stored
        return None

    def finish(self, high_water: int) -> tuple[int, str] | None:
        if self._first is None:
            if high_water > 0:
                return (high_water, f"the log is empty but rows up to {high_water} were written")
            return None
        # The tail first: when the removed tail held the newest checkpoint, the
        # start looks unanchored too, but the removal is what actually happened.
        last = self._next_seq - 1
        if last < high_water:
            span = (
                f"row {last + 1} is"
                if last + 1 == high_water
                else (f"rows {last + 1}–{high_water} are")
            )
            return (last + 1, f"{span} missing from the end of the log")
        seq, prev_hash = self._first
        if self._anchor is None:
            if seq > 1:
                return (
                    seq - 1,
                    f"row {seq - 1} is missing and no checkpoint accounts "
                    f"for the rows before {seq}",
                )
            if prev_hash != GENESIS_HASH:
                return (seq, "row 1 does not start from the genesis hash")
        else:
            through, through_hash = self._anchor
            if seq > through + 1:
                return (
                    through + 1,
                    f"row {through + 1} is missing (the last checkpoint "
                    f"pruned rows up to {through})",
                )
            if seq <= through:
                return (
                    seq,
                    f"row {seq} should have been pruned (the last checkpoint pruned "
                    f"rows up to {through})",
                )
            if prev_hash != through_hash:
                return (
                    seq,
                    f"prev_hash does not match the pruned row {through} recorded by the checkpoint",
                )
        return None


def _anchor(detail: object) -> tuple[int, object] | None:
    try:
        loaded = json.loads(str(detail))
        through = loaded["through_seq"]
        through_hash = loaded["through_hash"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(through, int) or isinstance(through, bool):
        return None
    return (through, through_hash)


def _bad(cursor: sqlite3.Cursor, checked: int, seq: int, reason: str) -> VerifyResult:
    cursor.execute(f"SELECT {_COLUMNS} FROM events WHERE seq = ?", (seq,))
    names = [d[0] for d in cursor.description]
    found = cursor.fetchone()
    return VerifyResult(
        ok=False,
        checked=checked,
        first_bad_seq=seq,
        reason=reason,
        bad_row=None if found is None else dict(zip(names, found, strict=True)),
    )


@contextlib.contextmanager
def _snapshot(db: Database) -> Iterator[sqlite3.Cursor]:
    """A cursor over one consistent read snapshot, with plain tuple rows."""
    if db.path in (":memory:", ""):
        # No second connection can open this database: read on the shared one,
        # holding its lock throughout (other threads wait).
        with db.lock:
            cursor = db.conn.cursor()
            cursor.row_factory = None
            own = not db.conn.in_transaction
            if own:
                cursor.execute("BEGIN")
            try:
                yield cursor
            finally:
                cursor.close()
                if own:
                    db.conn.execute("ROLLBACK")
        return
    # A file database gets a connection of its own: in WAL mode its snapshot
    # never blocks the writer.  It sees committed rows only, not those of a
    # transaction still open on the shared connection: what is on disk.
    conn = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only = ON")
        cursor = conn.cursor()
        cursor.execute("BEGIN")  # deferred: the snapshot is taken by the first read
        try:
            yield cursor
        finally:
            cursor.close()
            conn.execute("ROLLBACK")
    finally:
        conn.close()


def _event_where(f: AuditFilter) -> tuple[str, list[object]]:
    terms: list[str] = []
    params: list[object] = []
    if f.user is not None:
        terms.append("actor = ?")
        params.append(f.user)
    if f.kind is not None:
        terms.append("kind = ?")
        params.append(f.kind)
    if f.op_id is not None:
        terms.append("op_id = ?")
        params.append(f.op_id)
    if f.since is not None:
        terms.append("at >= ?")
        params.append(dump_time(f.since))
    if f.until is not None:
        terms.append("at < ?")
        params.append(dump_time(f.until))
    # Detail-based terms sit inside CASE so that a row whose detail is not JSON
    # (only tampering makes one) is skipped instead of failing the whole query.
    if f.provider is not None:
        terms.append(
            "(CASE WHEN json_valid(detail) THEN json_extract(detail, '$.provider') = ? END"
            " OR op_id IN (SELECT id FROM operations WHERE provider = ?))"
        )
        params += [f.provider, f.provider]
    if f.record is not None:
        # Through the lookup tables the triggers keep (schema migration 6): the JSON
        # itself is beyond any index.
        terms.append(
            "(seq IN (SELECT seq FROM event_targets WHERE target = ?)"
            " OR op_id IN (SELECT op_id FROM operation_targets WHERE target = ?))"
        )
        params += [f.record, f.record]
    if f.tag is not None:
        terms.append(
            "(CASE WHEN json_valid(detail) THEN json_extract(detail, '$.tag') = ? COLLATE NOCASE"
            " OR EXISTS (SELECT 1 FROM json_each(detail, '$.tags')"
            " WHERE value = ? COLLATE NOCASE) END"
            " OR op_id IN (SELECT op.id FROM operations AS op, json_each(op.tags) AS t"
            " WHERE t.value = ? COLLATE NOCASE))"
        )
        params += [f.tag, f.tag, f.tag]
    if f.status is not None:
        terms.append(
            "CASE WHEN json_valid(detail) THEN json_extract(detail, '$.outcome') = ?"
            " OR json_extract(detail, '$.status') = ? END"
        )
        params += [f.status, f.status]
    return ("WHERE " + " AND ".join(terms) if terms else ""), params


def _event(row: Row) -> Event:
    detail = json.loads(text(row, "detail"))
    if not isinstance(detail, dict):
        raise TypeError("event detail is not a JSON object")
    return Event(
        seq=integer(row, "seq"),
        at=load_time(row["at"]),
        actor=text(row, "actor"),
        team=opt_text(row, "team"),
        kind=text(row, "kind"),
        op_id=opt_text(row, "op_id"),
        detail=detail,
        prev_hash=text(row, "prev_hash"),
        hash=text(row, "hash"),
    )
