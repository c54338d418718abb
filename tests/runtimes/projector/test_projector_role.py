"""End to end on the real broker (SQLite and PostgreSQL): commands decided by the real
decider, events relayed to the events topic, the projector role applying them — the read
model shows what the commands did."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable

import pytest
from aiokafka import TopicPartition

from contracts import CreatePipeline, StartPipeline
from contracts.cloudevents import encode_event
from contracts.events import LifecycleEvent
from projections.projector import BatchStats, Projector
from projections.store import ReadStore
from services.adapters.command_records import recorder_env
from services.adapters.eventstore import open_event_store
from services.adapters.kafka.clients import ensure_topics, make_consumer, make_producer
from services.runtimes.projector import ProjectorConsumer, projector_group, run_projector
from services.runtimes.relay import Relay
from services.settings import Settings
from tests.projections.support import events_of
from tests.service_layer.decider_support import accepted, decide_one, opened_decider
from tests.waiting import eventually_async

pytestmark = pytest.mark.broker
TIMEOUT_S = 60.0


@contextlib.asynccontextmanager
async def relay_and_projector(settings: Settings) -> AsyncIterator[None]:
    url = settings.event_store_url
    stop = asyncio.Event()
    store = await asyncio.to_thread(open_event_store, url, extra_env=recorder_env(url))
    producer = make_producer(settings)
    await producer.start()
    relay = Relay(store, producer, settings.topics.events, poll_interval_s=0.02)
    tasks = [
        asyncio.create_task(relay.run(stop)),
        asyncio.create_task(run_projector(settings, stop, lambda: None)),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        await producer.stop()
        await asyncio.to_thread(store.close)


async def topics_for(bootstrap: str, store_url: str, partitions: int) -> Settings:
    """Topics of this test's own (the session shares one broker), created."""
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"test.projector.{uuid.uuid4().hex[:10]}",
        partitions=partitions,
        event_store_url=store_url,
    )
    await ensure_topics(settings)
    return settings


async def test_start_pipeline_reaches_the_read_model(kafka_bootstrap: str, store_url: str) -> None:
    settings = await topics_for(kafka_bootstrap, store_url, partitions=3)
    with opened_decider(store_url) as decider, ReadStore(store_url) as read:
        created = accepted(decide_one(decider, CreatePipeline(name="p1")))
        async with relay_and_projector(settings):
            assert await read.wait_for_version(created.aggregate_id, 1, TIMEOUT_S)
            row = read.get_pipeline("p1")
            assert row is not None and row["deployment_desired_status"] == "Stopped"

            started = accepted(decide_one(decider, StartPipeline(pipeline_name="p1")))
            assert started.aggregate_id == created.aggregate_id
            assert await read.wait_for_version(
                started.aggregate_id, started.aggregate_version, TIMEOUT_S
            )
            row = read.get_pipeline("p1")
            assert row is not None
            assert row["deployment_desired_status"] == "Running"
            assert row["deployment_status"] == "Stopped"
            assert row["deployment_initial"] == "running"
            assert row["refresh_version"] == started.aggregate_version
            # Offsets are committed once the batch is in the read store.
            stored = len(events_of(decider.store))
            assert await committed_total(settings, stored) == stored


async def committed_total(settings: Settings, expected: int) -> int:
    """The projector group's committed offsets summed over the events topic's partitions,
    polled until they reach `expected` (commits follow the database commit closely)."""
    consumer = make_consumer(settings, group_id=projector_group(settings))
    await consumer.start()
    try:
        partitions = [TopicPartition(settings.topics.events, p) for p in range(settings.partitions)]
        total = 0

        async def reached() -> bool:
            nonlocal total
            total = sum([await consumer.committed(tp) or 0 for tp in partitions])
            return total >= expected

        await eventually_async(reached, f"{expected} committed offsets", TIMEOUT_S, every_s=0.2)
        return total
    finally:
        await consumer.stop()


class FailingOnce(Projector):
    """Fails the first non-empty batch after reading it; records every batch it gets."""

    def __init__(self, store: ReadStore) -> None:
        super().__init__(store)
        self.batches: list[list[str]] = []

    def apply_batch(self, events: Iterable[LifecycleEvent]) -> BatchStats:
        events = list(events)
        self.batches.append([e.event_id for e in events])
        if len(self.batches) == 1:
            raise RuntimeError("the read store is briefly unavailable")
        return super().apply_batch(events)


async def test_a_failed_batch_is_applied_again(kafka_bootstrap: str, store_url: str) -> None:
    settings = await topics_for(kafka_bootstrap, store_url, partitions=1)
    with opened_decider(store_url) as decider, ReadStore(store_url) as read:
        created = accepted(decide_one(decider, CreatePipeline(name="p1")))
        events = events_of(decider.store)
        producer = make_producer(settings)
        await producer.start()
        try:
            for event in events:
                record = encode_event(event)
                await producer.send_and_wait(
                    settings.topics.events, record.value, record.key, headers=record.headers
                )
        finally:
            await producer.stop()
        projector = FailingOnce(read)
        consumer = ProjectorConsumer(settings, projector, initial_backoff_s=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        try:
            assert await read.wait_for_version(created.aggregate_id, 1, TIMEOUT_S)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
        assert consumer.stats.retries == 1
        first, second = projector.batches[0], projector.batches[1]
        assert first == second == [e.event_id for e in events]
        assert await committed_total(settings, len(events)) == len(events)
