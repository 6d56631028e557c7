"""storage.tokens: round trip, replacement, and durability across connections and crashes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage import Database, StoredToken, TokenKeyError, TokenStore, open_database
from tests.storage.conftest import TickingClock
from tests.storage.test_audit import KEY

EXPIRES = datetime(2026, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2)))


def test_load_unknown_provider_is_none(db: Database) -> None:
    assert TokenStore(db, KEY).load("constant_contact") is None


def test_save_load_round_trip(db: Database, clock: TickingClock) -> None:
    tokens = TokenStore(db, KEY, clock=clock)
    saved_at = clock.now
    tokens.save(
        "zoho",
        refresh_token="1000.r",
        access_token="1000.a",
        expires_at=EXPIRES,
        extra={"api_domain": "https://www.zohoapis.eu", "note": "é"},
    )
    assert tokens.load("zoho") == StoredToken(
        provider="zoho",
        refresh_token="1000.r",
        access_token="1000.a",
        expires_at=EXPIRES,
        extra={"api_domain": "https://www.zohoapis.eu", "note": "é"},
        updated_at=saved_at,
    )
    loaded = tokens.load("zoho")
    assert loaded is not None and loaded.expires_at is not None
    assert loaded.expires_at.utcoffset() == timedelta(0)  # stored and returned as UTC


def test_save_replaces_the_whole_state(db: Database, clock: TickingClock) -> None:
    tokens = TokenStore(db, KEY, clock=clock)
    tokens.save("cc", refresh_token="r1", access_token="a1", expires_at=EXPIRES, extra={"k": "v"})
    tokens.save("cc", refresh_token="r2")
    loaded = tokens.load("cc")
    assert loaded is not None
    assert (loaded.refresh_token, loaded.access_token, loaded.expires_at, loaded.extra) == (
        "r2",
        None,
        None,
        {},
    )
    assert tokens.load("zoho") is None


def test_repr_hides_token_values(db: Database) -> None:
    tokens = TokenStore(db, KEY)
    tokens.save("cc", refresh_token="secret-refresh", access_token="secret-access")
    loaded = tokens.load("cc")
    assert "secret" not in repr(loaded) and "cc" in repr(loaded)
    assert hash(loaded)  # usable in sets despite the dict field


def test_naive_expiry_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="naive"):
        TokenStore(db, KEY).save("cc", refresh_token="r", expires_at=datetime(2026, 1, 1))
    assert TokenStore(db, KEY).load("cc") is None


def test_saved_token_is_visible_to_a_new_connection(db_path: Path) -> None:
    with open_database(db_path) as writer:
        TokenStore(writer, KEY).save("cc", refresh_token="r1")
        with open_database(db_path) as reader:  # writer still open: committed, not cached
            loaded = TokenStore(reader, KEY).load("cc")
            assert loaded is not None and loaded.refresh_token == "r1"


def test_saved_token_survives_the_writer_being_killed(db_path: Path) -> None:
    # The writer saves, then dies by SIGKILL with no chance to close or flush.
    script = textwrap.dedent(
        """
        import os, signal, sys
        from storage import TokenStore, open_database
        db = open_database(sys.argv[1])
        TokenStore(db, b"k" * 32).save("cc", refresh_token="rotated", access_token="a")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(db_path)], capture_output=True, timeout=30
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    with open_database(db_path) as db:
        loaded = TokenStore(db, KEY).load("cc")
    assert loaded is not None and loaded.refresh_token == "rotated"
    assert loaded.updated_at <= datetime.now(UTC)


def test_token_values_are_encrypted_in_the_file(db_path: Path) -> None:
    with open_database(db_path) as db:
        TokenStore(db, KEY).save("cc", refresh_token="plain-refresh-77", access_token="plain-a-77")
        loaded = TokenStore(db, KEY).load("cc")
        assert loaded is not None
        assert (loaded.refresh_token, loaded.access_token) == ("plain-refresh-77", "plain-a-77")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = b"".join(p.read_bytes() for p in db_path.parent.glob("untag.db*"))
    assert b"plain-refresh-77" not in stored and b"plain-a-77" not in stored
    assert b"fernet:" in stored


def test_another_key_cannot_read_them_and_says_so(db: Database) -> None:
    TokenStore(db, KEY).save("cc", refresh_token="secret-refresh-88")
    with pytest.raises(TokenKeyError, match="audit key") as caught:
        TokenStore(db, b"another key, 32 bytes long......").load("cc")
    assert "secret-refresh-88" not in str(caught.value)


def test_values_stored_in_clear_by_an_older_version_are_sealed_at_open(db: Database) -> None:
    db.execute(
        "INSERT INTO tokens (provider, refresh_token, access_token, extra, updated_at)"
        " VALUES ('cc', 'old-clear-refresh', NULL, '{}', '2026-01-01T00:00:00.000000+00:00')"
    )
    tokens = TokenStore(db, KEY)
    [row] = list(db.query("SELECT refresh_token, access_token FROM tokens"))
    assert str(row["refresh_token"]).startswith("fernet:") and row["access_token"] is None
    loaded = tokens.load("cc")
    assert loaded is not None and loaded.refresh_token == "old-clear-refresh"
    TokenStore(db, KEY)  # already sealed: sealing again would make it unreadable
    assert TokenStore(db, KEY).load("cc") == loaded
