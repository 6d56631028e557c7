"""The redaction filter masks configured secrets and secret-shaped text in every record."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logs import (
    MASK,
    BackgroundHandler,
    RedactingFilter,
    _installed,
    protect,
    redact,
    write_in_background,
)


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("Authorization: Zoho-oauthtoken 1000.8cb99d.9be93", "1000.8cb99d"),
        ("Authorization: Bearer eyJhbGciOi.J9", "eyJhbGciOi"),
        ("POST /token?refresh_token=1000.r3fr35h&client_secret=abc123", "1000.r3fr35h"),
        ("client_secret=abc123&x=1", "abc123"),
        ('{"access_token": "tok-42"}', "tok-42"),
        ("bot xoxb-1234-5678-abcd posted", "xoxb-1234"),
        ("app token xapp-1-A1-2-abc", "xapp-1-A1"),
        ("response_url https://hooks.slack.com/actions/T1/2/xyz", "hooks.slack.com/actions"),
        ("trigger_id=1234.5678.abcd", "1234.5678.abcd"),
    ],
)
def test_secret_shapes_are_masked(text: str, leaked: str) -> None:
    cleaned = redact(text)
    assert leaked not in cleaned and MASK in cleaned


def test_configured_values_are_masked_wherever_they_appear() -> None:
    assert (
        redact("key sk_live_canary in a message", ["sk_live_canary"]) == f"key {MASK} in a message"
    )


def test_the_filter_masks_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(["canary-123"]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("token %s refused", "canary-123")
        try:
            raise ValueError("boom canary-123")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "canary-123" not in output
    assert f"token {MASK} refused" in output and f"ValueError: boom {MASK}" in output


def ours() -> list[logging.Handler]:
    """The root handlers but pytest's own capture."""
    return [h for h in logging.getLogger().handlers if not type(h).__module__.startswith("_pytest")]


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """The root logger with only a redacting stream handler, as configure_logging leaves it."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(["canary-456"]))
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        for installed in ours():
            installed.close()
        root.handlers, root.level = saved, level


def test_background_writing_keeps_lines_whole_redacted_and_in_order(
    root_stream: io.StringIO,
) -> None:
    write_in_background()
    [background] = ours()
    assert isinstance(background, BackgroundHandler)
    assert isinstance(background.target, logging.StreamHandler) and not background.target.filters
    log = logging.getLogger("untag.http")
    threads = [
        threading.Thread(
            target=lambda n=n: [log.info("t%d line %d canary-456", n, i) for i in range(200)]
        )
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        raise ValueError("boom canary-456")
    except ValueError:
        log.exception("failed")
    background.close()  # as logging.shutdown does at exit: what is queued is written first
    lines = root_stream.getvalue().splitlines()
    assert "canary-456" not in root_stream.getvalue()
    for n in range(8):
        mine = [line for line in lines if line.startswith(f"INFO untag.http: t{n} ")]
        assert mine == [f"INFO untag.http: t{n} line {i} {MASK}" for i in range(200)]
    assert "ERROR untag.http: failed" in lines and f"ValueError: boom {MASK}" in lines


def test_values_protected_later_are_masked_by_the_moved_filter(root_stream: io.StringIO) -> None:
    [plain] = ours()
    redactor = plain.filters[0]
    assert isinstance(redactor, RedactingFilter)
    _installed.append(redactor)
    try:
        write_in_background()
        protect(["late-secret-789"])
        logging.getLogger("untag.slack").info("token late-secret-789")
        ours()[0].close()
    finally:
        _installed.remove(redactor)
    assert root_stream.getvalue() == f"INFO untag.slack: token {MASK}\n"


def test_only_plain_stream_handlers_are_moved(root_stream: io.StringIO, tmp_path: Path) -> None:
    file_handler = logging.FileHandler(tmp_path / "untag.log")
    logging.getLogger().addHandler(file_handler)
    write_in_background()
    write_in_background()  # twice: nothing is wrapped again
    assert [type(h) for h in ours()] == [logging.FileHandler, BackgroundHandler]
