"""The event store on SQLite and PostgreSQL: round trip, upcasting, snapshots, conflicts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from services.adapters.eventstore import ConcurrencyConflict, EventStore, open_event_store
from tests.adapters.persistence.aggregates import Counter, Note
from tests.adapters.persistence.reads import count_reads

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
SNAPSHOT_EVERY = 1000


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_event_store(store_url, snapshotting_intervals={Counter: SNAPSHOT_EVERY}) as app:
        yield app


def test_saved_aggregate_reloads_with_the_same_state(store: EventStore) -> None:
    counter = Counter("apples")
    counter.add(3, at=T0)
    counter.add(4, at=T0 + timedelta(seconds=1))
    store.save(counter)

    loaded: Counter = store.repository.get(counter.id)

    assert isinstance(loaded.id, UUID)
    assert (loaded.name, loaded.total, loaded.version) == ("apples", 7, 3)
    assert loaded.last_at == T0 + timedelta(seconds=1)
    assert loaded.created_on == counter.created_on
    assert loaded.modified_on == counter.modified_on


def test_events_are_stored_as_json_and_read_back_as_models(store: EventStore) -> None:
    counter = Counter("pears")
    counter.add(2, at=T0)
    store.save(counter)

    stored = store.recorder.select_events(counter.id)
    events = [store.mapper.to_domain_event(s) for s in stored]

    assert [type(e) for e in events] == [Counter.Created, Counter.Added]
    assert stored[1].state.startswith(b"{") and b'"amount":2' in stored[1].state
    assert b"originator_id" not in stored[1].state
    added = events[1]
    assert isinstance(added, Counter.Added)
    assert (added.originator_id, added.originator_version) == (counter.id, 2)
    assert (added.amount, added.at) == (2, T0)


def test_a_version_1_event_is_read_back_as_version_2(store: EventStore) -> None:
    note = Note()
    store.save(note)
    # Write what the code of version 1 wrote: its state, under today's topic.
    old = Note.TitledV1(originator_id=note.id, originator_version=2, title="hello")
    stored = store.mapper.to_stored_event(old)
    store.recorder.insert_events([StoredEvent(note.id, 2, get_topic(Note.Titled), stored.state)])
    assert b"class_version" not in stored.state

    loaded: Note = store.repository.get(note.id)

    assert (loaded.title, loaded.language, loaded.version) == ("hello", "en", 2)


def test_version_2_events_record_their_class_version(store: EventStore) -> None:
    note = Note()
    note.retitle("bonjour", "fr")
    store.save(note)

    (stored,) = store.recorder.select_events(note.id, gt=1)
    loaded: Note = store.repository.get(note.id)

    assert b'"class_version":2' in stored.state
    assert (loaded.title, loaded.language) == ("bonjour", "fr")


def test_a_long_history_reloads_from_a_snapshot(store: EventStore) -> None:
    counter = Counter("long")
    for i in range(10_000):
        counter.add(1, at=T0 + timedelta(microseconds=i))
    store.save(counter)  # one save: 10,001 events
    assert store.snapshots is not None
    snapshots = list(store.snapshots.get(counter.id))
    # One snapshot per save that crossed the interval, as the aggregate is after it.
    assert [s.originator_version for s in snapshots] == [10_001]
    counter.add(1, at=T0 + timedelta(microseconds=10_000))
    store.save(counter)  # 10,002: no multiple of the interval crossed

    reads = count_reads(store)
    loaded: Counter = store.repository.get(counter.id)

    assert (loaded.total, loaded.version) == (10_001, 10_002)
    assert loaded.last_at == T0 + timedelta(microseconds=10_000)
    # The snapshot at 10,001 plus the one event after it.
    assert [(r.topic, r.originator_version) for r in reads] == [
        (get_topic(Counter.Snapshot), 10_001),
        (get_topic(Counter.Added), 10_002),
    ]


def test_stale_copy_save_raises_concurrency_conflict(store: EventStore) -> None:
    counter = Counter("contended")
    store.save(counter)
    first: Counter = store.repository.get(counter.id)
    second: Counter = store.repository.get(counter.id)
    first.add(1, at=T0)
    store.save(first)
    second.add(5, at=T0)

    with pytest.raises(ConcurrencyConflict) as caught:
        store.save(second)

    assert caught.value.conflicts == ((counter.id, 2),)
    assert str(counter.id) in str(caught.value) and "version 2" in str(caught.value)
    reloaded: Counter = store.repository.get(counter.id)
    assert (reloaded.total, reloaded.version) == (1, 2)


def test_conflict_between_two_store_instances_names_only_the_stale_aggregate(
    store_url: str,
) -> None:
    with open_event_store(store_url) as one, open_event_store(store_url) as two:
        fresh, contended = Counter("fresh"), Counter("contended")
        one.save(contended)
        stale: Counter = two.repository.get(contended.id)
        current: Counter = one.repository.get(contended.id)
        current.add(1, at=T0)
        one.save(current)
        stale.add(2, at=T0)

        with pytest.raises(ConcurrencyConflict) as caught:
            two.save(fresh, stale)  # one transaction: neither is written

        assert caught.value.conflicts == ((contended.id, 2),)
        assert one.recorder.select_events(fresh.id) == []
