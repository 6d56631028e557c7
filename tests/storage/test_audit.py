"""storage.audit: the hash chain, its triggers, verify, prune, the key, canonical JSON.

Tampering goes through :func:`tamper`, a raw ``sqlite3`` connection that drops
the append-only triggers, edits, and puts the triggers back in one
transaction: what someone with write access to the file could do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import shutil
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

import storage
from storage import (
    GENESIS_HASH,
    AuditChainBroken,
    AuditKeyError,
    AuditLog,
    Database,
    DatabaseBusy,
    EventKind,
    StoreError,
    audit_key_recorded,
    canonical_json,
    default_key_file,
    event_hash,
    immediate,
    load_audit_key,
    open_database,
)
from storage.audit import _content
from tests.storage.conftest import TickingClock

KEY = b"k" * 32
WRONG_KEY = b"w" * 32
Params = tuple[object, ...]


def tamper(path: Path | str, *statements: tuple[str, Params]) -> None:
    """Run ``statements`` on the file with the triggers out of the way."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
        ).fetchall()
        for name, _sql in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        for sql, params in statements:
            conn.execute(sql, params)
        for _name, sql in triggers:
            conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


def raw_row(db: Database, seq: int) -> dict[str, object]:
    return db.query("SELECT * FROM events WHERE seq = ?", (seq,))[0]


def forged_insert(db: Database, seq: int, prev_hash: str) -> tuple[str, Params]:
    """An INSERT of a plausible row whose HMAC was made without the real key."""
    at = "2026-01-02T03:04:05.000000+00:00"
    detail = canonical_json({"outcome": "removed", "target": "1"})
    digest = event_hash(
        WRONG_KEY,
        seq=seq,
        at=at,
        actor="intruder",
        team=None,
        kind="record",
        op_id=None,
        detail=detail,
        prev_hash=prev_hash,
    )
    return (
        "INSERT INTO events (seq, at, actor, team, kind, op_id, detail, prev_hash, hash)"
        " VALUES (?, ?, 'intruder', NULL, 'record', NULL, ?, ?, ?)",
        (seq, at, detail, prev_hash, digest),
    )


@pytest.fixture
def log(db: Database, clock: TickingClock) -> AuditLog:
    return AuditLog(db, KEY, clock=clock)


def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(EventKind.RECORD, actor=f"U{i % 3}", op_id="op", detail={"target": str(i)})


# --- append -------------------------------------------------------------------------


def test_append_chains_rows_and_returns_what_is_stored(log: AuditLog) -> None:
    first = log.append(
        "requested",
        actor="U1",
        team="T1",
        op_id="op-1",
        detail={"provider": "zoho", "targets": ("554023000000793002",), "tags": ["Prime"]},
    )
    second = log.append(EventKind.CONFIRMED, actor="U1", op_id="op-1")
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert first.detail == {
        "provider": "zoho",
        "targets": ["554023000000793002"],
        "tags": ["Prime"],
    }
    assert second.detail == {}
    assert log.query(limit=10) == [second, first]  # read back equal, newest first
    assert log.head() == (2, second.hash)


def test_detail_is_stored_as_canonical_json(db: Database, log: AuditLog) -> None:
    log.append("requested", actor="U1", detail={"b": 1, "a": ["é", {"d": None, "c": 2.5}]})
    assert raw_row(db, 1)["detail"] == '{"a":["é",{"c":2.5,"d":null}],"b":1}'


@pytest.mark.parametrize(
    ("kind", "actor", "detail", "error"),
    [
        ("exploded", "U1", {}, ValueError),
        ("checkpoint", "U1", {}, ValueError),
        ("requested", "", {}, ValueError),
        ("requested", "U1", {"when": datetime(2026, 1, 1)}, TypeError),
        ("requested", "U1", {"n": float("nan")}, ValueError),
        ("requested", "U1", {"nested": {1: "x"}}, TypeError),
        ("requested", "U1", {"s": "\ud800"}, ValueError),
    ],
)
def test_bad_appends_write_nothing(
    db: Database, log: AuditLog, kind: str, actor: str, detail: dict[str, object], error: type
) -> None:
    with pytest.raises(error):
        log.append(kind, actor=actor, detail=detail)
    assert log.count() == 0


