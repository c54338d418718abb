"""One group-less reader shared by many watchers (services.adapters.kafka.broadcast), and
several topics' work on one engine (`by_topic`), on the real broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition

from services.adapters.kafka.batch import AfterCommit, Batch, BatchHandler, by_topic
from services.adapters.kafka.broadcast import Broadcast, Watcher
from tests.adapters.kafka.fakes import FakeRecord
from tests.adapters.kafka.test_engine import (
    assigned_engine,
    new_topic,
    produce,
    settings_for,
)
from tests.waiting import eventually

pytestmark = pytest.mark.broker

WAIT_S = 30.0


@contextlib.asynccontextmanager
async def running(broadcast: Broadcast) -> AsyncIterator[Broadcast]:
    await broadcast.start()
    try:
        yield broadcast
    finally:
        await broadcast.stop()


async def take(watcher: Watcher, n: int) -> list[bytes]:
    async def first_n() -> list[bytes]:
        values: list[bytes] = []
        async for record in watcher:
            values.append(record.value or b"")
            if len(values) == n:
                break
        return values

    return await asyncio.wait_for(first_n(), WAIT_S)


async def test_every_watcher_sees_what_is_published_after_the_start(kafka_bootstrap: str) -> None:
    topic = await new_topic(kafka_bootstrap, [b"old-1", b"old-2"])
    broadcast = Broadcast(
        settings_for(kafka_bootstrap), name="test-broadcast", topics=[topic], batch_wait_ms=50
    )
    async with running(broadcast):
        async with broadcast.watch() as first, broadcast.watch() as second:
            assert broadcast.watchers == 2
            await produce(kafka_bootstrap, topic, [b"new-1", b"new-2", b"new-3"])
            seen_first, seen_second = await asyncio.gather(take(first, 3), take(second, 3))
        assert broadcast.watchers == 0

    # One consumer served both; neither saw what was there before the broadcast started.
    assert sorted(seen_first) == sorted(seen_second) == [b"new-1", b"new-2", b"new-3"]


async def test_a_watcher_that_falls_behind_is_cut_off_and_the_others_go_on(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap)
    broadcast = Broadcast(
        settings_for(kafka_bootstrap),
        name="test-broadcast",
        topics=[topic],
        batch_wait_ms=50,
        max_backlog=4,
    )
    async with running(broadcast), broadcast.watch() as slow, broadcast.watch() as keeping_up:
        await produce(kafka_bootstrap, topic, [b"1", b"2", b"3"])
        first = await take(keeping_up, 3)
        await produce(kafka_bootstrap, topic, [b"4", b"5", b"6"])
        then = await take(keeping_up, 3)
        await eventually(lambda: slow.overflowed, "the slow watcher is cut off", WAIT_S)
        left = [r.value async for r in slow]  # what it had queued, then the end

    assert sorted(first) == [b"1", b"2", b"3"]
    assert sorted(then) == [b"4", b"5", b"6"]
    assert not keeping_up.overflowed
    assert slow.closed
    assert len(left) == 4


async def test_a_watcher_ends_when_the_broadcast_stops(kafka_bootstrap: str) -> None:
    topic = await new_topic(kafka_bootstrap)
    broadcast = Broadcast(settings_for(kafka_bootstrap), name="test-broadcast", topics=[topic])
    await broadcast.start()
    async with broadcast.watch() as watcher:
        await broadcast.stop()
        assert [r async for r in watcher] == []


async def test_one_engine_serves_several_topics_each_with_its_own_handler(
    kafka_bootstrap: str,
) -> None:
    orders = await new_topic(kafka_bootstrap, [b"o1", b"o2"])
    invoices = await new_topic(kafka_bootstrap, [b"i1", b"i2", b"i3"])
    seen: dict[str, list[bytes]] = {orders: [], invoices: []}
    committed: list[str] = []

    def handler_of(topic: str) -> BatchHandler:
        async def handle(batch: Batch) -> AfterCommit:
            assert {r.topic for r in batch.records} == {topic}
            seen[topic].extend(r.value or b"" for r in batch.records)
            return lambda: committed.append(topic)

        return handle

    engine = assigned_engine(
        kafka_bootstrap,
        orders,
        by_topic({orders: handler_of(orders), invoices: handler_of(invoices)}),
    )
    engine.topics.append(invoices)
    task = asyncio.create_task(engine.run())
    try:
        await eventually(
            lambda: len(seen[orders]) == 2 and len(seen[invoices]) == 3,
            "both topics handled",
            WAIT_S,
        )
    finally:
        engine.request_stop()
        await asyncio.wait_for(task, WAIT_S)

    assert sorted(seen[orders]) == [b"o1", b"o2"]
    assert sorted(seen[invoices]) == [b"i1", b"i2", b"i3"]
    assert set(committed) == {orders, invoices}
    assert engine.stats.records == 5


async def test_by_topic_skips_topics_absent_from_a_batch() -> None:
    called: list[str] = []

    async def handle_a(batch: Batch) -> None:
        called.append("a")

    async def handle_b(batch: Batch) -> None:
        called.append("b")

    batch = Batch({TopicPartition("a", 0): [FakeRecord("a", 0, 0)]})
    assert await by_topic({"a": handle_a, "b": handle_b})(batch) is None
    assert called == ["a"]
