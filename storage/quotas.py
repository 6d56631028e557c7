"""Daily request quotas, counted in the database so that every process shares one count.

Constant Contact allows 10,000 requests a day per account, reset at 00:00 UTC.  Counted
in memory, each process (a restart, each gunicorn worker, each ``untag run``) started
from zero; counted here, they draw from one ledger.  A process claims a block of
requests at a time (one write per block, not per request), so the ledger never lets
the processes together exceed the quota; what a process claimed and did not use is
lost for the day, at most one block per process.
"""

from __future__ import annotations

from datetime import date, timedelta

from storage._codec import integer
from storage.db import Database, immediate

__all__ = ["QuotaLedger"]

KEEP_DAYS = 7  # rows older than this are of no use to anyone; dropped as days go by


class QuotaLedger:
    """Requests spent per provider and UTC day."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, provider: str, day: date, wanted: int, limit: int) -> int:
        """Take up to ``wanted`` requests of ``provider``'s ``limit`` for ``day``; returns
        how many were granted, 0 when the day's quota is spent."""
        with immediate(self._db) as db:
            used = self._used(db, provider, day)
            granted = max(0, min(wanted, limit - used))
            if granted:
                db.execute(
                    "INSERT INTO quota_usage (provider, day, used) VALUES (?, ?, ?)"
                    " ON CONFLICT (provider, day) DO UPDATE SET used = used + excluded.used",
                    (provider, day.isoformat(), granted),
                )
                db.execute(
                    "DELETE FROM quota_usage WHERE provider = ? AND day < ?",
                    (provider, (day - timedelta(days=KEEP_DAYS)).isoformat()),
                )
        return granted

    def used(self, provider: str, day: date) -> int:
        """Requests claimed for ``day`` so far, by every process."""
        return self._used(self._db, provider, day)

    @staticmethod
    def _used(db: Database, provider: str, day: date) -> int:
        rows = list(
            db.query(
                "SELECT used FROM quota_usage WHERE provider = ? AND day = ?",
                (provider, day.isoformat()),
            )
        )
        return integer(rows[0], "used") if rows else 0