def test_append_joins_an_outer_transaction(db: Database, log: AuditLog) -> None:
    with pytest.raises(RuntimeError), immediate(db):
        log.append("requested", actor="U1")
        raise RuntimeError("the status change failed")
    assert log.count() == 0  # rolled back with the rest
    with immediate(db):
        log.append("requested", actor="U1")
        log.append("previewed", actor="U1")
    assert log.verify().ok


def test_append_many_writes_what_one_append_each_would(db_path: Path, tmp_path: Path) -> None:
    details = [{"target": str(i), "outcome": "removed", "removed": ["Prime"]} for i in range(5)]
    one_by_one = tmp_path / "one_by_one.db"
    with open_database(db_path) as db, open_database(one_by_one) as other:
        # A clock that never moves: append_many stamps a batch once, so equal times
        # make the two logs comparable row for row.
        fixed = TickingClock(step=timedelta(0))
        many, single = AuditLog(db, KEY, clock=fixed), AuditLog(other, KEY, clock=fixed)
        many.append("requested", actor="U1", op_id="op")
        single.append("requested", actor="U1", op_id="op")
        many.append_many("record", actor="U1", team="T1", op_id="op", details=details)
        for detail in details:
            single.append("record", actor="U1", team="T1", op_id="op", detail=detail)
        assert many.query(limit=None) == single.query(limit=None)
        assert many.head() == single.head() and many.verify().ok


@pytest.mark.parametrize(
    ("kind", "actor", "details", "error"),
    [
        ("checkpoint", "U1", [{}], ValueError),
        ("record", "", [{}], ValueError),
        ("record", "U1", [{"target": "1"}, {"n": float("nan")}], ValueError),
    ],
)
def test_append_many_is_all_or_nothing(
    log: AuditLog, kind: str, actor: str, details: list[dict[str, object]], error: type
) -> None:
    with pytest.raises(error):
        log.append_many(kind, actor=actor, details=details)
    log.append_many("record", actor="U1", details=[])
    assert log.count() == 0


def test_append_many_joins_an_outer_transaction(db: Database, log: AuditLog) -> None:
    with pytest.raises(RuntimeError), immediate(db):
        log.append_many("record", actor="U1", details=[{"target": "1"}, {"target": "2"}])
        raise RuntimeError("recording the results failed")
    assert log.count() == 0


def test_append_waits_for_the_lock_then_reports_busy(db_path: Path) -> None:
    with open_database(db_path, timeout=0.2) as a, open_database(db_path, timeout=0.2) as b:
        log_b = AuditLog(b, KEY)
        with immediate(a), pytest.raises(DatabaseBusy):
            log_b.append("requested", actor="U1")
        assert log_b.count() == 0


def test_eight_threads_of_500_appends_leave_an_intact_chain(db_path: Path) -> None:
    threads, per_thread = 8, 500
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with open_database(db_path) as db:  # one connection per thread
                log = AuditLog(db, KEY)
                start.wait()
                for i in range(per_thread):
                    log.append("record", actor=f"U{n}", detail={"target": str(i)})
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    with open_database(db_path) as db:
        log = AuditLog(db, KEY)
        assert log.count() == threads * per_thread
        result = log.verify()
        assert result.ok and result.checked == threads * per_thread
        seqs = [int(str(r["seq"])) for r in db.query("SELECT seq FROM events ORDER BY seq")]
        assert seqs == list(range(1, threads * per_thread + 1))
        for n in range(threads):  # each thread's own events are in its order
            mine = log.query(storage.AuditFilter(user=f"U{n}"), limit=None)
            assert [e.detail["target"] for e in reversed(mine)] == [
                str(i) for i in range(per_thread)
            ]


