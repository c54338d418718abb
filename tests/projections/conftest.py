"""The read store the projection tests write and read, on the session's store URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from projections.store import ReadStore


@pytest.fixture
def read_store(store_url: str) -> Iterator[ReadStore]:
    with ReadStore(store_url) as store:
        yield store
