"""The projector on SQLite and PostgreSQL: a history driven through the real decider,
applied as published, gives rows equal to the aggregates; redeliveries and older versions
are skipped; a gap is healed from the event store; a gap that cannot be healed commits
nothing."""

from __future__ import annotations

import inspect

import pytest

from contracts.events import LifecycleEvent
from domain.config import Config
from domain.execution import Execution
from domain.pipeline import Pipeline
from projections import configs, executions, pipelines
from projections.projector import GapNotHealed, Projector
from projections.store import ReadStore
from services.runtimes.projector import fetch_events_from
from tests.projections.support import (
    assert_matches_aggregates,
    driven,
    events_of,
)


def test_a_driven_history_projects_to_the_aggregates(store_url: str, read_store: ReadStore) -> None:
    with driven(store_url) as (decider, story):
        events = events_of(decider.store)
        stats = Projector(read_store).apply_batch(events)
        assert stats.applied == sum(
            1 for e in events if e.aggregate_type in ("Pipeline", "Config", "Execution")
        )
        assert stats.ignored > 0  # the name/tag/run-number indexes
        assert stats.skipped == stats.healed == stats.unknown == 0
        assert_matches_aggregates(read_store, decider, story)
        live = [p["name"] for p in read_store.list_pipelines()]
        assert live == ["alpha", "beta", "gamma"]
        # A deleted pipeline's name was taken again: the new one is what the name shows.
        gamma = read_store.get_pipeline("gamma")
        assert gamma is not None and gamma["id"] == str(story.pipelines[3])
        assert gamma["description"] == "again"


def test_one_event_at_a_time_gives_the_same_rows(store_url: str, read_store: ReadStore) -> None:
    with driven(store_url) as (decider, story):
        projector = Projector(read_store)
        for event in events_of(decider.store):
            projector.apply_batch([event])
        assert_matches_aggregates(read_store, decider, story)


def test_redelivered_and_older_versions_are_skipped(store_url: str, read_store: ReadStore) -> None:
    with driven(store_url) as (decider, story):
        events = events_of(decider.store)
        projector = Projector(read_store)
        half = len(events) // 2
        projector.apply_batch(events[:half])
        # The whole history again, twice, in one batch: only the unseen half applies.
        stats = projector.apply_batch(events + events)
        projected = [e for e in events if e.aggregate_type in ("Pipeline", "Config", "Execution")]
        first_half = [e for e in events[:half] if e in projected]
        assert stats.applied == len(projected) - len(first_half)
        assert stats.skipped == len(first_half) + len(projected)
        # An older version with different data changes nothing.
        alpha = read_store.get_pipeline("alpha")
        stale = LifecycleEvent(
            event_type="Updated", aggregate_id=str(story.pipelines[0]), aggregate_type="Pipeline",
            version=2, time=events[0].time,
            data={"name": "hijacked", "description": "x", "config_id": None, "at": events[0].time},
        )  # fmt: skip
        assert projector.apply_batch([stale]).skipped == 1
        assert read_store.get_pipeline("alpha") == alpha
        assert_matches_aggregates(read_store, decider, story)


def test_a_gap_is_healed_from_the_event_store(store_url: str, read_store: ReadStore) -> None:
    with driven(store_url) as (decider, story):
        events = events_of(decider.store)
        alpha = str(story.pipelines[0])
        # Every event of alpha after its creation is lost in transit but the last one.
        alpha_events = [e for e in events if e.aggregate_id == alpha]
        lost = {e.version for e in alpha_events[1:-1]}
        delivered = [e for e in events if not (e.aggregate_id == alpha and e.version in lost)]
        fetched: list[tuple[str, int]] = []
        fetch = fetch_events_from(decider.store)

        def recording_fetch(aggregate_id: str, after: int) -> list[LifecycleEvent]:
            fetched.append((aggregate_id, after))
            return fetch(aggregate_id, after)

        stats = Projector(read_store, recording_fetch).apply_batch(delivered)
        assert fetched == [(alpha, 1)]
        assert stats.healed == len(alpha_events) - 1
        assert_matches_aggregates(read_store, decider, story)


def test_an_unhealable_gap_commits_nothing(store_url: str, read_store: ReadStore) -> None:
    with driven(store_url) as (decider, story):
        events = events_of(decider.store)
        alpha = str(story.pipelines[0])
        gapped = [e for e in events if not (e.aggregate_id == alpha and e.version == 2)]
        with pytest.raises(GapNotHealed):
            Projector(read_store).apply_batch(gapped)  # no event source
        with pytest.raises(GapNotHealed):
            Projector(read_store, lambda _id, _after: []).apply_batch(gapped)
        assert read_store.list_pipelines() == []
        assert read_store.applied_version(str(story.configs[0])) == 0
        # The retry with a source succeeds.
        Projector(read_store, fetch_events_from(decider.store)).apply_batch(gapped)
        assert_matches_aggregates(read_store, decider, story)


async def test_wait_for_version(store_url: str, read_store: ReadStore) -> None:
    with driven(store_url) as (decider, story):
        events = events_of(decider.store)
        alpha = str(story.pipelines[0])
        assert not await read_store.wait_for_version(alpha, 1, timeout_s=0.05)
        Projector(read_store).apply_batch(events)
        last = max(e.version for e in events if e.aggregate_id == alpha)
        assert await read_store.wait_for_version(alpha, last, timeout_s=0.05)
        assert not await read_store.wait_for_version(alpha, last + 1, timeout_s=0.05)


def test_every_domain_event_has_a_step() -> None:
    for aggregate, module in ((Pipeline, pipelines), (Config, configs), (Execution, executions)):
        events = {
            name
            for name, value in vars(aggregate).items()
            if inspect.isclass(value)
            and issubclass(value, aggregate.Event)  # type: ignore[attr-defined]
            and name not in ("Event", "Snapshot")
        }
        assert events - {"Created"} == set(module.STEPS), aggregate.__name__
        assert "Created" in events


def test_an_unknown_event_type_is_recorded_and_left_out(sqlite_url: str) -> None:
    with driven(sqlite_url) as (decider, story), ReadStore(sqlite_url) as read:
        events = events_of(decider.store)
        config = str(story.configs[1])
        last = max(e.version for e in events if e.aggregate_id == config)
        newer = LifecycleEvent(
            event_type="Archived", aggregate_id=config, aggregate_type="Config",
            version=last + 1, time=events[0].time, data={},
        )  # fmt: skip
        following = newer.model_copy(
            update={
                "event_type": "Updated", "version": last + 2,
                "data": {
                    "name": "renamed", "document": {}, "config_version": 9,
                    "report": {}, "at": "2026-05-01T00:00:00Z",
                },
            }
        )  # fmt: skip
        stats = Projector(read).apply_batch([*events, newer, following])
        assert stats.unknown == 1
        assert read.applied_version(config) == last + 2
        row = read.get_config(config)
        assert row is not None and row["name"] == "renamed" and row["version"] == 9
