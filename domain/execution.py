"""The Execution aggregate: one run of a pipeline (seed 003) or of a config (seed 004).

Its status moves only along `domain.run_status.TRANSITIONS`; seeds 002 and 004 read it
through the mapping functions there. Every verb checks first and raises a `DomainError`
before its event is triggered, so a refused command leaves no pending event; the
`@event` methods only copy their arguments into state, so replay is exact.

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

Stage runs (one per route) count messages in/out/failed as cumulative totals: a report
only raises a counter, never lowers it, so a redelivered or reordered report is harmless.
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
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Final
from uuid import UUID

from eventsourcing.domain import event

from contracts.orchestrator_commands import ExecutionDecision
from contracts.statuses import ExecutionStatus, MarquezRunState, ReplaySource, RunStatus
from domain import run_status as rs
from domain.base import Aggregate, AggregateSnapshot, Immutable, SnapshotState
from domain.errors import DomainError
from domain.payload_merge import deep_merge
from domain.run_status import TERMINAL, MarquezAction, Verdict

DEFAULT_RUN_TIMEOUT = timedelta(days=21)

JsonObject = dict[str, Any]

# An orchestrator decision -> the status it moves the execution to.
DECISIONS: Final[Mapping[ExecutionDecision, RunStatus]] = {
    ExecutionDecision.START: RunStatus.RUNNING,
    ExecutionDecision.COMPLETE: RunStatus.SUCCESS,
    ExecutionDecision.FAIL: RunStatus.FAILURE,
    ExecutionDecision.TIME_OUT: RunStatus.TIMEOUT,
    ExecutionDecision.INTERRUPT: RunStatus.INTERRUPTED,
}


class RunOwnerKind(StrEnum):
    PIPELINE = "pipeline"
    CONFIG = "config"


class StageRun(Immutable):
    """One route's part of an execution."""

    route: str
    status: RunStatus = RunStatus.PENDING
    messages_in: int = 0
    messages_out: int = 0
    messages_failed: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None


# An execution stopped from outside (cancel, deadline, crash) stops its unfinished stages
# with it: nobody will report them again, and they must not read as still running.
CLOSES_OPEN_STAGES: frozenset[RunStatus] = frozenset(
    {RunStatus.CANCELLED, RunStatus.TIMEOUT, RunStatus.INTERRUPTED}
)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ExecutionState(SnapshotState):
    owner_kind: RunOwnerKind
    pipeline_id: UUID | None
    config_id: UUID | None
    config_version: int | None
    run_number: int | None
    tag: str | None
    parent_execution_id: UUID | None
    replay_source: ReplaySource | None
    skip_init_message: bool
    init_route: str | None
    # Snapshots taken before init_topic existed lack it.
    init_topic: str | None = None
    init_payload: JsonObject | None
    init_payload_overrides: JsonObject | None
    args: JsonObject
    facets: JsonObject
    nominal_start_time: datetime | None
    nominal_end_time: datetime | None
    timeout: timedelta
    routes: dict[str, StageRun]
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    last_transition_at: datetime | None
    deleted: bool


class _CreatedUpcasts(Aggregate):
    """The upcasters of Execution's creation event, on a base class so the library still
    derives that event's fields from `Execution.__init__` (and only adds them here)."""

    class Created(Aggregate.Created):
        class_version: ClassVar[int] = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["init_topic"] = None  # v1 had no init topic: no init message to publish


