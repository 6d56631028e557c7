"""storage.operations: the ledger, its compare-and-set, results and undo rules."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import (
    MIGRATIONS,
    ChildExists,
    Database,
    NewResult,
    OperationRecord,
    OperationStore,
    OpKind,
    OpStatus,
    UnknownOperation,
    current_owner,
    open_database,
)
from tests.storage.conftest import TickingClock

THREADS = 8


@pytest.fixture
def ops(db: Database, clock: TickingClock) -> OperationStore:
    return OperationStore(db, clock=clock)


def _create(ops: OperationStore, requester: str = "U1", **overrides: object) -> OperationRecord:
    fields: dict[str, object] = {
        "kind": "remove",
        "requester": requester,
        "provider": "zoho",
        "scope": "Leads",
        "targets": ["554023000000793002"],
        "tags": ["Prime"],
    }
    fields.update(overrides)
    return ops.create(**fields)  # type: ignore[arg-type]


def _at(ops: OperationStore, status: str, **overrides: Any) -> OperationRecord:
    op = _create(ops, **overrides)
    assert ops.advance(op.id, to=status)
    record = ops.get(op.id)
    assert record is not None
    return record


# create / get


def test_create_returns_what_get_reads(ops: OperationStore, clock: TickingClock) -> None:
    start = clock.now
    op = _create(ops, targets=("1", "2"), tags=["Prime", "VIP"], dry_run=True)
    assert len(op.id) == 32 and int(op.id, 16) >= 0
    assert op.status == OpStatus.REQUESTED and op.kind == OpKind.REMOVE
    assert op.targets == ("1", "2") and op.tags == ("Prime", "VIP")
    assert op.dry_run is True and op.error is None and op.parent_id is None
    assert op.created_at == op.updated_at == start
    assert ops.get(op.id) == op


def test_get_unknown_is_none(ops: OperationStore) -> None:
    assert ops.get("nope") is None


def test_create_checks_its_arguments(ops: OperationStore) -> None:
    with pytest.raises(ValueError, match="OpKind"):
        _create(ops, kind="obliterate")
    with pytest.raises(TypeError, match="single string"):
        _create(ops, targets="554023000000793002")
    with pytest.raises(UnknownOperation) as caught:
        _create(ops, kind="undo", parent_id="missing")
    assert caught.value.op_id == "missing"
    assert ops.recent() == []


def test_create_links_a_child_to_its_parent(ops: OperationStore) -> None:
    parent = _create(ops)
    child = _create(ops, kind="undo", parent_id=parent.id)
    assert ops.get(child.id) == child and child.parent_id == parent.id


def test_naive_clock_is_refused(db: Database) -> None:
    store = OperationStore(db, clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        _create(store)


# advance


def test_advance_moves_only_from_expected_statuses(ops: OperationStore) -> None:
    op = _create(ops)
    assert not ops.advance(op.id, to="running", expect={"previewed", "confirmed"})
    assert ops.advance(op.id, to="previewed", expect=["requested"])
    assert ops.advance(op.id, to="running", expect={"previewed", "confirmed"})
    moved = ops.get(op.id)
    assert moved is not None and moved.status == "running"
    assert moved.updated_at > op.updated_at and moved.created_at == op.created_at


def test_advance_without_expect_always_moves(ops: OperationStore) -> None:
    op = _create(ops)
    assert ops.advance(op.id, to="cancelled")
    assert ops.advance(op.id, to="cancelled")


def test_advance_with_empty_expect_never_moves(ops: OperationStore) -> None:
    op = _create(ops)
    assert not ops.advance(op.id, to="cancelled", expect=set())


def test_advance_unknown_op_is_false(ops: OperationStore) -> None:
    assert not ops.advance("nope", to="running")


def test_advance_keeps_the_error_unless_given_a_new_one(ops: OperationStore) -> None:
    op = _create(ops)
    assert ops.advance(op.id, to="failed", error="zoho: 401")
    assert ops.advance(op.id, to="failed")
    assert (ops.get(op.id) or op).error == "zoho: 401"
    assert ops.advance(op.id, to="failed", error="zoho: 500")
    assert (ops.get(op.id) or op).error == "zoho: 500"


def test_advance_checks_statuses(ops: OperationStore) -> None:
    op = _create(ops)
    with pytest.raises(ValueError):
        ops.advance(op.id, to="done")
    with pytest.raises(ValueError):
        ops.advance(op.id, to="running", expect={"preview"})
    with pytest.raises(TypeError, match="collection"):
        ops.advance(op.id, to="running", expect="previewed")
    assert (ops.get(op.id) or op).status == "requested"


@pytest.mark.parametrize("connections", ["shared", "separate"])
def test_exactly_one_thread_claims(db: Database, db_path: Path, connections: str) -> None:
    op = _at(OperationStore(db), "previewed")
    dbs = (
        [db] * THREADS
        if connections == "shared"
        else [open_database(db_path) for _ in range(THREADS)]
    )
    start = threading.Barrier(THREADS)

    def claim(database: Database) -> bool:
        start.wait()
        return OperationStore(database).advance(
            op.id, to="running", expect={"previewed", "confirmed"}
        )

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            won = list(pool.map(claim, dbs))
    finally:
        if connections == "separate":
            for database in dbs:
                database.close()
    assert won.count(True) == 1
    assert (OperationStore(db).get(op.id) or op).status == "running"


@pytest.mark.parametrize("connections", ["shared", "separate"])
def test_concurrent_creates_are_all_stored(tmp_path: Path, connections: str) -> None:
    path = tmp_path / "hammer.db"  # fresh: the separate opens also race the first migration
    shared = open_database(path) if connections == "shared" else None
    start = threading.Barrier(THREADS)

    def work(n: int) -> list[str]:
        start.wait()
        database = shared or open_database(path)
        try:
            store = OperationStore(database)
            return [_create(store, requester=f"U{n}", targets=[str(i)]).id for i in range(200)]
        finally:
            if shared is None:
                database.close()

    with ThreadPoolExecutor(THREADS) as pool:
        ids = [op_id for batch in pool.map(work, range(THREADS)) for op_id in batch]
    with shared or open_database(path) as database:
        rows = database.query("SELECT id FROM operations")
        assert len(ids) == len(set(ids)) == THREADS * 200
        assert {str(r["id"]) for r in rows} == set(ids)
        applied = database.query("SELECT version FROM schema_migrations")
        assert len(applied) == len(MIGRATIONS)  # each migration ran once despite the race


# results


def test_record_results_upserts_by_target(ops: OperationStore, clock: TickingClock) -> None:
    op = _create(ops)
    ops.record_results(
        op.id,
        [
            NewResult("1", "removed", removed=("Prime",), remaining=("VIP",)),
            NewResult("2", "failed", code="LOCKED", message="record is locked"),
            NewResult("3", "not_present"),
        ],
    )
    first = ops.results(op.id)
    ops.record_results(op.id, [NewResult("2", "removed", removed=("Prime",), remaining=())])
    second = ops.results(op.id)
    assert [r.target for r in second] == ["1", "2", "3"]  # the retried target keeps its place
    assert second[0] == first[0] and second[2] == first[2]
    retried = second[1]
    assert (retried.outcome, retried.removed, retried.remaining) == ("removed", ("Prime",), ())
    assert retried.code is None and retried.message is None
    assert retried.recorded_at > first[1].recorded_at
    assert first[0].remaining == ("VIP",) and first[2].remaining is None
    assert first[1].code == "LOCKED" and first[1].op_id == op.id


def test_record_results_needs_a_known_op(ops: OperationStore) -> None:
    with pytest.raises(UnknownOperation):
        ops.record_results("nope", [NewResult("1", "removed")])
    with pytest.raises(UnknownOperation):
        ops.record_results("nope", [])
    assert ops.results("nope") == []


def test_record_results_is_one_transaction(ops: OperationStore) -> None:
    op = _create(ops)
    with pytest.raises(TypeError):
        ops.record_results(op.id, [NewResult("1", "removed"), NewResult("2", "removed", (3,))])  # type: ignore[arg-type]
    assert ops.results(op.id) == []


# recent / last_undoable


def test_recent_is_newest_first(ops: OperationStore) -> None:
    made = [_create(ops, requester=f"U{i % 2}") for i in range(5)]
    assert ops.recent() == made[::-1]
    assert ops.recent(requester="U1") == [made[3], made[1]]
    assert ops.recent(limit=2) == [made[4], made[3]]
    assert ops.recent(limit=0) == [] and ops.recent(limit=-1) == []


def test_recent_breaks_clock_ties_by_insertion(db: Database) -> None:
    frozen = datetime(2026, 1, 1, tzinfo=UTC)
    ops = OperationStore(db, clock=lambda: frozen)
    made = [_create(ops) for _ in range(3)]
    assert ops.recent() == made[::-1]
    assert ops.last_undoable("U1") is None


def test_last_undoable_picks_the_newest_real_finished_removal(ops: OperationStore) -> None:
    older = _at(ops, "succeeded")
    newer = _at(ops, "partially_failed")
    for status in ("requested", "running", "failed", "cancelled", "interrupted", "undone"):
        _at(ops, status)
    _at(ops, "succeeded", dry_run=True)
    _at(ops, "succeeded", kind="delete-tags")
    _at(ops, "succeeded", kind="retry")
    _at(ops, "succeeded", requester="U2")
    assert ops.last_undoable("U1") == newer
    assert ops.advance(newer.id, to="undone")
    assert ops.last_undoable("U1") == older
    assert ops.last_undoable("U3") is None


@pytest.mark.parametrize(
    ("undo_status", "still_undoable"),
    [
        ("succeeded", False),
        ("partially_failed", False),
        ("running", False),
        ("requested", True),
        ("previewed", True),
        ("confirmed", True),
        ("failed", True),
        ("cancelled", True),
        ("interrupted", True),
    ],
)
def test_an_undo_child_hides_its_parent(
    ops: OperationStore, undo_status: str, still_undoable: bool
) -> None:
    removal = _at(ops, "succeeded")
    _at(ops, undo_status, kind="undo", parent_id=removal.id)
    _at(ops, "succeeded", kind="retry", parent_id=removal.id)  # only undo children count
    assert ops.last_undoable("U1") == (removal if still_undoable else None)


# interrupt_orphaned: only the running jobs of processes that are gone


def _claimed_by(ops: OperationStore, db: Database, owner: str | None) -> OperationRecord:
    """A running operation whose row names ``owner``, as that process would have written it."""
    op = _at(ops, "running")
    db.execute("UPDATE operations SET owner = ? WHERE id = ?", (owner, op.id))
    claimed = ops.get(op.id)
    assert claimed is not None and claimed.owner == owner
    return claimed


def _exited_process_owner() -> str:
    """The owner a process that ran and exited (reaped) would have recorded."""
    done = subprocess.run(
        [sys.executable, "-c", "from storage import current_owner; print(current_owner())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_claiming_records_the_claiming_process_and_later_moves_keep_it(
    ops: OperationStore,
) -> None:
    op = _create(ops)
    assert op.owner is None
    assert ops.advance(op.id, to="running", expect={"requested"})
    assert (ops.get(op.id) or op).owner == current_owner()
    assert ops.advance(op.id, to="succeeded")
    assert (ops.get(op.id) or op).owner == current_owner()


def test_running_operations_of_this_live_process_are_left_alone(ops: OperationStore) -> None:
    mine = _at(ops, "running")
    recovery = ops.interrupt_orphaned()
    assert recovery.interrupted == [] and recovery.elsewhere == []
    assert ops.get(mine.id) == mine


def test_an_operation_claimed_by_a_process_that_exited_is_interrupted(
    ops: OperationStore, db_path: Path
) -> None:
    op = _create(ops)
    # The other process claims it for real, then exits without finishing it.
    claim = (
        "import sys; from storage import OperationStore, open_database; "
        "sys.exit(0 if OperationStore(open_database(sys.argv[1])).advance("
        "sys.argv[2], to='running', expect={'requested'}) else 1)"
    )
    subprocess.run([sys.executable, "-c", claim, str(db_path), op.id], check=True)
    claimed = ops.get(op.id)
    assert claimed is not None and claimed.status == "running"
    assert claimed.owner is not None and claimed.owner != current_owner()

    [interrupted] = ops.interrupt_orphaned().interrupted
    assert interrupted.id == op.id and interrupted.status == "interrupted"
    assert ops.get(op.id) == interrupted


def test_an_exited_pid_is_gone(ops: OperationStore, db: Database) -> None:
    op = _claimed_by(ops, db, _exited_process_owner())
    assert [o.id for o in ops.interrupt_orphaned().interrupted] == [op.id]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="start times come from /proc")
def test_a_reused_pid_is_not_the_owner(ops: OperationStore, db: Database) -> None:
    # This very pid, alive, but started at another moment: the owner died and its
    # pid went to an unrelated process (this one).
    host, pid, start = current_owner().split(" ")
    boot, ticks = start.rsplit(":", 1)
    op = _claimed_by(ops, db, f"{host} {pid} {boot}:{int(ticks) - 1}")
    assert [o.id for o in ops.interrupt_orphaned().interrupted] == [op.id]


def test_operations_claimed_before_owners_were_recorded_are_interrupted(db_path: Path) -> None:
    with open_database(db_path, migrations=MIGRATIONS[:4]) as old:
        # A row as the code before migration 5 wrote it: no owner column.
        old.execute(
            "INSERT INTO operations (id, kind, requester, provider, scope, targets, tags,"
            " status, dry_run, created_at, updated_at)"
            " VALUES ('old', 'remove', 'U1', 'zoho', 'Leads', '[\"1\"]', '[\"Prime\"]',"
            " 'running', 0, '2026-01-01T00:00:00.000000+00:00',"
            " '2026-01-01T00:00:00.000000+00:00')"
        )
    with open_database(db_path) as db:  # migration 5 adds the owner column, NULL here
        ops = OperationStore(db)
        before = ops.get("old")
        assert before is not None and before.status == "running" and before.owner is None
        assert [o.id for o in ops.interrupt_orphaned().interrupted] == ["old"]


def test_an_owner_on_another_host_is_left_running_and_reported(
    ops: OperationStore, db: Database
) -> None:
    _, pid, start = current_owner().split(" ")
    op = _claimed_by(ops, db, f"not-{socket.gethostname()} {pid} {start}")
    recovery = ops.interrupt_orphaned()
    assert recovery.interrupted == [] and recovery.elsewhere == [op]
    assert ops.get(op.id) == op


def test_interrupting_keeps_results_and_happens_once(
    ops: OperationStore, db: Database, clock: TickingClock
) -> None:
    gone = _exited_process_owner()
    first = _claimed_by(ops, db, gone)
    other = _at(ops, "succeeded")
    live = _at(ops, "running")
    second = _claimed_by(ops, db, None)
    ops.record_results(first.id, [NewResult("1", "removed", ("Prime",))])
    when = clock.now
    interrupted = ops.interrupt_orphaned().interrupted
    assert [op.id for op in interrupted] == [first.id, second.id]
    assert all(op.status == "interrupted" and op.updated_at == when for op in interrupted)
    assert [ops.get(op.id) for op in interrupted] == interrupted
    assert ops.get(other.id) == other and ops.get(live.id) == live
    assert [r.target for r in ops.results(first.id)] == ["1"]
    assert ops.interrupt_orphaned().interrupted == []


def test_racing_recoveries_interrupt_each_operation_once(
    ops: OperationStore, db: Database, db_path: Path
) -> None:
    orphans = {_claimed_by(ops, db, None).id for _ in range(20)}
    barrier = threading.Barrier(THREADS)

    def recover(_: int) -> list[str]:
        with open_database(db_path) as own:  # one connection each, as separate processes
            barrier.wait()
            return [op.id for op in OperationStore(own).interrupt_orphaned().interrupted]

    with ThreadPoolExecutor(THREADS) as pool:
        claims = [op_id for got in pool.map(recover, range(THREADS)) for op_id in got]
    assert sorted(claims) == sorted(orphans)


# round trip

_names = st.text(max_size=40)
_ids = st.one_of(st.from_regex(r"[0-9]{18}", fullmatch=True), _names)
_moments = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2100, 1, 1)),
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
)


@pytest.fixture(scope="module")
def module_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with open_database(tmp_path_factory.mktemp("roundtrip") / "untag.db") as database:
        yield database


@settings(max_examples=100, deadline=None)  # deadline: commits fsync
@given(
    kind=st.sampled_from(list(OpKind)),
    requester=_ids,
    provider=_names,
    scope=st.none() | _ids,
    targets=st.lists(_ids, max_size=8),
    tags=st.lists(_names, max_size=8),
    dry_run=st.booleans(),
    moment=_moments,
)
def test_operation_round_trip(
    module_db: Database,
    kind: OpKind,
    requester: str,
    provider: str,
    scope: str | None,
    targets: list[str],
    tags: list[str],
    dry_run: bool,
    moment: datetime,
) -> None:
    ops = OperationStore(module_db, clock=lambda: moment)
    made = ops.create(
        kind=kind.value,
        requester=requester,
        provider=provider,
        scope=scope,
        targets=targets,
        tags=tags,
        dry_run=dry_run,
    )
    read = ops.get(made.id)
    assert read == made
    assert (read.kind, read.requester, read.provider, read.scope) == (
        kind,
        requester,
        provider,
        scope,
    )
    assert read.targets == tuple(targets) and read.tags == tuple(tags)
    assert all(type(item) is str for item in (*read.targets, *read.tags, read.requester))
    assert read.dry_run is dry_run
    assert read.created_at == moment and read.created_at.utcoffset() == timedelta(0)


# one undo, one retry


def test_an_operation_gets_at_most_one_real_undo_and_one_retry(ops: OperationStore) -> None:
    parent = _create(ops)
    ops.create(
        kind="undo",
        requester="U1",
        provider="zoho",
        scope="Leads",
        targets=["1"],
        tags=["Prime"],
        dry_run=True,
        parent_id=parent.id,
    )  # a dry run claims nothing
    ops.create(
        kind="undo",
        requester="U1",
        provider="zoho",
        scope="Leads",
        targets=["1"],
        tags=["Prime"],
        parent_id=parent.id,
    )
    with pytest.raises(ChildExists):
        ops.create(
            kind="undo",
            requester="U2",
            provider="zoho",
            scope="Leads",
            targets=["1"],
            tags=["Prime"],
            parent_id=parent.id,
        )
    ops.create(
        kind="retry",
        requester="U1",
        provider="zoho",
        scope="Leads",
        targets=["1"],
        tags=["Prime"],
        parent_id=parent.id,
    )
