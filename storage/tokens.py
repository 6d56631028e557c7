"""OAuth tokens, shared between processes and kept across restarts, encrypted.

Constant Contact refresh tokens are single use: once a refresh succeeds the old
one is dead, so the new one must be on disk before the new access token is
used, or a crash loses the account until someone re-authorizes (reliability
doc, B.6).  :meth:`TokenStore.save` therefore returns only after a
``synchronous=FULL`` commit.  Access tokens are kept too, so that processes
share them: Zoho grants ten per refresh token per ten minutes, and every
``untag run`` from cron would otherwise spend one.

Token values are encrypted (Fernet: AES-128-CBC with an HMAC-SHA256 tag) under a
key derived from the key the store is given, the audit key: the database file
alone reveals no token.  Values written in clear by an older version are sealed
the first time a store opens the file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

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
from storage.errors import TokenKeyError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = ["StoredToken", "TokenStore"]

SEALED = "fernet:"  # marks an encrypted value; values without it are from before encryption
_KEY_LABEL = b"untag token encryption v1"
_SECRET_COLUMNS = ("refresh_token", "access_token")


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
    """Load and durably save each provider account's tokens, encrypted under ``key``."""

    def __init__(
        self, db: Database, key: bytes, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._db = db
        self._cipher = _cipher(key)
        self._clock = clock
        self._seal_clear_values()

    def load(self, provider: str) -> StoredToken | None:
        """The saved tokens of ``provider``, or ``None`` if none were ever saved."""
        rows = self._db.query(
            "SELECT provider, refresh_token, access_token, expires_at, extra, updated_at"
            " FROM tokens WHERE provider = ?",
            (provider,),
        )
        return self._token(rows[0]) if rows else None

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
            "refresh_token": self._seal(refresh_token),
            "access_token": self._seal(access_token),
            "expires_at": None if expires_at is None else dump_time(expires_at),
            "extra": dump_mapping(extra or {}),
            "updated_at": dump_time(self._clock()),
        }
        with immediate(self._db) as db:
            db.utils["tokens"].upsert(row, pk="provider")

    def _seal(self, value: str | None) -> str | None:
        if value is None:
            return None
        return SEALED + self._cipher.encrypt(value.encode("utf-8")).decode("ascii")

    def _unseal(self, provider: str, value: str | None) -> str | None:
        if value is None or not value.startswith(SEALED):
            return value  # None, or written in clear before encryption (sealed at open)
        from cryptography.fernet import InvalidToken

        try:
            return self._cipher.decrypt(value[len(SEALED) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise TokenKeyError(provider) from None

    def _token(self, row: Row) -> StoredToken:
        provider = text(row, "provider")
        expires_at = row["expires_at"]
        return StoredToken(
            provider=provider,
            refresh_token=self._unseal(provider, opt_text(row, "refresh_token")),
            access_token=self._unseal(provider, opt_text(row, "access_token")),
            expires_at=None if expires_at is None else load_time(expires_at),
            extra=load_mapping(row["extra"]),
            updated_at=load_time(row["updated_at"]),
        )

    def _seal_clear_values(self) -> None:
        """Encrypt the values an older version wrote in clear; a no-op once done."""
        clear = " OR ".join(
            f"({column} IS NOT NULL AND substr({column}, 1, {len(SEALED)}) != '{SEALED}')"
            for column in _SECRET_COLUMNS
        )
        select = f"SELECT provider, {', '.join(_SECRET_COLUMNS)} FROM tokens WHERE {clear}"
        if not list(self._db.query(select + " LIMIT 1")):
            return
        with immediate(self._db) as db:
            for row in list(db.query(select)):
                provider = text(row, "provider")
                values = [opt_text(row, column) for column in _SECRET_COLUMNS]
                sealed = [v if v is None or v.startswith(SEALED) else self._seal(v) for v in values]
                db.execute(
                    "UPDATE tokens SET refresh_token = ?, access_token = ? WHERE provider = ?",
                    (*sealed, provider),
                )


def _cipher(key: bytes) -> Fernet:
    # Imported here: only processes that reach a provider need the OpenSSL bindings.
    from cryptography.fernet import Fernet

    # A key of its own, derived from the one given (the audit key), so the audit
    # HMAC and this encryption never use the same key material.
    derived = hmac.new(key, _KEY_LABEL, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))