def test_threads_sharing_one_database(db: Database) -> None:
    log = AuditLog(db, KEY)
    pool = [
        threading.Thread(target=lambda: [log.append("record", actor="U1") for _ in range(100)])
        for _ in range(4)
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert log.verify().checked == 400


# --- triggers -----------------------------------------------------------------------


def test_triggers_refuse_update_and_delete(db: Database, log: AuditLog) -> None:
    fill(log, 3)
    for sql in (
        "UPDATE events SET actor = 'U9' WHERE seq = 2",
        "UPDATE events SET seq = 10 WHERE seq = 3",
        "DELETE FROM events WHERE seq = 1",
        "DELETE FROM events",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="audit log is append-only"):
            db.execute(sql)
    with pytest.raises(sqlite3.IntegrityError, match="cannot be deleted"):
        db.execute("DELETE FROM audit_state")
    with pytest.raises(sqlite3.IntegrityError, match="set once"):
        db.execute("UPDATE audit_state SET key_check = 'x'")
    assert log.verify().checked == 3


def test_key_fingerprint_refuses_another_key(db: Database, log: AuditLog) -> None:
    fill(log, 1)
    assert audit_key_recorded(db)
    with pytest.raises(AuditKeyError, match="not the key"):
        AuditLog(db, WRONG_KEY)
    AuditLog(db, KEY)  # the right one is fine, again and again
    stored = str(db.query("SELECT key_check FROM audit_state")[0]["key_check"])
    assert KEY.decode() not in stored and stored != KEY.hex()  # a fingerprint, not the key


def test_short_keys_are_refused(db: Database) -> None:
    with pytest.raises(AuditKeyError, match="at least 16 bytes"):
        AuditLog(db, b"short")
    assert not audit_key_recorded(db)


# --- verify -------------------------------------------------------------------------


def test_empty_log_verifies(log: AuditLog) -> None:
    assert log.verify() == storage.VerifyResult(ok=True, checked=0)


@pytest.mark.parametrize(
    ("name", "make", "bad", "reason"),
    [
        (
            "edit",
            lambda db: [("UPDATE events SET actor = 'U9' WHERE seq = 3", ())],
            3,
            "hash mismatch",
        ),
        (
            "edit detail",
            lambda db: [('UPDATE events SET detail = \'{"target":"x"}\' WHERE seq = 2', ())],
            2,
            "hash mismatch",
        ),
        ("delete middle", lambda db: [("DELETE FROM events WHERE seq = 3", ())], 3, "missing"),
        ("delete first", lambda db: [("DELETE FROM events WHERE seq = 1", ())], 1, "missing"),
        ("delete last", lambda db: [("DELETE FROM events WHERE seq = 5", ())], 5, "missing"),
        (
            "delete two",
            lambda db: [("DELETE FROM events WHERE seq IN (2, 3)", ())],
            2,
            "rows 2–3 are missing",
        ),
        ("delete all", lambda db: [("DELETE FROM events", ())], 5, "empty"),
        (
            "swap",
            lambda db: [
                ("UPDATE events SET seq = -1 WHERE seq = 2", ()),
                ("UPDATE events SET seq = 2 WHERE seq = 4", ()),
                ("UPDATE events SET seq = 4 WHERE seq = -1", ()),
            ],
            2,
            "prev_hash",
        ),
        (
            "insert at end",
            lambda db: [forged_insert(db, 6, str(raw_row(db, 5)["hash"]))],
            6,
            "hash mismatch",
        ),
        (
            "wrong type",
            lambda db: [("UPDATE events SET actor = X'4142' WHERE seq = 4", ())],
            4,
            "malformed",
        ),
    ],
)
def test_verify_names_the_first_bad_row(
    db: Database,
    db_path: Path,
    log: AuditLog,
    name: str,
    make: Callable[[Database], list[tuple[str, Params]]],
    bad: int,
    reason: str,
) -> None:
    fill(log, 5)
    tamper(db_path, *make(db))
    result = log.verify()
    assert not result.ok, name
    assert result.first_bad_seq == bad
    assert reason in (result.reason or "")
    if "missing" in reason or "empty" in reason:
        assert result.bad_row is None
    else:
        assert result.bad_row is not None and result.bad_row["seq"] == bad


def test_verify_reports_rows_checked_before_the_bad_one(db_path: Path, log: AuditLog) -> None:
    fill(log, 10)
    tamper(db_path, ("UPDATE events SET kind = 'denied' WHERE seq = 7", ()))
    assert log.verify().checked == 6


def test_a_truncated_tail_stays_visible_after_new_appends(db_path: Path, log: AuditLog) -> None:
    fill(log, 5)
    tamper(db_path, ("DELETE FROM events WHERE seq >= 4", ()))
    fill(log, 2)  # seq continues at 6: the hole at 4–5 shows
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_verify_on_an_in_memory_database() -> None:
    with open_database(":memory:") as db:
        log = AuditLog(db, KEY)
        fill(log, 3)
        assert log.verify().checked == 3
        db.conn.execute("DROP TRIGGER events_no_update")
        db.execute("UPDATE events SET actor = 'U9' WHERE seq = 2")
        assert log.verify().first_bad_seq == 2


def test_verify_sees_one_snapshot_while_others_append(db_path: Path, db: Database) -> None:
    log = AuditLog(db, KEY)
    fill(log, 200)
    stop = threading.Event()

    def writer() -> None:
        with open_database(db_path) as other:
            other_log = AuditLog(other, KEY)
            while not stop.is_set():
                other_log.append("record", actor="U5")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [log.verify() for _ in range(5)]
    finally:
        stop.set()
        thread.join()
    assert all(r.ok for r in results), results
    assert log.verify().ok


# --- prune --------------------------------------------------------------------------


def test_prune_keeps_the_rest_verifiable(db: Database, log: AuditLog) -> None:
    fill(log, 10)
    fifth = log.query(storage.AuditFilter(), limit=1, offset=5)[0]  # seq 5
    assert fifth.seq == 5
    result = log.prune(fifth.at, actor="admin")
    assert (result.removed, result.through_seq) == (4, 4)
    assert result.checkpoint is not None and result.checkpoint.seq == 11
    assert result.checkpoint.kind == "checkpoint" and result.checkpoint.actor == "admin"
    assert result.checkpoint.detail["through_seq"] == 4
    # The checkpoint vouches for the removed row that the first kept one chains to.
    assert result.checkpoint.detail["through_hash"] == raw_row(db, 5)["prev_hash"]
    remaining = [int(str(r["seq"])) for r in db.query("SELECT seq FROM events ORDER BY seq")]
    assert remaining == list(range(5, 12))
    assert log.verify() == storage.VerifyResult(ok=True, checked=7)
    fill(log, 2)
    assert log.verify().checked == 9
    # The flag is down again: deleting is refused as before.
    assert db.query("SELECT pruning FROM audit_state")[0]["pruning"] == 0
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM events WHERE seq = 5")


def test_pruned_start_must_match_the_checkpoint(db: Database, db_path: Path, log: AuditLog) -> None:
    fill(log, 6)
    log.prune(log.query(limit=1, offset=2)[0].at)  # keeps 4..6, checkpoint 7
    first_kept = raw_row(db, 4)
    assert (
        first_kept["prev_hash"]
        == log.query(storage.AuditFilter(kind="checkpoint"))[0].detail["through_hash"]
    )
    tamper(db_path, ("DELETE FROM events WHERE seq = 4", ()))
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "checkpoint" in (result.reason or "")


def test_prune_everything_then_carry_on(db: Database, log: AuditLog, clock: TickingClock) -> None:
    fill(log, 4)
    result = log.prune(clock.now)
    assert result.removed == 4 and result.checkpoint is not None
    assert log.count() == 1  # just the checkpoint, which chains on from row 4
    assert log.verify().ok
    fill(log, 3)
    again = log.prune(clock.now)
    assert again.removed == 4  # the first checkpoint and three events
    assert log.verify() == storage.VerifyResult(ok=True, checked=1)


def test_prune_with_nothing_old_enough(log: AuditLog) -> None:
    fill(log, 3)
    result = log.prune(datetime(2000, 1, 1, tzinfo=UTC))
    assert result == storage.PruneResult(removed=0, through_seq=None, checkpoint=None)
    assert log.count() == 3
    assert log.verify().ok


def test_prune_refuses_a_broken_chain(
    db: Database, db_path: Path, log: AuditLog, clock: TickingClock
) -> None:
    fill(log, 5)
    tamper(db_path, ("UPDATE events SET actor = 'U9' WHERE seq = 2", ()))
    with pytest.raises(AuditChainBroken, match="seq 2") as caught:
        log.prune(clock.now)
    assert caught.value.result.first_bad_seq == 2
    assert log.count() == 5
    assert isinstance(caught.value, StoreError)


def test_prune_refuses_the_future_and_naive_times(log: AuditLog, clock: TickingClock) -> None:
    fill(log, 2)
    with pytest.raises(ValueError, match="future"):
        log.prune(clock.now + timedelta(days=1))
    with pytest.raises(ValueError, match="naive"):
        log.prune(datetime(2026, 1, 1))
    assert log.count() == 2


def test_prune_rolls_back_completely_on_failure(
    db: Database, log: AuditLog, clock: TickingClock
) -> None:
    fill(log, 4)
    db.execute("CREATE TRIGGER boom AFTER DELETE ON events BEGIN SELECT RAISE(ABORT, 'boom'); END")
    with pytest.raises(sqlite3.IntegrityError, match="boom"):
        log.prune(clock.now)
    db.execute("DROP TRIGGER boom")
    assert log.count() == 4
    assert db.query("SELECT pruning FROM audit_state")[0]["pruning"] == 0
    assert log.verify().checked == 4


# --- hypothesis: random tampering -----------------------------------------------------

TAMPERABLE = ("at", "actor", "team", "kind", "op_id", "detail", "prev_hash", "hash")
details = st.dictionaries(
    st.sampled_from(["provider", "target", "tags", "outcome", "note"]),
    st.one_of(st.text(max_size=6), st.integers(), st.lists(st.text(max_size=4), max_size=2)),
    max_size=3,
)


class TamperMachine(RuleBasedStateMachine):
    """Appends, prunes and at most one tampering; verify() must agree with the model.

    ``first_bad`` is the seq of the first row the tampering changed, removed or
    added; ``present`` the seqs an honest log holds.  One tampering per run
    keeps "the first bad row" well defined (two edits could undo each other).
    """

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.path = self.dir / "audit.db"
        self.db = open_database(self.path)
        self.clock = TickingClock()
        self.log = AuditLog(self.db, KEY, clock=self.clock)
        self.present: list[int] = []
        self.first_bad: int | None = None

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(actor=st.sampled_from(["U1", "U2", "local:ann"]), detail=details)
    def append(self, actor: str, detail: dict[str, object]) -> None:
        event = self.log.append("record", actor=actor, op_id="op-1", detail=detail)
        self.present.append(event.seq)

    @precondition(lambda self: self.first_bad is None and self.present)
    @rule(data=st.data())
    def prune(self, data: st.DataObject) -> None:
        keep_from = data.draw(st.integers(0, len(self.present)))
        if keep_from == len(self.present):
            before = self.clock.now  # everything is older
        else:
            before = self.log.query(
                storage.AuditFilter(), limit=1, offset=len(self.present) - 1 - keep_from
            )[0].at
        result = self.log.prune(before)
        if keep_from == 0:
            assert result.checkpoint is None
            return
        assert result.checkpoint is not None
        self.present = [*self.present[keep_from:], result.checkpoint.seq]

    @precondition(lambda self: self.first_bad is None and self.present)
    @rule(data=st.data(), column=st.sampled_from(TAMPERABLE))
    def tamper_update(self, data: st.DataObject, column: str) -> None:
        seq = data.draw(st.sampled_from(self.present))
        if column == "detail":
            change = "detail = json_set(detail, '$.forged', 1)"
        else:
            change = f"{column} = COALESCE({column}, '') || 'x'"
        tamper(self.path, (f"UPDATE events SET {change} WHERE seq = ?", (seq,)))
        self.first_bad = seq

    @precondition(lambda self: self.first_bad is None and self.present)
    @rule(data=st.data())
    def tamper_rehash(self, data: st.DataObject) -> None:
        """Edit a row and recompute its hash, but without the key."""
        seq = data.draw(st.sampled_from(self.present))
        row = raw_row(self.db, seq)
        digest = event_hash(
            WRONG_KEY,
            seq=seq,
            at=str(row["at"]),
            actor="U-forged",
            team=None if row["team"] is None else str(row["team"]),
            kind=str(row["kind"]),
            op_id=None if row["op_id"] is None else str(row["op_id"]),
            detail=str(row["detail"]),
            prev_hash=str(row["prev_hash"]),
        )
        tamper(
            self.path,
            ("UPDATE events SET actor = 'U-forged', hash = ? WHERE seq = ?", (digest, seq)),
        )
        self.first_bad = seq

    @precondition(lambda self: self.first_bad is None and self.present)
    @rule(data=st.data())
    def tamper_delete(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.present))
        tamper(self.path, ("DELETE FROM events WHERE seq = ?", (seq,)))
        self.first_bad = seq

    @precondition(lambda self: self.first_bad is None and len(self.present) >= 2)
    @rule(data=st.data())
    def tamper_swap(self, data: st.DataObject) -> None:
        a, b = data.draw(
            st.lists(st.sampled_from(self.present), min_size=2, max_size=2, unique=True)
        )
        tamper(
            self.path,
            ("UPDATE events SET seq = -1 WHERE seq = ?", (a,)),
            ("UPDATE events SET seq = ? WHERE seq = ?", (a, b)),
            ("UPDATE events SET seq = ? WHERE seq = -1", (b,)),
        )
        self.first_bad = min(a, b)

    @precondition(lambda self: self.first_bad is None and self.present)
    @rule(data=st.data())
    def tamper_insert(self, data: st.DataObject) -> None:
        """Make room at `at` by shifting later rows up, and put a forged row there."""
        at = data.draw(st.integers(self.present[0], self.present[-1] + 1))
        before = self.db.query(
            "SELECT hash FROM events WHERE seq < ? ORDER BY seq DESC LIMIT 1", (at,)
        )
        prev_hash = str(before[0]["hash"]) if before else GENESIS_HASH
        tamper(
            self.path,
            ("UPDATE events SET seq = -seq WHERE seq >= ?", (at,)),
            ("UPDATE events SET seq = 1 - seq WHERE seq < 0", ()),
            forged_insert(self.db, at, prev_hash),
        )
        self.first_bad = at

    @invariant()
    def verify_agrees(self) -> None:
        result = self.log.verify()
        if self.first_bad is None:
            assert result.ok, result
            assert result.checked == len(self.present)
        else:
            assert not result.ok
            assert result.first_bad_seq == self.first_bad, (result, self.first_bad)


TamperMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=20, deadline=None)
test_random_tampering_is_caught = TamperMachine.TestCase


# --- canonical JSON and the golden vector ---------------------------------------------

GOLDEN_KEY = b"untag-golden-vector-key-32-bytes"
GOLDEN_DETAIL_1 = '{"provider":"zoho","tags":["Prime","Grüße 🎉"],"targets":["554023000000793002"]}'
GOLDEN_HASH_1 = "18cf778f0bdfb08d1fdf02a1ad72554a15f1085aa6f2ec80a50943ae09a71311"
GOLDEN_DETAIL_2 = '{"outcome":"removed","removed":["Prime"],"target":"554023000000793002"}'
GOLDEN_HASH_2 = "12cfc70c43e0ed62613dd199100a5255ee5aeb9687785dc44cfdb18305819bf4"


def test_golden_vector() -> None:
    detail_1 = canonical_json(
        {"targets": ["554023000000793002"], "tags": ["Prime", "Grüße 🎉"], "provider": "zoho"}
    )
    assert detail_1 == GOLDEN_DETAIL_1
    hash_1 = event_hash(
        GOLDEN_KEY,
        seq=1,
        at="2026-11-01T09:30:00.000000+00:00",
        actor="U0123ABC",
        team="T0TEAM",
        kind="requested",
        op_id="op-1",
        detail=detail_1,
        prev_hash=GENESIS_HASH,
    )
    assert hash_1 == GOLDEN_HASH_1
    detail_2 = canonical_json(
        {"target": "554023000000793002", "outcome": "removed", "removed": ["Prime"]}
    )
    assert detail_2 == GOLDEN_DETAIL_2
    hash_2 = event_hash(
        GOLDEN_KEY,
        seq=2,
        at="2026-11-01T09:30:01.500000+00:00",
        actor="U0123ABC",
        team=None,
        kind="record",
        op_id="op-1",
        detail=detail_2,
        prev_hash=hash_1,
    )
    assert hash_2 == GOLDEN_HASH_2


