"""Listeners answered on their ack: the answer leaves while the listener goes on working."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from slack_bolt import Ack
from slack_bolt.util.utils import get_arg_names_of_callable

from bot.listeners import answer_on_ack


def new_ack() -> Ack:
    return Ack()  # type: ignore[no-untyped-call]  # bolt's __init__ is unannotated


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def test_the_answer_is_what_was_acked_while_the_listener_still_runs(
    pool: ThreadPoolExecutor,
) -> None:
    release, finished = threading.Event(), threading.Event()
    seen: list[str] = []

    def listener(ack: Ack, command: dict[str, Any]) -> None:
        ack(text=f"on it, {command['user_id']}")
        release.wait(5)  # the modal would be opened here, after the answer left
        seen.append(threading.current_thread().name)
        finished.set()

    ack = new_ack()
    answer_on_ack(pool, listener)(ack=ack, command={"user_id": "U0ALICE"})
    assert ack.response is not None and ack.response.body == "on it, U0ALICE"
    assert not finished.is_set()  # returned on the ack, not on the listener's return
    release.set()
    assert finished.wait(5) and seen != [threading.current_thread().name]


def test_bolt_sees_the_listeners_own_signature(pool: ThreadPoolExecutor) -> None:
    def listener(ack: Ack, body: dict[str, Any], respond: Any) -> None: ...

    wrapped = answer_on_ack(pool, listener)
    assert get_arg_names_of_callable(wrapped) == ["ack", "body", "respond"]


def test_a_listener_that_returns_without_acking_is_not_waited_for(
    pool: ThreadPoolExecutor,
) -> None:
    calls: list[str] = []

    def listener(ack: Ack) -> None:
        calls.append("ran")

    ack = new_ack()
    answer_on_ack(pool, listener, timeout=60)(ack=ack)  # would hang the test for a minute
    assert calls == ["ran"] and ack.response is None


def test_a_listener_that_never_acks_is_given_up_on_after_the_timeout(
    pool: ThreadPoolExecutor,
) -> None:
    stuck = threading.Event()

    def listener(ack: Ack) -> None:
        stuck.wait(5)

    ack = new_ack()
    answer_on_ack(pool, listener, timeout=0.05)(ack=ack)
    assert ack.response is None and not stuck.is_set()
    stuck.set()


def test_an_exception_after_the_ack_is_logged_not_lost(
    pool: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    def on_undo(ack: Ack) -> None:
        ack()
        raise RuntimeError("after the ack")

    ack = new_ack()
    with caplog.at_level(logging.ERROR, logger="untag.slack"):
        answer_on_ack(pool, on_undo)(ack=ack)
        pool.shutdown(wait=True)
    assert ack.response is not None and ack.response.status == 200
    assert [r.getMessage() for r in caplog.records] == ["listener on_undo failed: RuntimeError"]


def test_an_event_is_handed_to_the_pool_and_returned_from_at_once(
    pool: ThreadPoolExecutor,
) -> None:
    release, done = threading.Event(), threading.Event()

    def on_app_home_opened(event: dict[str, Any]) -> None:
        release.wait(5)
        done.set()

    answer_on_ack(pool, on_app_home_opened)(event={"user": "U0ALICE"})
    assert not done.is_set()  # bolt acks the event as soon as the wrapper returns
    release.set()
    assert done.wait(5)
