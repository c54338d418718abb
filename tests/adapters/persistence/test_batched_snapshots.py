"""Snapshots are taken from the aggregates a save holds, all in one go: every aggregate
whose history crossed a multiple of its interval in that save gets one snapshot, at its
version after the save, and loading from it gives what replaying every event gives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from domain.pipeline import Pipeline
from services.adapters.eventstore import EventStore, open_event_store

INTERVAL = 5


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    opened = open_event_store(store_url, snapshotting_intervals={Pipeline: INTERVAL})
    yield opened
    opened.close()


def toggle(pipeline: Pipeline, times: int) -> None:
    for _ in range(times):
        if pipeline.resources_desired_status.value == "Stopped":
            pipeline.start(at=datetime.now(UTC))
        else:
            pipeline.stop(force=True, at=datetime.now(UTC))


def snapshot_versions(store: EventStore, aggregate_id: UUID) -> list[int]:
    assert store.snapshots is not None
    return [s.originator_version for s in store.snapshots.recorder.select_events(aggregate_id)]


def test_one_save_snapshots_every_aggregate_that_crossed_its_interval(
    store: EventStore, store_url: str
) -> None:
    crossing = Pipeline(name="crossing", config_id=None, at=datetime.now(UTC))
    short = Pipeline(name="short", config_id=None, at=datetime.now(UTC))
    toggle(crossing, 6)  # versions 1..7: crosses 5
    toggle(short, 2)  # versions 1..3
    store.save(crossing, short)
    assert snapshot_versions(store, crossing.id) == [7]
    assert snapshot_versions(store, short.id) == []

    toggle(crossing, 2)  # 8..9: no multiple of 5 crossed
    toggle(short, 2)  # 4..5: reaches 5 exactly
    store.save(crossing, short)
    assert snapshot_versions(store, crossing.id) == [7]
    assert snapshot_versions(store, short.id) == [5]

    toggle(crossing, 12)  # 10..21: crosses 10, 15 and 20, one snapshot
    store.save(crossing)
    assert snapshot_versions(store, crossing.id) == [7, 21]

    # A second store has no cache: it loads from the snapshot, as a replay would.
    reader = open_event_store(store_url, snapshotting_intervals={Pipeline: INTERVAL})
    try:
        for pipeline in (crossing, short):
            loaded = reader.repository.get(pipeline.id)
            assert state(loaded) == state(replayed(store, pipeline.id)) == state(pipeline)
    finally:
        reader.close()


def replayed(store: EventStore, aggregate_id: UUID) -> Any:
    aggregate: Any = None
    for event in store.events.get(aggregate_id):
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
    return aggregate


def state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}