class Execution(_CreatedUpcasts):
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
        self.args: JsonObject = dict(args or {})
        self.facets: JsonObject = dict(facets or {})
        self.nominal_start_time = nominal_start_time
        self.nominal_end_time = nominal_end_time
        self.timeout = timeout
        self.routes = {route: StageRun(route=route) for route in route_ids}
        self.status = RunStatus.PENDING
        self.created_at = at
        self.updated_at = at
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.last_transition_at: datetime | None = None
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
            at=_aware(at),
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
            at=_aware(at),
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
    def owner_id(self) -> UUID:
        owner = self.pipeline_id if self.owner_kind is RunOwnerKind.PIPELINE else self.config_id
        assert owner is not None  # both factories set the owner's id
        return owner

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

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
        return rs.to_marquez(self.status)

    @property
    def execution_status(self) -> ExecutionStatus:
        return rs.to_execution_status(self.status)

    @property
    def all_stages_finished(self) -> bool:
        return all(stage.status in TERMINAL for stage in self.routes.values())

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
        reported = _aware(at) if at is not None else None
        when = reported if reported is not None else _aware(now)
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

    def complete(self, *, at: datetime | None = None, now: datetime) -> bool:
        return self.transition(RunStatus.SUCCESS, at=at, now=now)

    def fail(self, *, at: datetime | None = None, now: datetime) -> bool:
        return self.transition(RunStatus.FAILURE, at=at, now=now)

    def abort(self, *, at: datetime | None = None, now: datetime) -> bool:
        return self.transition(RunStatus.CANCELLED, at=at, now=now)

    def cancel(self, *, at: datetime | None = None, now: datetime) -> bool:
        """CancelExecution (seed 004) and Esper's user cancel."""
        return self.transition(RunStatus.CANCELLED, at=at, now=now)

    def mark_interrupted(self, *, at: datetime | None = None, now: datetime) -> bool:
        """The orchestrator found this run unfinished after a crash."""
        return self.transition(RunStatus.INTERRUPTED, at=at, now=now)

    def invalid(self, *, at: datetime | None = None, now: datetime) -> bool:
        """Esper's INVALID: the run has no stage runs (zero routes)."""
        return self.transition(RunStatus.INVALID, at=at, now=now)

    def time_out(self, *, now: datetime, reason: str | None = None) -> bool:
        """The deadline sweep: only a run past its deadline times out."""
        self._check_live()
        if self.status is RunStatus.TIMEOUT:
            return False
        if self.is_terminal:
            raise rs.run_already_terminal(self.id, self.status, RunStatus.TIMEOUT)
        if _aware(now) < self.deadline:
            raise rs.run_deadline_not_reached(self.id, self.deadline, _aware(now))
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
            raise stale_decision(self.id, chosen, expected_version, self.version)
        if chosen is ExecutionDecision.TIME_OUT:
            return self.time_out(now=now, reason=reason)
        return self.transition(DECISIONS[chosen], at=at, now=now, reason=reason)

    def delete(self, *, at: datetime) -> None:
        """Seed 003's DELETE: the run is gone for every later command (UnknownRun)."""
        self._check_live()
        self._deleted(at=_aware(at))

    # --- stage verbs ----------------------------------------------------------------------

    def stage_started(self, route: str, *, at: datetime) -> bool:
        stage = self._stage_for(route, "stage_started")
        match rs.stage_verdict(stage.status, RunStatus.RUNNING):
            case Verdict.NO_OP:
                return False
            case Verdict.TERMINAL:
                raise rs.stage_already_finished(self.id, route, stage.status)
            case Verdict.ILLEGAL:  # pragma: no cover - the stage table allows pending -> running
                raise rs.illegal_stage_transition(self.id, route, stage.status, RunStatus.RUNNING)
        self._stage_started(route=route, at=_aware(at))
        return True

    def stage_progress(
        self, route: str, messages_in: int, messages_out: int, messages_failed: int, *, at: datetime
    ) -> bool:
        """Report cumulative counters; only counters that grew are recorded."""
        stage = self._stage_for(route, "stage_progress")
        if stage.status in TERMINAL:
            raise rs.stage_already_finished(self.id, route, stage.status)
        counts = self._checked_counts(route, messages_in, messages_out, messages_failed)
        if counts == (stage.messages_in, stage.messages_out, stage.messages_failed):
            return False
        self._stage_progressed(
            route=route,
            messages_in=counts[0],
            messages_out=counts[1],
            messages_failed=counts[2],
            at=_aware(at),
        )
        return True

    def stage_finished(
        self,
        route: str,
        status: RunStatus | str,
        *,
        at: datetime,
        messages_in: int = 0,
        messages_out: int = 0,
        messages_failed: int = 0,
    ) -> bool:
        """A route drained (or failed): its final status and, optionally, final counters."""
        stage = self._stage_for(route, "stage_finished")
        target = RunStatus(status)
        if target not in TERMINAL:
            raise rs.invalid_stage_report(self.id, route, f"'{target}' is not a final status")
        match rs.stage_verdict(stage.status, target):
            case Verdict.NO_OP:
                return False
            case Verdict.TERMINAL:
                raise rs.stage_already_finished(self.id, route, stage.status)
            case Verdict.ILLEGAL:  # pragma: no cover - every stage may finish
                raise rs.illegal_stage_transition(self.id, route, stage.status, target)
        counts = self._checked_counts(route, messages_in, messages_out, messages_failed)
        self._stage_finished(
            route=route,
            status=target,
            messages_in=counts[0],
            messages_out=counts[1],
            messages_failed=counts[2],
            at=_aware(at),
        )
        return True

    def report_stage(
        self,
        route: str,
        messages_in: int,
        messages_out: int,
        messages_failed: int,
        *,
        finished: RunStatus | str | None = None,
        at: datetime,
    ) -> bool:
        """The orchestrator's ReportStageProgress: a pending stage starts with its first
        report, the counters only grow, and `finished` (a final status) ends the stage.
        Everything is checked before the first event, so a refused report changes nothing."""
        stage = self._stage_for(route, "report_stage")
        outcome = None if finished is None else RunStatus(finished)
        if outcome is not None and outcome not in TERMINAL:
            raise rs.invalid_stage_report(self.id, route, f"'{outcome}' is not a final status")
        self._checked_counts(route, messages_in, messages_out, messages_failed)
        if outcome is None and stage.status in TERMINAL:
            raise rs.stage_already_finished(self.id, route, stage.status)
        started = stage.status == RunStatus.PENDING and self.stage_started(route, at=at)
        if outcome is None:
            counted = self.stage_progress(route, messages_in, messages_out, messages_failed, at=at)
        else:
            counted = self.stage_finished(
                route,
                outcome,
                at=at,
                messages_in=messages_in,
                messages_out=messages_out,
                messages_failed=messages_failed,
            )
        return started or counted

    # --- guards ---------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self.deleted:
            raise rs.unknown_run(self.id)

    def _stage_for(self, route: str, action: str) -> StageRun:
        self._check_live()
        if self.is_terminal:
            raise rs.run_already_finished(self.id, self.status, action)
        stage = self.routes.get(route)
        if stage is None:
            raise rs.unknown_route(self.id, route)
        return stage

    def _checked_counts(
        self, route: str, messages_in: int, messages_out: int, messages_failed: int
    ) -> tuple[int, int, int]:
        given = (messages_in, messages_out, messages_failed)
        if min(given) < 0:
            raise rs.invalid_stage_report(self.id, route, f"negative message counts {list(given)}")
        stage = self.routes[route]
        current = (stage.messages_in, stage.messages_out, stage.messages_failed)
        return (
            max(given[0], current[0]),
            max(given[1], current[1]),
            max(given[2], current[2]),
        )

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
        if status in rs.STARTED and self.started_at is None:
            self.started_at = at
        if status in TERMINAL:
            self.ended_at = at
        if status in CLOSES_OPEN_STAGES:
            for route, stage in self.routes.items():
                if stage.status not in TERMINAL:
                    ended = max(at, stage.started_at) if stage.started_at is not None else at
                    self._replace_stage(route, status=status, ended_at=ended)

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
        stage = self.routes[route]
        # A stage never ends before it started, even when the report's clock lags.
        ended = max(at, stage.started_at) if stage.started_at is not None else at
        self._replace_stage(
            route,
            status=status,
            messages_in=messages_in,
            messages_out=messages_out,
            messages_failed=messages_failed,
            ended_at=ended,
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


def stale_decision(
    execution_id: UUID, decision: ExecutionDecision, expected: int | None, actual: int
) -> DomainError:
    return DomainError(
        "StaleDecision",
        f"Decision '{decision}' on execution '{execution_id}' was made at version {expected}, "
        f"but the execution is at version {actual}",
        {
            "execution_id": str(execution_id),
            "decision": decision.value,
            "expected_version": expected,
            "version": actual,
        },
        409,
    )
