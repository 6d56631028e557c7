"""Benchmark of the audit log: appends per second, a filtered query, and verify on N events.

    .venv/bin/python -m bench.audit [--events 1000000] [--appends 2000] [--threads 8] [--dir DIR]

Appends go through :meth:`storage.AuditLog.append` (``BEGIN IMMEDIATE``, WAL,
``synchronous=FULL``: one fsync per event), first from one thread, then from
``--threads`` threads with a connection each.  The rest of the N events are
written fast, in one transaction with ``executemany``, the chain computed in
Python exactly as ``append`` does; then the queries and ``verify`` are timed
on the whole log.  The database lives in a temporary directory (or ``--dir``,
to measure a particular disk) and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from storage import (
    GENESIS_HASH,
    AuditFilter,
    AuditLog,
    Database,
    canonical_json,
    event_hash,
    immediate,
    open_database,
)

KEY = b"bench-audit-key-0123456789abcdef"
USERS = 1000
PROVIDERS = ("alta", "fernand", "zoho", "bigin", "constantcontact")
T = TypeVar("T")


def timed(func: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = func()
    return value, time.perf_counter() - start


def single_appends(log: AuditLog, count: int) -> float:
    for i in range(count):
        log.append(
            "record",
            actor=f"U{i % USERS:04d}",
            op_id=f"op-{i // 10}",
            detail={"provider": "zoho", "target": str(i), "outcome": "removed"},
        )
    return float(count)


def threaded_appends(path: Path, threads: int, per_thread: int) -> None:
    start = threading.Barrier(threads)

    def worker(n: int) -> None:
        with open_database(path) as db:
            log = AuditLog(db, KEY)
            start.wait()
            for i in range(per_thread):
                log.append("record", actor=f"U{n:04d}", detail={"target": f"t{n}-{i}"})

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def synthetic_rows(
    first_seq: int, count: int, prev_hash: str, start: datetime
) -> Iterator[tuple[object, ...]]:
    """Events as the bot would write them: per operation a request, ten records, a completion."""
    prev = prev_hash
    for n in range(count):
        seq = first_seq + n
        op = seq // 12
        step = seq % 12
        user = f"U{op % USERS:04d}"
        provider = PROVIDERS[op % len(PROVIDERS)]
        if step == 0:
            kind = "requested"
            detail = {
                "provider": provider,
                "tags": ["Prime"],
                "targets": [str(op * 10 + k) for k in range(10)],
            }
        elif step == 11:
            kind, detail = "completed", {"provider": provider, "status": "succeeded"}
        else:
            target = str(op * 10 + step - 1)
            outcome = "failed" if seq % 97 == 0 else "removed"
            kind = "record"
            detail = {
                "provider": provider,
                "target": target,
                "outcome": outcome,
                "removed": ["Prime"],
            }
        at = (start + timedelta(milliseconds=n)).isoformat(timespec="microseconds")
        detail_text = canonical_json(detail)
        op_id = f"op-{op:08d}"
        digest = event_hash(
            KEY,
            seq=seq,
            at=at,
            actor=user,
            team="T0BENCH",
            kind=kind,
            op_id=op_id,
            detail=detail_text,
            prev_hash=prev,
        )
        yield (seq, at, user, "T0BENCH", kind, op_id, detail_text, prev, digest)
        prev = digest


def populate(db: Database, count: int) -> None:
    with immediate(db):
        last = db.query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        first_seq = int(str(last[0]["seq"])) + 1 if last else 1
        prev = str(last[0]["hash"]) if last else GENESIS_HASH
        start = datetime.now(UTC) - timedelta(milliseconds=count + 60_000)
        # Older than the appended events in `at`, newer in seq: harmless for the
        # chain, which orders by seq; only prune() cares about `at`.
        db.conn.executemany(
            "INSERT INTO events (seq, at, actor, team, kind, op_id, detail, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            synthetic_rows(first_seq, count, prev, start),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="total events (1000000)")
    parser.add_argument("--appends", type=int, default=2000, help="single-thread appends (2000)")
    parser.add_argument("--threads", type=int, default=8, help="threads for the concurrent run")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.db"
        rows: list[tuple[str, str]] = []
        with open_database(path) as db:
            log = AuditLog(db, KEY)
            count, seconds = timed(lambda: single_appends(log, args.appends))
            rows.append(("append, 1 thread (synchronous=FULL)", f"{count / seconds:,.0f} /s"))
            per_thread = max(args.appends // args.threads, 1)
            _, seconds = timed(lambda: threaded_appends(path, args.threads, per_thread))
            rows.append(
                (
                    f"append, {args.threads} threads x {per_thread}",
                    f"{args.threads * per_thread / seconds:,.0f} /s",
                )
            )
            bulk = max(args.events - log.count(), 0)
            _, seconds = timed(lambda: populate(db, bulk))
            rows.append((f"bulk load of {bulk:,} events (executemany)", f"{seconds:.1f} s"))
            total = log.count()

            probe_user = "U0042"
            probe_record = str((total // 24) * 10 + 3)  # a target halfway through the log
            queries: list[tuple[str, Callable[[], object]]] = [
                (
                    f"query user:{probe_user} kind:record, 50 newest",
                    lambda: log.query(AuditFilter(user=probe_user, kind="record"), limit=50),
                ),
                (f"count user:{probe_user}", lambda: log.count(AuditFilter(user=probe_user))),
                (
                    "query since:10m, 50 newest",
                    lambda: log.query(
                        AuditFilter(since=datetime.now(UTC) - timedelta(minutes=10)), limit=50
                    ),
                ),
                (
                    f"query record:{probe_record}",
                    lambda: log.query(AuditFilter(record=probe_record), limit=50),
                ),
                (
                    "query provider:zoho status:failed, 50 newest",
                    lambda: log.query(AuditFilter(provider="zoho", status="failed"), limit=50),
                ),
            ]
            for label, run in queries:
                found, seconds = timed(run)
                shown = len(found) if isinstance(found, list) else found
                rows.append((f"{label} [{shown}]", f"{seconds * 1000:,.1f} ms"))
            result, seconds = timed(log.verify)
            status = "intact" if result.ok else f"BROKEN at {result.first_bad_seq}"
            rows.append((f"verify {result.checked:,} events ({status})", f"{seconds:.2f} s"))
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6

    print(f"untag audit log benchmark: {total:,} events, {size:,.0f} MB on disk")
    print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.machine()}, {platform.system()}"
    )
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  result")
    print(f"{'-' * width}  ----------")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
