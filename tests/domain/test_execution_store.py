"""Execution, TagIndex and RunCounter in the real event store: saved together, reloaded
equal, a long execution reloaded from its snapshot, and the id-derived indexes turning a
race for a tag or a run number into a conflict."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic
from uuid6 import uuid7

from contracts.statuses import RunStatus
from domain.execution import Execution
from domain.run_counter import RunCounter, run_counter_id
from domain.tag_index import TagIndex, tag_index_id
from services.adapters.eventstore import ConcurrencyConflict, EventStore, open_event_store
from tests.adapters.persistence.reads import count_reads

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SNAPSHOT_EVERY = 500


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_event_store(store_url, snapshotting_intervals={Execution: SNAPSHOT_EVERY}) as app:
        yield app


def new_config_run(config_id: Any, run_number: int, tag: str | None) -> Execution:
    return Execution.for_config(
        execution_id=uuid7(),
        config_id=config_id,
        config_version=1,
        at=T0,
        route_ids=["ingest", "parse"],
        config_init_payload={"source": {"bucket": "b"}},
        init_payload_overrides={"source": {"prefix": "p/"}},
        run_number=run_number,
        tag=tag,
    )


def test_a_run_config_saves_run_tag_and_counter_together(store: EventStore) -> None:
    config_id = uuid4()
    counter = RunCounter(owner_id=config_id, at=T0)
    run = new_config_run(config_id, counter.next_run_number(at=T0), tag="nightly")
    tag = TagIndex(tag="nightly", execution_id=run.id, at=T0)
    store.save(run, tag, counter)

    loaded: Execution = store.repository.get(run.id)
    assert vars(loaded) == vars(run) | {"_pending_events": []}
    held: TagIndex = store.repository.get(tag_index_id("nightly"))
    assert held.execution_id == run.id
    numbers: RunCounter = store.repository.get(run_counter_id(config_id))
    assert numbers.last_run_number == 1 == loaded.run_number


def test_a_second_claim_of_a_new_tag_conflicts(store: EventStore) -> None:
    config_id = uuid4()
    first, second = new_config_run(config_id, 1, "t"), new_config_run(config_id, 2, "t")
    store.save(first, TagIndex(tag="t", execution_id=first.id, at=T0))
    # A racing RunConfig that also saw no index creates it again: the store refuses.
    with pytest.raises(ConcurrencyConflict):
        store.save(second, TagIndex(tag="t", execution_id=second.id, at=T0))
    with pytest.raises(AggregateNotFoundError):  # the racing run was not saved either
        store.repository.get(second.id)


def test_two_runs_numbered_from_one_counter_version_conflict(store: EventStore) -> None:
    owner = uuid4()
    store.save(RunCounter(owner_id=owner, at=T0))
    a: RunCounter = store.repository.get(run_counter_id(owner))
    b: RunCounter = store.repository.get(run_counter_id(owner))
    assert a.next_run_number(at=T0) == b.next_run_number(at=T0) == 1
    store.save(a)
    with pytest.raises(ConcurrencyConflict):
        store.save(b)


def test_a_long_execution_reloads_from_its_snapshot(store: EventStore) -> None:
    run = new_config_run(uuid4(), 1, None)
    run.start(at=T0, now=T0)
    run.stage_started("ingest", at=T0)
    for i in range(1, 1_200):
        run.stage_progress("ingest", i, i, 0, at=T0 + timedelta(milliseconds=i))
    run.stage_finished("ingest", RunStatus.SUCCESS, at=T0 + timedelta(seconds=2))
    store.save(run)
    assert run.version == 1_203
    assert store.snapshots is not None
    versions = [s.originator_version for s in store.snapshots.get(run.id)]
    # One snapshot per save that crossed the interval, as the run is after it.
    assert versions == [1_203]

    reads = count_reads(store)
    loaded: Execution = store.repository.get(run.id)
    assert reads[0].topic == get_topic(Execution.Snapshot) and len(reads) == 1
    assert loaded.routes == run.routes and loaded.version == run.version
    assert loaded.routes["ingest"].messages_in == 1_199

    # The reloaded run keeps working and saves on top of the snapshot.
    loaded.transition(RunStatus.SUCCESS, now=T0 + timedelta(seconds=3))
    store.save(loaded)
    again: Execution = store.repository.get(run.id)
    assert (again.status, again.ended_at) == (RunStatus.SUCCESS, T0 + timedelta(seconds=3))
