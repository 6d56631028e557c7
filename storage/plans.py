"""Previewed plans, kept until the user confirms or cancels.

A plan is stored as opaque JSON text: ``commands`` owns its shape (the action
and the preview the user saw), ``storage`` only keeps it safe and hands it
back, in whichever process the confirmation arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from storage._codec import dump_time, load_time, utc_now
from storage.db import Database, immediate

__all__ = ["PlanStore", "StoredPlan"]


@dataclass(frozen=True)
class StoredPlan:
    """One operation's plan: its action, its preview and where to report (all JSON text)."""

    op_id: str
    action: str
    preview: str
    context: str
    created_at: datetime


class PlanStore:
    """Save a plan when it is previewed; load it when it is confirmed."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = db
        self._clock = clock

    def save(self, op_id: str, *, action: str, preview: str, context: str = "{}") -> None:
        """Store (or replace) the plan of ``op_id``."""
        row = {
            "op_id": op_id,
            "action": action,
            "preview": preview,
            "context": context,
            "created_at": dump_time(self._clock()),
        }
        with immediate(self._db) as db:
            db.utils["plans"].insert(row, replace=True)

    def load(self, op_id: str) -> StoredPlan | None:
        """The plan of ``op_id``, or ``None``."""
        rows = self._db.query(
            "SELECT op_id, action, preview, context, created_at FROM plans WHERE op_id = ?",
            (op_id,),
        )
        if not rows:
            return None
        row = rows[0]
        return StoredPlan(
            op_id=str(row["op_id"]),
            action=str(row["action"]),
            preview=str(row["preview"]),
            context=str(row["context"]),
            created_at=load_time(str(row["created_at"])),
        )
