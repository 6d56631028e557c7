"""Permissions over Slack: a group grant resolved through the Web API, and the workspace pin."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot.test_slack import ALICE, MALLORY, Stack, tags_value


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        'team = "T0TEST"\n'
        "[[allow]]\n"
        'groups = ["S0SALESOPS"]\n'
        'providers = ["zoho"]\n'
        'modules = ["Leads"]\n'
    )
    monkeypatch.setenv("UNTAG_POLICY", str(path))
    return path


def test_a_group_member_may_and_others_may_not(policy: Path, stack: Stack) -> None:
    stack.slack.usergroups["S0SALESOPS"] = [ALICE]
    refused = stack.slack.slash_command(
        stack.url, "zoho Leads 554023000000793002 Prime", user_id=MALLORY
    )
    assert refused.body.startswith(":no_entry:")
    outside = stack.slack.slash_command(
        stack.url, "zoho Contacts 554023000000801001 Prime", user_id=ALICE
    )
    assert outside.body.startswith(":no_entry:")  # the grant covers Leads only
    allowed = stack.slack.slash_command(
        stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE
    )
    assert allowed.body == ""
    preview = stack.wait_for_view("untag_confirm")
    stack.slack.submit_view(stack.url, preview["id"], tags_value("Prime"), user_id=ALICE)
    stack.wait_for_message("Removal succeeded")
    denied = stack.runtime.untag.audit.query(None) if stack.runtime.untag.audit else []
    assert sum(e.kind == "denied" for e in denied) == 2


def test_another_workspace_is_refused(policy: Path, stack: Stack) -> None:
    stack.slack.usergroups["S0SALESOPS"] = [ALICE]
    reply = stack.slack.slash_command(
        stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE, team_id="T0ELSEWHERE"
    )
    assert reply.body.startswith(":no_entry:")
    assert stack.writes("zoho") == [] and stack.slack.calls_to("views.open") == []


def test_every_event_of_a_slack_removal_names_the_workspace(stack: Stack) -> None:
    stack.slack.slash_command(stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE)
    preview = stack.wait_for_view("untag_confirm")
    stack.slack.submit_view(stack.url, preview["id"], tags_value("Prime"), user_id=ALICE)
    result = stack.wait_for_message("Removal succeeded")
    stack.slack.click(stack.url, action_id="untag_undo", message=result, user_id=ALICE)
    stack.wait_for_message("Undo succeeded")
    assert stack.surface.jobs.wait_idle(10)
    audit = stack.runtime.untag.audit
    assert audit is not None
    events = audit.query(None, limit=None)
    assert {e.kind for e in events} >= {
        "requested",
        "previewed",
        "confirmed",
        "record",
        "completed",
        "undone",
    }
    assert {e.team for e in events} == {"T0TEST"}
