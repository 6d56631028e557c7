"""The schema, as an append-only list of numbered migrations.

Each migration is a function run inside the one ``BEGIN IMMEDIATE`` of
:func:`storage.db.migrate`, with its version recorded in ``schema_migrations``
in the same transaction.  Never edit a migration that has shipped: add the
next number.  A new store (the audit log, say) adds its tables as the next
``Migration`` here and its verbs in its own module.

Statuses and kinds are checked in Python, not with ``CHECK``: SQLite can only
change a constraint by rebuilding the table, and new statuses are likely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # db.py imports this module to find MIGRATIONS
    from storage.db import Database

__all__ = ["MIGRATIONS", "Migration"]


@dataclass(frozen=True)
class Migration:
    """Schema version ``version``, brought about by ``apply``."""

    version: int
    name: str
    apply: Callable[[Database], None]


def _operations(db: Database) -> None:
    # Ids, targets and tags are TEXT: record ids such as 554023000000793002 must
    # never be coerced to numbers by column affinity.
    db.execute(
        """
        CREATE TABLE operations (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            requester TEXT NOT NULL,
            provider TEXT NOT NULL,
            scope TEXT,
            targets TEXT NOT NULL,
            tags TEXT NOT NULL,
            status TEXT NOT NULL,
            dry_run INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
            parent_id TEXT REFERENCES operations (id),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            error TEXT
        )
        """
    )
    db.execute("CREATE INDEX operations_requester ON operations (requester, created_at)")
    db.execute("CREATE INDEX operations_parent ON operations (parent_id)")
    # A rowid table (not WITHOUT ROWID): rowid is the insertion order of results.
    db.execute(
        """
        CREATE TABLE results (
            op_id TEXT NOT NULL REFERENCES operations (id),
            target TEXT NOT NULL,
            outcome TEXT NOT NULL,
            removed TEXT NOT NULL,
            remaining TEXT,
            code TEXT,
            message TEXT,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (op_id, target)
        )
        """
    )
    # Redundant with the primary key for lookups, but its entries are ordered by
    # (op_id, rowid), so "results in insertion order" needs no sort.
    db.execute("CREATE INDEX results_op ON results (op_id)")


def _tokens(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE tokens (
            provider TEXT PRIMARY KEY,
            refresh_token TEXT,
            access_token TEXT,
            expires_at TEXT,
            extra TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )


def _plans(db: Database) -> None:
    # A previewed plan must survive the process: Slack may deliver the submit
    # to another instance, minutes after the preview was read.
    db.execute(
        """
        CREATE TABLE plans (
            op_id TEXT PRIMARY KEY REFERENCES operations (id),
            action TEXT NOT NULL,
            preview TEXT NOT NULL,
            context TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )
    # Undo and Retry run once however often they are pressed, in any process:
    # a second real undo (or retry) of the same operation cannot be inserted.
    db.execute(
        "CREATE UNIQUE INDEX operations_one_child_per_kind ON operations (parent_id, kind)"
        " WHERE parent_id IS NOT NULL AND dry_run = 0"
    )


