"""Random sequences of user actions and reconciler steps against one Pipeline, checking the
lifecycle's invariants after every step and exact replay at the end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from contracts.statuses import (
    BootstrapPolicy,
    ProgramStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeStatus,
    StorageStatus,
)
from domain.errors import DomainError
from domain.pipeline import Pipeline
from domain.pipeline_table import STATES, Step
from tests.domain.pipeline_builders import state_of

R = ResourcesStatus
D = ResourcesDesiredStatus

# Mostly about the current deployment; sometimes about an earlier (or unknown) one.
STALE = st.sampled_from([False, False, False, True])
ERRORS = st.one_of(
    st.none(), st.just({"message": "boom", "error_code": "RunnerCheckError", "details": None})
)


class PipelineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = datetime(2026, 1, 1, tzinfo=UTC)
        self.pipeline = Pipeline(name="p", config_id=uuid4(), at=self.clock)
        self.events: list[Any] = self.pipeline.collect_events()
        self.old_deployments: list[UUID] = []

    def at(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def attempt(self, call: Callable[[Pipeline], object]) -> None:
        p = self.pipeline
        before = state_of(p)
        before_status = p.resources_status
        try:
            call(p)
        except DomainError:
            # A refusal leaves nothing behind: no pending event, no changed attribute.
            assert p.collect_events() == []
            assert state_of(p) == before
            return
        self.events += p.collect_events()
        if p.resources_status is R.STOPPING and before_status is not R.STOPPING:
            assert p.resources_desired_status is D.STOPPED
        if p.deployment_id is not None and p.deployment_id not in self.old_deployments:
            self.old_deployments.append(p.deployment_id)

    def deployment(self, stale: bool) -> UUID:
        p = self.pipeline
        if stale or p.deployment_id is None:
            return self.old_deployments[0] if self.old_deployments else uuid4()
        return p.deployment_id

    # --- user actions ---------------------------------------------------------------------

    @rule(
        initial=st.sampled_from(["running", "paused", "standby", "bogus"]),
        policy=st.sampled_from(list(BootstrapPolicy)),
        dismiss=st.booleans(),
    )
    def start(self, initial: str, policy: BootstrapPolicy, dismiss: bool) -> None:
        self.attempt(lambda p: p.start(initial, policy, dismiss, at=self.at()))

    @rule(force=st.booleans())
    def stop(self, force: bool) -> None:
        self.attempt(lambda p: p.stop(force, at=self.at()))

    @rule(verb=st.sampled_from(["pause", "resume", "approve", "checkpoint", "dismiss_error"]))
    def interact(self, verb: str) -> None:
        self.attempt(lambda p: getattr(p, verb)(at=self.at()))

    @rule()
    def clear(self) -> None:
        self.attempt(lambda p: p.clear(at=self.at()))

    @rule(name=st.sampled_from([None, "p", "q"]), new_config=st.booleans())
    def update(self, name: str | None, new_config: bool) -> None:
        config = uuid4() if new_config else None
        self.attempt(lambda p: p.update(name=name, config_id=config, at=self.at()))

    @precondition(lambda self: len(self.events) > 25)  # let most runs live a while first
    @rule()
    def delete(self) -> None:
        self.attempt(lambda p: p.delete(at=self.at()))

    @rule(ok=st.booleans())
    def program_validated(self, ok: bool) -> None:
        self.attempt(lambda p: p.program_validated(ok, at=self.at()))

    # --- reconciler steps -----------------------------------------------------------------

    @rule(
        statuses=st.lists(st.sampled_from(list(RuntimeStatus)), min_size=1, max_size=4),
        error=ERRORS,
    )
    def automaton(self, statuses: list[RuntimeStatus], error: dict[str, Any] | None) -> None:
        """A few steps Feldera's automaton would take next (docs/pipeline-lifecycle.md §5),
        so runs reach deployment."""
        for status in statuses:
            self.automaton_step(status, error)

    def automaton_step(self, status: RuntimeStatus, error: dict[str, Any] | None) -> None:
        p = self.pipeline
        dep = p.deployment_id or uuid4()
        state = (p.storage_status, p.resources_status, p.resources_desired_status)
        match state:
            case (StorageStatus.CLEARING, R.STOPPED, D.STOPPED):
                self.attempt(lambda p: p.storage_cleared(at=self.at()))
            case (_, R.STOPPED, D.PROVISIONED) if p.program_status is ProgramStatus.PENDING:
                self.attempt(lambda p: p.program_validated(True, at=self.at()))
            case (_, R.STOPPED, D.PROVISIONED) if p.program_status is ProgramStatus.SQL_ERROR:
                self.attempt(lambda p: p.start_failed({"error_code": "E"}, at=self.at()))
            case (_, R.STOPPED, D.PROVISIONED):
                self.attempt(lambda p: p.begin_provisioning(at=self.at()))
            case (_, R.PROVISIONING | R.PROVISIONED, D.STOPPED):
                self.attempt(lambda p: p.begin_stopping(dep, at=self.at()))
            case (_, R.PROVISIONING, D.PROVISIONED):
                self.attempt(lambda p: p.provisioned(dep, at=self.at()))
            case (_, R.PROVISIONED, D.PROVISIONED) if p.runtime_status is RuntimeStatus.SUSPENDED:
                self.attempt(lambda p: p.begin_stopping(dep, error, at=self.at()))
            case (_, R.PROVISIONED, D.PROVISIONED):
                self.attempt(lambda p: p.runtime_status_reported(dep, status, at=self.at()))
            case (_, R.STOPPING, _):
                self.attempt(lambda p: p.stopped(dep, at=self.at()))

    @rule(
        step=st.sampled_from(list(Step)),
        stale=STALE,
        status=st.sampled_from(list(RuntimeStatus)),
        error=ERRORS,
    )
    def any_step(
        self, step: Step, stale: bool, status: RuntimeStatus, error: dict[str, Any] | None
    ) -> None:
        """Any reconciler step at any time, possibly about an old deployment."""
        dep = self.deployment(stale)
        at = self.at()
        calls: dict[Step, Callable[[Pipeline], object]] = {
            Step.BEGIN_PROVISIONING: lambda p: p.begin_provisioning(at=at),
            Step.START_FAILED: lambda p: p.start_failed({"error_code": "E"}, at=at),
            Step.PROVISIONED: lambda p: p.provisioned(dep, at=at),
            Step.RUNTIME_STATUS_REPORTED: lambda p: p.runtime_status_reported(dep, status, at=at),
            Step.BEGIN_STOPPING: lambda p: p.begin_stopping(dep, error, at=at),
            Step.PROVISIONING_TIMED_OUT: lambda p: p.provisioning_timed_out(dep, 20, at=at),
            Step.BOOTSTRAP_REJECTED: lambda p: p.bootstrap_rejected(dep, at=at),
            Step.STOPPED: lambda p: p.stopped(dep, at=at),
        }
        self.attempt(calls[step])

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def combined_status_is_never_provisioned(self) -> None:
        assert self.pipeline.deployment_status.value != "Provisioned"

    @invariant()
    def runtime_fields_only_while_provisioned(self) -> None:
        p = self.pipeline
        runtime = (p.runtime_status, p.runtime_desired_status, p.runtime_status_since)
        if p.resources_status is R.PROVISIONED:
            assert None not in runtime
        else:
            assert runtime == (None, None, None)
            assert p.runtime_status_details is None

    @invariant()
    def deployment_id_iff_not_stopped(self) -> None:
        p = self.pipeline
        assert (p.deployment_id is not None) == (p.resources_status is not R.STOPPED)

    @invariant()
    def stopping_is_always_desired_stopped(self) -> None:
        p = self.pipeline
        if p.resources_status is R.STOPPING:
            assert p.resources_desired_status is D.STOPPED

    @invariant()
    def state_is_in_the_action_matrix(self) -> None:
        p = self.pipeline
        assert (p.resources_status, p.resources_desired_status) in STATES

    @invariant()
    def storage_in_use_while_deployed(self) -> None:
        p = self.pipeline
        if p.resources_status is not R.STOPPED:
            assert p.storage_status is StorageStatus.IN_USE

    @invariant()
    def fully_stopped_keeps_no_start_parameters(self) -> None:
        p = self.pipeline
        if (p.resources_status, p.resources_desired_status) == (R.STOPPED, D.STOPPED):
            assert p.deployment_initial is None and p.bootstrap_policy is None

    @invariant()
    def desired_provisioned_has_start_parameters(self) -> None:
        p = self.pipeline
        if p.resources_desired_status is D.PROVISIONED:
            assert p.deployment_initial is not None and p.bootstrap_policy is not None
            assert p.deployment_error is None

    @invariant()
    def refresh_version_counts_every_event(self) -> None:
        assert self.pipeline.refresh_version == len(self.events)

    @invariant()
    def replay_rebuilds_the_state(self) -> None:
        rebuilt: Pipeline | None = None
        for e in self.events:
            rebuilt = e.mutate(rebuilt)
        assert rebuilt is not None
        assert state_of(rebuilt) == state_of(self.pipeline)


PipelineMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPipelineMachine = PipelineMachine.TestCase
