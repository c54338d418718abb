"""The batch-consumer engine (services.adapters.kafka.engine) on the real broker: retries,
put-backs, pausing, draining on stop, positioning by time, fatal errors; the backoff and
the batch's offsets at unit level.

Most engines here assign their partitions (no group join, which costs seconds on the
embedded broker); a group id, where one is given, only keeps committed offsets. One test
joins a group, for the rebalance hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.adapters.kafka.clients import make_consumer, make_producer
from services.adapters.kafka.embedded_broker import create_topics
from services.adapters.kafka.engine import (
    AfterCommit,
    Batch,
    ConsumerEngine,
    Finish,
    Membership,
    PutBack,
    since,
)
from services.adapters.kafka.retry import Retry
from services.settings import Settings
from tests.adapters.kafka.fakes import FakeRecord
from tests.waiting import eventually

pytestmark = pytest.mark.broker

PARTITIONS = 2
PREFILLED = 6  # records on the shared topic, spread over its partitions
STOP_S = 30.0

Seen = tuple[int, int, bytes]  # partition, offset, value


def seen(batch: Batch) -> list[Seen]:
    return [(r.partition, r.offset, r.value or b"") for r in batch.records]


@dataclass
class Recorder:
    """A handler that notes every batch it is given; `fail_first` is raised on the first."""

    fail_first: BaseException | None = None
    calls: list[list[Seen]] = field(default_factory=list)
    committed: list[int] = field(default_factory=list)  # records whose AfterCommit ran

    async def __call__(self, batch: Batch) -> AfterCommit:
        self.calls.append(seen(batch))
        if len(self.calls) == 1 and self.fail_first is not None:
            raise self.fail_first
        return lambda: self.committed.append(len(batch))

    @property
    def records(self) -> set[Seen]:
        return {s for call in self.calls for s in call}


def settings_for(bootstrap: str) -> Settings:
    return Settings(kafka_bootstrap_servers=bootstrap)


async def new_topic(bootstrap: str, values: Sequence[bytes] = ()) -> str:
    topic = f"test.engine.{uuid.uuid4().hex[:10]}"
    await create_topics(bootstrap, [topic], PARTITIONS)
    await produce(bootstrap, topic, values)
    return topic


async def produce(bootstrap: str, topic: str, values: Sequence[bytes]) -> None:
    """The values round-robin over the partitions, acknowledged."""
    producer = make_producer(settings_for(bootstrap))
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value=v, partition=i % PARTITIONS)
            for i, v in enumerate(values)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def partitions(topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(PARTITIONS)]


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = make_consumer(settings_for(bootstrap), group_id=group)
    await consumer.start()
    try:
        return {tp.partition: await consumer.committed(tp) for tp in partitions(topic)}
    finally:
        await consumer.stop()


def assigned_engine(
    bootstrap: str, topic: str, handle: Any, *, group_id: str | None = None, **options: Any
) -> ConsumerEngine:
    return ConsumerEngine(
        settings_for(bootstrap),
        name="test-engine",
        topics=[topic],
        handle=handle,
        group_id=group_id,
        membership=Membership.ASSIGNED,
        batch_wait_ms=50,
        initial_backoff_s=0.01,
        **options,
    )


@contextlib.asynccontextmanager
async def running(engine: ConsumerEngine) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(engine.run())
    try:
        yield task
    finally:
        engine.request_stop()
        await asyncio.wait_for(task, STOP_S)


@pytest.fixture(scope="module")
async def prefilled(kafka_bootstrap: str) -> str:
    """A topic only read here (each test with its own group, or none): PREFILLED records."""
    return await new_topic(kafka_bootstrap, [b"r%d" % i for i in range(PREFILLED)])


def group() -> str:
    return f"test-engine-{uuid.uuid4().hex[:10]}"


# --- failures, put-backs, fatal errors (the shared topic) ------------------------------


async def test_a_failed_batch_comes_again_and_is_committed_only_after_success(
    kafka_bootstrap: str, prefilled: str
) -> None:
    offsets_seen: list[dict[int, int | None]] = []
    recorder = Recorder(fail_first=RuntimeError("the store is briefly unavailable"))
    the_group = group()

    async def handle(batch: Batch) -> AfterCommit:
        consumer = engine.consumer
        assert consumer is not None
        offsets_seen.append(
            {tp.partition: await consumer.committed(tp) for tp in partitions(prefilled)}
        )
        return await recorder(batch)

    engine = assigned_engine(kafka_bootstrap, prefilled, handle, group_id=the_group)
    async with running(engine):
        await eventually(lambda: sum(recorder.committed) == PREFILLED, "every record committed")

    failed, retried = recorder.calls[0], recorder.calls[1]
    assert set(failed) <= set(retried)  # the same records again, none skipped
    # Neither the failed batch nor its retry had committed anything while being handled.
    assert offsets_seen[:2] == [dict.fromkeys(range(PARTITIONS))] * 2
    assert await committed(kafka_bootstrap, the_group, prefilled) == {
        p: PREFILLED // PARTITIONS for p in range(PARTITIONS)
    }
    stats = engine.stats
    assert (stats.retries, stats.put_back, stats.records) == (1, 0, PREFILLED)
    assert stats.last_error is not None and "briefly unavailable" in stats.last_error
    assert len(recorder.committed) == stats.batches  # AfterCommit: once per committed batch


async def test_a_put_back_batch_comes_again_and_is_no_failure(
    kafka_bootstrap: str, prefilled: str
) -> None:
    recorder = Recorder(fail_first=PutBack())
    engine = assigned_engine(kafka_bootstrap, prefilled, recorder)
    async with running(engine):
        await eventually(lambda: sum(recorder.committed) == PREFILLED, "every record handled")

    assert set(recorder.calls[0]) <= set(recorder.calls[1])
    stats = engine.stats
    assert (stats.put_back, stats.retries, stats.last_error) == (1, 0, None)
    assert len(recorder.records) == PREFILLED


class Poisoned(Exception):
    """What a role cannot go on after (say, a fenced writer)."""


async def test_a_fatal_error_ends_the_run_with_the_batch_uncommitted(
    kafka_bootstrap: str, prefilled: str
) -> None:
    recorder = Recorder(fail_first=Poisoned("fenced"))
    the_group = group()
    engine = assigned_engine(
        kafka_bootstrap, prefilled, recorder, group_id=the_group, fatal=(Poisoned,)
    )
    with pytest.raises(Poisoned):
        await asyncio.wait_for(engine.run(), STOP_S)

    assert len(recorder.calls) == 1 and recorder.committed == []
    assert engine.consumer is None  # closed
    assert (engine.stats.batches, engine.stats.retries) == (0, 0)
    assert await committed(kafka_bootstrap, the_group, prefilled) == dict.fromkeys(
        range(PARTITIONS)
    )


# --- pausing, stopping, positioning (a topic each) -------------------------------------


class Gate:
    """A handler whose first batch waits until `release` is set."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, batch: Batch) -> AfterCommit:
        if not self.started.is_set():
            self.started.set()
            await self.release.wait()
        return await self.recorder(batch)


