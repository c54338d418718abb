"""Fetch pacing (services.adapters.kafka.fetch_pacing): a consumer's fetch wait is short
while records flow and long once it went idle, written where aiokafka reads it for every
fetch request; the engine paces its consumer when `kafka_idle_fetch_wait_ms` is set."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.adapters.kafka.embedded_broker import create_topics
from services.adapters.kafka.engine import Batch, ConsumerEngine, Membership
from services.adapters.kafka.fetch_pacing import FetchPacing, set_fetch_wait
from services.settings import Settings
from tests.waiting import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_consumer(wait_ms: int) -> Any:
    return SimpleNamespace(_fetcher=SimpleNamespace(_fetch_max_wait_ms=wait_ms))


def test_pacing_goes_idle_after_a_quiet_spell_and_busy_at_the_first_record() -> None:
    clock = Clock()
    consumer = fake_consumer(10)
    pacing = FetchPacing(10, 250, idle_after_s=2.0, clock=clock)

    clock.now += 1.9
    pacing.observe(consumer, got_records=False)
    assert (pacing.wait_ms, consumer._fetcher._fetch_max_wait_ms) == (10, 10)

    clock.now += 0.2
    pacing.observe(consumer, got_records=False)
    assert (pacing.wait_ms, consumer._fetcher._fetch_max_wait_ms) == (250, 250)
    assert pacing.idle_spells == 1

    pacing.observe(consumer, got_records=True)
    assert (pacing.wait_ms, consumer._fetcher._fetch_max_wait_ms) == (10, 10)
    clock.now += 1.0
    pacing.observe(consumer, got_records=False)  # the quiet spell starts again
    assert pacing.wait_ms == 10


def test_a_fetcher_without_the_attribute_is_refused_loudly() -> None:
    with pytest.raises(RuntimeError, match="fetch pacing"):
        set_fetch_wait(cast(AIOKafkaConsumer, SimpleNamespace(_fetcher=object())), 10)


@pytest.mark.broker
async def test_the_wait_set_on_a_started_consumer_is_the_one_its_fetches_use(
    kafka_bootstrap: str,
) -> None:
    """Constructed with a wait of 4 s (which the embedded broker would hold a record
    behind, see the conformance tests), set to 10 ms: the record comes within a third of
    the constructed wait."""
    topic = f"test.pacing.{uuid.uuid4().hex[:10]}"
    await create_topics(kafka_bootstrap, [topic])
    tp = TopicPartition(topic, 0)
    constructed_ms = 4000
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, fetch_max_wait_ms=constructed_ms)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        set_fetch_wait(consumer, 10)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        assert await consumer.getmany(timeout_ms=300) == {}  # fetches now wait on the broker
        await producer.send_and_wait(topic, b"arrived", partition=0)
        answered = await consumer.getmany(timeout_ms=constructed_ms // 3)
    finally:
        await producer.stop()
        await consumer.stop()
    assert [r.value for r in answered[tp]] == [b"arrived"]


@pytest.mark.broker
async def test_the_engine_paces_its_consumer_when_an_idle_wait_is_set(
    kafka_bootstrap: str,
) -> None:
    topic = f"test.pacing.{uuid.uuid4().hex[:10]}"
    await create_topics(kafka_bootstrap, [topic])
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_fetch_wait_ms=10,
        kafka_idle_fetch_wait_ms=200,
        kafka_idle_after_ms=200,
    )
    seen: list[bytes] = []

    async def handle(batch: Batch) -> None:
        seen.extend(r.value or b"" for r in batch.records)

    engine = ConsumerEngine(
        settings,
        name="paced",
        topics=[topic],
        handle=handle,
        group_id=None,
        membership=Membership.ASSIGNED,
        batch_wait_ms=20,
    )
    pacing = engine.pacing
    assert pacing is not None
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await eventually(lambda: pacing.wait_ms == 200, "the idle wait")
        assert engine.consumer is not None
        assert engine.consumer._fetcher._fetch_max_wait_ms == 200
        await producer.send_and_wait(topic, b"wakes it", partition=0)
        await eventually(lambda: seen == [b"wakes it"], "the record handled")
        assert engine.consumer._fetcher._fetch_max_wait_ms == 10  # busy again
        await eventually(lambda: pacing.idle_spells == 2, "idle once more")
    finally:
        await producer.stop()
        stop.set()
        await task


def test_no_pacing_without_an_idle_wait_or_with_one_no_longer_than_the_wait() -> None:
    def engine(**options: Any) -> ConsumerEngine:
        settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", **options)

        async def handle(batch: Batch) -> None:
            return None

        return ConsumerEngine(
            settings,
            name="x",
            topics=["t"],
            handle=handle,
            group_id=None,
            membership=Membership.ASSIGNED,
        )

    assert engine(kafka_fetch_wait_ms=10).pacing is None  # Apache Kafka: one wait
    assert engine(kafka_idle_fetch_wait_ms=250).pacing is None  # aiokafka's own 500 ms
    assert engine(kafka_fetch_wait_ms=300, kafka_idle_fetch_wait_ms=250).pacing is None
    paced = engine(kafka_fetch_wait_ms=10, kafka_idle_fetch_wait_ms=250).pacing
    assert paced is not None and (paced.active_ms, paced.idle_ms) == (10, 250)
