"""JSON whose strings are text.

A lone surrogate (``"\\ud800"``) is valid JSON but no character: it parses, then fails much
later, where it is stored (SQLite encodes to UTF-8) or hashed.  Slack's payloads carry JSON
inside JSON (a view's ``private_metadata``, a button's ``value``), so the inner layer is read
with the same rule as the body.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads_text", "require_text"]


def loads_text(text: str) -> Any:
    """``json.loads``, raising ``ValueError`` for a lone surrogate anywhere in the value."""
    value = json.loads(text)
    require_text(value)
    return value


def require_text(value: Any) -> None:
    """Raise ``ValueError`` if any string in ``value`` (JSON-shaped) holds a lone surrogate."""
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError: a ValueError
