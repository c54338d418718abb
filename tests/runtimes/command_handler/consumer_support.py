"""Shared pieces of the command-consumer tests: settings per test, a running consumer,
sending records and reading results back (without a consumer group)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from contracts.cloudevents import KafkaRecord, decode_result
from contracts.results import CommandAccepted, CommandRejected
from services.adapters.kafka.clients import ensure_topics, make_producer
from services.runtimes.command_handler import CommandConsumer
from services.service_layer.decider import Decider
from services.settings import Settings
from tests.infra.kafka import read_partitions

PARTITIONS = 3
JOIN_TIMEOUT_S = 60.0

Result = CommandAccepted | CommandRejected


def settings_for(bootstrap: str, store_url: str, **overrides: Any) -> Settings:
    """Topics and group unique to the calling test: the session shares one broker."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": f"test.consumer.{tag}",
        "consumer_group": f"test-consumer-{tag}",
        "partitions": PARTITIONS,
        "event_store_url": store_url,
        **overrides,
    }
    return Settings(**values)


async def topics_for(bootstrap: str, store_url: str, **overrides: Any) -> Settings:
    """`settings_for`, with its topics created."""
    settings = settings_for(bootstrap, store_url, **overrides)
    await ensure_topics(settings)
    return settings


@contextlib.asynccontextmanager
async def running(consumer: CommandConsumer) -> AsyncIterator[CommandConsumer]:
    """The consumer's loop as a task, joined to its group; stopped gracefully on exit."""
    task = asyncio.create_task(consumer.run())
    try:
        joined = asyncio.create_task(consumer.assigned.wait())
        done, _ = await asyncio.wait(
            {task, joined}, timeout=JOIN_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            task.result()  # raises what stopped it
        if joined not in done:
            joined.cancel()
            raise TimeoutError("the consumer was never assigned partitions")
        yield consumer
    finally:
        consumer.request_stop()
        await asyncio.wait_for(task, timeout=30)


@contextlib.asynccontextmanager
async def producer_for(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def send_all(
    producer: AIOKafkaProducer, topic: str, records: Sequence[KafkaRecord]
) -> list[Any]:
    """Send in order; the records' metadata (partition, offset), in the same order."""
    sent = [
        await producer.send(topic, value=r.value, key=r.key, headers=r.headers) for r in records
    ]
    return list(await asyncio.gather(*sent))


async def read_topic(
    settings: Settings, topic: str, expected: int, timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    return await read_partitions(
        str(settings.kafka_bootstrap_servers),
        topic,
        range(settings.partitions),
        expected=expected,
        timeout_s=timeout_s,
    )


def by_command_id(
    records: Sequence[ConsumerRecord[bytes, bytes]],
) -> dict[str, list[ConsumerRecord[bytes, bytes]]]:
    grouped: dict[str, list[ConsumerRecord[bytes, bytes]]] = defaultdict(list)
    for record in records:
        grouped[record.key.decode()].append(record)
    return dict(grouped)


def result_of(record: ConsumerRecord[bytes, bytes]) -> Result:
    return decode_result(record.value, record.headers).result


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    found = [value for key, value in record.headers if key == name]
    return found[-1].decode() if found else None


class FlakyDecider(Decider):
    """Fails the first `failures` batches the way a briefly unavailable database does."""

    def __init__(
        self,
        *args: Any,
        failures: int = 1,
        on_retry: Callable[[], object] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures
        self.on_retry = on_retry  # runs (in the decider's thread) before a retried batch
        self.calls: list[list[str]] = []
        self.seen_on_retry: list[object] = []

    def decide(self, items: Any) -> Any:
        self.calls.append([item.command_id for item in items])
        if len(self.calls) <= self.failures:
            from eventsourcing.persistence import OperationalError

            raise OperationalError("the database is briefly unavailable (simulated)")
        if self.on_retry is not None and len(self.calls) == self.failures + 1:
            self.seen_on_retry.append(self.on_retry())
        return super().decide(items)
