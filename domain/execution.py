"""The Execution aggregate: one run of a pipeline (seed 003) or of a config (seed 004).

Its status moves only along `domain.run_status.TRANSITIONS`; seeds 002 and 004 read it
through `contracts.run_views`. Every verb checks first and raises a `DomainError` before
its event is triggered, so a refused command leaves no pending event; the `@event`
methods only copy their arguments into state, so replay is exact. The stage verbs live
in `domain.stage_runs`, the state's field list in `domain.execution_fields`.

Time. The caller passes `now` (its clock); a transition's time is its `at` when given,
else `now`. A late message never rewinds a run:
- the first transition may carry any `at` (seed 002's own example starts a run before
  its `createdAt`), and every later one is compared with the last transition's time;
- a move to a NON-terminal status with `at` earlier than the last transition is refused
  with `StaleRunTransition` (it describes a past the run has already left);
- a move to a TERMINAL status is still accepted when it is late (the run did end, and the
  table already said it may), but its recorded time is clamped to the last transition's
  time, so `started_at <= ended_at` and no timestamp ever moves backwards. The event keeps
  the time the message reported in `reported_at`.
Naive datetimes are taken as UTC.

A run's deadline is `created_at + timeout` (21 days by default, Esper's documented
default): a run stuck before it started should time out too. `time_out(now)` is refused
before the deadline, so a sweep cannot time out a run early.

Seed 004's effective init payload is the config's init payload deep-merged with the
overrides (`domain.payload_merge`); the creation event also records the init route's
inbound topic (`init_topic`), which the outbox relay publishes the init message to.

The orchestrator's decisions (`decide`) are a table, `DECISIONS`, from decision to the
status it moves the execution to. A decision made on a version the execution has since
left is refused (`StaleDecision`, 409) while the execution is still going; once it has
finished, every decision gets the answer any transition gets (a no-op for the status it
already has, `RunAlreadyTerminal` otherwise), whatever version it was made on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final
from uuid import UUID

from eventsourcing.domain import event

from contracts.orchestrator_commands import ExecutionDecision
from contracts.run_views import (
    STARTED,
    TERMINAL,
    closes_stage,
    execution_status,
    marquez_state,
    stage_end,
)
from contracts.statuses import ExecutionStatus, MarquezRunState, ReplaySource, RunStatus
from domain import run_status as rs
from domain.base import Aggregate, AggregateSnapshot
from domain.execution_fields import (
    ExecutionState,
    JsonObject,
    RunOwnerKind,
    StageRun,
    aware,
)
from domain.payload_merge import deep_merge
from domain.run_status import MarquezAction, Verdict
from domain.stage_runs import StageBookkeeping

DEFAULT_RUN_TIMEOUT = timedelta(days=21)

# An orchestrator decision -> the status it moves the execution to.
DECISIONS: Final[Mapping[ExecutionDecision, RunStatus]] = {
    ExecutionDecision.START: RunStatus.RUNNING,
    ExecutionDecision.COMPLETE: RunStatus.SUCCESS,
    ExecutionDecision.FAIL: RunStatus.FAILURE,
    ExecutionDecision.TIME_OUT: RunStatus.TIMEOUT,
    ExecutionDecision.INTERRUPT: RunStatus.INTERRUPTED,
}


class _CreatedUpcasts(Aggregate):
    """The upcasters of Execution's creation event, on a base class so the library still
    derives that event's fields from `Execution.__init__` (and only adds them here)."""

    class Created(Aggregate.Created):
        class_version: ClassVar[int] = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["init_topic"] = None  # v1 had no init topic: no init message to publish


