"""How Python values are written to and read back from SQLite columns.

Datetimes are ISO-8601 text in UTC with microseconds, so that text order is time
order and ``ORDER BY created_at`` needs no conversion.  String tuples are JSON
arrays.  Readers check types instead of casting: a row that does not hold what
the schema promises is a bug worth an exception, not a silent ``Any``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

__all__ = [
    "dump_mapping",
    "dump_strings",
    "dump_time",
    "integer",
    "load_mapping",
    "load_strings",
    "load_time",
    "opt_text",
    "text",
    "utc_now",
]

Row = Mapping[str, object]


def utc_now() -> datetime:
    """The default clock of every store."""
    return datetime.now(UTC)


def dump_time(moment: datetime) -> str:
    """``moment`` as sortable UTC text; naive datetimes are refused, not guessed."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: storage needs an aware one (e.g. datetime.now(UTC))")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def load_time(value: object) -> datetime:
    """Inverse of :func:`dump_time`."""
    return datetime.fromisoformat(_str(value))


def dump_strings(items: Iterable[str]) -> str:
    """A JSON array; ``ensure_ascii=False`` keeps unicode tags readable in the file."""
    values = list(items)
    for item in values:
        _str(item)
    return json.dumps(values, ensure_ascii=False)


def load_strings(value: object) -> tuple[str, ...]:
    """Inverse of :func:`dump_strings`."""
    loaded = json.loads(_str(value))
    if not isinstance(loaded, list):
        raise TypeError("expected a JSON array of strings")
    return tuple(_str(item) for item in loaded)


def dump_mapping(items: Mapping[str, str]) -> str:
    """A JSON object of strings, keys sorted so equal mappings store equal text."""
    for key, val in items.items():
        _str(key)
        _str(val)
    return json.dumps(dict(items), ensure_ascii=False, sort_keys=True)


def load_mapping(value: object) -> dict[str, str]:
    """Inverse of :func:`dump_mapping`."""
    loaded = json.loads(_str(value))
    if not isinstance(loaded, dict):
        raise TypeError("expected a JSON object of strings")
    return {_str(key): _str(val) for key, val in loaded.items()}


def text(row: Row, key: str) -> str:
    """Column ``key`` of ``row``, which must be text."""
    return _str(row[key])


def integer(row: Row, key: str) -> int:
    """Column ``key`` of ``row``, which must be an integer."""
    value = row[key]
    # bool is an int subclass, but SQLite never returns one: seeing it means a bug.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def opt_text(row: Row, key: str) -> str | None:
    """Column ``key`` of ``row``: text or NULL."""
    value = row[key]
    return None if value is None else _str(value)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value
