"""A long-lived pipeline loads from its latest snapshot plus fewer than 10 events, and
what it loads is what replaying its whole history gives."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from domain.pipeline import Pipeline
from services.adapters.eventstore import EventStore, open_event_store, replay
from services.adapters.stores import (
    PIPELINE_SNAPSHOT_INTERVAL,
    open_command_store,
    snapshotting_intervals,
)

EVENTS = 1_009


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    opened = open_command_store(store_url, cache_maxsize=100)
    yield opened
    opened.close()


def long_lived(store: EventStore, events: int, batch: int) -> Pipeline:
    pipeline = Pipeline(name="p", config_id=None, at=datetime.now(UTC))
    while pipeline.version < events:
        for _ in range(min(batch, events - pipeline.version)):
            if pipeline.resources_desired_status.value == "Stopped":
                pipeline.start(at=datetime.now(UTC))
            else:
                pipeline.stop(force=True, at=datetime.now(UTC))
        store.save(pipeline)
    return pipeline


def counting(seen: list[int]) -> Any:
    def project(aggregate: Any, events: Iterable[Any]) -> Any:
        def counted() -> Iterator[Any]:
            for event in events:
                seen.append(event.originator_version)
                yield event

        return replay(aggregate, counted())

    return project


def test_the_command_store_snapshots_pipelines_every_10_events(store: EventStore) -> None:
    assert store.snapshotting_intervals[Pipeline] == PIPELINE_SNAPSHOT_INTERVAL == 10


@pytest.mark.parametrize("batch", [1, 7, 50])
def test_a_long_history_loads_from_its_snapshot_with_few_events_replayed(
    store: EventStore, store_url: str, batch: int
) -> None:
    pipeline = long_lived(store, EVENTS, batch)
    assert store.snapshots is not None
    latest = store.snapshots.recorder.select_events(pipeline.id, desc=True, limit=1)
    # The newest snapshot is at most interval - 1 events old, whatever the saves' sizes.
    snapshot_version = latest[0].originator_version
    assert EVENTS - PIPELINE_SNAPSHOT_INTERVAL < snapshot_version <= EVENTS

    # The handler's store would answer from its cache: a second store has none.
    reader = open_event_store(store_url, snapshotting_intervals=snapshotting_intervals())
    seen: list[int] = []
    loaded = reader.repository.get(pipeline.id, projector_func=counting(seen))
    assert_same_state(reader.repository.get(pipeline.id), loaded)
    reader.close()
    # The snapshot, then the events after it.
    assert seen == list(range(snapshot_version, EVENTS + 1))
    assert len(seen) <= PIPELINE_SNAPSHOT_INTERVAL
    assert loaded.version == EVENTS
    assert_same_state(loaded, replayed_from_scratch(store, pipeline.id))


def test_a_snapshot_holds_the_same_state_whatever_the_history_length(store: EventStore) -> None:
    # A Pipeline's state must not grow with its history (else loads slow down with age).
    assert store.snapshots is not None
    short = long_lived(store, 20, 50)
    long = long_lived(store, 2_000, 50)
    sizes = [
        len(store.snapshots.recorder.select_events(p.id, desc=True, limit=1)[0].state)
        for p in (short, long)
    ]
    assert abs(sizes[0] - sizes[1]) <= 8  # the version digits


def replayed_from_scratch(store: EventStore, aggregate_id: UUID) -> Pipeline:
    aggregate: Any = None
    for event in store.events.get(aggregate_id):
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
    assert isinstance(aggregate, Pipeline)
    return aggregate


def assert_same_state(loaded: Pipeline, expected: Pipeline) -> None:
    assert {k: v for k, v in vars(loaded).items() if k != "_pending_events"} == {
        k: v for k, v in vars(expected).items() if k != "_pending_events"
    }


def test_snapshots_stay_out_of_the_notification_log(store: EventStore) -> None:
    # The relay publishes the notification log: snapshots are state, not events.
    pipeline = long_lived(store, 95, 7)
    assert store.snapshots is not None
    assert store.snapshots.recorder.select_events(pipeline.id)
    notifications = store.recorder.select_notifications(start=None, limit=1_000)
    assert len(notifications) == 95
    assert not [n for n in notifications if "Snapshot" in n.topic]
