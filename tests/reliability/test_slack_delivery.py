"""Slack delivery faults: a submit delivered several times at once to two ``untag serve``
processes sharing one database, and the Slack Web API answering 429 (with ``Retry-After``)
or 5xx while previews, results and progress are posted.

(``expired_trigger_id`` from ``views.open`` is covered by
``tests/bot/test_slack.py::test_expired_trigger_is_explained_not_silent``.)
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox
from sandbox.slack import FakeSlack, PostedMessage, SlackReply
from tests.bot.test_slack import Stack
from tests.reliability.slack_support import (
    ALICE,
    CANARY_BOT_TOKEN,
    CANARY_PROVIDERS,
    CANARY_SIGNING_SECRET,
    SECRETS,
    UNTAG,
    app_stack,
    database_bytes,
    executed,
    interaction_body,
    production_logs,
    provider_writes,
    send,
    serve_env,
    serving,
    signed,
    submission,
    tags_value,
    wait_until,
    write_figures,
)

CC_CONTACT = "1618ae62-4752-11e9-9c8a-fa163e6b01c1"
CC_CONTACT_B = "2a9d3c44-4752-11e9-9c8a-fa163e6b01c1"

# Each round removes a tag the demo data really carries, so each must make exactly one write.
RACES = [
    ("zoho Leads 554023000000793002 Prime", "Prime"),
    ('zoho Leads 554023000000793002 "Attend First"', '"Attend First"'),
    ("zoho Leads 554023000000792001 web", "web"),
    ('bigin Contacts 2445013000000402006 "Hot Deal"', '"Hot Deal"'),
    ('alta thread 3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10 "Follow Up"', '"Follow Up"'),
    (f"cc contacts {CC_CONTACT} VIP", "VIP"),
]
COPIES_PER_PROCESS = 2


def confirm_views(fs: FakeSlack) -> list[dict[str, Any]]:
    return [v for v in list(fs.views.values()) if v.get("callback_id") == "untag_confirm"]


def message_with(fs: FakeSlack, fragment: str) -> PostedMessage | None:
    return next((m for m in list(fs.messages) if fragment in m.latest().text), None)


def deliver_at_once(
    fs: FakeSlack, urls: list[str], body: bytes, headers: dict[str, str]
) -> list[SlackReply]:
    """POST the same bytes to every url in ``urls``, all released at the same moment."""
    start = threading.Barrier(len(urls))
    replies: list[SlackReply] = []

    def deliver(url: str) -> None:
        start.wait()
        replies.append(send(fs, url, body, headers))

    threads = [threading.Thread(target=deliver, args=(u,)) for u in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


@pytest.mark.slow
def test_one_submit_delivered_four_times_to_two_serve_processes_runs_once(
    tmp_path: Path,
) -> None:
    with (
        Sandbox(port=0, seed_demo=True, credentials=CANARY_PROVIDERS).start() as sb,
        FakeSlack(bot_token=CANARY_BOT_TOKEN, signing_secret=CANARY_SIGNING_SECRET).start() as fs,
    ):
        env = serve_env(tmp_path, sb, fs)
        with serving(tmp_path, env, count=2) as processes:
            op_ids: list[str] = []
            for round_no, (command, typed) in enumerate(RACES):
                seen = {v["id"] for v in confirm_views(fs)}
                opener = processes[round_no % 2]
                fs.slash_command(opener.url, command, user_id=ALICE, channel_id="C0OPS")

                def new_preview(seen: set[str] = seen) -> list[dict[str, Any]]:
                    return [v for v in confirm_views(fs) if v["id"] not in seen]

                wait_until(new_preview, 15, f"preview of {command}")
                [preview] = new_preview()
                op_ids.append(json.loads(preview["private_metadata"])["op"])

                # The very same signed bytes, delivered at the same moment, twice to each process.
                body = submission(preview, ALICE, tags_value(typed))
                headers = signed(body)
                targets = [p.url for p in processes for _ in range(COPIES_PER_PROCESS)]
                writes_before = len(provider_writes(sb))
                replies = deliver_at_once(fs, targets, body, headers)

                assert sorted(r.status for r in replies) == [200] * len(targets), replies
                winners = [r for r in replies if r.body == ""]
                losers = [r for r in replies if "Already handled" in r.body]
                assert (len(winners), len(losers)) == (1, len(targets) - 1), [
                    r.body for r in replies
                ]
                assert all(r.elapsed < 3.0 for r in replies)

                def done(op_id: str = op_ids[-1]) -> bool:
                    return executed(tmp_path / "untag.db").statuses.get(op_id) == "succeeded"

                wait_until(done, 30, f"{command} to finish")
                assert len(provider_writes(sb)) - writes_before == 1, provider_writes(sb)
            wait_until(
                lambda: sum("Removal succeeded" in m.all_text() for m in fs.messages) >= len(RACES),
                15,
                "every result message",
            )
            messages = [m.all_text() for m in fs.messages]
        logs = [p.stop() for p in processes]

    verify = subprocess.run(
        [UNTAG, "audit", "verify"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    state = executed(tmp_path / "untag.db")
    assert [op for op, _ in state.confirmations] == op_ids  # one confirmation each, in order
    assert {actor for _, actor in state.confirmations} == {ALICE}
    assert all(
        log.count("outcome=running") + log.count("refused (OperationConflict)") >= 1 for log in logs
    )
    joined = "\n".join(logs)
    assert joined.count("slack submit user=U0ALICE outcome=running") == len(RACES)
    assert joined.count("refused (OperationConflict)") == len(RACES) * 3
    assert "Traceback" not in joined
    stored = database_bytes(tmp_path / "untag.db")
    for secret in SECRETS:
        assert secret not in joined and secret.encode() not in stored
        assert not any(secret in text for text in messages)
    write_figures(
        {
            "suite": "slack",
            "test": "two_serve_processes_same_submit",
            "rounds": len(RACES),
            "deliveries": len(RACES) * len(processes) * COPIES_PER_PROCESS,
            "provider_writes": len(provider_writes(sb)),
        }
    )


# -- the Web API failing while we post -----------------------------------------------------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with production_logs() as taps, app_stack(tmp_path) as st:
        yield st
        assert st.surface.jobs.wait_idle(60)
        assert taps.raw.leaks == set() and taps.redacted.leaks == set()
        assert taps.redacted.errors == []


def preview_of(st: Stack, command: str, user: str = ALICE) -> dict[str, Any]:
    seen = {v["id"] for v in st.views_with("untag_confirm")}
    reply = st.slack.slash_command(st.url, command, user_id=user, channel_id="C0OPS")
    assert reply.status == 200 and reply.elapsed < 3.0

    def fresh() -> list[dict[str, Any]]:
        return [v for v in st.views_with("untag_confirm") if v["id"] not in seen]

    wait_until(fresh, 20, f"preview of {command}")
    return fresh()[-1]


def web_api_calls(st: Stack, method: str) -> list[tuple[int, str | None]]:
    return [(c.status, c.error) for c in st.slack.calls_to(method)]


RESULT_FAULTS = [
    pytest.param("chat.postEphemeral", 429, 1, 1, "C0OPS", id="ephemeral-429-retry-after-1"),
    pytest.param("chat.postEphemeral", 429, 0, 3, "C0OPS", id="ephemeral-429x3"),
    pytest.param("chat.postEphemeral", 503, 0, 2, "C0OPS", id="ephemeral-503x2"),
    pytest.param("chat.postEphemeral", 500, 0, 2, "C0OPS", id="ephemeral-500x2"),
    pytest.param("chat.postEphemeral", 503, 0, 3, "DM", id="ephemeral-503x3-falls-back-to-dm"),
    pytest.param("chat.postEphemeral", 429, 0, 4, "DM", id="ephemeral-429x4-falls-back-to-dm"),
    pytest.param("chat.postEphemeral", 502, 0, 1, "DM", id="ephemeral-502-falls-back-to-dm"),
]


@pytest.mark.parametrize(("method", "status", "retry_after", "count", "where"), RESULT_FAULTS)
def test_results_arrive_while_slack_throttles_or_fails(
    stack: Stack, method: str, status: int, retry_after: int, count: int, where: str
) -> None:
    preview = preview_of(stack, "zoho Leads 554023000000793002 Prime")
    stack.slack.fail_next(method, status=status, retry_after=retry_after, count=count)
    stack.slack.submit_view(stack.url, preview["id"], tags_value("Prime"), user_id=ALICE)
    result = stack.wait_for_message("Removal succeeded")
    expected = "C0OPS" if where == "C0OPS" else stack.slack.dm_channel(ALICE)
    assert result.channel == expected
    assert len(stack.writes("zoho")) == 1
    failed = [c for c in web_api_calls(stack, method) if c[0] == status]
    assert len(failed) == count  # every injected failure was really met


def test_the_undo_result_follows_the_removal_result_through_throttling(stack: Stack) -> None:
    preview = preview_of(stack, "zoho Leads 554023000000792001 Prime")
    stack.slack.fail_next("chat.postEphemeral", status=429, retry_after=0, count=2)
    stack.slack.submit_view(stack.url, preview["id"], tags_value("Prime"), user_id=ALICE)
    result = stack.wait_for_message("Removal succeeded")
    stack.slack.fail_next("chat.postEphemeral", status=503, count=1)
    stack.slack.click(stack.url, action_id="untag_undo", message=result, user_id=ALICE)
    undo = stack.wait_for_message("Undo succeeded")
    order = [m.ts for m in stack.slack.messages]
    assert order.index(result.ts) < order.index(undo.ts)
    assert [w.path for w in stack.writes("zoho")] == [
        "/crm/v7/Leads/actions/remove_tags",
        "/crm/v7/Leads/actions/add_tags",
    ]


PREVIEW_FAULTS = [
    pytest.param("views.update", 429, 0, 2, id="views.update-429x2"),
    pytest.param("views.update", 503, 0, 2, id="views.update-503x2"),
    pytest.param("views.open", 429, 0, 1, id="views.open-429"),
    pytest.param("views.open", 500, 0, 1, id="views.open-500"),
]


@pytest.mark.parametrize(("method", "status", "retry_after", "count"), PREVIEW_FAULTS)
def test_the_preview_still_appears_when_slack_throttles_or_fails(
    stack: Stack, method: str, status: int, retry_after: int, count: int
) -> None:
    stack.slack.fail_next(method, status=status, retry_after=retry_after, count=count)
    preview = preview_of(stack, "zoho Leads 554023000000793002 Prime")
    assert "Prime" in json.dumps(preview["blocks"])
    assert len([c for c in web_api_calls(stack, method) if c[0] == status]) == count


def test_views_open_failing_for_good_is_explained_not_silent(stack: Stack) -> None:
    stack.slack.fail_next("views.open", status=503, count=3)  # the client retries twice
    reply = stack.slack.slash_command(
        stack.url, "zoho Leads 554023000000793002 Prime", user_id=ALICE, channel_id="C0OPS"
    )
    assert reply.status == 200 and reply.elapsed < 3.0
    stack.wait_for_message("would not open the window")
    assert stack.runtime.untag.operations.recent(limit=5) == []  # no plan, nothing to confirm
    assert stack.slack.violations == []


_PROGRESS = re.compile(r" (\d+)/(\d+) \(")


@pytest.mark.parametrize(
    ("method", "status", "retry_after", "count"),
    [
        pytest.param("chat.update", 429, 1, 2, id="chat.update-429-retry-after-1"),
        pytest.param("chat.update", 503, 0, 2, id="chat.update-503x2"),
        pytest.param("chat.postMessage", 429, 0, 1, id="chat.postMessage-429"),
    ],
)
def test_a_long_jobs_progress_message_ends_on_the_summary_in_order(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    status: int,
    retry_after: int,
    count: int,
) -> None:
    import bot.slack

    monkeypatch.setattr(bot.slack, "PROGRESS_EVERY", 0.0)  # every step edits the message
    preview = preview_of(stack, f"cc contacts {CC_CONTACT},{CC_CONTACT_B} Newsletter")
    stack.slack.fail_next(method, status=status, retry_after=retry_after, count=count)
    stack.slack.submit_view(stack.url, preview["id"], tags_value("Newsletter"), user_id=ALICE)
    message = stack.wait_for_message("Removal succeeded")
    assert message.channel == stack.slack.dm_channel(ALICE) and not message.ephemeral
    versions = [message.text, *(e.text for e in message.edits)]
    assert "Removal succeeded" in versions[-1]
    assert not any("Removal succeeded" in v for v in versions[:-1])  # the summary is last
    done = [int(m.group(1)) for v in versions[:-1] if (m := _PROGRESS.search(v))]
    assert len(done) >= 3 and done == sorted(done), versions  # never goes backwards
    assert len([c for c in web_api_calls(stack, method) if c[0] == status]) == count
    assert len(stack.writes("constantcontact")) == 1


# -- a bug in a listener is not a lost answer ----------------------------------------------------


def test_a_failing_listener_answers_at_once_and_logs_the_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bolt answers an exception before the ack with a 500, and one after it by un-acking the
    request: Slack then waits 3 s and gets a 404.  Both are now an immediate, polite answer."""
    with production_logs() as taps, app_stack(tmp_path) as st:
        preview = preview_of(st, "zoho Leads 554023000000793002 Prime")

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug")

        monkeypatch.setattr(st.runtime.untag, "load_plan", broken)  # before the ack
        body = submission(preview, ALICE, tags_value("Prime"))
        before = send(st.slack, st.url, body, signed(body))
        assert (before.status, before.elapsed < 1.0) == (200, True)
        assert "Something went wrong" in before.body

        monkeypatch.setattr(st.surface.jobs, "submit", broken)  # after the ack
        click = interaction_body(
            {
                "type": "block_actions",
                "user": {"id": ALICE},
                "team": {"id": "T0TEST"},
                "channel": {"id": "C0OPS"},
                "actions": [{"action_id": "untag_undo", "value": "x", "type": "button"}],
            }
        )
        after = send(st.slack, st.url, click, signed(click))
        assert (after.status, after.body, after.elapsed < 1.0) == (200, "", True)
        assert st.slack.messages == []  # nothing ran, so nothing was posted
        assert len(taps.redacted.errors) == 2 and "RuntimeError" in taps.redacted.errors[0]
        assert st.writes("zoho") == []
