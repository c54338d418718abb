"""A Pipeline in the real event store (SQLite and PostgreSQL): a pipeline with 10,000
events reloads from a snapshot, not from 10,000 events, and keeps working."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic

from contracts.statuses import ResourcesStatus, RuntimeStatus
from domain.name_index import NameIndex, name_index_id
from domain.pipeline import Pipeline
from services.adapters.eventstore import ConcurrencyConflict, EventStore, open_event_store
from tests.adapters.persistence.reads import count_reads
from tests.domain.pipeline_builders import now, provisioned

SNAPSHOT_EVERY = 1_000


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_event_store(store_url, snapshotting_intervals={Pipeline: SNAPSHOT_EVERY}) as app:
        yield app


def test_a_pipeline_with_10000_events_reloads_from_a_snapshot(store: EventStore) -> None:
    pipeline, deployment = provisioned()
    # Pause and resume until the history passes 10,000 events.
    while pipeline.version < 10_000:
        pipeline.pause(at=now())
        pipeline.runtime_status_reported(deployment, RuntimeStatus.PAUSED, at=now())
        pipeline.resume(at=now())
        pipeline.runtime_status_reported(deployment, RuntimeStatus.RUNNING, at=now())
    store.save(pipeline)
    assert store.snapshots is not None
    # One snapshot per save that crossed the interval, as the pipeline is after it.
    assert [s.originator_version for s in store.snapshots.get(pipeline.id)] == [pipeline.version]

    reads = count_reads(store)
    loaded: Pipeline = store.repository.get(pipeline.id)
    assert reads[0].topic == get_topic(Pipeline.Snapshot)
    assert len(reads) == 1
    assert loaded.version == pipeline.version
    assert loaded.deployment_status == pipeline.deployment_status == RuntimeStatus.RUNNING
    assert loaded.deployment_id == deployment

    assert loaded.stop(force=True, at=now()) == "Pipeline is forcefully stopping"
    store.save(loaded)
    again: Pipeline = store.repository.get(pipeline.id)
    assert again.deployment_desired_status == "Stopped"
    assert again.resources_status is ResourcesStatus.PROVISIONED  # the reconciler moves it on


def test_two_creates_of_one_name_conflict_in_the_store(store: EventStore) -> None:
    first = Pipeline(name="orders", config_id=uuid4(), at=now())
    store.save(first, NameIndex(name="orders", pipeline_id=first.id, at=now()))
    rival = Pipeline(name="orders", config_id=uuid4(), at=now())
    with pytest.raises(ConcurrencyConflict) as caught:
        store.save(rival, NameIndex(name="orders", pipeline_id=rival.id, at=now()))
    assert caught.value.conflicts[0][0] == name_index_id("orders")
    index: NameIndex = store.repository.get(name_index_id("orders"))
    assert index.pipeline_id == first.id
