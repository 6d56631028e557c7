"""Shared fixtures for the provider tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina


@pytest.fixture
def no_retry_waits() -> Iterator[None]:
    """Retries happen without their backoff, so failure paths run in milliseconds."""
    with stamina.set_testing(True, attempts=3):
        yield
