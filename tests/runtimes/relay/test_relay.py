"""The outbox relay on SQLite and PostgreSQL with the real broker: every stored event
reaches the events topic in per-aggregate order with its CloudEvents headers; a restart
resumes from the acknowledged position; the position never passes an unacknowledged
event."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import orjson
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import KafkaTimeoutError
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from contracts.cloudevents import decode_event
from services.adapters.command_records import recorder_env
from services.adapters.eventstore import EventStore, open_event_store
from services.runtimes.relay import Relay, to_lifecycle_event
from tests.adapters.persistence.aggregates import Counter
from tests.infra.kafka import read_partitions
from tests.runtimes.relay.support import EVENT_PARTITIONS

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def open_store(url: str) -> EventStore:
    return open_event_store(url, extra_env=recorder_env(url))


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_store(store_url) as app:
        yield app


class CountingSender:
    """The real producer, counting sends (1-based ordinals over this sender's life). Sends
    whose ordinal is in `fail` fail without reaching the broker; sends after `stall_after`
    reach the broker but their acknowledgement never arrives (`stalled` is set when the
    `stall_until`-th send has gone out)."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        fail: set[int] | None = None,
        stall_after: int | None = None,
        stall_until: int | None = None,
    ) -> None:
        self.producer = producer
        self.fail = fail or set()
        self.stall_after = stall_after
        self.stall_until = stall_until
        self.stalled = asyncio.Event()
        self.sends = 0
        self.delivered = 0
        self.acked = 0

    async def send(self, topic: str, **kwargs: Any) -> Awaitable[Any]:
        self.sends += 1
        ordinal = self.sends
        if ordinal in self.fail:
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(KafkaTimeoutError("simulated: no acknowledgement"))
            return failed
        ack = await self.producer.send(topic, **kwargs)
        self.delivered += 1
        if self.stall_after is not None and ordinal > self.stall_after:
            if ordinal == self.stall_until:
                self.stalled.set()
            return asyncio.get_running_loop().create_future()  # never resolved

        async def counted() -> Any:
            result = await ack
            self.acked += 1
            return result

        return asyncio.ensure_future(counted())


def save_counters(store: EventStore, counters: int, adds: int) -> list[Counter]:
    """`counters` aggregates with `adds` additions each, saved in rounds so that the
    aggregates interleave in the notification log."""
    saved = [Counter(name=f"c{i}") for i in range(counters)]
    store.save(*saved)
    for n in range(adds):
        for counter in saved:
            counter.add(n + 1, at=T0 + timedelta(seconds=n))
        store.save(*saved)
    return saved


async def drain(relay: Relay) -> None:
    while (await relay.publish_batch()).read:
        pass


async def read_all(bootstrap: str, topic: str, expected: int) -> list[ConsumerRecord[bytes, bytes]]:
    return await read_partitions(bootstrap, topic, range(EVENT_PARTITIONS), expected=expected)


