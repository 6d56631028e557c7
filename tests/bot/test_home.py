"""The App Home tab, end to end on loopback: a signed ``app_home_opened`` event in, a
``views.publish`` out; users see their own operations, admins a dashboard too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.bot.conftest import (
    open_home,
    remove_via_slack,
    seed_operation,
    send_event,
    send_home_click,
)
from tests.bot.test_slack import ADMIN, ALICE, MALLORY, Stack

ROOT = Path(__file__).resolve().parents[2]


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def retry_buttons(view: dict[str, Any]) -> dict[str, str]:
    """op id → block_id of each Retry failed button."""
    return {
        b["accessory"]["value"]: b["block_id"]
        for b in view["blocks"]
        if b.get("accessory", {}).get("action_id") == "untag_retry"
    }


def test_a_user_sees_only_their_own_operations_with_outcomes(stack: Stack) -> None:
    remove_via_slack(stack, "zoho Leads 554023000000793002 Prime", ALICE)
    [mine] = stack.runtime.untag.operations.recent(requester=ALICE, limit=1)
    theirs = seed_operation(stack, MALLORY, provider="bigin", scope="Accounts")
    stuck = seed_operation(stack, ALICE, status="interrupted", outcome=None)

    home = open_home(stack, ALICE)
    assert home["type"] == "home"
    shown = text_of(home)
    assert "Your recent operations" in shown
    assert f"op `{mine.id[:8]}`" in shown and "1 removed" in shown
    assert f"op `{stuck.id[:8]}`" in shown
    assert theirs.id[:8] not in shown and "Bigin" not in shown
    assert "Admin dashboard" not in shown
    assert retry_buttons(home) == {stuck.id: retry_buttons(home)[stuck.id]}


def test_a_user_without_operations_is_told_how_to_start(stack: Stack) -> None:
    home = open_home(stack, MALLORY)
    assert "/untag help" in text_of(home)


def test_an_admin_sees_the_dashboard(stack: Stack) -> None:
    seed_operation(stack, ALICE)
    failed = seed_operation(stack, MALLORY, provider="bigin", status="failed", outcome="failed")
    partly = seed_operation(stack, ALICE, status="partially_failed", outcome="locked")
    interrupted = [
        seed_operation(stack, ALICE, status="interrupted", outcome=None) for _ in range(12)
    ]

    home = open_home(stack, ADMIN)
    assert len(home["blocks"]) <= 100
    shown = text_of(home)
    for section in (
        "Admin dashboard",
        "Operations by provider and status since",
        "Recent failures",
        "Interrupted operations",
    ):
        assert section in shown, section
    assert "*Zoho CRM* (14): 12 interrupted · 1 partially failed · 1 succeeded" in shown
    assert "*Bigin* (1): 1 failed" in shown
    assert f"op `{failed.id[:8]}`" in shown and f"op `{partly.id[:8]}`" in shown
    assert "<@U0MALLORY>" in shown  # the dashboard names who asked
    # The newest ten interrupted operations, each with Retry failed; the rest counted.
    buttons = retry_buttons(home)
    assert {op.id for op in interrupted[2:]} <= set(buttons)
    assert interrupted[0].id not in buttons
    assert "and 2 more" in shown


def test_retry_failed_from_the_home_tab_finishes_an_interrupted_operation(stack: Stack) -> None:
    stuck = seed_operation(stack, ALICE, status="interrupted", outcome=None)
    home = open_home(stack, ADMIN)
    reply = send_home_click(stack, ADMIN, home, retry_buttons(home)[stuck.id])
    assert reply.status == 200 and reply.elapsed < 3.0
    stack.wait_for_message("Removal succeeded: 1 record", user=ADMIN)
    [remove] = stack.writes("zoho")
    assert remove.json() == {"tags": [{"name": "Prime"}], "ids": ["554023000000793002"]}

    again = open_home(stack, ADMIN)  # retried: no longer waiting for a retry
    assert stuck.id not in retry_buttons(again)
    assert "No interrupted operation." in text_of(again)


def test_the_messages_tab_publishes_nothing(stack: Stack) -> None:
    event = {"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE", "tab": "messages"}
    reply = send_event(stack, event)
    assert reply.status == 200 and reply.elapsed < 3.0
    open_home(stack, MALLORY)  # a later event is handled: the earlier one has been too
    assert [c.params["user_id"] for c in stack.slack.calls_to("views.publish")] == [MALLORY]


def test_every_bot_event_in_the_manifest_has_a_listener(stack: Stack) -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    subscriptions = manifest["settings"]["event_subscriptions"]
    assert subscriptions["request_url"].endswith("/slack/events")
    assert subscriptions["bot_events"]
    for kind in subscriptions["bot_events"]:
        reply = send_event(stack, {"type": kind, "user": ALICE, "channel": "D0ALICE"})
        assert reply.status == 200, f"no listener for {kind}: {reply.status}"
    stack.slack.wait_for(lambda: ALICE in stack.slack.home_views)