async def test_pause_waits_for_the_batch_in_flight_and_fetches_nothing_until_resumed(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap, [b"a0", b"a1"])
    gate = Gate()
    engine = assigned_engine(kafka_bootstrap, topic, gate)
    async with running(engine):
        await asyncio.wait_for(gate.started.wait(), STOP_S)
        pausing = asyncio.create_task(engine.pause())
        await asyncio.sleep(0.2)
        assert not pausing.done()  # the batch in flight is not finished yet
        gate.release.set()
        await asyncio.wait_for(pausing, STOP_S)
        handled = len(gate.recorder.calls)
        assert handled == 1 and not engine.consuming

        await produce(kafka_bootstrap, topic, [b"b0", b"b1"])
        await asyncio.sleep(0.5)  # ten fetch waits: time enough to fetch, were it fetching
        assert len(gate.recorder.calls) == handled

        engine.resume()
        await eventually(lambda: len(gate.recorder.records) == 4, "the records sent while paused")
    assert {value for _, _, value in gate.recorder.records} == {b"a0", b"a1", b"b0", b"b1"}


async def test_stop_finishes_and_commits_the_batch_in_flight(kafka_bootstrap: str) -> None:
    topic = await new_topic(kafka_bootstrap, [b"s0", b"s1", b"s2", b"s3"])
    the_group = group()
    gate = Gate()
    assigned: list[set[TopicPartition]] = []
    engine = ConsumerEngine(
        settings_for(kafka_bootstrap),
        name="test-engine-group",
        topics=[topic],
        handle=gate,
        group_id=the_group,
        batch_wait_ms=50,
        on_assigned=assigned.append,
    )
    task = asyncio.create_task(engine.run())
    await asyncio.wait_for(gate.started.wait(), 60)
    engine.request_stop()
    gate.release.set()
    await asyncio.wait_for(task, STOP_S)

    [batch] = gate.recorder.calls  # finished, and nothing fetched after it
    assert assigned == [set(partitions(topic))] and engine.stats.rebalances == 1
    assert engine.stats.batches == 1 and gate.recorder.committed == [len(batch)]
    next_offsets: dict[int, int | None] = dict.fromkeys(range(PARTITIONS))
    for partition, offset, _ in batch:
        next_offsets[partition] = max(next_offsets[partition] or 0, offset + 1)
    assert await committed(kafka_bootstrap, the_group, topic) == next_offsets


