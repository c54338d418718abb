"""Which Kafka-compatible broker the tests use: external, a testcontainer, or embedded."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from services.adapters.kafka.embedded_broker import EmbeddedBroker

BrokerKind = Literal["external", "container", "embedded"]
Client = TypeVar("Client", AIOKafkaProducer, AIOKafkaConsumer)
# A record to send: key, value, headers.
Outgoing = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def docker_answers() -> bool:
    """A quick ping; the docker client can be installed with no engine behind it."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def kafka_for_tests() -> Iterator[tuple[str, BrokerKind]]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield external, "external"
    elif docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield container.get_bootstrap_server(), "container"
    else:
        with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers, "embedded"


async def read_partitions(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int] = (0,),
    *,
    expected: int,
    timeout_s: float = 15.0,
    **consumer_options: Any,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `expected` records from the start of the partitions, without a consumer group
    (no group join, so no ~5 s wait on the embedded broker)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", **consumer_options
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(records) < expected:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"read {len(records)} of {expected} records from {topic}")
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 1.0) * 1000))
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def running(client: Client) -> AsyncIterator[Client]:
    """Start an aiokafka producer or consumer, and stop it however the block ends."""
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def send_all(
    bootstrap: str,
    topic: str,
    records: Iterable[Outgoing],
    *,
    partition: int | None = None,
    **producer_options: Any,
) -> None:
    """Send `records` to `topic` in their order, and return once the broker has them all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **producer_options)
    async with running(producer):
        for key, value, headers in records:
            await producer.send(topic, value, key=key, headers=headers, partition=partition)
        await producer.flush()