def versions_by_aggregate(records: list[ConsumerRecord[bytes, bytes]]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = decode_event(record.value, record.headers).event
        found.setdefault(event.aggregate_id, []).append(event.version)
    return found


async def test_every_event_is_published_in_aggregate_order_with_headers(
    store: EventStore, producer: AIOKafkaProducer, events_topic: str, kafka_bootstrap: str
) -> None:
    counters = save_counters(store, counters=4, adds=5)
    relay = Relay(store, producer, events_topic, batch_max=7)
    await drain(relay)

    assert relay.position == store.recorder.max_notification_id()
    records = await read_all(kafka_bootstrap, events_topic, expected=4 * 6)
    assert len(records) == 4 * 6
    assert versions_by_aggregate(records) == {str(c.id): [1, 2, 3, 4, 5, 6] for c in counters}

    by_key = {str(c.id): c for c in counters}
    for record in records:
        decoded = decode_event(record.value, record.headers)
        event, attributes = decoded.event, decoded.attributes
        assert record.key == event.aggregate_id.encode()
        assert attributes.subject == event.aggregate_id
        assert attributes.sequence == str(event.version)
        assert attributes.id == f"{event.aggregate_id}:{event.version}"
        assert attributes.type == event.event_type
        assert event.aggregate_type == "Counter"
        assert not {"originator_id", "originator_topic", "timestamp"} & event.data.keys()
        if event.version == 1:
            assert event.event_type == "Created"
            assert event.data == {"name": by_key[event.aggregate_id].name}
        else:
            assert event.event_type == "Added"
            assert event.data["amount"] == event.version - 1
            assert datetime.fromisoformat(event.data["at"]) == T0 + timedelta(
                seconds=event.version - 2
            )
    # A second pass finds nothing new and sends nothing.
    assert (await relay.publish_batch()).read == 0


async def test_a_restart_resumes_without_gaps_and_repeats_only_the_unacknowledged_tail(
    store_url: str, producer: AIOKafkaProducer, events_topic: str, kafka_bootstrap: str
) -> None:
    with open_store(store_url) as store:
        save_counters(store, counters=5, adds=19)  # 100 events
        # The broker takes notifications 41 to 50 but its acknowledgements of 46 to 50 are
        # lost; then the relay is killed.
        sender = CountingSender(producer, stall_after=45, stall_until=50)
        relay = Relay(store, sender, events_topic, batch_max=10, poll_interval_s=0.01)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await asyncio.wait_for(sender.stalled.wait(), 15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert relay.position == 40
        assert store.recorder.get_position("relay") == 40
        await producer.flush()
        delivered_before = sender.delivered

    with open_store(store_url) as store:
        again = Relay(store, producer, events_topic, batch_max=10)
        assert again.position == 40
        await drain(again)
        assert again.position == 100

    assert delivered_before == 50
    total = delivered_before + 60
    records = await read_all(kafka_bootstrap, events_topic, expected=total)
    assert len(records) == total
    events = [decode_event(r.value, r.headers).event for r in records]
    copies = Tally((e.aggregate_id, e.version) for e in events)
    assert len(copies) == 100  # every event present
    repeated = [key for key, count in copies.items() if count > 1]
    assert all(count <= 2 for count in copies.values())
    # Exactly the unacknowledged tail (notifications 41 to 50) was sent twice.
    notification_of = {
        (str(n.originator_id), n.originator_version): n.id for n in store_notifications(store_url)
    }
    assert sorted(notification_of[key] for key in repeated) == list(range(41, 51))


def store_notifications(url: str) -> list[Notification]:
    with open_store(url) as store:
        return list(store.recorder.select_notifications(start=1, limit=10_000))


async def test_the_position_never_passes_an_unacknowledged_event(
    store: EventStore, producer: AIOKafkaProducer, events_topic: str, kafka_bootstrap: str
) -> None:
    save_counters(store, counters=2, adds=9)  # 20 events
    sender = CountingSender(producer, fail={8})
    relay = Relay(store, sender, events_topic, batch_max=20)

    outcome = await relay.publish_batch()
    assert outcome.failed
    assert relay.position == 7
    assert store.recorder.get_position("relay") == 7
    assert sender.acked == 19  # the others were acknowledged, yet the position waits

    # A later pass (the broker answers again) resends from the gap onwards.
    outcome = await relay.publish_batch()
    assert not outcome.failed
    assert relay.position == 20
    records = await read_all(kafka_bootstrap, events_topic, expected=19 + 13)
    copies = Tally(
        (e.aggregate_id, e.version)
        for e in (decode_event(r.value, r.headers).event for r in records)
    )
    assert len(copies) == 20
    assert sum(copies.values()) == 32


async def test_a_running_relay_publishes_events_saved_after_it_started(
    store: EventStore, producer: AIOKafkaProducer, events_topic: str, kafka_bootstrap: str
) -> None:
    beats: list[float] = []
    relay = Relay(
        store,
        producer,
        events_topic,
        poll_interval_s=0.02,
        heartbeat=lambda: beats.append(asyncio.get_running_loop().time()),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.3)
        counter = Counter(name="late")
        counter.add(1, at=T0)
        # What wakes it (a commit signal, NOTIFY) is tested in test_relay_wake_ups.py.
        await asyncio.to_thread(store.save, counter)
        records = await read_all(kafka_bootstrap, events_topic, expected=2)
        assert versions_by_aggregate(records) == {str(counter.id): [1, 2]}
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert beats


def test_a_snapshot_is_not_published_and_event_names_come_from_the_topic() -> None:
    created = Notification(
        id=1,
        originator_id=uuid4(),
        originator_version=1,
        topic=get_topic(Counter.Created),
        state=orjson.dumps(
            {"name": "c", "timestamp": "2026-01-01T00:00:00+00:00", "class_version": 2}
        ),
    )
    event = to_lifecycle_event(created)
    assert event is not None
    assert (event.event_type, event.aggregate_type) == ("Created", "Counter")
    assert event.data == {"name": "c"}
    assert event.time == T0
    snapshot = Notification(
        id=2,
        originator_id=created.originator_id,
        originator_version=1,
        topic=get_topic(Counter.Snapshot),
        state=b"{}",
    )
    assert to_lifecycle_event(snapshot) is None
