"""The decider every service-layer test drives: the real handlers on the session's store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.service_layer.decider import Decider
from tests.service_layer.decider_support import opened_decider


@pytest.fixture
def decider(store_url: str) -> Iterator[Decider]:
    with opened_decider(store_url) as d:
        yield d
