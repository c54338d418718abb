"""The streams' follower on the real broker and SQLite, without HTTP: a watcher the shared
reader cuts off (a backlog of 2 here) catches up from the event store and goes on live,
every version once and in order; a version that never arrives live is read from the
store; the all-pipelines follower catches up from the notification log after a cut; a
hub that closes ends its streams. The events are stored as the handler stores them and
published as the relay publishes them, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from uuid6 import uuid7

from contracts.cloudevents import encode_event
from contracts.events import LifecycleEvent
from domain.errors import DomainError
from domain.execution import Execution
from domain.pipeline import Pipeline
from projections import executions as execution_rows
from projections import pipelines as pipeline_rows
from services.adapters.eventstore import EventStore, open_event_store
from services.adapters.kafka.clients import ensure_topics, make_producer
from services.entrypoints.http.event_follow import (
    Follower,
    PipelinesFollower,
    Step,
    StoredEvents,
)
from services.entrypoints.http.stream_hub import StopReason, StreamHub
from services.runtimes.projector import fetch_events_from
from services.settings import Settings
from tests.entrypoints.http.support import api_settings
from tests.waiting import eventually

pytestmark = pytest.mark.broker

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def allowed() -> bool:
    return True


@dataclass
class Setup:
    settings: Settings
    store: EventStore

    def stored(self, aggregate_id: UUID) -> list[LifecycleEvent]:
        return list(fetch_events_from(self.store)(str(aggregate_id), 0))

    async def publish(self, events: list[LifecycleEvent]) -> None:
        producer = make_producer(self.settings)
        await producer.start()
        try:
            for event in events:
                record = encode_event(event)
                await producer.send_and_wait(
                    self.settings.topics.events, record.value, key=record.key,
                    headers=record.headers,
                )  # fmt: skip
        finally:
            await producer.stop()


@pytest.fixture
async def setup(kafka_bootstrap: str, store_url: str) -> AsyncIterator[Setup]:
    """On SQLite and on PostgreSQL (conftest's `store_url`)."""
    settings = api_settings(kafka_bootstrap, store_url)
    await ensure_topics(settings)
    store = await asyncio.to_thread(open_event_store, settings.event_store_url)
    try:
        yield Setup(settings, store)
    finally:
        await asyncio.to_thread(store.close)


@contextlib.asynccontextmanager
async def hub_of(settings: Settings, max_backlog: int) -> AsyncIterator[StreamHub]:
    hub = StreamHub(settings, max_backlog=max_backlog)
    try:
        yield hub
    finally:
        await hub.close()


def new_execution(store: EventStore) -> Execution:
    execution = Execution.for_config(
        execution_id=uuid7(), config_id=uuid4(), config_version=1, at=NOW,
        route_ids=["a"], config_init_payload={},
    )  # fmt: skip
    store.save(execution)
    return execution


def progress(store: EventStore, execution: Execution, reports: range) -> None:
    for n in reports:
        execution.report_stage("a", n, n, 0, at=NOW)
        store.save(execution)


async def take(steps: AsyncIterator[Step], count: int) -> list[int]:
    async def first() -> list[int]:
        return [step.event.version async for step in _limited(steps, count)]

    return await asyncio.wait_for(first(), 60)


async def _limited(steps: AsyncIterator[Step], count: int) -> AsyncIterator[Step]:
    taken = 0
    async for step in steps:
        yield step
        taken += 1
        if taken == count:
            return


async def test_a_follower_cut_off_catches_up_from_the_store_and_goes_on_live(
    setup: Setup,
) -> None:
    execution = new_execution(setup.store)
    async with hub_of(setup.settings, max_backlog=2) as hub, hub.open(60, allowed) as stream:
        stored = StoredEvents(setup.store)
        async with Follower(hub, stream, stored, execution.id, execution_rows.apply) as follower:
            assert [s.event.version for s in await follower.history()] == [1]
            progress(setup.store, execution, range(1, 7))
            await setup.publish(setup.stored(execution.id)[1:])
            cut = stream.watcher
            assert cut is not None
            await eventually(lambda: cut.overflowed, "the watcher to be cut off")

            live = follower.live()
            caught_up = await take(live, execution.version - 1)
            assert caught_up == list(range(2, execution.version + 1))
            assert stream.watcher is not cut  # registered again

            before = execution.version
            progress(setup.store, execution, range(7, 8))
            await setup.publish(setup.stored(execution.id)[before:])
            assert await take(live, 1) == [before + 1]
    final = follower.fold.row
    assert final is not None and final["stages"][0]["messages_in"] == 7


async def test_a_version_missing_live_is_read_from_the_store(setup: Setup) -> None:
    execution = new_execution(setup.store)
    async with hub_of(setup.settings, max_backlog=100) as hub, hub.open(60, allowed) as stream:
        stored = StoredEvents(setup.store)
        async with Follower(hub, stream, stored, execution.id, execution_rows.apply) as follower:
            await follower.history()
            progress(setup.store, execution, range(1, 4))
            later = setup.stored(execution.id)[1:]
            # The first live one never comes (as if it did not decode): the next one heals.
            await setup.publish(later[1:])
            assert await take(follower.live(), len(later)) == [e.version for e in later]


async def test_the_all_pipelines_follower_catches_up_from_the_notification_log(
    setup: Setup,
) -> None:
    async with hub_of(setup.settings, max_backlog=1) as hub, hub.open(60, allowed) as stream:
        stored = StoredEvents(setup.store)
        async with PipelinesFollower(hub, stream, stored, pipeline_rows.apply) as follower:
            await follower.start()
            pipelines = [Pipeline(name=f"p{n}", config_id=None, at=NOW) for n in range(3)]
            setup.store.save(*pipelines)
            await setup.publish([setup.stored(p.id)[0] for p in pipelines])
            cut = stream.watcher
            assert cut is not None
            await eventually(lambda: cut.overflowed, "the watcher to be cut off")

            steps = follower.live()
            seen: list[tuple[str, int]] = []
            async for step in _limited(steps, 3):
                seen.append((step.event.aggregate_id, step.event.version))
    assert sorted(seen) == sorted((str(p.id), 1) for p in pipelines)


async def test_closing_the_hub_ends_its_streams(setup: Setup) -> None:
    execution = new_execution(setup.store)
    hub = StreamHub(setup.settings)
    async with hub.open(60, allowed) as stream:
        stored = StoredEvents(setup.store)
        async with Follower(hub, stream, stored, execution.id, execution_rows.apply) as follower:
            await follower.history()
            live = asyncio.create_task(take(follower.live(), 1))
            await eventually(lambda: hub.streams == 1, "the stream to be open")
            await hub.close()
            assert await asyncio.wait_for(live, 30) == []
    assert stream.reason is StopReason.SHUTDOWN
    with pytest.raises(DomainError) as refused:
        async with hub.open(60, allowed):
            pass
    assert (refused.value.error_code, refused.value.http_status) == ("ShuttingDown", 503)
