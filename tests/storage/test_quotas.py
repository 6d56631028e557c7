"""storage.quotas: one daily count for every process on the file, never beyond the limit."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path

from storage import Database, QuotaLedger, open_database

DAY = date(2026, 11, 22)


def test_claims_are_granted_up_to_the_limit_then_refused(db: Database) -> None:
    ledger = QuotaLedger(db)
    assert ledger.claim("cc", DAY, 20, 50) == 20
    assert ledger.claim("cc", DAY, 20, 50) == 20
    assert ledger.claim("cc", DAY, 20, 50) == 10  # what is left
    assert ledger.claim("cc", DAY, 20, 50) == 0
    assert ledger.used("cc", DAY) == 50
    assert ledger.claim("cc", DAY + timedelta(days=1), 20, 50) == 20  # a new day
    assert ledger.claim("other", DAY, 5, 50) == 5  # per provider


def test_connections_racing_for_the_last_requests_never_exceed_the_limit(db_path: Path) -> None:
    """Eight connections (as eight processes would) claim 3 at a time from a limit of 100."""
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def process() -> None:
        with open_database(db_path) as own:
            ledger = QuotaLedger(own)
            start.wait()
            while got := ledger.claim("cc", DAY, 3, 100):
                with lock:
                    granted.append(got)

    threads = [threading.Thread(target=process) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(granted) == 100
    with open_database(db_path) as db:
        assert QuotaLedger(db).used("cc", DAY) == 100


def test_days_older_than_a_week_are_dropped(db: Database) -> None:
    ledger = QuotaLedger(db)
    ledger.claim("cc", DAY, 1, 10)
    ledger.claim("cc", DAY + timedelta(days=7), 1, 10)
    assert ledger.used("cc", DAY) == 1  # a week old: kept
    ledger.claim("cc", DAY + timedelta(days=8), 1, 10)
    assert ledger.used("cc", DAY) == 0
    assert ledger.used("cc", DAY + timedelta(days=7)) == 1