async def test_a_group_less_reader_positioned_by_time_reads_what_comes_after_start(
    kafka_bootstrap: str,
) -> None:
    # One old record per partition: the embedded broker's end offset (the last batch's
    # base offset + 1) is then right, and nothing here tests that quirk.
    old = [b"old0", b"old1"]
    topic = await new_topic(kafka_bootstrap, old)
    await asyncio.sleep(0.05)  # the old records' times lie before the position's
    recorder = Recorder()
    engine = assigned_engine(
        kafka_bootstrap, topic, recorder, position=since(lambda: int(time.time() * 1000))
    )
    assert not engine.commits
    await engine.start()
    assert engine.assigned.is_set()
    new = [b"new0", b"new1", b"new2"]
    await produce(kafka_bootstrap, topic, new)
    async with running(engine):
        await eventually(lambda: len(recorder.records) >= len(new), "the records sent after start")
    values = [value for _, _, value in sorted(recorder.records)]
    assert sorted(values) == sorted(new)


# --- units ----------------------------------------------------------------------------


def test_the_backoff_doubles_up_to_its_cap_and_resets_on_success() -> None:
    retry = Retry(0.1, 0.5)
    stopped = asyncio.Event()
    stopped.set()  # the waits return at once; the delays still advance

    async def delays(n: int) -> list[float]:
        found = []
        for _ in range(n):
            found.append(retry.delay_s)
            retry.failed("a batch failed", RuntimeError("boom"))
            await retry.wait(stopped)
        return found

    assert asyncio.run(delays(5)) == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert (retry.failures, retry.last_error) == (5, "RuntimeError: boom")
    retry.succeeded()
    assert retry.delay_s == 0.1


def test_a_batch_spans_first_to_next_offset_per_partition() -> None:
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    batch = Batch(
        {
            a0: [FakeRecord("a", 0, 5), FakeRecord("a", 0, 6)],
            a1: [FakeRecord("a", 1, 9)],
            b0: [FakeRecord("b", 0, 0)],
        }
    )
    assert len(batch) == 4
    assert batch.first_offsets == {a0: 5, a1: 9, b0: 0}
    assert batch.next_offsets == {a0: 7, a1: 10, b0: 1}
    assert batch.of_topic("a").next_offsets == {a0: 7, a1: 10}


# --- batches that finish while the next is handled (Finish) ----------------------------


