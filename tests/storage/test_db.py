"""storage.db: pragmas, migrations, immediate() transactions, busy handling."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from storage import (
    MIGRATIONS,
    Database,
    DatabaseBusy,
    Migration,
    SchemaMismatch,
    StoreError,
    immediate,
    migrate,
    open_database,
)


def _scalar(db: Database, sql: str) -> object:
    rows = db.query(sql)
    return next(iter(rows[0].values()))


def _versions(db: Database) -> list[int]:
    return [int(str(r["version"])) for r in db.query("SELECT version FROM schema_migrations")]


def _make_table(db: Database) -> None:
    db.execute("CREATE TABLE things (name TEXT PRIMARY KEY)")


def _names(db: Database) -> list[str]:
    return [str(r["name"]) for r in db.query("SELECT name FROM things ORDER BY rowid")]


def test_pragmas_are_set_on_every_connection(db_path: Path) -> None:
    for _ in range(2):  # journal mode persists in the file; the others are per connection
        with open_database(db_path) as db:
            assert _scalar(db, "PRAGMA journal_mode") == "wal"
            assert _scalar(db, "PRAGMA synchronous") == 2  # FULL
            assert _scalar(db, "PRAGMA foreign_keys") == 1
            assert _scalar(db, "PRAGMA busy_timeout") == 10_000


def test_timeout_sets_busy_timeout(db_path: Path) -> None:
    with open_database(db_path, timeout=0.25) as db:
        assert _scalar(db, "PRAGMA busy_timeout") == 250


def test_migrations_are_recorded_once(db_path: Path) -> None:
    with open_database(db_path) as db:
        assert _versions(db) == [m.version for m in MIGRATIONS]
        rows = db.query("SELECT applied_at FROM schema_migrations")
        assert all(datetime.fromisoformat(str(r["applied_at"])).tzinfo for r in rows)
    with open_database(db_path) as db:
        assert migrate(db) == []
        assert _versions(db) == [m.version for m in MIGRATIONS]


def test_a_later_migration_is_applied_once(db: Database) -> None:
    later = [*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "things", _make_table)]
    assert migrate(db, later) == [MIGRATIONS[-1].version + 1]
    assert migrate(db, later) == []
    assert _names(db) == []


def test_a_failing_migration_leaves_nothing_behind(db: Database) -> None:
    version = MIGRATIONS[-1].version + 1

    def broken(database: Database) -> None:
        _make_table(database)
        raise RuntimeError("half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        migrate(db, [*MIGRATIONS, Migration(version, "broken", broken)])
    assert _versions(db) == [m.version for m in MIGRATIONS]
    assert not db.query("SELECT name FROM sqlite_master WHERE name = 'things'")
    assert migrate(db, [*MIGRATIONS, Migration(version, "things", _make_table)]) == [version]


def test_a_file_from_newer_code_is_refused(db_path: Path) -> None:
    with open_database(db_path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (99, '2030-01-01T00:00:00+00:00')")
    with pytest.raises(SchemaMismatch, match=r"\[99\]"):
        open_database(db_path)


@pytest.mark.parametrize("versions", [[2, 1], [1, 1], [0]])
def test_migration_versions_must_increase(db: Database, versions: list[int]) -> None:
    with pytest.raises(ValueError, match="increasing"):
        migrate(db, [Migration(v, "x", _make_table) for v in versions])


def test_memory_database_is_migrated() -> None:
    with open_database(":memory:") as db:
        assert _versions(db) == [m.version for m in MIGRATIONS]


def test_immediate_commits(db: Database, db_path: Path) -> None:
    later = [*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "things", _make_table)]
    migrate(db, later)
    with immediate(db) as tx:
        tx.execute("INSERT INTO things VALUES ('a')")
        assert db.conn.in_transaction
    assert not db.conn.in_transaction
    with open_database(db_path, migrations=later) as other:
        assert _names(other) == ["a"]


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_immediate_rolls_back_on_any_exception(db: Database, error: BaseException) -> None:
    migrate(db, [*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "things", _make_table)])
    with pytest.raises(type(error)), immediate(db) as tx:
        tx.execute("INSERT INTO things VALUES ('a')")
        raise error
    assert not db.conn.in_transaction
    assert _names(db) == []


def test_nested_immediate_rolls_back_only_the_inner_block(db: Database) -> None:
    migrate(db, [*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "things", _make_table)])
    with immediate(db) as outer:
        outer.execute("INSERT INTO things VALUES ('outer')")
        with pytest.raises(ValueError), immediate(db) as inner:
            inner.execute("INSERT INTO things VALUES ('inner')")
            raise ValueError
        with immediate(db) as inner:
            inner.execute("INSERT INTO things VALUES ('kept')")
    assert _names(db) == ["outer", "kept"]


def test_immediate_refuses_a_stray_transaction(db: Database) -> None:
    db.conn.execute("BEGIN")
    with pytest.raises(StoreError, match="left open"), immediate(db):
        pass
    db.conn.execute("ROLLBACK")


def test_busy_writer_raises_database_busy(db_path: Path) -> None:
    with open_database(db_path) as holder, open_database(db_path, timeout=0.05) as waiter:
        with immediate(holder), pytest.raises(DatabaseBusy), immediate(waiter):
            pass  # pragma: no cover - never entered
        assert not waiter.conn.in_transaction
        with immediate(waiter):  # free again once the holder committed
            pass


def test_query_returns_rows_as_dicts_without_a_savepoint(db: Database) -> None:
    migrate(db, [*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "things", _make_table)])
    db.execute("INSERT INTO things VALUES ('a')")
    sent: list[str] = []
    db.conn.set_trace_callback(sent.append)
    rows = db.query("  select name, name, 1 AS name_2 FROM things WHERE name = ?", ("a",))
    db.conn.set_trace_callback(None)
    # Duplicate column names are told apart as sqlite-utils does.
    assert rows == [{"name": "a", "name_3": "a", "name_2": 1}]
    assert sent == ["  select name, name, 1 AS name_2 FROM things WHERE name = 'a'"]
    assert not db.conn.in_transaction


def test_query_refuses_a_statement_without_rows_and_undoes_it(db: Database) -> None:
    migrate(db, [*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "things", _make_table)])
    with pytest.raises(ValueError, match="returns rows"):
        db.query("INSERT INTO things VALUES ('a')")
    with pytest.raises(ValueError, match="returns rows"):
        db.query("WITH x AS (SELECT 'b') INSERT INTO things SELECT * FROM x")
    assert _names(db) == []


def test_other_operational_errors_pass_through(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError), immediate(db) as tx:
        tx.execute("SELECT * FROM no_such_table")


def test_shared_database_serializes_threads(db: Database) -> None:
    migrate(db, [*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, "things", _make_table)])
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        for i in range(50):
            with immediate(db) as tx:
                # read-then-write: another thread's statements in between would
                # break the count below
                count = len(tx.query("SELECT name FROM things"))
                tx.execute("INSERT INTO things VALUES (?)", (f"{n}-{i}-{count}",))

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(work, n) for n in range(8)]:
            future.result()
    counts = sorted(int(name.rsplit("-", 1)[1]) for name in _names(db))
    assert counts == list(range(400))  # every transaction saw all earlier ones