def _audit(db: Database) -> None:
    # The hash-chained event log (storage.audit).  AUTOINCREMENT keeps the
    # highest seq ever used in sqlite_sequence, so verify() notices rows
    # deleted from the end.  Columns are TEXT for the same reason as above.
    db.execute(
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            team TEXT,
            kind TEXT NOT NULL,
            op_id TEXT,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX events_at ON events (at)")
    db.execute("CREATE INDEX events_actor ON events (actor, seq)")
    db.execute("CREATE INDEX events_kind ON events (kind, seq)")
    db.execute("CREATE INDEX events_op ON events (op_id, seq)")
    # One row: `pruning` is raised only inside AuditLog.prune()'s transaction
    # (never committed as 1); `key_check` is an HMAC fingerprint of the audit
    # key, never the key, so a process with the wrong key is refused at start.
    db.execute(
        """
        CREATE TABLE audit_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pruning INTEGER NOT NULL DEFAULT 0 CHECK (pruning IN (0, 1)),
            key_check TEXT
        )
        """
    )
    db.execute("INSERT INTO audit_state (id) VALUES (1)")
    # Append-only: a deterrent and a bug-catcher (whoever can write the file can
    # drop them); verify() is what detects tampering.
    db.execute(
        """
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END
        """
    )
    db.execute(
        """
        CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        WHEN (SELECT pruning FROM audit_state WHERE id = 1) IS NOT 1
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END
        """
    )
    db.execute(
        """
        CREATE TRIGGER audit_state_no_delete BEFORE DELETE ON audit_state
        BEGIN SELECT RAISE(ABORT, 'audit state cannot be deleted'); END
        """
    )
    db.execute(
        """
        CREATE TRIGGER audit_state_key_once BEFORE UPDATE OF key_check ON audit_state
        WHEN OLD.key_check IS NOT NULL AND NEW.key_check IS NOT OLD.key_check
        BEGIN SELECT RAISE(ABORT, 'the audit key fingerprint is set once'); END
        """
    )


def _owners(db: Database) -> None:
    # The process running an operation (storage.owners), so that recovery
    # interrupts only what a dead process left ``running``, never the live jobs
    # of another server on the same file.  NULL on rows claimed before this.
    db.execute("ALTER TABLE operations ADD COLUMN owner TEXT")
    # Recovery runs at every start (and every gunicorn worker boot): it reads
    # only the running rows, however long the ledger grows.
    db.execute("CREATE INDEX operations_running ON operations (owner) WHERE status = 'running'")


def _record_lookup(db: Database) -> None:
    # `record:<id>` queries: which events and operations name a record id.  The ids
    # live inside JSON (an event's detail `target` / `targets`, an operation's
    # `targets`), which no index reaches, so a query scanned every event (1.9 s on
    # 1M).  These tables are derived, filled by triggers so that every writer keeps
    # them, whatever its code; they are not part of the hash chain: verify()
    # checks the events, and a lookup table can always be rebuilt from them.
    db.execute(
        "CREATE TABLE event_targets (target TEXT NOT NULL, seq INTEGER NOT NULL,"
        " PRIMARY KEY (target, seq)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX event_targets_seq ON event_targets (seq)")
    db.execute(
        "CREATE TABLE operation_targets (target TEXT NOT NULL, op_id TEXT NOT NULL,"
        " PRIMARY KEY (target, op_id)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX results_target ON results (target)")
    new_event = "(SELECT NEW.seq AS seq, NEW.detail AS detail) AS e"
    db.execute(
        "CREATE TRIGGER event_targets_add AFTER INSERT ON events"
        f" BEGIN {_body(_event_targets_from(new_event))} END"
    )
    db.execute(
        "CREATE TRIGGER event_targets_drop AFTER DELETE ON events"
        " BEGIN DELETE FROM event_targets WHERE seq = OLD.seq; END"
    )
    new_op = "(SELECT NEW.id AS id, NEW.targets AS targets) AS op"
    db.execute(
        "CREATE TRIGGER operation_targets_add AFTER INSERT ON operations"
        f" BEGIN {_body(_operation_targets_from(new_op))} END"
    )
    # And what was written before this migration.
    for statement in (
        *_event_targets_from("events AS e"),
        *_operation_targets_from("operations AS op"),
    ):
        db.execute(statement)


# A detail or target list that is not JSON (only tampering makes one) adds nothing
# rather than failing the insert: verify() is what reports it.
def _event_targets_from(events: str) -> tuple[str, ...]:
    """Statements adding the record ids named by ``events`` (rows ``e``: seq, detail)."""
    return (
        "INSERT OR IGNORE INTO event_targets (target, seq)"
        f" SELECT json_extract(e.detail, '$.target'), e.seq FROM {events}"
        " WHERE json_valid(e.detail) AND json_type(e.detail, '$.target') = 'text'",
        "INSERT OR IGNORE INTO event_targets (target, seq)"
        f" SELECT t.value, e.seq FROM {events}, json_each(CASE WHEN json_valid(e.detail)"
        " AND json_type(e.detail, '$.targets') = 'array'"
        " THEN json_extract(e.detail, '$.targets') ELSE '[]' END) AS t"
        " WHERE t.type = 'text'",
    )


def _operation_targets_from(operations: str) -> tuple[str, ...]:
    """Statements adding the record ids of ``operations`` (rows ``op``: id, targets)."""
    return (
        "INSERT OR IGNORE INTO operation_targets (target, op_id)"
        f" SELECT t.value, op.id FROM {operations}, json_each(CASE WHEN json_valid(op.targets)"
        " THEN op.targets ELSE '[]' END) AS t WHERE t.type = 'text'",
    )


def _body(statements: tuple[str, ...]) -> str:
    return "".join(f"{statement}; " for statement in statements)


def _quota_usage(db: Database) -> None:
    # Requests spent per provider and UTC day (storage.quotas), shared by processes.
    # `day` is an ISO date: text order is date order.
    db.execute(
        "CREATE TABLE quota_usage (provider TEXT NOT NULL, day TEXT NOT NULL,"
        " used INTEGER NOT NULL, PRIMARY KEY (provider, day)) WITHOUT ROWID"
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "operations and results", _operations),
    Migration(2, "oauth tokens", _tokens),
    Migration(3, "plans; one undo and one retry per operation", _plans),
    Migration(4, "hash-chained audit log", _audit),
    Migration(5, "the process that runs each operation", _owners),
    Migration(6, "record id lookup for audit queries", _record_lookup),
    Migration(7, "daily quota usage shared by processes", _quota_usage),
)
