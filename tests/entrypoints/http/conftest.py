"""Fixtures the HTTP tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.entrypoints.http import read_your_writes

SHORT_MIN_VERSION_WAIT_S = 0.3


@pytest.fixture
def fast_min_version_wait() -> Iterator[None]:
    """`X-Min-Version` waits cut short: a version never reached is 503 sooner."""
    kept = read_your_writes.MIN_VERSION_WAIT_S
    read_your_writes.MIN_VERSION_WAIT_S = SHORT_MIN_VERSION_WAIT_S
    try:
        yield
    finally:
        read_your_writes.MIN_VERSION_WAIT_S = kept
