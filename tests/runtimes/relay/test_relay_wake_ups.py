"""What wakes a drained relay. Its poll interval (and on PostgreSQL its safety poll) is set
to hours here, so an event that reaches the topic within the test's normal wait can only
have been published because something woke the relay: a save in this process (the commit
signal, services.adapters.commit_signals), or on PostgreSQL a NOTIFY from a writer that
sends no commit signal (as one in another process does not)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from services.adapters.command_records import recorder_env
from services.adapters.eventstore import EventStore, open_event_store
from services.runtimes import relay as relay_module
from services.runtimes.relay import Relay
from tests.adapters.persistence.aggregates import Counter
from tests.runtimes.relay.test_relay import read_all, versions_by_aggregate

HOURS = 3 * 3600.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def open_store(url: str) -> EventStore:
    return open_event_store(url, extra_env=recorder_env(url))


@pytest.fixture
def relay_store(store_url: str) -> Iterator[EventStore]:
    with open_store(store_url) as store:
        yield store


@pytest.fixture
def writer(store_url: str) -> Iterator[EventStore]:
    """A second store on the same database, as the handler opens its own in `pipelines dev`."""
    with open_store(store_url) as store:
        yield store


@pytest.fixture
async def drained_relay(
    relay_store: EventStore,
    writer: EventStore,
    producer: AIOKafkaProducer,
    events_topic: str,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Relay]:
    """A running relay that has published a first counter (2 events) and drained the log:
    it waits now, and neither its poll nor its safety poll comes within the test."""
    monkeypatch.setattr(relay_module, "_SAFETY_POLL_S", HOURS)
    relay = Relay(relay_store, producer, events_topic, poll_interval_s=HOURS)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        first = Counter(name="first")
        first.add(1, at=T0)
        # Saved once the relay has started, so its first round may or may not see it; a
        # round under way when the signal comes is followed by another at once.
        await asyncio.to_thread(writer.save, first)
        await read_all(kafka_bootstrap, events_topic, expected=2)
        yield relay
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_save_in_this_process_wakes_a_relay_that_would_poll_in_hours(
    drained_relay: Relay, writer: EventStore, events_topic: str, kafka_bootstrap: str
) -> None:
    second = Counter(name="second")
    second.add(2, at=T0)
    await asyncio.to_thread(writer.save, second)

    records = await read_all(kafka_bootstrap, events_topic, expected=4)
    assert versions_by_aggregate(records)[str(second.id)] == [1, 2]


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_on_postgres_a_notify_alone_wakes_the_relay(
    drained_relay: Relay, writer: EventStore, events_topic: str, kafka_bootstrap: str
) -> None:
    # Straight to the recorder, as another process's save reaches the database: the
    # recorder's NOTIFY, committed with the events, is all the relay can hear.
    second = Counter(name="second")
    second.add(2, at=T0)
    stored = [writer.mapper.to_stored_event(event) for event in second.collect_events()]
    await asyncio.to_thread(writer.recorder.insert_events, stored)

    records = await read_all(kafka_bootstrap, events_topic, expected=4)
    assert versions_by_aggregate(records)[str(second.id)] == [1, 2]
