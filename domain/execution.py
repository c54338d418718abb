"""The Execution aggregate: one run of a pipeline (seed 003) or of a config (seed 004).

Its status moves only along `domain.run_status.TRANSITIONS`; seeds 002 and 004 read it
through `contracts.run_views`. Every verb checks first and raises a `DomainError` before
its event is triggered, so a refused command leaves no pending event; the `@event`
methods only copy their arguments into state, so replay is exact. The status verbs (and
their rules for time, deadlines and the orchestrator's decisions) live in
`domain.run_transitions`, the stage verbs in `domain.stage_runs`, the state's field list
in `domain.execution_fields`.

Seed 004's effective init payload is the config's init payload deep-merged with the
overrides (`domain.payload_merge`); the creation event also records the init route's
inbound topic (`init_topic`), which the outbox relay publishes the init message to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypedDict, Unpack
from uuid import UUID

from eventsourcing.domain import event

from contracts.run_views import (
    STARTED,
    TERMINAL,
    closes_stage,
    execution_status,
    marquez_state,
    stage_end,
)
from contracts.statuses import ExecutionStatus, MarquezRunState, ReplaySource, RunStatus
from domain.base import Aggregate, AggregateSnapshot
from domain.execution_fields import (
    ExecutionState,
    JsonObject,
    RunOwnerKind,
    StageRun,
    aware,
)
from domain.payload_merge import deep_merge
from domain.run_transitions import RunTransitions
from domain.stage_runs import StageBookkeeping

DEFAULT_RUN_TIMEOUT = timedelta(days=21)


class RunOptions(TypedDict, total=False):
    """What any run may be created with besides its owner; what is left out takes
    `Execution.__init__`'s default."""

    tag: str | None
    args: Mapping[str, Any] | None
    facets: Mapping[str, Any] | None
    timeout: timedelta


class PipelineRunOptions(RunOptions, total=False):
    route_ids: Iterable[str]
    config_id: UUID | None
    config_version: int | None
    nominal_start_time: datetime | None
    nominal_end_time: datetime | None


class ConfigRunOptions(RunOptions, total=False):
    init_payload_overrides: Mapping[str, Any] | None
    init_route: str | None
    init_topic: str | None
    run_number: int | None
    parent_execution_id: UUID | None
    replay_source: ReplaySource | None
    root_execution_id: UUID | None
    replay: JsonObject | None
    skip_init_message: bool


class _CreatedUpcasts(Aggregate):
    """The upcasters of Execution's creation event, on a base class so the library still
    derives that event's fields from `Execution.__init__` (and only adds them here)."""

    class Created(Aggregate.Created):
        class_version: ClassVar[int] = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["init_topic"] = None  # v1 had no init topic: no init message to publish


