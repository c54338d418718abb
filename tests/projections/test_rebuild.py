"""Rebuild on SQLite and PostgreSQL: the rebuilt read models equal the live ones, events
the live projector applies while the rebuild runs are not lost across the swap, the live
projector goes on writing the swapped-in tables, and a failed rebuild leaves the live
tables alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from contracts import CreatePipeline, StartPipeline, StopPipeline, UpdateConfig
from contracts.events import LifecycleEvent
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.schema import TABLES
from projections.store import ReadStore
from services.runtimes.projector import fetch_events_from, rebuild_read_models, total_events
from services.settings import Settings
from tests.projections.support import assert_matches_aggregates, driven, events_of
from tests.service_layer.decider_support import accepted, config_document, decide_one


def dump(read: ReadStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every live table's rows, in primary-key order."""
    return {
        table.name: read.db.query(
            f"SELECT * FROM {table.physical()} ORDER BY {', '.join(table.primary_key)}"
        )
        for table in TABLES
    }


def leftover_tables(read: ReadStore) -> list[str]:
    if read.db.dialect == "sqlite":
        rows = read.db.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = read.db.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return sorted(name for (name,) in rows if str(name).startswith("read_") and "_rb" in name)


def test_rebuild_equals_the_live_model(store_url: str, read_store: ReadStore) -> None:
    with driven(store_url) as (decider, story):
        events = events_of(decider.store)
        fetch = fetch_events_from(decider.store)
        # The live model the hard way: one event at a time, each delivered twice.
        live = Projector(read_store, fetch)
        for event in events:
            live.apply_batch([event, event])
        before = dump(read_store)
        # Something the history does not hold must disappear with the swap.
        read_store.db.query(
            "INSERT INTO read_pipelines (id, name, deleted, doc) VALUES (?, ?, ?, ?)",
            ("stray", "stray", 0, "{}"),
        )
        assert read_store.get_pipeline("stray") == {}
        seen: list[int] = []
        stats = rebuild(read_store, iter(events), fetch, batch_size=7, progress=seen.append)
        assert dump(read_store) == before
        assert read_store.get_pipeline("stray") is None
        assert stats.events == len(events) and seen[-1] == len(events) and len(seen) > 1
        assert stats.caught_up == 0
        assert leftover_tables(read_store) == []
        assert_matches_aggregates(read_store, decider, story)


def test_nothing_applied_live_during_a_rebuild_is_lost(
    store_url: str, read_store: ReadStore
) -> None:
    with driven(store_url) as (decider, story), ReadStore(store_url) as live_store:
        fetch = fetch_events_from(decider.store)
        live = Projector(live_store, fetch)  # the live projector, on its own connection
        history = events_of(decider.store)
        live.apply_batch(history[:10])

        def read_history() -> Iterator[LifecycleEvent]:
            """The rebuild's read of the history; halfway through, the system moves on and
            the live projector applies everything, new commands included."""
            for index, event in enumerate(history):
                if index == len(history) // 2:
                    accepted(decide_one(decider, StartPipeline(pipeline_name="beta")))
                    created = accepted(decide_one(decider, CreatePipeline(name="delta")))
                    story.pipelines.append(UUID(created.aggregate_id))
                    decide_one(
                        decider,
                        UpdateConfig(config_id=story.configs[1], document=config_document()),
                    )
                    live.apply_batch(events_of(decider.store))
                yield event

        stats = rebuild(read_store, read_history(), fetch, batch_size=5)
        assert stats.caught_up >= 3  # beta, delta and the config were only applied live
        assert_matches_aggregates(read_store, decider, story)
        beta = read_store.get_pipeline("beta")
        assert beta is not None and beta["deployment_desired_status"] == "Running"

        # The live projector writes the swapped-in tables from its next batch on.
        decide_one(decider, StopPipeline(pipeline_name="beta", force=True))
        stats_after = live.apply_batch(events_of(decider.store))
        assert stats_after.applied == 1
        assert_matches_aggregates(live_store, decider, story)
        beta = live_store.get_pipeline("beta")
        assert beta is not None and beta["deployment_desired_status"] == "Stopped"


def test_a_failed_rebuild_leaves_the_live_tables(store_url: str, read_store: ReadStore) -> None:
    with driven(store_url) as (decider, _):
        events = events_of(decider.store)
        fetch = fetch_events_from(decider.store)
        Projector(read_store).apply_batch(events)
        before = dump(read_store)

        def broken() -> Iterator[LifecycleEvent]:
            yield from events[:20]
            raise OSError("the event store went away")

        with pytest.raises(OSError):
            rebuild(read_store, broken(), fetch, batch_size=5)
        assert dump(read_store) == before
        assert leftover_tables(read_store) == []


def test_rebuild_read_models_from_the_settings_event_store(store_url: str) -> None:
    """What `pipelines projections rebuild` calls: the event store named by the settings."""
    with driven(store_url) as (decider, story), ReadStore(store_url) as read:
        settings = Settings(event_store_url=store_url)
        total = total_events(settings)
        seen: list[int] = []
        stats = rebuild_read_models(settings, seen.append, batch_size=10)
        assert stats.events == len(events_of(decider.store)) and seen[-1] == stats.events
        assert total >= stats.events  # notifications also count snapshots, if any
        assert_matches_aggregates(read, decider, story)
