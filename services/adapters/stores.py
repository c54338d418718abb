"""The event store the command handler writes to: command records, snapshots, a cache.

The handler owns its partitions, so a cached aggregate is only stale after a rebalance
or when another writer got there first (a conflict): the decider drops the cache then.
Fast-forwarding on every read would cost a query per aggregate per batch for nothing.
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
AGGREGATE_CACHE_MAXSIZE = 20_000


def snapshotting_intervals(every: int = SNAPSHOT_INTERVAL) -> SnapshottingIntervals:
    # The aggregates whose histories grow without bound (a counter grows per run).
    return {Pipeline: every, Execution: every, Config: every, RunCounter: every}


def open_command_store(
    url: str,
    *,
    snapshot_interval: int = SNAPSHOT_INTERVAL,
    cache_maxsize: int = AGGREGATE_CACHE_MAXSIZE,
    lock_timeout_s: int = DEFAULT_LOCK_TIMEOUT_S,
    schema: str | None = None,
) -> EventStore:
    """The event store at `url` (forms as in `open_event_store`) with the processed-command
    recorder, snapshots every `snapshot_interval` events and an aggregate cache."""
    return open_event_store(
        url,
        snapshotting_intervals=snapshotting_intervals(snapshot_interval),
        lock_timeout_s=lock_timeout_s,
        schema=schema,
        extra_env={
            **recorder_env(url),
            "AGGREGATE_CACHE_MAXSIZE": str(cache_maxsize),
            "AGGREGATE_CACHE_FASTFORWARD": "n",
        },
    )
