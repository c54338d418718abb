"""The session broker carries keyed messages with headers from a producer to a consumer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.adapters.kafka.embedded_broker import create_topics
from tests.infra.kafka import read_partitions, send_all

pytestmark = pytest.mark.broker


async def test_produce_and_consume_with_headers(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("smoke")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    sent = [
        (
            f"key-{i}".encode(),
            f'{{"n": {i}}}'.encode(),
            [("type", b"Smoke"), ("n", str(i).encode())],
        )
        for i in range(5)
    ]
    await send_all(kafka_bootstrap, topic, sent)

    records = await read_partitions(kafka_bootstrap, topic, expected=len(sent))

    assert [(r.key, r.value, list(r.headers)) for r in records] == sent
    assert [r.offset for r in records] == list(range(len(sent)))