class Execution(StageBookkeeping, _CreatedUpcasts):
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
        # Last, with a default: creation events stored before it existed lack it.
        init_topic: str | None = None,
    ) -> None:
        self.owner_kind = owner_kind
        self.pipeline_id = pipeline_id
        self.config_id = config_id
        self.config_version = config_version
        self.run_number = run_number
        self.tag = tag
        self.parent_execution_id = parent_execution_id
        self.replay_source = replay_source
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
        route_ids: Iterable[str] = (),
        config_id: UUID | None = None,
        config_version: int | None = None,
        tag: str | None = None,
        args: Mapping[str, Any] | None = None,
        facets: Mapping[str, Any] | None = None,
        nominal_start_time: datetime | None = None,
        nominal_end_time: datetime | None = None,
        timeout: timedelta = DEFAULT_RUN_TIMEOUT,
    ) -> Execution:
        """A pipeline run (seed 003; seed 002's runs are these too): owned by the pipeline."""
        return cls(
            execution_id=execution_id,
            owner_kind=RunOwnerKind.PIPELINE,
            at=aware(at),
            route_ids=list(dict.fromkeys(route_ids)),
            pipeline_id=pipeline_id,
            config_id=config_id,
            config_version=config_version,
            run_number=run_number,
            tag=tag,
            args=dict(args or {}),
            facets=dict(facets or {}),
            nominal_start_time=nominal_start_time,
            nominal_end_time=nominal_end_time,
            timeout=timeout,
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
        init_payload_overrides: Mapping[str, Any] | None = None,
        init_route: str | None = None,
        init_topic: str | None = None,
        run_number: int | None = None,
        tag: str | None = None,
        parent_execution_id: UUID | None = None,
        replay_source: ReplaySource | None = None,
        skip_init_message: bool = False,
        args: Mapping[str, Any] | None = None,
        facets: Mapping[str, Any] | None = None,
        timeout: timedelta = DEFAULT_RUN_TIMEOUT,
    ) -> Execution:
        """A config run (seed 004 RunConfig, or a replay): owned by the config."""
        overrides = dict(init_payload_overrides) if init_payload_overrides is not None else None
        return cls(
            execution_id=execution_id,
            owner_kind=RunOwnerKind.CONFIG,
            at=aware(at),
            route_ids=list(dict.fromkeys(route_ids)),
            config_id=config_id,
            config_version=config_version,
            run_number=run_number,
            tag=tag,
            parent_execution_id=parent_execution_id,
            replay_source=replay_source,
            skip_init_message=skip_init_message,
            init_route=init_route,
            init_topic=init_topic,
            init_payload=deep_merge(config_init_payload, overrides or {}),
            init_payload_overrides=overrides,
            args=dict(args or {}),
            facets=dict(facets or {}),
            timeout=timeout,
        )

    # --- derived values -------------------------------------------------------------------

    @property
    def deadline(self) -> datetime:
        return self.created_at + self.timeout

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

    # --- status verbs ---------------------------------------------------------------------

    def transition(
        self,
        to: RunStatus | str,
        *,
        at: datetime | None = None,
        now: datetime,
        reason: str | None = None,
    ) -> bool:
        """Move to `to` (see the module docstring for time). False when already there.

        `reason` (why, e.g. the orchestrator's word on a failure) is kept on the event."""
        self._check_live()
        target = RunStatus(to)
        match rs.verdict(self.status, target):
            case Verdict.NO_OP:
                return False
            case Verdict.TERMINAL:
                raise rs.run_already_terminal(self.id, self.status, target)
            case Verdict.ILLEGAL:
                raise rs.illegal_run_transition(self.id, self.status, target)
        if target is RunStatus.INVALID and self.routes:
            raise rs.run_has_routes(self.id, list(self.routes))
        reported = aware(at) if at is not None else None
        when = reported if reported is not None else aware(now)
        last = self.last_transition_at
        if last is not None and when < last:
            if target not in TERMINAL:
                raise rs.stale_run_transition(
                    self.id, self.status, target, when.isoformat(), last.isoformat()
                )
            when = last
        self._status_changed(status=target, at=when, reported_at=reported, reason=reason)
        return True

    def apply_marquez_action(
        self, action: MarquezAction | str, *, at: datetime | None = None, now: datetime
    ) -> bool:
        """Seed 002's start / complete / fail / abort."""
        return self.transition(rs.from_marquez_action(action), at=at, now=now)

    def start(self, *, at: datetime | None = None, now: datetime) -> bool:
        return self.transition(RunStatus.RUNNING, at=at, now=now)

    def cancel(self, *, at: datetime | None = None, now: datetime) -> bool:
        """CancelExecution (seed 004) and Esper's user cancel."""
        return self.transition(RunStatus.CANCELLED, at=at, now=now)

    def time_out(self, *, now: datetime, reason: str | None = None) -> bool:
        """The deadline sweep: only a run past its deadline times out."""
        self._check_live()
        if self.status is RunStatus.TIMEOUT:
            return False
        if self.is_terminal:
            raise rs.run_already_terminal(self.id, self.status, RunStatus.TIMEOUT)
        if aware(now) < self.deadline:
            raise rs.run_deadline_not_reached(self.id, self.deadline, aware(now))
        return self.transition(RunStatus.TIMEOUT, now=now, reason=reason)

    def decide(
        self,
        decision: ExecutionDecision | str,
        *,
        expected_version: int | None = None,
        reason: str | None = None,
        at: datetime | None = None,
        now: datetime,
    ) -> bool:
        """An orchestrator decision (`DECISIONS`). False when it changes nothing.

        A timeout is checked against, and recorded at, `now` (the handler's clock), never
        a reported `at`: the deadline is ours to judge."""
        self._check_live()
        chosen = ExecutionDecision(decision)
        if not self.is_terminal and expected_version not in (None, self.version):
            raise rs.stale_decision(self.id, chosen, expected_version, self.version)
        if chosen is ExecutionDecision.TIME_OUT:
            return self.time_out(now=now, reason=reason)
        return self.transition(DECISIONS[chosen], at=at, now=now, reason=reason)

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


__all__ = ["DECISIONS", "DEFAULT_RUN_TIMEOUT", "Execution", "ExecutionState", "RunOwnerKind"]