def test_golden_vector_from_the_definition() -> None:
    """HMAC-SHA256(key, prev_hash + canonical JSON of the row without its hash), spelled out."""
    row = {
        "seq": 1,
        "at": "2026-11-01T09:30:00.000000+00:00",
        "actor": "U0123ABC",
        "team": "T0TEAM",
        "kind": "requested",
        "op_id": "op-1",
        "detail": json.loads(GOLDEN_DETAIL_1),
        "prev_hash": GENESIS_HASH,
    }
    message = GENESIS_HASH + json.dumps(
        row, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert hmac.new(GOLDEN_KEY, message.encode(), hashlib.sha256).hexdigest() == GOLDEN_HASH_1


def test_golden_vector_through_append(db: Database) -> None:
    times = iter(
        [
            datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
            datetime(2026, 11, 1, 9, 30, 1, 500000, tzinfo=UTC),
        ]
    )
    log = AuditLog(db, GOLDEN_KEY, clock=lambda: next(times))
    first = log.append(
        "requested",
        actor="U0123ABC",
        team="T0TEAM",
        op_id="op-1",
        detail={
            "provider": "zoho",
            "targets": ["554023000000793002"],
            "tags": ["Prime", "Grüße 🎉"],
        },
    )
    second = log.append(
        "record",
        actor="U0123ABC",
        op_id="op-1",
        detail={"removed": ["Prime"], "outcome": "removed", "target": "554023000000793002"},
    )
    assert (first.hash, second.hash) == (GOLDEN_HASH_1, GOLDEN_HASH_2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": 2}, '{"a":2,"b":1}'),
        ({"tag": "é"}, '{"tag":"é"}'),  # raw UTF-8, not \u00e9
        ({"tag": "e\u0301"}, '{"tag":"e\u0301"}'),  # no normalization: bytes are hashed as given
        ({"emoji": "🎉"}, '{"emoji":"🎉"}'),
        ({"ctl": "a\nb\x00"}, '{"ctl":"a\\nb\\u0000"}'),
        ({"quote": '"\\'}, '{"quote":"\\"\\\\"}'),
        ({"t": (1, 2)}, '{"t":[1,2]}'),
        (
            {"f": 1.5, "big": 10**20, "none": None, "yes": True},
            '{"big":100000000000000000000,"f":1.5,"none":null,"yes":true}',
        ),
        ({}, "{}"),
    ],
)
def test_canonical_json_examples(value: object, expected: str) -> None:
    assert canonical_json(value) == expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.randoms())
