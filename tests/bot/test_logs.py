"""The redaction filter masks configured secrets and secret-shaped text in every record."""

from __future__ import annotations

import io
import logging

import pytest

from bot.logs import MASK, RedactingFilter, redact


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
