"""OAuth tokens that providers rotate.

Constant Contact refresh tokens are single use: once a refresh succeeds the old
one is dead, so the new one must be on disk before the new access token is
used, or a crash loses the account until someone re-authorizes (reliability
doc, B.6).  :meth:`TokenStore.save` therefore returns only after a
``synchronous=FULL`` commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from storage._codec import (
    Row,
    dump_mapping,
    dump_time,
    load_mapping,
    load_time,
    opt_text,
    text,
    utc_now,
)
from storage.db import Database, immediate

__all__ = ["StoredToken", "TokenStore"]


@dataclass(frozen=True)
class StoredToken:
    """The token state of one provider account.

    Token values are left out of ``repr`` so a logged record leaks nothing;
    ``extra`` holds provider details such as Zoho's ``api_domain``.
    """

    provider: str
    refresh_token: str | None = field(repr=False)
    access_token: str | None = field(repr=False)
    expires_at: datetime | None
    extra: dict[str, str] = field(hash=False)  # a dict cannot be hashed; the rest can
    updated_at: datetime


class TokenStore:
    """Load and durably save each provider's tokens."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = db
        self._clock = clock

    def load(self, provider: str) -> StoredToken | None:
        """The saved tokens of ``provider``, or ``None`` if none were ever saved."""
        rows = self._db.query(
            "SELECT provider, refresh_token, access_token, expires_at, extra, updated_at"
            " FROM tokens WHERE provider = ?",
            (provider,),
        )
        return _token(rows[0]) if rows else None

    def save(
        self,
        provider: str,
        *,
        refresh_token: str | None,
        access_token: str | None = None,
        expires_at: datetime | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """Replace the whole token state of ``provider``; durable when this returns.

        Every field is written, so what :meth:`load` returns is exactly what was
        last saved: pass ``extra`` again on every save if it should stay.
        """
        row = {
            "provider": provider,
            "refresh_token": refresh_token,
            "access_token": access_token,
            "expires_at": None if expires_at is None else dump_time(expires_at),
            "extra": dump_mapping(extra or {}),
            "updated_at": dump_time(self._clock()),
        }
        with immediate(self._db) as db:
            db.utils["tokens"].upsert(row, pk="provider")


def _token(row: Row) -> StoredToken:
    expires_at = row["expires_at"]
    return StoredToken(
        provider=text(row, "provider"),
        refresh_token=opt_text(row, "refresh_token"),
        access_token=opt_text(row, "access_token"),
        expires_at=None if expires_at is None else load_time(expires_at),
        extra=load_mapping(row["extra"]),
        updated_at=load_time(row["updated_at"]),
    )