def test_canonical_json_ignores_key_order(value: dict[str, object], rnd: random.Random) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    text = canonical_json(dict(items))
    assert text == canonical_json(value)
    assert json.loads(text) == value
    assert text.encode("utf-8").decode("utf-8") == text


printable = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(1, 2**62),
    at=printable,
    actor=printable,
    team=st.none() | printable,
    kind=printable,
    op_id=st.none() | printable,
    detail=st.dictionaries(printable, json_values, max_size=3),
    prev_hash=printable,
)
def test_row_content_is_canonical_json_of_the_row(
    seq: int,
    at: str,
    actor: str,
    team: str | None,
    kind: str,
    op_id: str | None,
    detail: dict[str, object],
    prev_hash: str,
) -> None:
    detail_text = canonical_json(detail)
    row = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "team": team,
        "kind": kind,
        "op_id": op_id,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    assert _content(seq, at, actor, team, kind, op_id, detail_text, prev_hash) == canonical_json(
        row
    )


# --- the key --------------------------------------------------------------------------


def test_explicit_key_wins(tmp_path: Path) -> None:
    key_file = tmp_path / "untag.db.key"
    assert load_audit_key("  a-long-enough-secret-value \n", key_file) == (
        b"a-long-enough-secret-value"
    )
    assert not key_file.exists()
    with pytest.raises(AuditKeyError, match="UNTAG_AUDIT_KEY"):
        load_audit_key("short", key_file)


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    key_file = default_key_file(tmp_path / "untag.db")
    assert key_file == tmp_path / "untag.db.key"
    first = load_audit_key(None, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) == 64 and bytes.fromhex(first.decode())
    assert load_audit_key("", key_file) == first  # blank means unset
    assert load_audit_key(None, key_file) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["untag.db.key"]  # no temp left