class Execution(RunTransitions, StageBookkeeping, _CreatedUpcasts):
    """One run's history; its id (a UUIDv7) comes with the command that creates it."""

    class Snapshot(AggregateSnapshot):
        state: ExecutionState

    @staticmethod
    def create_id(execution_id: UUID, **_: Any) -> UUID:
        return execution_id

    @event("Created")
    def __init__(
        self,
        execution_id: UUID,
        owner_kind: RunOwnerKind,
        at: datetime,
        route_ids: list[str],
        pipeline_id: UUID | None = None,
        config_id: UUID | None = None,
        config_version: int | None = None,
        run_number: int | None = None,
        tag: str | None = None,
        parent_execution_id: UUID | None = None,
        replay_source: ReplaySource | None = None,
        skip_init_message: bool = False,
        init_route: str | None = None,
        init_payload: JsonObject | None = None,
        init_payload_overrides: JsonObject | None = None,
        args: JsonObject | None = None,
        facets: JsonObject | None = None,
        nominal_start_time: datetime | None = None,
        nominal_end_time: datetime | None = None,
        timeout: timedelta = DEFAULT_RUN_TIMEOUT,
        # Last, with defaults: creation events stored before they existed lack them.
        init_topic: str | None = None,
        root_execution_id: UUID | None = None,
        replay: JsonObject | None = None,
    ) -> None:
        self.owner_kind = owner_kind
        self.pipeline_id = pipeline_id
        self.config_id = config_id
        self.config_version = config_version
        self.run_number = run_number
        self.tag = tag
        self.parent_execution_id = parent_execution_id
        self.replay_source = replay_source
        # A replay's first ancestor (its parent's root, or the parent itself): a replay
        # of a replay still names the run it all came from.
        self.root_execution_id = root_execution_id
        # What a replay publishes (services.service_layer.replay_plan): references to
        # stored messages, or the payloads a manual replay was given.
        self.replay = replay
        self.skip_init_message = skip_init_message
        self.init_route = init_route
        self.init_topic = init_topic
        self.init_payload = init_payload
        self.init_payload_overrides = init_payload_overrides
        self.args = dict(args or {})
        self.facets = dict(facets or {})
        self.nominal_start_time = nominal_start_time
        self.nominal_end_time = nominal_end_time
        self.timeout = timeout
        self.routes = {route: StageRun(route=route) for route in route_ids}
        self.status = RunStatus.PENDING
        self.created_at = at
        self.updated_at = at
        self.started_at = None
        self.ended_at = None
        self.last_transition_at = None
        self.deleted = False

    # --- creation -------------------------------------------------------------------------

    @classmethod
    def for_pipeline(
        cls,
        *,
        execution_id: UUID,
        pipeline_id: UUID,
        run_number: int,
        at: datetime,
        **options: Unpack[PipelineRunOptions],
    ) -> Execution:
        """A pipeline run (seed 003; seed 002's runs are these too): owned by the pipeline."""
        return cls._opened(
            RunOwnerKind.PIPELINE,
            at,
            execution_id=execution_id,
            pipeline_id=pipeline_id,
            run_number=run_number,
            **options,
        )

    @classmethod
    def for_config(
        cls,
        *,
        execution_id: UUID,
        config_id: UUID,
        config_version: int,
        at: datetime,
        route_ids: Iterable[str],
        config_init_payload: Mapping[str, Any],
        **options: Unpack[ConfigRunOptions],
    ) -> Execution:
        """A config run (seed 004 RunConfig, or a replay): owned by the config."""
        given = options.pop("init_payload_overrides", None)
        overrides = dict(given) if given is not None else None
        return cls._opened(
            RunOwnerKind.CONFIG,
            at,
            execution_id=execution_id,
            config_id=config_id,
            config_version=config_version,
            route_ids=route_ids,
            init_payload=deep_merge(config_init_payload, overrides or {}),
            init_payload_overrides=overrides,
            **options,
        )

    @classmethod
    def _opened(
        cls,
        owner_kind: RunOwnerKind,
        at: datetime,
        *,
        route_ids: Iterable[str] = (),
        args: Mapping[str, Any] | None = None,
        facets: Mapping[str, Any] | None = None,
        timeout: timedelta = DEFAULT_RUN_TIMEOUT,
        **fields: Any,
    ) -> Execution:
        """What every new run records the same way: an aware time, each route once, and
        copies of args and facets (a later edit of the caller's never leaks in)."""
        return cls(
            owner_kind=owner_kind,
            at=aware(at),
            route_ids=list(dict.fromkeys(route_ids)),
            args=dict(args or {}),
            facets=dict(facets or {}),
            timeout=timeout,
            **fields,
        )

    # --- derived values -------------------------------------------------------------------

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at) // timedelta(milliseconds=1)

    @property
    def marquez_state(self) -> MarquezRunState:
        return marquez_state(self.status)

    @property
    def execution_status(self) -> ExecutionStatus:
        return execution_status(self.status)

    # --- delete ---------------------------------------------------------------------------

    def delete(self, *, at: datetime) -> None:
        """Seed 003's DELETE: the run is gone for every later command (UnknownRun)."""
        self._check_live()
        self._deleted(at=aware(at))

    # --- events: state changes only -------------------------------------------------------

    @event("StatusChanged")
    def _status_changed(
        self,
        status: RunStatus,
        at: datetime,
        reported_at: datetime | None,
        reason: str | None = None,
    ) -> None:
        self.status = status
        self.last_transition_at = at
        self.updated_at = max(self.updated_at, at)
        if status in STARTED and self.started_at is None:
            self.started_at = at
        if status in TERMINAL:
            self.ended_at = at
        for route, stage in self.routes.items():
            if closes_stage(status, stage.status):
                self._replace_stage(route, status=status, ended_at=stage_end(at, stage.started_at))

    @event("StageStarted")
    def _stage_started(self, route: str, at: datetime) -> None:
        self._replace_stage(route, status=RunStatus.RUNNING, started_at=at)
        self.updated_at = max(self.updated_at, at)

    @event("StageProgressed")
    def _stage_progressed(
        self, route: str, messages_in: int, messages_out: int, messages_failed: int, at: datetime
    ) -> None:
        self._replace_stage(
            route,
            messages_in=messages_in,
            messages_out=messages_out,
            messages_failed=messages_failed,
        )
        self.updated_at = max(self.updated_at, at)

    @event("StageFinished")
    def _stage_finished(
        self,
        route: str,
        status: RunStatus,
        messages_in: int,
        messages_out: int,
        messages_failed: int,
        at: datetime,
    ) -> None:
        self._replace_stage(
            route,
            status=status,
            messages_in=messages_in,
            messages_out=messages_out,
            messages_failed=messages_failed,
            ended_at=stage_end(at, self.routes[route].started_at),
        )
        self.updated_at = max(self.updated_at, at)

    def _replace_stage(self, route: str, **changes: Any) -> None:
        # A new dict, not an in-place edit: a snapshot this state came from may share it.
        stage = self.routes[route].model_copy(update=changes)
        self.routes = {**self.routes, route: stage}

    @event("Deleted")
    def _deleted(self, at: datetime) -> None:
        self.deleted = True
        self.updated_at = max(self.updated_at, at)


__all__ = [
    "DEFAULT_RUN_TIMEOUT",
    "ConfigRunOptions",
    "Execution",
    "ExecutionState",
    "PipelineRunOptions",
    "RunOptions",
    "RunOwnerKind",
]
