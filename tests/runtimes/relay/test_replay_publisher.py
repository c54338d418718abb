"""The relay's replay publisher on SQLite and PostgreSQL with the real broker: a replay's
messages are all expected in the ledger before the first is published, go out in batches
with derived ids, and a crash part-way re-sends at most the batch that was under way; a
replay whose child has finished stops; the publisher finds replays in the notification
log by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaProducer

from contracts.route_messages import decode_route_message
from contracts.statuses import ReplaySource
from domain.execution import Execution
from services.adapters.command_records import recorder_env
from services.adapters.eventstore import EventStore, open_event_store
from services.adapters.kafka.embedded_broker import create_topics
from services.adapters.message_store import FileMessageStore
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.replay_publisher import ReplayProgress, ReplayPublisher
from services.service_layer import replay_plan as plan
from tests.infra.kafka import read_partitions
from tests.runtimes.relay.test_relay import CountingSender
from tests.waiting import eventually

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PARTITIONS = 2
PAYLOADS = [{"n": i} for i in range(5)]


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_event_store(store_url, extra_env=recorder_env(store_url)) as app:
        yield app


@pytest.fixture
async def replay_topic(kafka_bootstrap: str, topic_name: Any) -> str:
    topic: str = topic_name("replayed")
    await create_topics(kafka_bootstrap, [topic], PARTITIONS)
    return topic


def _child(store: EventStore, topic: str) -> tuple[Execution, dict[str, Any]]:
    manifest = plan.manifest(to_route="r", to_topic=topic, source=None, payloads=PAYLOADS)
    child = Execution.for_config(
        execution_id=uuid4(),
        config_id=uuid4(),
        config_version=1,
        at=T0,
        route_ids=["r"],
        config_init_payload={},
        parent_execution_id=uuid4(),
        replay_source=ReplaySource.MANUAL,
        replay=manifest,
        skip_init_message=True,
    )
    store.save(child)
    return child, manifest


def _publisher(store: EventStore, sender: Any, store_url: str, tmp_path: Path) -> ReplayPublisher:
    return ReplayPublisher(
        store,
        sender,
        FileMessageStore(tmp_path / "messages"),
        Ledger(store_url),
        ReplayProgress(store_url),
        batch_max=2,
    )


async def _ids(bootstrap: str, topic: str, expected: int) -> list[UUID]:
    records = await read_partitions(bootstrap, topic, range(PARTITIONS), expected=expected)
    return [decode_route_message(r.value, r.headers).id for r in records]


def _expected(child_id: UUID) -> set[UUID]:
    return {plan.replay_message_id(child_id, f"manual/{i}") for i in range(len(PAYLOADS))}


async def test_a_crash_part_way_resends_at_most_the_batch_under_way(
    store: EventStore,
    producer: AIOKafkaProducer,
    replay_topic: str,
    kafka_bootstrap: str,
    store_url: str,
    tmp_path: Path,
) -> None:
    child, manifest = _child(store, replay_topic)
    failing = CountingSender(producer, fail={4})  # the second batch's second message
    first = _publisher(store, failing, store_url, tmp_path)
    with pytest.raises(Exception, match="simulated"):
        await first.publish(child.id, manifest, T0)
    with Ledger(store_url) as ledger:
        # Every message was expected before the first went out: the child cannot drain early.
        assert ledger.counts(child.id)["r"][0] == len(PAYLOADS)
    with ReplayProgress(store_url) as progress:
        assert progress.get(child.id) == (True, 2, False)

    again = _publisher(store, producer, store_url, tmp_path)
    await again.publish(child.id, manifest, T0)
    with ReplayProgress(store_url) as progress:
        assert progress.get(child.id) == (True, len(PAYLOADS), True)
    # 2 of the first batch, 1 of the failed one (its send that reached the broker), then
    # the 3 after the saved position: the re-sent one has the same id.
    ids = await _ids(kafka_bootstrap, replay_topic, expected=6)
    assert len(ids) == 6
    assert set(ids) == _expected(child.id)
    # A finished replay is not published again.
    counting = CountingSender(producer)
    await _publisher(store, counting, store_url, tmp_path).publish(child.id, manifest, T0)
    assert counting.sends == 0


async def test_a_finished_child_stops_its_replay(
    store: EventStore,
    producer: AIOKafkaProducer,
    replay_topic: str,
    store_url: str,
    tmp_path: Path,
) -> None:
    child, manifest = _child(store, replay_topic)
    child.cancel(now=T0)
    store.save(child)
    publisher = _publisher(store, producer, store_url, tmp_path)
    await publisher.publish(child.id, manifest, T0)
    with ReplayProgress(store_url) as progress:
        assert progress.get(child.id) == (True, 0, True)


async def test_the_publisher_finds_replays_in_the_log(
    store: EventStore,
    producer: AIOKafkaProducer,
    replay_topic: str,
    kafka_bootstrap: str,
    store_url: str,
    tmp_path: Path,
) -> None:
    child, _ = _child(store, replay_topic)
    publisher = _publisher(store, producer, store_url, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        publisher.wake()
        progress = ReplayProgress(store_url)
        try:
            await eventually(lambda: progress.get(child.id)[2], "the replay published")
        finally:
            progress.close()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert set(await _ids(kafka_bootstrap, replay_topic, expected=5)) == _expected(child.id)
    assert publisher.position == store.recorder.max_notification_id()
