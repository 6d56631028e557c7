"""The SQLite connection: open it safely, run transactions, apply migrations.

Every write goes through :func:`immediate`, which takes the write lock up front
with ``BEGIN IMMEDIATE``.  A deferred ``BEGIN`` that reads and then writes fails
with "database is locked" *without waiting* when another connection wrote first;
``BEGIN IMMEDIATE`` waits for the busy timeout instead (reliability doc, B.8).

One :class:`Database` may be shared by the threads of a process: its ``RLock``
is held for every statement and for the whole of every transaction, so two
threads never interleave statements on the one connection.  Several processes
(or several ``Database`` objects) on one file are serialized by SQLite itself.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils
from sqlite_utils.utils import dedupe_keys

from storage._codec import dump_time, integer, utc_now
from storage.errors import DatabaseBusy, SchemaMismatch, StoreError
from storage.schema import MIGRATIONS, Migration

__all__ = ["Database", "immediate", "migrate", "open_database"]

Params = Sequence[object] | Mapping[str, object]

_MEMORY = ":memory:"


class Database:
    """A sqlite-utils database over one ``sqlite3`` connection, plus its thread lock.

    Use :func:`open_database` rather than building one by hand: it sets the
    pragmas and runs the migrations.  ``utils`` is the underlying
    ``sqlite_utils.Database`` for table helpers; call it only inside
    :func:`immediate` or while holding ``lock``.
    """

    def __init__(self, conn: sqlite3.Connection, *, path: str) -> None:
        self.conn = conn
        self.path = path
        self.lock = threading.RLock()
        # Plugins could register functions or change the connection: not ours to run.
        self.utils: Any = sqlite_utils.Database(conn, execute_plugins=False)
        self._depth = 0  # nesting of immediate(); read and written only under `lock`

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement and return how many rows it changed."""
        with self.lock:
            cursor: sqlite3.Cursor = self.utils.execute(sql, params)
            return cursor.rowcount

    def execute_many(self, sql: str, rows: Sequence[Params]) -> int:
        """Run one statement once per parameter set and return how many rows it changed."""
        with self.lock:
            return self.conn.executemany(sql, rows).rowcount

    def query(self, sql: str, params: Params = ()) -> list[dict[str, object]]:
        """Run one statement that returns rows; fetch them all before letting go of the lock."""
        with self.lock:
            if not _is_select(sql):
                return [dict(row) for row in self.utils.query(sql, params)]
            # sqlite-utils wraps every query in SAVEPOINT ... RELEASE so that a statement
            # which turns out to write can be undone; a SELECT cannot write, and those two
            # statements were a fifth of what recording a one-record batch sends to SQLite.
            cursor = self.conn.execute(sql, params)
            names = dedupe_keys(column[0] for column in cursor.description)
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        """Close the connection (waiting for a transaction in another thread to end)."""
        with self.lock:
            self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Database {self.path!r}>"


def open_database(
    path: str | Path,
    *,
    timeout: float = 10.0,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> Database:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date.

    The file is put in WAL mode (readers never block the writer); the connection
    gets ``synchronous=FULL`` (a commit survives power loss, not only a crash),
    foreign keys, and ``timeout`` seconds of busy waiting.  ``":memory:"`` works
    for throwaway use but cannot be in WAL mode.
    """
    target = str(path)
    # isolation_level=None: the driver never opens a transaction behind our back,
    # so the only transactions are immediate()'s and sqlite-utils' savepoints.
    conn = sqlite3.connect(target, timeout=timeout, check_same_thread=False, isolation_level=None)
    try:
        db = Database(conn, path=target)
        # Both pragmas are per connection and are no-ops inside a transaction.
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = FULL")
        if target != _MEMORY:
            _enable_wal(db)
        migrate(db, migrations)
    except BaseException:
        conn.close()
        raise
    return db


def _enable_wal(db: Database) -> None:
    # WAL persists in the file, so after the first open this is one read.  It must
    # run outside a transaction; a first open racing another waits on the busy timeout.
    with db.lock:
        try:
            db.utils.enable_wal()
        except sqlite3.OperationalError as exc:
            raise _busy_or(exc) from exc
        mode = db.utils.journal_mode
    if mode != "wal":
        raise SchemaMismatch(f"{db.path}: journal mode is {mode!r}, WAL is required")


@contextlib.contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction: ``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` on any exception.

    Raises :class:`DatabaseBusy` when the write lock is not free within the
    busy timeout.  Nested use joins the outer transaction through a savepoint,
    so a caller can make several stores' writes one atomic unit (e.g. a status
    change and its audit row).
    """
    with db.lock:
        depth = db._depth
        savepoint = f"untag_{depth}"
        if depth:
            db.conn.execute(f"SAVEPOINT {savepoint}")
        else:
            if db.conn.in_transaction:
                raise StoreError("a transaction was left open outside immediate()")
            try:
                db.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _busy_or(exc) from exc
        db._depth = depth + 1
        try:
            yield db
        except BaseException:
            # The caller's exception is the one to report; SQLite only refuses a
            # ROLLBACK when the error already ended the transaction.
            with contextlib.suppress(sqlite3.Error):
                if db.conn.in_transaction:
                    if depth:
                        db.conn.execute(f"ROLLBACK TO {savepoint}")
                        db.conn.execute(f"RELEASE {savepoint}")
                    else:
                        db.conn.execute("ROLLBACK")
            raise
        else:
            if depth:
                db.conn.execute(f"RELEASE {savepoint}")
            else:
                try:
                    db.conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        if db.conn.in_transaction:
                            db.conn.execute("ROLLBACK")
                    raise
        finally:
            db._depth = depth


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations the file lacks, in order, in one ``BEGIN IMMEDIATE``.

    Returns the versions applied (empty when up to date).  Two processes opening
    a new file at once are safe: the second waits for the lock, then finds
    nothing to do.  A file holding a version this code does not know was
    written by newer code, and :class:`SchemaMismatch` is raised rather than
    guessing.
    """
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)) or any(v < 1 for v in versions):
        raise ValueError("migration versions must be positive, unique and increasing")
    applied: list[int] = []
    with immediate(db):
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        rows = db.query("SELECT version FROM schema_migrations")
        present = {integer(row, "version") for row in rows}
        unknown = present - set(versions)
        if unknown:
            raise SchemaMismatch(
                f"{db.path} has schema versions {sorted(unknown)} unknown to this code"
            )
        for migration in migrations:
            if migration.version in present:
                continue
            migration.apply(db)
            db.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (migration.version, dump_time(utc_now())),
            )
            applied.append(migration.version)
    return applied


def _is_select(sql: str) -> bool:
    """A plain ``SELECT`` (not ``WITH``, which may lead to a write)."""
    return sql.lstrip()[:6].upper() == "SELECT" and not sql.lstrip()[6:7].isalnum()


def _busy_or(exc: sqlite3.OperationalError) -> Exception:
    # Extended codes (e.g. SQLITE_BUSY_SNAPSHOT) keep the primary code in the low byte.
    if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return DatabaseBusy("the database stayed locked for longer than the busy timeout")
    return exc
