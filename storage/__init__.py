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
numbered migrations), ``operations``, ``tokens``, ``errors``.  A new store adds
a module and the next migration in ``schema``.
"""

from storage.db import Database, immediate, migrate, open_database
from storage.errors import (
    ChildExists,
    DatabaseBusy,
    SchemaMismatch,
    StoreError,
    UnknownOperation,
)
from storage.operations import (
    NewResult,
    OperationRecord,
    OperationStore,
    OpKind,
    OpStatus,
    ResultRecord,
)
from storage.plans import PlanStore, StoredPlan
from storage.schema import MIGRATIONS, Migration
from storage.tokens import StoredToken, TokenStore

__all__ = [
    "MIGRATIONS",
    "ChildExists",
    "Database",
    "DatabaseBusy",
    "Migration",
    "NewResult",
    "OpKind",
    "OpStatus",
    "OperationRecord",
    "OperationStore",
    "PlanStore",
    "ResultRecord",
    "SchemaMismatch",
    "StoreError",
    "StoredPlan",
    "StoredToken",
    "TokenStore",
    "UnknownOperation",
    "immediate",
    "migrate",
    "open_database",
]
