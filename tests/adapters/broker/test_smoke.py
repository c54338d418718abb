"""The session broker carries keyed messages with headers from a producer to a consumer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer

from services.adapters.kafka.embedded_broker import create_topics
from tests.infra.kafka import read_partitions

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
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for key, value, headers in sent:
            await producer.send(topic, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()

    records = await read_partitions(kafka_bootstrap, topic, expected=len(sent))

    assert [(r.key, r.value, list(r.headers)) for r in records] == sent
    assert [r.offset for r in records] == list(range(len(sent)))
