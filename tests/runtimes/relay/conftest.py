"""The relay tests' broker side: a producer, and an events topic of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.adapters.kafka.embedded_broker import create_topics
from tests.runtimes.relay.support import EVENT_PARTITIONS


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=2)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def events_topic(kafka_bootstrap: str, topic_name: Any) -> str:
    topic: str = topic_name("events")
    await create_topics(kafka_bootstrap, [topic], EVENT_PARTITIONS)
    return topic