async def test_a_finishing_batch_overlaps_the_next_and_commits_only_once_done(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap)
    the_group = group()
    loop = asyncio.get_running_loop()
    dones: list[asyncio.Future[None]] = []
    handled: list[list[Seen]] = []
    counted: list[int] = []

    async def handle(batch: Batch) -> Finish:
        handled.append(seen(batch))
        done: asyncio.Future[None] = loop.create_future()
        dones.append(done)
        return Finish(done, lambda: counted.append(len(batch)))

    engine = assigned_engine(kafka_bootstrap, topic, handle, group_id=the_group)
    async with running(engine):
        await produce(kafka_bootstrap, topic, [b"first"])
        await eventually(lambda: len(handled) == 1, "the first batch handled")
        await produce(kafka_bootstrap, topic, [b"second"])
        # Handled while the first is still unfinished: the overlap.
        await eventually(lambda: len(handled) == 2, "the second batch handled")
        assert await committed(kafka_bootstrap, the_group, topic) == dict.fromkeys(
            range(PARTITIONS)
        )
        assert counted == []
        dones[1].set_result(None)  # the later one done first: still nothing committed
        await asyncio.sleep(0.3)
        assert await committed(kafka_bootstrap, the_group, topic) == dict.fromkeys(
            range(PARTITIONS)
        )
        dones[0].set_result(None)
        await eventually(lambda: counted == [1, 1], "both committed, in order")
    assert await committed(kafka_bootstrap, the_group, topic) == {0: 2, 1: None}
    assert (engine.stats.batches, engine.stats.records, engine.stats.retries) == (2, 2, 0)


async def test_when_a_finishing_batch_fails_it_and_the_later_ones_come_again(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap)
    the_group = group()
    loop = asyncio.get_running_loop()
    dones: list[asyncio.Future[None]] = []
    handled: list[list[Seen]] = []

    async def handle(batch: Batch) -> Finish:
        handled.append(seen(batch))
        done: asyncio.Future[None] = loop.create_future()
        if len(dones) >= 2:
            done.set_result(None)  # the second time round, everything is acknowledged
        dones.append(done)
        return Finish(done)

    engine = assigned_engine(kafka_bootstrap, topic, handle, group_id=the_group)
    async with running(engine):
        await produce(kafka_bootstrap, topic, [b"first"])
        await eventually(lambda: len(handled) == 1, "the first batch handled")
        await produce(kafka_bootstrap, topic, [b"second"])
        await eventually(lambda: len(handled) == 2, "the second batch handled")
        dones[1].set_result(None)
        dones[0].set_exception(RuntimeError("not acknowledged"))
        await eventually(
            lambda: (
                {s for call in handled[2:] for s in call} == {(0, 0, b"first"), (0, 1, b"second")}
            ),
            "both handled again",
        )
        await eventually(lambda: engine.stats.batches >= 1, "committed after the retry")
        await eventually(
            lambda: engine.stats.records == 2, "both records committed once, after the retry"
        )
    assert await committed(kafka_bootstrap, the_group, topic) == {0: 2, 1: None}
    assert engine.stats.retries == 1
    assert engine.stats.last_error is not None and "not acknowledged" in engine.stats.last_error


async def test_a_stop_waits_for_the_finishing_batches_and_commits_them(
    kafka_bootstrap: str,
) -> None:
    topic = await new_topic(kafka_bootstrap)
    the_group = group()

    async def acknowledged_later() -> None:
        await asyncio.sleep(0.5)

    async def handle(batch: Batch) -> Finish:
        return Finish(asyncio.ensure_future(acknowledged_later()))

    engine = assigned_engine(kafka_bootstrap, topic, handle, group_id=the_group)
    task = asyncio.create_task(engine.run())
    await produce(kafka_bootstrap, topic, [b"a", b"b"])
    await eventually(lambda: engine.stats.put_back == 0 and len(engine._unsettled) > 0, "finishing")
    engine.request_stop()
    await asyncio.wait_for(task, STOP_S)
    assert await committed(kafka_bootstrap, the_group, topic) == {0: 1, 1: 1}
