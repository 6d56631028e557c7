"""``/untag audit`` in Slack, end to end on loopback: admins only (a refusal is an event),
combined filters, ten operations per page with Previous / Next replacing the page in place,
and one ``audit_queried`` event per query, page turns included."""

from __future__ import annotations

import json

from bot.audit_slack import on_page
from sandbox.slack import PostedMessage
from storage import AuditFilter, Event
from tests.bot.conftest import remove_via_slack, seed_operation
from tests.bot.test_slack import ADMIN, ALICE, MALLORY, Stack

NEXT, PREVIOUS = "untag_audit_page_next", "untag_audit_page_previous"


def events(stack: Stack, kind: str, user: str | None = None) -> list[Event]:
    audit = stack.runtime.untag.audit
    assert audit is not None
    return audit.query(AuditFilter(kind=kind, user=user), limit=None)


def audit_page(stack: Stack, fragment: str = "Audit:") -> PostedMessage:
    return stack.wait_for_message(fragment, user=ADMIN)


def buttons(message: PostedMessage) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for block in message.latest().blocks:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            found[element["action_id"]] = json.loads(element["value"])
    return found


def test_a_non_admin_is_refused_and_the_refusal_is_an_event(stack: Stack) -> None:
    reply = stack.slack.slash_command(stack.url, "audit user:U0ALICE", user_id=ALICE)
    assert reply.status == 200 and reply.elapsed < 3.0
    assert "limited to admins" in reply.body
    [denied] = events(stack, "denied", ALICE)
    assert denied.detail["operation"] == "audit"
    assert denied.team == stack.slack.identity.team_id
    assert events(stack, "audit_queried") == []
    assert not any("Audit:" in m.latest().text for m in stack.slack.messages)


def test_admin_query_with_combined_filters_after_a_real_removal(stack: Stack) -> None:
    result = remove_via_slack(stack, "zoho Leads 554023000000793002 Prime", ALICE)
    [alice_op] = stack.runtime.untag.operations.recent(requester=ALICE, limit=1)
    assert alice_op.id in result.all_text()
    # Noise each filter must exclude: another user, another provider, another status.
    seed_operation(stack, MALLORY)
    seed_operation(
        stack, ALICE, provider="bigin", scope="Accounts", targets=["2445013000000500001"]
    )
    seed_operation(stack, ALICE, status="failed", outcome="failed")

    command = "audit user:U0ALICE provider:zoho status:succeeded"
    reply = stack.slack.slash_command(stack.url, command, user_id=ADMIN, channel_id="C0OPS")
    assert reply.status == 200 and reply.body == "" and reply.elapsed < 3.0
    page = audit_page(stack, "Audit: operations 1–1 of 1")
    assert page.ephemeral and page.user == ADMIN and page.channel == "C0OPS"
    shown = page.all_text()
    for expected in (
        "<@U0ALICE>",
        "Zoho CRM Leads",
        "`554023000000793002`",
        "tags: Prime",
        "Removal succeeded",
        "1 removed",
        f"op `{alice_op.id[:8]}`",
        "user:U0ALICE provider:zoho status:succeeded",
    ):
        assert expected in shown, expected
    assert buttons(page) == {}  # a single page

    [queried] = events(stack, "audit_queried", ADMIN)
    assert queried.detail["filters"] == {
        "user": ALICE,
        "provider": "zoho",
        "status": "succeeded",
    }
    assert (queried.detail["via"], queried.detail["returned"]) == ("slack", 1)


