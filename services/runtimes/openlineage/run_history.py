"""What the event store says about a run, for its RunEvents: its job, its config's topics,
its parent and root, and its state just before a status change.

Everything is read at a version that never changes, so the same stored change gives the
same facts whenever it is read (a re-sent event is identical):
- a config execution's job is its config's name at the config version it runs (a
  Config's aggregate version is its `config_version`), in `namespace`;
- a pipeline run's job is its pipeline's name as the pipeline was when the run was created
  (its last event at or before the run's creation), its topics those of the config
  version it was created with;
- a run created by an OpenLineage event (no pipeline, no config: its job is someone
  else's) has no facts: it is never emitted back.

Synchronous, like the library: the emitter calls it off the event loop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from contracts.statuses import RunStatus
from domain.base import Aggregate
from domain.config import Config
from domain.execution import Execution, RunOwnerKind
from domain.pipeline import Pipeline
from services.adapters.eventstore import EventStore
from services.runtimes.openlineage.run_events import (
    JobRef,
    RunFacts,
    RunRef,
    StatusChange,
    boundary_topics,
)

CONFIG_EXECUTION: Final = "CONFIG_EXECUTION"
PIPELINE_RUN: Final = "PIPELINE_RUN"

A = TypeVar("A", bound=Aggregate)


class RunHistory:
    def __init__(self, store: EventStore, namespace: str, dataset_namespace: str) -> None:
        self._store = store
        self._namespace = namespace
        self._dataset_namespace = dataset_namespace
        # A config version never changes: kept for good (one entry per version).
        self._configs: dict[tuple[UUID, int], Config | None] = {}

    def change(
        self, run_id: UUID, version: int, status: str, at: datetime, reason: str | None
    ) -> tuple[RunFacts, StatusChange] | None:
        """The facts of run `run_id` and its change to `status` stored as event `version`;
        None for a run that is not ours to report."""
        before = self._get(Execution, run_id, version - 1)
        if before is None:
            return None
        facts = self.facts(before)
        if facts is None:
            return None
        had_started = before.started_at is not None
        return facts, StatusChange(RunStatus(status), at, had_started, reason)

    def facts(self, run: Execution) -> RunFacts | None:
        job = self.job_of(run)
        if job is None:
            return None
        config = self._config(run.config_id, run.config_version)
        inputs, outputs = ((), ()) if config is None else boundary_topics(config.document)
        parent = self._ref(run.parent_execution_id)
        return RunFacts(
            run_id=run.id,
            job=job,
            job_type=CONFIG_EXECUTION if run.owner_kind is RunOwnerKind.CONFIG else PIPELINE_RUN,
            dataset_namespace=self._dataset_namespace,
            inputs=inputs,
            outputs=outputs,
            parent=parent,
            root=None if parent is None else self._ref(run.root_execution_id),
        )

    def job_of(self, run: Execution) -> JobRef | None:
        if run.owner_kind is RunOwnerKind.CONFIG:
            config = self._config(run.config_id, run.config_version)
            return None if config is None else JobRef(self._namespace, config.name)
        if run.pipeline_id is None:
            return None  # an OpenLineage job's run (services.service_layer.handlers.openlineage)
        name = self._pipeline_name_at(run.pipeline_id, run.created_on)
        return None if name is None else JobRef(self._namespace, name)

    def _ref(self, run_id: UUID | None) -> RunRef | None:
        if run_id is None:
            return None
        run = self._get(Execution, run_id)
        job = None if run is None else self.job_of(run)
        return None if job is None else RunRef(run_id, job)

    def _config(self, config_id: UUID | None, config_version: int | None) -> Config | None:
        if config_id is None or config_version is None:
            return None
        key = (config_id, config_version)
        if key not in self._configs:
            found = self._get(Config, config_id, config_version)
            ok = found is not None and found.config_version == config_version
            self._configs[key] = found if ok else None
        return self._configs[key]

    def _pipeline_name_at(self, pipeline_id: UUID, when: datetime) -> str | None:
        versions = [
            event.originator_version
            for event in self._store.events.get(pipeline_id)
            if event.timestamp <= when  # type: ignore[attr-defined]
        ]
        pipeline = None if not versions else self._get(Pipeline, pipeline_id, max(versions))
        return None if pipeline is None else pipeline.name

    def _get(self, kind: type[A], aggregate_id: UUID, version: int | None = None) -> A | None:
        try:
            found: object = self._store.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None


__all__ = ["CONFIG_EXECUTION", "PIPELINE_RUN", "RunHistory"]
