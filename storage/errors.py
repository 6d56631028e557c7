"""Errors raised by :mod:`storage`.

``storage`` sits below every other package, so it has its own small root;
``commands`` translates it into the project-wide ``UntagError`` tree::

    StoreError
    ├── DatabaseBusy        the write lock stayed taken longer than the busy timeout
    ├── SchemaMismatch      the file's schema is not one this code can use
    ├── ChildExists         this operation already has an undo (or a retry)
    ├── TokenKeyError       stored tokens do not decrypt with this key
    └── UnknownOperation    no operation has that id (also a ``LookupError``)

Messages never contain token values or record contents, only ids and versions.
"""

from __future__ import annotations

__all__ = [
    "ChildExists",
    "DatabaseBusy",
    "SchemaMismatch",
    "StoreError",
    "TokenKeyError",
    "UnknownOperation",
]


class StoreError(Exception):
    """Root of every error :mod:`storage` raises on purpose."""


class DatabaseBusy(StoreError):
    """Another connection held the write lock for longer than the busy timeout.

    Nothing was written: the transaction never started.
    """


class SchemaMismatch(StoreError):
    """The database was migrated by newer code, or could not be put in WAL mode."""


class UnknownOperation(StoreError, LookupError):
    """No operation has this id."""

    def __init__(self, op_id: str) -> None:
        super().__init__(f"no operation with id {op_id!r}")
        self.op_id = op_id


class ChildExists(StoreError):
    """The operation already has a (non dry-run) child of this kind: an undo or a retry."""

    def __init__(self, parent_id: str, kind: str) -> None:
        super().__init__(f"operation {parent_id!r} already has a {kind}")
        self.parent_id = parent_id
        self.kind = kind


class TokenKeyError(StoreError):
    """Stored tokens do not decrypt with this process's key: the audit key changed."""

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"the stored {provider} tokens cannot be decrypted with this key; restore the"
            " audit key (UNTAG_AUDIT_KEY or its key file) that wrote them"
        )
        self.provider = provider