def test_key_file_is_not_created_when_told_not_to(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match="restore the key file"):
        load_audit_key(None, tmp_path / "missing.key", create=False)
    assert not (tmp_path / "missing.key").exists()


def test_empty_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "k.key"
    key_file.write_text("\n")
    with pytest.raises(AuditKeyError, match="at least 16 bytes"):
        load_audit_key(None, key_file)


def test_racing_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "untag.db.key"
    start = threading.Barrier(8)
    keys: list[bytes] = []

    def first_start() -> None:
        start.wait()
        keys.append(load_audit_key(None, key_file))

    pool = [threading.Thread(target=first_start) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["untag.db.key"]


def test_the_key_never_reaches_the_database(db_path: Path) -> None:
    key = load_audit_key(None, default_key_file(db_path))
    with open_database(db_path) as db:
        log = AuditLog(db, key)
        fill(log, 3)
        files = [db_path, Path(f"{db_path}-wal")]
        data = b"".join(f.read_bytes() for f in files if f.exists())
    assert data and key not in data and key.hex().encode() not in data


# --- exports --------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["storage.audit", "storage.reports"])
def test_new_modules_are_exported(module: str) -> None:
    import importlib

    names = importlib.import_module(module).__all__
    assert set(names) <= set(storage.__all__)
    for name in names:
        assert getattr(storage, name) is getattr(importlib.import_module(module), name)
