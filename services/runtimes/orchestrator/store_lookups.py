"""Executions, configs and pipelines as the event store has them, for the orchestrator and
reconciler roles.

The event store is the truth: the read model lags it, and a route worker may see an init
message before the projector has its execution (docs/orchestrator.md, step 2). So the
lookup route workers use (`ExecutionInfos`, an `ExecutionLookup`) reads the event store,
cached to keep a batch from costing a query per message:

- a finished execution is cached for good (nothing changes it any more), in an LRU of
  `FINISHED_CACHE_SIZE` ids;
- a live one for `live_ttl_s` (the role passes its sweep interval): a cancel reaches the
  workers within that long;
- an unknown one is never cached: the worker asks again while it waits for it.

A config is read at the version an execution runs (`Config` events: Created is version 1
and each Updated adds one, so the aggregate version is the `config_version`), cached for
good: a config version never changes.

All reads are synchronous (call them off the event loop); `ExecutionInfos` does so itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.config import Config
from domain.execution import Execution, RunOwnerKind
from domain.pipeline import Pipeline
from services.adapters.command_records import recorder_env
from services.adapters.eventstore import EventStore, open_event_store
from services.adapters.stores import snapshotting_intervals
from services.runtimes.orchestrator.execution_info import ExecutionInfo

FINISHED_CACHE_SIZE: Final = 100_000

A = TypeVar("A", Config, Execution, Pipeline)


class EventStoreReader:
    """Reads aggregates from the event store at `url` (the orchestrator's executions and
    configs, the reconciler's pipelines and configs); owns its connection."""

    def __init__(self, url: str) -> None:
        self.store: EventStore = open_event_store(
            url, snapshotting_intervals=snapshotting_intervals(), extra_env=recorder_env(url)
        )
        self._configs: dict[tuple[UUID, int], Config] = {}

    def close(self) -> None:
        self.store.close()

    def execution(self, execution_id: UUID) -> Execution | None:
        """The execution as stored now; None if there is none (or it was deleted)."""
        execution = self._get(Execution, execution_id)
        return None if execution is None or execution.deleted else execution

    def pipeline(self, pipeline_id: UUID) -> Pipeline | None:
        """The pipeline as stored now; None if there is none (or it was deleted)."""
        pipeline = self._get(Pipeline, pipeline_id)
        return None if pipeline is None or pipeline.deleted else pipeline

    def latest_config(self, config_id: UUID) -> Config | None:
        return self._get(Config, config_id)

    def config(self, config_id: UUID, config_version: int) -> Config | None:
        """The config at `config_version`; None if it has no such version."""
        key = (config_id, config_version)
        found = self._configs.get(key)
        if found is not None:
            return found
        config = self._get(Config, config_id, config_version)
        if config is None or config.config_version != config_version:
            return None
        self._configs[key] = config
        return config

    def _get(self, kind: type[A], aggregate_id: UUID, version: int | None = None) -> A | None:
        """The aggregate (at `version`), if there is one and it is a `kind`."""
        try:
            found: object = self.store.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None


def info_of(execution: Execution) -> ExecutionInfo | None:
    """What a route worker needs of a config execution; None for a pipeline run."""
    if execution.owner_kind is not RunOwnerKind.CONFIG or execution.config_id is None:
        return None
    return ExecutionInfo(
        execution_id=execution.id,
        config_id=execution.config_id,
        status=str(execution.status),
        skip_init_message=execution.skip_init_message,
        init_route=execution.init_route or "",
        config_version=execution.config_version,
    )


class ExecutionInfos:
    """The route workers' ExecutionLookup (see the module docstring for the caching)."""

    def __init__(
        self,
        reader: EventStoreReader,
        live_ttl_s: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        finished_cache_size: int = FINISHED_CACHE_SIZE,
    ) -> None:
        self.reader = reader
        self.live_ttl_s = live_ttl_s
        self._monotonic = monotonic
        self._finished: OrderedDict[UUID, ExecutionInfo] = OrderedDict()
        self._finished_size = finished_cache_size
        self._live: dict[UUID, tuple[float, ExecutionInfo]] = {}
        self.reads = 0  # event-store reads, for tests and health

    async def __call__(self, execution_id: UUID) -> ExecutionInfo | None:
        finished = self._finished.get(execution_id)
        if finished is not None:
            self._finished.move_to_end(execution_id)
            return finished
        now = self._monotonic()
        live = self._live.get(execution_id)
        if live is not None and now - live[0] < self.live_ttl_s:
            return live[1]
        self.reads += 1
        execution = await asyncio.to_thread(self.reader.execution, execution_id)
        info = None if execution is None else info_of(execution)
        self.remember(info, now)
        return info

    def remember(self, info: ExecutionInfo | None, now: float | None = None) -> None:
        """Cache what was just read (the role passes what it read for its own decisions)."""
        if info is None:
            return
        if info.finished:
            self._live.pop(info.execution_id, None)
            self._finished[info.execution_id] = info
            self._finished.move_to_end(info.execution_id)
            while len(self._finished) > self._finished_size:
                self._finished.popitem(last=False)
        else:
            self._live[info.execution_id] = (self._monotonic() if now is None else now, info)

    def forget_live(self, keep: set[UUID]) -> None:
        """Drop cached live executions other than `keep` (the sweep's live set)."""
        for execution_id in [e for e in self._live if e not in keep]:
            del self._live[execution_id]


__all__ = ["FINISHED_CACHE_SIZE", "EventStoreReader", "ExecutionInfos", "info_of"]
