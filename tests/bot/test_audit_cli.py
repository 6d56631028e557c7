"""``untag audit``: query formats and filters, the audit of queries, verify, prune, exit codes.

The group is mounted on a stand-in for ``untag``'s main group, as ``bot.cli``
does with ``main.add_command(audit)``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from bot.audit_cli import OPERATION_CSV_COLUMNS, audit
from storage import (
    AuditFilter,
    AuditLog,
    NewResult,
    OperationStore,
    default_key_file,
    open_database,
)

KEY = "an-audit-key-for-the-cli-tests-0001"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def untag() -> None:
    """Stand-in for bot.cli.main."""


untag.add_command(audit)


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith(
            ("UNTAG_", "SLACK_", "ALTA_", "FERNAND_", "ZOHO_", "BIGIN_", "CONSTANT_CONTACT_")
        ):
            monkeypatch.delenv(name)
    path = tmp_path / "untag.db"
    monkeypatch.setenv("UNTAG_DATABASE", str(path))
    monkeypatch.setenv("UNTAG_AUDIT_KEY", KEY)
    monkeypatch.setenv("COLUMNS", "200")
    return path


@pytest.fixture
def ids(db_path: Path) -> Iterator[dict[str, str]]:
    """Two operations by U1 (zoho, alta) and one by U2 (zoho), with outcomes and events."""
    with open_database(db_path) as db:
        ops = OperationStore(db)
        log = AuditLog(db, KEY.encode())
        zoho = ops.create(
            kind="remove",
            requester="U1",
            provider="zoho",
            scope="Leads",
            targets=["554023000000793002", "554023000000793003"],
            tags=["Prime"],
        )
        log.append("requested", actor="U1", team="T1", op_id=zoho.id)
        ops.record_results(
            zoho.id,
            [
                NewResult("554023000000793002", "removed", removed=("Prime",), remaining=()),
                NewResult("554023000000793003", "failed", code="LOCKED", message="=locked"),
            ],
        )
        ops.advance(zoho.id, to="partially_failed")
        log.append("completed", actor="U1", team="T1", op_id=zoho.id)
        alta = ops.create(
            kind="remove",
            requester="U1",
            provider="alta",
            scope=None,
            targets=["a-1"],
            tags=["Prime"],
        )
        ops.record_results(alta.id, [NewResult("a-1", "removed", removed=("Prime",))])
        ops.advance(alta.id, to="succeeded")
        other = ops.create(
            kind="remove",
            requester="U2",
            provider="zoho",
            scope="Deals",
            targets=["9"],
            tags=["Cold"],
        )
        log.append("denied", actor="U3", team="T1", detail={"command": "audit"})
        yield {"zoho": zoho.id, "alta": alta.id, "other": other.id}


def run(*args: str) -> Result:
    return CliRunner().invoke(untag, ["audit", *args], catch_exceptions=False)


def events_of(db_path: Path, kind: str) -> list[dict[str, object]]:
    with open_database(db_path) as db:
        log = AuditLog(db, KEY.encode())
        return [
            {"actor": e.actor, **e.detail} for e in log.query(AuditFilter(kind=kind), limit=None)
        ]


def test_json_with_combined_filters(db_path: Path, ids: dict[str, str]) -> None:
    result = run("user:U1", "provider:zoho", "tag:prime", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [op["id"] for op in data] == [ids["zoho"]]
    op = data[0]
    assert op["actor"] == "U1" and op["provider"] == "zoho" and op["scope"] == "Leads"
    assert op["targets"] == ["554023000000793002", "554023000000793003"]
    assert op["tags"] == ["Prime"]
    assert op["status"] == "partially_failed"
    assert op["created_at"] and op["updated_at"]
    assert op["records"][0] == {
        "target": "554023000000793002",
        "outcome": "removed",
        "removed": ["Prime"],
        "remaining": [],
        "code": None,
        "message": None,
        "recorded_at": op["records"][0]["recorded_at"],
    }
    assert op["records"][1]["code"] == "LOCKED"
    assert [e["kind"] for e in op["events"]] == ["requested", "completed"]


def test_json_without_filters_lists_everything_newest_first(
    db_path: Path, ids: dict[str, str]
) -> None:
    data = json.loads(run("--format", "json").output)
    assert [op["id"] for op in data] == [ids["other"], ids["alta"], ids["zoho"]]


def test_csv_has_one_row_per_record_outcome(db_path: Path, ids: dict[str, str]) -> None:
    result = run("--format", "csv", "user:U1")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert tuple(rows[0]) == OPERATION_CSV_COLUMNS
    assert [(r["op_id"], r["target"], r["outcome"]) for r in rows] == [
        (ids["alta"], "a-1", "removed"),
        (ids["zoho"], "554023000000793002", "removed"),
        (ids["zoho"], "554023000000793003", "failed"),
    ]
    failed = rows[2]
    assert failed["actor"] == "U1" and failed["provider"] == "zoho" and failed["tags"] == "Prime"
    assert failed["code"] == "LOCKED"
    assert failed["message"] == "'=locked"  # no formula injection in spreadsheets


def test_csv_keeps_operations_without_outcomes(db_path: Path, ids: dict[str, str]) -> None:
    rows = list(csv.DictReader(io.StringIO(run("--format", "csv", "user:U2").output)))
    assert [(r["op_id"], r["target"], r["outcome"]) for r in rows] == [(ids["other"], "", "")]


def test_csv_with_status_and_record_filters(db_path: Path, ids: dict[str, str]) -> None:
    result = run("status:failed", "record:554023000000793003", "--format=csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert {r["op_id"] for r in rows} == {ids["zoho"]}


def test_table(db_path: Path, ids: dict[str, str]) -> None:
    result = run("provider:zoho")
    assert result.exit_code == 0, result.output
    assert "Operations 1–2 of 2" in result.output
    assert ids["zoho"][:8] in result.output and ids["other"][:8] in result.output
    assert "1 removed, 1 failed" in result.output
    assert ids["alta"][:8] not in result.output


def test_table_pages(db_path: Path, ids: dict[str, str]) -> None:
    result = run("--limit", "1", "--offset", "1")
    assert "Operations 2–2 of 3" in result.output
    assert "More with --offset 2" in result.output
    assert "No operations match" in run("user:U9").output


def test_the_explicit_query_subcommand(db_path: Path, ids: dict[str, str]) -> None:
    data = json.loads(run("query", "user:U2", "--format", "json").output)
    assert [op["id"] for op in data] == [ids["other"]]


def test_every_query_is_an_event(db_path: Path, ids: dict[str, str]) -> None:
    run("user:U1", "tag:Prime", "--format", "json", "--as", "U0ADMIN")
    run("--format", "csv")
    queried = events_of(db_path, "audit_queried")
    assert len(queried) == 2
    newest, oldest = queried
    assert oldest["actor"] == "U0ADMIN"
    assert oldest["filters"] == {"user": "U1", "tag": "Prime"}
    assert oldest["format"] == "json" and oldest["returned"] == 2 and oldest["via"] == "cli"
    assert str(newest["actor"]).startswith("local:")


def test_events_subcommand(db_path: Path, ids: dict[str, str]) -> None:
    result = run("events", "kind:denied", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(e["actor"], e["kind"], e["detail"]) for e in data] == [
        ("U3", "denied", {"command": "audit"})
    ]
    rows = list(csv.DictReader(io.StringIO(run("events", "user:U1", "--format", "csv").output)))
    assert [r["kind"] for r in rows] == ["completed", "requested"]
    assert "denied" in run("events").output


def test_verify_intact(db_path: Path, ids: dict[str, str]) -> None:
    result = run("verify")
    assert result.exit_code == 0, result.output
    assert "Audit log intact: 3 events checked" in result.output


def test_verify_names_the_tampered_row(db_path: Path, ids: dict[str, str]) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET actor = 'U666' WHERE seq = 2")
    conn.commit()
    conn.close()
    result = run("verify")
    assert result.exit_code == 1
    assert "TAMPERED: the first bad row is seq 2" in result.output
    assert "U666" in result.output  # the row as stored
    assert "1 events checked before it" in result.output


def test_verify_names_a_missing_row(db_path: Path, ids: dict[str, str]) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq = 1")
    conn.commit()
    conn.close()
    result = run("verify")
    assert result.exit_code == 1
    assert "seq 1" in result.output and "Row 1 is missing" in result.output


def test_prune_then_verify(db_path: Path, ids: dict[str, str]) -> None:
    result = run("prune", "--before", "2000-01-01")
    assert result.exit_code == 0, result.output
    assert "Nothing older than" in result.output
    result = run("prune", "--before", "0s", "--as", "U0ADMIN")
    assert result.exit_code == 0, result.output
    assert "Removed 3 events (up to seq 3); checkpoint written as seq 4" in result.output
    assert run("verify").exit_code == 0
    assert events_of(db_path, "checkpoint")[0]["actor"] == "U0ADMIN"


def test_prune_refuses_a_tampered_log(db_path: Path, ids: dict[str, str]) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET kind = 'record' WHERE seq = 3")
    conn.commit()
    conn.close()
    result = run("prune", "--before", "0s")
    assert result.exit_code == 1
    assert "Refusing to prune" in result.output and "seq 3" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["colour:red"], "Bad filter: unknown filter 'colour:'"),
        (["provider:salesforce"], "unknown provider 'salesforce'"),
        (["since:soon"], "since: 'soon' is not a time"),
        (["--format", "xml"], "Invalid value for '--format'"),
        (["--limit", "0"], "Invalid value for '--limit'"),
        (["prune", "--before", "later"], "Invalid value for --before"),
        (["prune"], "Missing option '--before'"),
    ],
)
def test_usage_errors_exit_2(
    db_path: Path, ids: dict[str, str], args: list[str], message: str
) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert events_of(db_path, "audit_queried") == []


def test_missing_database_exits_3(db_path: Path) -> None:
    result = run("verify")
    assert result.exit_code == 3
    assert "No database at" in result.output
    assert not db_path.exists()


def test_wrong_key_exits_3(
    db_path: Path, ids: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNTAG_AUDIT_KEY", "some-other-key-of-enough-length")
    result = run("verify")
    assert result.exit_code == 3
    assert "not the key the audit log was written with" in result.output


def test_key_file_next_to_the_database(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNTAG_AUDIT_KEY")
    open_database(db_path).close()
    assert run("verify").exit_code == 0
    key_file = default_key_file(db_path)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert run("user:U1").exit_code == 0  # reuses the key file
    assert run("verify").exit_code == 0
    key_file.unlink()  # an existing log needs its key: none is made up
    result = run("verify")
    assert result.exit_code == 3 and "restore the key file" in result.output
    assert not key_file.exists()


def test_help(db_path: Path) -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("query", "events", "verify", "prune", "user:U123", "since:7d"):
        assert name in result.output
    assert "--format" in run("query", "-h").output
