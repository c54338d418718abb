"""The projector folds a batch in memory: whatever the batch size, a mixed delivery
(redeliveries, lost events healed from the event store, an event type no read model
knows) leaves the same tables as one event per batch; and a batch reads and writes each
table a fixed number of times, however many rows it touches."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.events import LifecycleEvent
from projections.db import Cursor
from projections.projector import BatchStats, FetchEvents, Projector
from projections.schema import TABLES
from projections.store import ReadStore
from services.runtimes.projector import fetch_events_from
from tests.projections.support import Story, drive, driven, events_of


def tables(read: ReadStore, suffix: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table.name: read.db.query(
            f"SELECT * FROM {table.physical(suffix)} ORDER BY {', '.join(table.primary_key)}"
        )
        for table in TABLES
    }


def mixed_delivery(events: list[LifecycleEvent], story: Story) -> list[LifecycleEvent]:
    """`events` as a broker might deliver them: every third one again a little later, the
    middle events of a pipeline and of an execution lost, and an event type no read model
    knows (followed by an event it does) for a config."""
    lost_from = {str(story.pipelines[0]), str(story.executions[4])}
    by_aggregate: dict[str, list[int]] = {}
    for event in events:
        by_aggregate.setdefault(event.aggregate_id, []).append(event.version)
    lost = {
        (aggregate_id, version)
        for aggregate_id in lost_from
        for version in by_aggregate[aggregate_id][1:-1]
    }
    delivered: list[LifecycleEvent] = []
    for i, event in enumerate(events):
        if (event.aggregate_id, event.version) not in lost:
            delivered.append(event)
        if i % 3 == 0 and i >= 5:
            delivered.append(events[i - 5])  # redelivered after newer ones
    config = str(story.configs[1])
    last = max(by_aggregate[config])
    unknown = LifecycleEvent(
        event_type="Archived", aggregate_id=config, aggregate_type="Config",
        version=last + 1, time=events[0].time, data={},
    )  # fmt: skip
    following = unknown.model_copy(
        update={
            "event_type": "Updated", "version": last + 2,
            "data": {
                "name": "renamed", "document": {}, "config_version": 9, "report": {},
                "at": "2026-05-01T00:00:00Z",
            },
        }
    )  # fmt: skip
    return [*delivered, unknown, following, *events[:4]]


def project(
    read: ReadStore, fetch: FetchEvents, suffix: str, events: list[LifecycleEvent], size: int
) -> BatchStats:
    read.create_tables(suffix)
    projector = Projector(read, fetch, suffix=suffix)
    stats = BatchStats()
    for start in range(0, len(events), size):
        stats.add(projector.apply_batch(events[start : start + size]))
    return stats


def test_any_batch_size_gives_the_one_at_a_time_tables(
    store_url: str, read_store: ReadStore
) -> None:
    with driven(store_url) as (decider, story):
        events = events_of(decider.store)
        delivered = mixed_delivery(events, story)
        fetch = fetch_events_from(decider.store)
        one = project(read_store, fetch, "_one", delivered, 1)
        expected = tables(read_store, "_one")
        assert expected["pipelines"] and expected["stage_runs"]
        # what was delivered and what was lost (fetched back)
        versions = {
            (e.aggregate_id, e.version)
            for e in [*events, *delivered]
            if e.aggregate_type in ("Pipeline", "Config", "Execution")
        }
        for size in (7, len(delivered)):
            stats = project(read_store, fetch, f"_b{size}", delivered, size)
            assert tables(read_store, f"_b{size}") == expected, size
            # Every version applied exactly once, the lost ones from the event store.
            assert stats.applied + stats.healed == one.applied + one.healed
            assert stats.applied + stats.healed == len(versions)
            assert stats.healed > 0 and stats.skipped > 0 and stats.unknown == 1
        for suffix in ("_one", "_b7", f"_b{len(delivered)}"):
            read_store.drop_tables(suffix)


def test_a_batch_takes_a_fixed_number_of_statements(
    store_url: str, read_store: ReadStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with driven(store_url) as (decider, _):
        drive(decider, "more-")
        events = events_of(decider.store)
        projector = Projector(read_store)
        # Each aggregate's creation first: the second batch finds their rows to read.
        projector.apply_batch([e for e in events if e.version == 1])
        later = [e for e in events if e.version > 1]
        statements: list[str] = []
        execute, executemany = Cursor.execute, Cursor.executemany

        def counted_execute(self: Cursor, statement: str, params: Any = ()) -> Any:
            statements.append(statement)
            return execute(self, statement, params)

        def counted_executemany(self: Cursor, statement: str, rows: Any) -> None:
            statements.append(statement)
            executemany(self, statement, rows)

        monkeypatch.setattr(Cursor, "execute", counted_execute)
        monkeypatch.setattr(Cursor, "executemany", counted_executemany)
        stats = projector.apply_batch(later)
    modelled = [e for e in later if e.aggregate_type in ("Pipeline", "Config", "Execution")]
    assert stats.applied == len(modelled)
    # more rows than statements: reading or writing them one by one would not do
    assert len({e.aggregate_id for e in modelled}) > 11
    # The lock, the versions read, a row read per row table plus the stage runs, a write
    # per row table plus the stage runs, the versions written.
    assert len(statements) <= 1 + 1 + 4 + 4 + 1, statements
    assert sum(s.startswith("SELECT") and "read_versions" in s for s in statements) == 1
