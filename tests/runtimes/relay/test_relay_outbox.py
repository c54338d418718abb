"""The relay publishes each config execution's init message beside its events (real
broker; SQLite and PostgreSQL): one per execution, none when skipped, to a topic the
relay creates when missing, with the merged payload and the route-message headers; the
same message id after a restart; and the position passes an execution's creation only
when its event AND its init message were acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias, cast
from uuid import UUID

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError

from contracts import CreateConfig, CreatePipeline, CreateRun, RunConfig
from contracts.cloudevents import decode_event
from contracts.route_messages import decode_route_message, init_message_id
from services.entrypoints.roles import topic_creator
from services.runtimes.relay import Relay
from services.service_layer.decider import Decider
from services.settings import Settings
from tests.infra.kafka import read_partitions
from tests.runtimes.relay.support import EVENT_PARTITIONS
from tests.service_layer.decider_support import (
    accepted,
    config_document,
    decide_one,
    opened_decider,
)

INIT_PARTITIONS = 2
Record: TypeAlias = ConsumerRecord[bytes, bytes]


@pytest.fixture
def decider(store_url: str) -> Iterator[Decider]:
    with opened_decider(store_url) as d:
        yield d


@pytest.fixture
def init_topic(topic_name: Any) -> str:
    topic: str = topic_name("fetch-in")
    return topic


@dataclass
class Bench:
    """A decider's event store, the broker, and the relay's topics."""

    decider: Decider
    producer: AIOKafkaProducer
    events_topic: str
    init_topic: str
    settings: Settings

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap_servers

    def relay(self, sender: Any = None) -> Relay:
        return Relay(
            self.decider.store,
            self.producer if sender is None else sender,
            self.events_topic,
            batch_max=100,
            ensure_topics=topic_creator(self.settings),
            reserved_topics=self.settings.topics.all(),
        )

    def event_count(self) -> int:
        return int(self.decider.store.recorder.max_notification_id() or 0)

    async def read_init(self, expected: int, timeout_s: float = 15.0) -> list[Record]:
        return await self._read(self.init_topic, INIT_PARTITIONS, expected, timeout_s)

    async def read_events(self, expected: int, timeout_s: float = 15.0) -> list[Record]:
        return await self._read(self.events_topic, EVENT_PARTITIONS, expected, timeout_s)

    async def _read(
        self, topic: str, partitions: int, expected: int, timeout_s: float
    ) -> list[Record]:
        return await read_partitions(
            self.bootstrap, topic, range(partitions), expected=expected, timeout_s=timeout_s
        )


@pytest.fixture
def bench(
    decider: Decider,
    producer: AIOKafkaProducer,
    events_topic: str,
    init_topic: str,
    kafka_bootstrap: str,
) -> Bench:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, partitions=INIT_PARTITIONS)
    return Bench(decider, producer, events_topic, init_topic, settings)


class Sender:
    """The real producer; sends matching `fail` (topic, key) fail without reaching the
    broker, each failing `times` times before it goes through."""

    def __init__(
        self, producer: AIOKafkaProducer, fail: Callable[[str, bytes], bool], times: int = 1
    ) -> None:
        self.producer = producer
        self.fail = fail
        self.times = times
        self.failed = 0

    async def send(self, topic: str, **kwargs: Any) -> Awaitable[Any]:
        if self.failed < self.times and self.fail(topic, kwargs["key"]):
            self.failed += 1
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_exception(KafkaTimeoutError("simulated: no acknowledgement"))
            return future
        return cast(Awaitable[Any], await self.producer.send(topic, **kwargs))


def run_configs(decider: Decider, init_topic: str) -> tuple[list[UUID], UUID]:
    """Two executions that publish an init message, one that skips it, and a pipeline
    run: (the two, the skipped one)."""
    document = config_document()
    document["routes"]["fetch"]["inbound"]["topic"] = init_topic
    config = CreateConfig(name="crawler", document=document)
    accepted(decide_one(decider, config))
    runs = [
        RunConfig(config_id=config.config_id, init_payload_overrides={"opts": {"m": 2}}),
        RunConfig(config_id=config.config_id, tag="second"),
    ]
    skipped = RunConfig(config_id=config.config_id, skip_init_message=True)
    for command in (*runs, skipped):
        accepted(decide_one(decider, command))
    accepted(decide_one(decider, CreatePipeline(name="p", config_id=config.config_id)))
    accepted(decide_one(decider, CreateRun(pipeline_id="p")))
    return [r.execution_id for r in runs], skipped.execution_id


async def drain(relay: Relay) -> None:
    while (await relay.publish_batch()).read:
        pass


async def partitions_of(bootstrap: str, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return None
        (described,) = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


async def test_each_execution_gets_one_init_message_with_its_merged_payload(
    bench: Bench,
) -> None:
    published, skipped = run_configs(bench.decider, bench.init_topic)
    assert await partitions_of(bench.bootstrap, bench.init_topic) is None
    relay = bench.relay()
    await drain(relay)

    assert relay.position == bench.event_count()
    assert await partitions_of(bench.bootstrap, bench.init_topic) == INIT_PARTITIONS
    records = await bench.read_init(expected=2)
    messages = {
        m.execution_id: m for m in (decode_route_message(r.value, r.headers) for r in records)
    }
    assert set(messages) == set(published)  # none for the skipped run or the pipeline run
    assert skipped not in messages
    first, second = (messages[e] for e in published)
    assert first.payload == {"url": "https://a", "opts": {"n": 1, "m": 2}}
    assert second.payload == {"url": "https://a", "opts": {"n": 1}}
    for execution_id, message in messages.items():
        assert (message.id, message.route, message.stage, message.correlation_id) == (
            init_message_id(execution_id),
            "init",
            0,
            str(execution_id),
        )
    for record in records:
        assert (
            record.key
            == str(decode_route_message(record.value, record.headers).execution_id).encode()
        )
    events = await bench.read_events(expected=bench.event_count())
    assert len(events) == bench.event_count()
    # Nothing more on the init topic: a second read past the two finds nothing new.
    with pytest.raises(TimeoutError):
        await bench.read_init(expected=3, timeout_s=2.0)


async def test_after_a_restart_a_re_sent_init_message_is_the_same_message(
    bench: Bench,
) -> None:
    published, _ = run_configs(bench.decider, bench.init_topic)
    await drain(bench.relay())
    # The relay lost its position (say, the acknowledgements never arrived before a crash).
    bench.decider.recorder.set_position("relay", 0)
    again = bench.relay()
    assert again.position == 0
    await drain(again)

    records = await bench.read_init(expected=4)
    by_execution: dict[UUID, list[Record]] = {}
    for record in records:
        message = decode_route_message(record.value, record.headers)
        by_execution.setdefault(message.execution_id, []).append(record)
    assert set(by_execution) == set(published)
    for copies in by_execution.values():
        first, second = copies
        assert (first.key, first.value, first.headers) == (second.key, second.value, second.headers)


@pytest.mark.parametrize("failing", ["init message", "event"])
async def test_the_position_waits_for_both_the_event_and_its_init_message(
    bench: Bench, failing: str
) -> None:
    decider = bench.decider
    published, _ = run_configs(decider, bench.init_topic)
    key = str(published[0]).encode()
    target = bench.init_topic if failing == "init message" else bench.events_topic
    notification = first_notification_of(decider, published[0])
    sender = Sender(bench.producer, lambda topic, k: topic == target and k == key)
    relay = bench.relay(sender)

    outcome = await relay.publish_batch()
    assert outcome.failed and sender.failed == 1
    assert relay.position == notification - 1
    assert decider.recorder.get_position("relay") == notification - 1

    await drain(relay)  # the broker answers again: the tail is sent once more
    assert relay.position == bench.event_count()
    records = await bench.read_init(expected=3 if failing == "event" else 2)
    ids = [decode_route_message(r.value, r.headers).id for r in records]
    assert set(ids) == {init_message_id(e) for e in published}
    events = await bench.read_events(expected=bench.event_count())
    assert {(e.aggregate_id, e.version) for e in map(event_of, events)} >= {(str(published[0]), 1)}


async def test_a_topic_that_cannot_be_made_stops_the_relay_before_it_sends(
    bench: Bench,
) -> None:
    run_configs(bench.decider, bench.init_topic)
    attempts: list[list[str]] = []

    async def refuse(names: Any) -> None:
        attempts.append(list(names))
        raise PermissionError("simulated: not allowed to create topics")

    sent: list[str] = []
    producer = bench.producer

    class Recording:
        async def send(self, topic: str, *args: Any, **kwargs: Any) -> Awaitable[Any]:
            sent.append(topic)
            return cast(Awaitable[Any], await producer.send(topic, *args, **kwargs))

    relay = Relay(bench.decider.store, Recording(), bench.events_topic, ensure_topics=refuse)
    outcome = await relay.publish_batch()
    assert (outcome.failed, relay.position, sent) == (True, 0, [])
    assert attempts == [[bench.init_topic]]


async def test_an_init_topic_that_is_one_of_ours_is_never_written(bench: Bench) -> None:
    run_configs(bench.decider, bench.events_topic)  # a route that reads our events topic
    relay = bench.relay()
    await drain(relay)
    assert relay.position == bench.event_count()
    records = await bench.read_events(expected=bench.event_count())
    assert all(event_of(r) is not None for r in records)  # events only, no route message
    with pytest.raises(TimeoutError):
        await bench.read_events(expected=bench.event_count() + 1, timeout_s=2.0)


def event_of(record: Record) -> Any:
    return decode_event(record.value, record.headers).event


def first_notification_of(decider: Decider, aggregate_id: UUID) -> int:
    notifications = decider.store.recorder.select_notifications(start=1, limit=1000)
    return next(n.id for n in notifications if n.originator_id == aggregate_id)
