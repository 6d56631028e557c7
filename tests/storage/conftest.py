"""Fixtures shared by the storage tests: a migrated database file and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import Database, open_database


class TickingClock:
    """A clock that moves ``step`` forward on every reading, so order is deterministic."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)):
        self.now = start or datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "untag.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    with open_database(db_path) as database:
        yield database


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()