def test_pages_of_ten_turn_in_place_and_each_turn_is_an_audit_event(stack: Stack) -> None:
    seeded = [seed_operation(stack, ALICE, tags=[f"T{i:02}"]) for i in range(23)]
    seed_operation(stack, MALLORY, provider="fernand", scope=None, targets=["12345"])
    stack.slack.slash_command(stack.url, "audit provider:zoho since:7d", user_id=ADMIN)
    page = audit_page(stack, "Audit: operations 1–10 of 23")
    newest_first = page.all_text()
    assert newest_first.index("tags: T22") < newest_first.index("tags: T13")
    assert "tags: T12" not in newest_first
    assert set(buttons(page)) == {NEXT}
    assert buttons(page)[NEXT] == {"filters": "provider:zoho since:7d", "offset": 10}

    stack.slack.click(stack.url, action_id=NEXT, message=page, user_id=ADMIN)
    stack.slack.wait_for(lambda: "11–20 of 23" in page.latest().text, message="page 2")
    assert set(buttons(page)) == {PREVIOUS, NEXT}
    assert "tags: T12" in page.all_text() and "tags: T22" not in page.all_text()

    stack.slack.click(stack.url, action_id=NEXT, message=page, user_id=ADMIN)
    stack.slack.wait_for(lambda: "21–23 of 23" in page.latest().text, message="page 3")
    assert set(buttons(page)) == {PREVIOUS}
    assert f"op `{seeded[0].id[:8]}`" in page.all_text()  # the oldest, last

    stack.slack.click(stack.url, action_id=PREVIOUS, message=page, user_id=ADMIN)
    stack.slack.wait_for(lambda: "11–20 of 23" in page.latest().text, message="back")

    # One message, edited in place; one audit event per query, oldest first here.
    assert sum("Audit:" in m.text for m in stack.slack.messages) == 1
    queried = list(reversed(events(stack, "audit_queried", ADMIN)))
    assert [e.detail["offset"] for e in queried] == [0, 10, 20, 10]
    filters = [e.detail["filters"] for e in queried]
    assert all(isinstance(f, dict) and f["provider"] == "zoho" and "since" in f for f in filters)


def test_a_page_button_clicked_by_a_non_admin_is_refused(stack: Stack) -> None:
    for i in range(11):
        seed_operation(stack, ALICE, tags=[f"T{i}"])
    stack.slack.slash_command(stack.url, "audit", user_id=ADMIN)
    page = audit_page(stack, "1–10 of 11")
    stack.slack.click(stack.url, action_id=NEXT, message=page, user_id=MALLORY)
    stack.wait_for_message("limited to admins", user=MALLORY)
    assert "1–10 of 11" in page.latest().text  # unchanged
    [denied] = events(stack, "denied", MALLORY)
    assert denied.detail["operation"] == "audit"
    assert len(events(stack, "audit_queried")) == 1


def test_bad_filters_get_one_line_and_the_usage(stack: Stack) -> None:
    for text in ("audit provider:nosuch", "audit colour:red", 'audit tag:"open', "AUDIT since:x"):
        reply = stack.slack.slash_command(stack.url, text, user_id=ADMIN)
        assert reply.status == 200 and reply.elapsed < 3.0
        first, usage = reply.body.split("\n")
        assert first.startswith(":warning: Bad filter:"), reply.body
        assert usage.startswith("Usage: `/untag audit [user:U123]")
    assert events(stack, "audit_queried") == []
    assert stack.slack.calls_to("response_url") == []


def test_a_mention_and_escaped_text_filter_like_on_the_command_line(stack: Stack) -> None:
    seed_operation(stack, ALICE, tags=["R&D"])
    seed_operation(stack, MALLORY, tags=["R&D"])
    stack.slack.slash_command(stack.url, "audit <@U0ALICE|alice> tag:R&D", user_id=ADMIN)
    page = audit_page(stack, "1–1 of 1")
    assert "tags: R&amp;D" in page.all_text()
    [queried] = events(stack, "audit_queried", ADMIN)
    assert queried.detail["filters"] == {"user": ALICE, "tag": "R&D"}


def test_a_page_button_whose_value_is_not_text_is_a_stale_button(stack: Stack) -> None:
    """JSON inside the button's value may hold a lone surrogate: valid JSON, but no text."""
    said: list[str] = []
    on_page(
        stack.runtime,
        lambda **_: None,
        {"user": {"id": ADMIN}, "team": {"id": "T0TEST"}},
        {"value": '{"filters": "user:\\ud800", "offset": 0}'},
        lambda **answer: said.append(answer["text"]),
    )
    assert said == [":warning: This page can no longer be turned; run `/untag audit` again."]
    assert events(stack, "audit_queried") == []
