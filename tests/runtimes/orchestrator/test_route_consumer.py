"""The orchestrator's one route consumer (services.runtimes.orchestrator.route_consumer) on
the real broker: a slow topic does not hold another one up, each share is committed once
its dispatch returned (never before), a failed share comes again, and a stop lets the
share in flight finish and commit. Plus the pool's cutting of a share into each route's
own batch size."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.adapters.kafka.batch import AfterCommit, Batch, PutBack
from services.adapters.kafka.clients import make_consumer, make_producer
from services.adapters.kafka.embedded_broker import create_topics
from services.runtimes.orchestrator.config_workers import chunks
from services.runtimes.orchestrator.route_consumer import RouteConsumer
from services.settings import Settings
from tests.runtimes.orchestrator.worker_support import group_options
from tests.waiting import eventually, eventually_async

pytestmark = pytest.mark.broker


class FakeRecord:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        self.key = self.value = None
        self.headers: list[tuple[str, bytes]] = []


def test_a_share_is_cut_into_the_routes_batches_in_order() -> None:
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    batch = Batch(
        {
            a: [FakeRecord("t", 0, offset) for offset in range(3)],
            b: [FakeRecord("t", 1, offset) for offset in range(2)],
        }
    )
    cut = chunks(batch, 2)
    assert [len(chunk) for chunk in cut] == [2, 2, 1]
    assert [(r.partition, r.offset) for c in cut for r in c.records] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
    ]
    assert chunks(batch, 10)[0].partitions == batch.partitions


def _settings(bootstrap: str) -> Settings:
    tag = uuid.uuid4().hex[:10]
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"test.rc.{tag}",
        consumer_group=f"test-rc-{tag}",
        partitions=1,
        kafka_fetch_wait_ms=20,
    )


async def _committed(settings: Settings, topic: str) -> int | None:
    consumer = make_consumer(settings, group_id=f"{settings.consumer_group}.routes")
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))  # type: ignore[no-any-return]
    finally:
        await consumer.stop()


async def _send(settings: Settings, topic: str, count: int) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, f"{i}".encode(), key=b"k")
    finally:
        await producer.stop()


async def test_a_slow_topic_does_not_hold_up_another_and_commits_only_when_done(
    kafka_bootstrap: str, broker_kind: str
) -> None:
    settings = _settings(kafka_bootstrap)
    slow, fast = f"{settings.topic_prefix}.slow", f"{settings.topic_prefix}.fast"
    await create_topics(kafka_bootstrap, [slow, fast], 1)
    release = asyncio.Event()
    seen: dict[str, list[bytes]] = {slow: [], fast: []}
    attempts: dict[str, int] = {slow: 0, fast: 0}
    afters: list[str] = []

    async def dispatch(topic: str, share: Batch) -> AfterCommit | None:
        attempts[topic] += 1
        if topic == fast and attempts[topic] == 1:
            raise RuntimeError("a first failure: the share comes again")
        if topic == slow:
            await release.wait()
        seen[topic].extend(r.value or b"" for r in share.records)
        return lambda: afters.append(topic)

    options: dict[str, Any] = {**group_options(broker_kind), "fetch_max_wait_ms": 20}
    consumer = RouteConsumer(settings, dispatch, initial_backoff_s=0.05, consumer_options_=options)
    consumer.subscribe([slow, fast])
    consumer.start()
    try:
        await _send(settings, slow, 1)
        await eventually(lambda: attempts[slow] == 1, "the slow share to start")
        await _send(settings, fast, 3)
        await eventually(lambda: len(seen[fast]) == 3, "the fast topic, beside the slow share")
        assert attempts[fast] >= 2  # failed once, ran again
        await _eventually_committed(settings, fast, 3)
        assert await _committed(settings, slow) is None  # still running: nothing committed
        assert afters == [fast] * (len(afters))

        release.set()
        await _eventually_committed(settings, slow, 1)
        assert seen[slow] == [b"0"] and slow in afters
    finally:
        release.set()
        await consumer.stop()
    assert consumer.in_flight == 0


async def test_a_stop_finishes_the_share_in_flight_and_a_put_back_comes_again(
    kafka_bootstrap: str, broker_kind: str
) -> None:
    settings = _settings(kafka_bootstrap)
    topic = f"{settings.topic_prefix}.one"
    await create_topics(kafka_bootstrap, [topic], 1)
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[int] = []

    async def dispatch(_: str, share: Batch) -> AfterCommit | None:
        runs.append(len(share))
        if len(runs) == 1:
            raise PutBack  # not a failure: comes again at once
        started.set()
        await release.wait()
        return None

    options: dict[str, Any] = {**group_options(broker_kind), "fetch_max_wait_ms": 20}
    consumer = RouteConsumer(settings, dispatch, consumer_options_=options)
    consumer.subscribe([topic])
    consumer.start()
    await _send(settings, topic, 2)
    await asyncio.wait_for(started.wait(), 60)
    stopping = asyncio.create_task(consumer.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done()  # waits for the share in flight
    release.set()
    await asyncio.wait_for(stopping, 30)
    assert await _committed(settings, topic) == 2
    assert consumer.stats.put_back == 1 and consumer.stats.retries == 0


async def _eventually_committed(settings: Settings, topic: str, offset: int) -> None:
    async def committed() -> bool:
        return await _committed(settings, topic) == offset

    await eventually_async(committed, f"{topic} committed up to {offset}", every_s=0.1)
