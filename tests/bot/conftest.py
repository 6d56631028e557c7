"""Shared by the Slack end-to-end tests: the loopback ``stack`` fixture of test_slack.py, and
helpers to seed operations, run a real removal through Slack, and send Events API events
(the fake Slack sends commands and interactions, not events)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sandbox.slack import PostedMessage, SlackReply, sign_request
from storage import NewResult, OperationRecord
from tests.bot.test_slack import SECRET, Stack, stack, tags_value

__all__ = [
    "open_home",
    "remove_via_slack",
    "seed_operation",
    "send_event",
    "send_home_click",
    "stack",
]


def seed_operation(
    stack: Stack,
    requester: str,
    *,
    provider: str = "zoho",
    scope: str | None = "Leads",
    targets: Sequence[str] = ("554023000000793002",),
    tags: Sequence[str] = ("Prime",),
    status: str = "succeeded",
    outcome: str | None = "removed",
) -> OperationRecord:
    """An operation written straight to the ledger (no provider call), in ``status``."""
    ops = stack.runtime.untag.operations
    op = ops.create(
        kind="remove",
        requester=requester,
        provider=provider,
        scope=scope,
        targets=list(targets),
        tags=list(tags),
    )
    if outcome is not None:
        removed = tuple(tags) if outcome == "removed" else ()
        ops.record_results(op.id, [NewResult(t, outcome, removed) for t in targets])
    ops.advance(op.id, to=status)
    found = ops.get(op.id)
    assert found is not None
    return found


def remove_via_slack(stack: Stack, command: str, user: str, tags: str = "Prime") -> PostedMessage:
    """``/untag <command>`` → preview modal → Remove → the result message."""
    before = set(stack.slack.views)
    stack.slack.slash_command(stack.url, command, user_id=user, channel_id="C0OPS")

    def new_preview() -> list[dict[str, Any]]:
        return [v for v in stack.views_with("untag_confirm") if v["id"] not in before]

    stack.slack.wait_for(lambda: bool(new_preview()), message="preview")
    preview = new_preview()[-1]
    stack.slack.submit_view(stack.url, preview["id"], tags_value(tags), user_id=user)
    return stack.wait_for_message("Removal succeeded", user=user)


def send_event(stack: Stack, event: dict[str, Any]) -> SlackReply:
    """An Events API ``event_callback`` as Slack sends it: raw JSON, signed."""
    ident = stack.slack.identity
    envelope = {
        "token": ident.verification_token,
        "team_id": ident.team_id,
        "api_app_id": ident.app_id,
        "event": {"event_ts": f"{time.time():.6f}", **event},
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ident.team_id,
                "user_id": ident.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    body = json.dumps(envelope).encode()
    headers = {**sign_request(SECRET, body), "Content-Type": "application/json"}
    return stack.slack.send_raw(stack.url, body, headers)


def open_home(stack: Stack, user: str) -> dict[str, Any]:
    """Open the Home tab as ``user`` and return the view the app published."""
    before = stack.slack.home_views.get(user, {}).get("hash")
    reply = send_event(
        stack,
        {
            "type": "app_home_opened",
            "user": user,
            "channel": stack.slack.dm_channel(user),
            "tab": "home",
        },
    )
    assert reply.status == 200, reply.body

    def published() -> bool:
        view = stack.slack.home_views.get(user)
        return view is not None and view.get("hash") != before

    stack.slack.wait_for(published, message=f"home of {user}")
    return stack.slack.home_views[user]


def send_home_click(stack: Stack, user: str, home: dict[str, Any], block_id: str) -> SlackReply:
    """A click on the button in block ``block_id`` of ``user``'s Home tab (raw, signed)."""
    from urllib.parse import urlencode

    ident = stack.slack.identity
    [block] = [b for b in home["blocks"] if b.get("block_id") == block_id]
    button = block["accessory"]
    payload = {
        "type": "block_actions",
        "token": ident.verification_token,
        "team": {"id": ident.team_id, "domain": ident.team_domain},
        "user": {
            "id": user,
            "username": user.lower(),
            "name": user.lower(),
            "team_id": ident.team_id,
        },
        "api_app_id": ident.app_id,
        "trigger_id": stack.slack.issue_trigger_id(user),
        "container": {"type": "view", "view_id": home["id"]},
        "view": home,
        "state": {"values": {}},
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": block_id,
                "type": "button",
                "text": button["text"],
                "value": button["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {**sign_request(SECRET, body), "Content-Type": "application/x-www-form-urlencoded"}
    return stack.slack.send_raw(stack.url, body, headers)
