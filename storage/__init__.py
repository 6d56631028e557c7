"""SQLite storage for untag: the operation ledger and OAuth tokens.

``storage`` imports nothing else of untag's.  Open one :class:`Database` per
process with :func:`open_database` (it migrates the file), share it between
threads, and build the stores on it::

    db = open_database("untag.db")
    ops = OperationStore(db)
    op = ops.create(kind="remove", requester="U1", provider="zoho", scope="Leads",
                    targets=["554023000000793002"], tags=["Prime"])
    ops.advance(op.id, to="previewed", expect={"requested"})
    ...  # later, on submit (maybe twice, maybe in two processes):
    if ops.advance(op.id, to="running", expect={"previewed", "confirmed"}):
        ...  # this caller, and no other, executes the operation

Modules: ``db`` (connection, :func:`immediate`, migrations), ``schema`` (the
numbered migrations), ``operations``, ``owners`` (which process runs an
operation, and whether it still does), ``tokens``, ``plans``, ``errors``,
``audit`` (the hash-chained event log) and ``reports`` (admin queries and their
filter words).  A new store adds a module and the next migration in ``schema``.
"""

from storage.audit import (
    GENESIS_HASH,
    MIN_KEY_BYTES,
    AuditChainBroken,
    AuditError,
    AuditFilter,
    AuditKeyError,
    AuditLog,
    Event,
    EventKind,
    PruneResult,
    VerifyResult,
    audit_key_recorded,
    canonical_json,
    default_key_file,
    event_hash,
    load_audit_key,
)
from storage.db import Database, immediate, migrate, open_database
from storage.errors import (
    ChildExists,
    DatabaseBusy,
    SchemaMismatch,
    StoreError,
    TokenKeyError,
    UnknownOperation,
)
from storage.operations import (
    NewResult,
    OperationRecord,
    OperationStore,
    OpKind,
    OpStatus,
    Recovery,
    ResultRecord,
)
from storage.owners import Liveness, current_owner, owner_liveness
from storage.plans import PlanStore, StoredPlan
from storage.quotas import QuotaLedger
from storage.reports import (
    FILTER_KEYS,
    OUTCOMES,
    Dashboard,
    FilterError,
    OperationReport,
    count_operations,
    dashboard,
    operation_reports,
    outcome_counts,
    parse_audit_filters,
    parse_time_bound,
    retried,
    split_filter_words,
)
from storage.schema import MIGRATIONS, Migration
from storage.tokens import StoredToken, TokenStore

__all__ = [
    "FILTER_KEYS",
    "GENESIS_HASH",
    "MIGRATIONS",
    "MIN_KEY_BYTES",
    "OUTCOMES",
    "AuditChainBroken",
    "AuditError",
    "AuditFilter",
    "AuditKeyError",
    "AuditLog",
    "ChildExists",
    "Dashboard",
    "Database",
    "DatabaseBusy",
    "Event",
    "EventKind",
    "FilterError",
    "Liveness",
    "Migration",
    "NewResult",
    "OpKind",
    "OpStatus",
    "OperationRecord",
    "OperationReport",
    "OperationStore",
    "PlanStore",
    "PruneResult",
    "QuotaLedger",
    "Recovery",
    "ResultRecord",
    "SchemaMismatch",
    "StoreError",
    "StoredPlan",
    "StoredToken",
    "TokenKeyError",
    "TokenStore",
    "UnknownOperation",
    "VerifyResult",
    "audit_key_recorded",
    "canonical_json",
    "count_operations",
    "current_owner",
    "dashboard",
    "default_key_file",
    "event_hash",
    "immediate",
    "load_audit_key",
    "migrate",
    "open_database",
    "operation_reports",
    "outcome_counts",
    "owner_liveness",
    "parse_audit_filters",
    "parse_time_bound",
    "retried",
    "split_filter_words",
]
