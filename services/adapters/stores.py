"""The event store the command handler writes to: command records, snapshots, a cache.

The handler owns its partitions, so a cached aggregate is only stale after a rebalance
or when another writer got there first (a conflict): the decider drops the cache then.
Fast-forwarding on every read would cost a query per aggregate per batch for nothing.

A Pipeline snapshots every 10 events: its state does not grow with its history, so a
snapshot costs about one event to read, and a long-lived pipeline loads from its snapshot
plus at most 9 events (benchmarks/load_bench.py: the worst case of a 100k-event pipeline
against a 10-event one).
"""

from __future__ import annotations

from domain.config import Config
from domain.execution import Execution
from domain.pipeline import Pipeline
from domain.run_counter import RunCounter
from services.adapters.command_records import recorder_env
from services.adapters.eventstore import (
    DEFAULT_LOCK_TIMEOUT_S,
    EventStore,
    SnapshottingIntervals,
    open_event_store,
)

SNAPSHOT_INTERVAL = 100
PIPELINE_SNAPSHOT_INTERVAL = 10
AGGREGATE_CACHE_MAXSIZE = 20_000


def snapshotting_intervals(
    every: int = SNAPSHOT_INTERVAL, pipeline_every: int = PIPELINE_SNAPSHOT_INTERVAL
) -> SnapshottingIntervals:
    # The aggregates whose histories grow without bound (a counter grows per run). A
    # pipeline is loaded for every command on it and lives for years of start/stop.
    return {Pipeline: pipeline_every, Execution: every, Config: every, RunCounter: every}


def open_command_store(
    url: str,
    *,
    snapshot_interval: int = SNAPSHOT_INTERVAL,
    pipeline_snapshot_interval: int = PIPELINE_SNAPSHOT_INTERVAL,
    cache_maxsize: int = AGGREGATE_CACHE_MAXSIZE,
    lock_timeout_s: int = DEFAULT_LOCK_TIMEOUT_S,
    schema: str | None = None,
) -> EventStore:
    """The event store at `url` (forms as in `open_event_store`) with the processed-command
    recorder, snapshots every `snapshot_interval` events (`pipeline_snapshot_interval` for
    a Pipeline) and an aggregate cache."""
    return open_event_store(
        url,
        snapshotting_intervals=snapshotting_intervals(
            snapshot_interval, pipeline_snapshot_interval
        ),
        lock_timeout_s=lock_timeout_s,
        schema=schema,
        extra_env={
            **recorder_env(url),
            "AGGREGATE_CACHE_MAXSIZE": str(cache_maxsize),
            "AGGREGATE_CACHE_FASTFORWARD": "n",
        },
    )
