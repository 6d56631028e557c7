"""`untag run` end to end: a real process, the sandbox over loopback HTTP, the exact requests.

Each provider test runs the removal and then `untag run undo`, and asserts the
request that reached the simulated provider (method, path, query string, auth
header, JSON body) against the seed docs, then the inverse request of the undo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox

UNTAG = str(Path(sys.executable).parent / "untag")
USER = "U0TESTER"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, seed_demo=True).start() as sb:
        yield sb


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("ALTA_", "FERNAND_", "ZOHO_", "BIGIN_", "CONSTANT_CONTACT_", "UNTAG_", "SLACK_")
        )
    }
    env["UNTAG_DATABASE"] = str(tmp_path / "untag.db")
    env["COLUMNS"] = "200"
    return env


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [UNTAG, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env.get("UNTAG_TEST_CWD"),
    )


def untag_json(text: str, env: dict[str, str], *extra: str) -> dict[str, Any]:
    done = run(["run", text, "--yes", "--json", "--as", USER, *extra], env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return {**base_env(tmp_path), **sandbox.env()}


def writes(sandbox: Sandbox, provider: str) -> list[Any]:
    return [r for r in sandbox.requests if r.provider == provider and r.method != "GET"]


def test_zoho_crm_remove_and_undo(sandbox: Sandbox, env: dict[str, str]) -> None:
    lead = "554023000000793002"
    report = untag_json(f"zoho Leads {lead} Prime", env)
    assert report["status"] == "succeeded"
    assert [(r["target"], r["outcome"], r["removed"]) for r in report["results"]] == [
        (lead, "removed", ["Prime"])
    ]
    [remove] = writes(sandbox, "zoho")
    assert (remove.method, remove.path, remove.query) == (
        "POST",
        "/crm/v7/Leads/actions/remove_tags",
        "",
    )
    assert remove.headers["authorization"].startswith("Zoho-oauthtoken ")
    assert remove.json() == {"tags": [{"name": "Prime"}], "ids": [lead]}
    assert "Prime" not in sandbox.state.zoho.tags_of("Leads", lead)

    sandbox.clear_requests()
    undo = untag_json("undo", env)
    assert [(r["target"], r["outcome"], r["removed"]) for r in undo["results"]] == [
        (lead, "restored", ["Prime"])
    ]
    [add] = writes(sandbox, "zoho")
    assert (add.method, add.path) == ("POST", "/crm/v7/Leads/actions/add_tags")
    assert add.json() == {"tags": [{"name": "Prime"}], "ids": [lead], "over_write": False}
    assert "Prime" in sandbox.state.zoho.tags_of("Leads", lead)


def test_bigin_remove_and_undo(sandbox: Sandbox, env: dict[str, str]) -> None:
    company = "2445013000000500001"
    report = untag_json(f'bigin Companies {company} "Hot Deal"', env)
    assert report["results"][0]["outcome"] == "removed"
    [remove] = writes(sandbox, "bigin")
    assert (remove.method, remove.path) == ("POST", "/bigin/v2/Accounts/actions/remove_tags")
    assert remove.query == f"ids={company}&tag_names=Hot%20Deal"
    assert remove.body == b""
    assert remove.headers["authorization"].startswith("Zoho-oauthtoken ")
    assert "Hot Deal" not in sandbox.state.bigin.tags_of("Accounts", company)

    sandbox.clear_requests()
    untag_json("undo", env)
    [add] = writes(sandbox, "bigin")
    assert (add.method, add.path) == ("POST", "/bigin/v2/Accounts/actions/add_tags")
    assert add.json() == {"tags": [{"name": "Hot Deal"}], "ids": [company], "over_write": False}
    assert "Hot Deal" in sandbox.state.bigin.tags_of("Accounts", company)


def test_fernand_remove_and_undo(sandbox: Sandbox, env: dict[str, str]) -> None:
    report = untag_json('fernand 12345 "VIP Customer"', env)
    assert report["results"][0]["outcome"] == "removed"
    [remove] = writes(sandbox, "fernand")
    assert (remove.method, remove.path, remove.query) == (
        "DELETE",
        "/conversations/12345/tags/VIP%20Customer",
        "",
    )
    assert remove.headers["x-api-key"] == env["FERNAND_API_KEY"]
    assert "VIP Customer" not in sandbox.state.fernand.tags_of(12345)

    sandbox.clear_requests()
    untag_json("undo", env)
    [add] = writes(sandbox, "fernand")
    assert (add.method, add.path) == ("POST", "/conversations/12345/tags")
    assert add.json() == {"name": "VIP Customer"}
    assert "VIP Customer" in sandbox.state.fernand.tags_of(12345)


def test_alta_remove_and_undo(sandbox: Sandbox, env: dict[str, str]) -> None:
    thread = "3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10"
    report = untag_json(f'alta thread {thread} "Hot Lead"', env)
    assert report["results"][0]["outcome"] == "removed"
    [remove] = writes(sandbox, "alta")
    assert (remove.method, remove.path) == ("POST", "/v1/tags/unassign")
    assert remove.headers["authorization"] == f"Bearer {env['ALTA_API_TOKEN']}"
    assert remove.json() == {"entityId": thread, "entityType": "emailThread", "tags": ["Hot Lead"]}
    assert "Hot Lead" not in sandbox.state.alta.tags_of(thread)

    sandbox.clear_requests()
    untag_json("undo", env)
    [add] = writes(sandbox, "alta")
    assert (add.method, add.path) == ("POST", "/v1/tags/assign")
    assert add.json() == {"entityId": thread, "entityType": "emailThread", "tags": ["Hot Lead"]}
    assert "Hot Lead" in sandbox.state.alta.tags_of(thread)


def test_constant_contact_remove_and_undo_through_activities(
    sandbox: Sandbox, env: dict[str, str]
) -> None:
    contact = "1618ae62-4752-11e9-9c8a-fa163e6b01c1"
    vip = sandbox.state.constantcontact.tag_id("VIP")
    report = untag_json(f"cc contacts {contact} VIP", env)
    assert report["results"][0]["outcome"] == "removed"
    [remove] = writes(sandbox, "constantcontact")
    assert (remove.method, remove.path) == ("POST", "/v3/activities/contacts_taggings_remove")
    assert remove.headers["authorization"] == f"Bearer {env['CONSTANT_CONTACT_ACCESS_TOKEN']}"
    assert remove.json() == {"source": {"contact_ids": [contact]}, "tag_ids": [vip]}
    polls = [r for r in sandbox.requests if r.method == "GET" and "/activities/" in r.path]
    assert polls, "the activity must be polled to a terminal state"
    assert "VIP" not in sandbox.state.constantcontact.tag_names_of(contact)

    sandbox.clear_requests()
    untag_json("undo", env)
    [add] = writes(sandbox, "constantcontact")
    assert (add.method, add.path) == ("POST", "/v3/activities/contacts_taggings_add")
    assert add.json() == {"source": {"contact_ids": [contact]}, "tag_ids": [vip]}
    assert "VIP" in sandbox.state.constantcontact.tag_names_of(contact)


def test_dry_run_makes_no_write_request(sandbox: Sandbox, env: dict[str, str]) -> None:
    texts = [
        "zoho Leads 554023000000793002,554023000000792001 Prime",
        'bigin Contacts 2445013000000402006 "Hot Deal"',
        'fernand 12345 "VIP Customer"',
        'alta thread 3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10 "Hot Lead"',
        "cc contacts 1618ae62-4752-11e9-9c8a-fa163e6b01c1 VIP",
    ]
    for text in texts:
        report = untag_json(text, env, "--dry-run")
        assert report["dry_run"] is True
        assert {r["outcome"] for r in report["results"]} <= {"skipped", "not present"}
    api_writes = [
        r
        for r in sandbox.requests
        if r.method != "GET" and r.provider not in ("zoho-accounts", "constantcontact-token")
    ]
    assert api_writes == []
    assert "Prime" in sandbox.state.zoho.tags_of("Leads", "554023000000793002")


def test_not_confirmed_changes_nothing(sandbox: Sandbox, env: dict[str, str]) -> None:
    done = run(["run", "zoho Leads 554023000000793002 Prime", "--as", USER], env, stdin="n\n")
    assert done.returncode == 1
    assert "nothing was changed" in done.stdout
    assert writes(sandbox, "zoho") == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("zoho Leeds 554023000000793002 Prime", "Leads"),
        ("zoh Leads 1 Prime", "zoho"),
        ("fernand abc VIP", "fernand"),
        ("", None),
        ('zoho Leads 554023000000793002 "unterminated', "zoho"),
        ("x" * 5000, None),
    ],
)
def test_malformed_commands_get_one_line_and_the_usage(
    env: dict[str, str], text: str, fragment: str | None
) -> None:
    done = run(["run", text], env)
    if text == "":
        assert done.returncode == 0  # empty text is a request for help
        return
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("Error:")
    assert any(line.startswith("Usage:") for line in lines)
    if fragment:
        assert fragment in done.stderr


def test_every_step_lands_in_a_verifiable_audit_log(sandbox: Sandbox, env: dict[str, str]) -> None:
    partial = run(
        ["run", "zoho Leads 554023000000793002,554023000000799009 Prime", "--yes", "--as", USER],
        env,
    )
    assert partial.returncode == 1  # one record is locked
    untag_json("undo", env)
    verify = run(["audit", "verify"], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    exported = run(["audit", "provider:zoho", "--format", "json", "--as", "UAUDITOR"], env)
    assert exported.returncode == 0, exported.stderr
    operations = {op["kind"]: op for op in json.loads(exported.stdout)}
    removal = operations["remove"]
    assert removal["actor"] == USER and removal["status"] == "undone"
    assert {(o["target"], o["outcome"]) for o in removal["records"]} == {
        ("554023000000793002", "removed"),
        ("554023000000799009", "locked"),
    }
    assert operations["undo"]["parent_id"] == removal["id"]

    events = run(["audit", "events", "--format", "json", "--limit", "100"], env)
    kinds = [e["kind"] for e in json.loads(events.stdout)]
    for kind in (
        "requested",
        "previewed",
        "confirmed",
        "record",
        "completed",
        "undone",
        "audit_queried",
    ):
        assert kind in kinds, kind
