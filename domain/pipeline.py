"""The Pipeline aggregate: Feldera's deployment lifecycle (resources and runtime status).

User actions (start, stop, pause, ...) and reconciler steps (begin_provisioning,
provisioned, ...) are both verbs here. Each verb checks the tables in
`domain.pipeline_table` and raises a `DomainError` from `domain.pipeline_errors` before
its event is triggered, so a refused command leaves no pending event; the `@event`
methods only mutate state, from their arguments and the state alone, so replay is exact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event
from uuid6 import uuid7

from contracts.statuses import (
    BootstrapPolicy,
    CombinedDesiredStatus,
    CombinedStatus,
    InitialStatus,
    ProgramStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
    StorageStatus,
)
from domain import pipeline_errors as err
from domain.base import Aggregate, AggregateSnapshot, SnapshotState
from domain.pipeline_table import (
    INITIAL_RUNTIME_DESIRED,
    RECONCILER_STEPS,
    STORAGE_TRANSITIONS,
    Action,
    Outcome,
    Step,
    combined_desired_status,
    combined_status,
    may_transition_to,
    outcome,
    resources_transition_allowed,
    storage_change_needs_stop,
)

R = ResourcesStatus
D = ResourcesDesiredStatus
RD = RuntimeDesiredStatus

JsonObject = dict[str, Any]
_INITIAL_VALUES = frozenset(s.value for s in InitialStatus)


class PipelineState(SnapshotState):
    name: str
    description: str
    config_id: UUID | None
    program_status: ProgramStatus
    program_status_since: datetime
    pipeline_version: int
    refresh_version: int
    created_at: datetime
    deleted: bool
    resources_status: ResourcesStatus
    resources_status_since: datetime
    resources_desired_status: ResourcesDesiredStatus
    resources_desired_status_since: datetime
    runtime_status: RuntimeStatus | None
    runtime_status_details: JsonObject | None
    runtime_status_since: datetime | None
    runtime_desired_status: RuntimeDesiredStatus | None
    runtime_desired_status_since: datetime | None
    deployment_id: UUID | None
    deployment_initial: InitialStatus | None
    deployment_error: JsonObject | None
    storage_status: StorageStatus
    storage_status_since: datetime
    bootstrap_policy: BootstrapPolicy | None
    bootstrap_approved: bool
    checkpoint_sequence_number: int


class Pipeline(Aggregate):
    """One pipeline's history. Its name lives in a `NameIndex`; its id is a UUIDv7."""

    class Snapshot(AggregateSnapshot):
        state: PipelineState

    @event("Created")
    def __init__(
        self, name: str, config_id: UUID | None, at: datetime, description: str = ""
    ) -> None:
        self.name = name
        self.description = description
        self.config_id = config_id
        self.program_status = ProgramStatus.PENDING
        self.program_status_since = at
        self.pipeline_version = 1
        self.refresh_version = 1
        self.created_at = at
        self.deleted = False
        self.resources_status = R.STOPPED
        self.resources_status_since = at
        self.resources_desired_status = D.STOPPED
        self.resources_desired_status_since = at
        self.runtime_status: RuntimeStatus | None = None
        self.runtime_status_details: JsonObject | None = None
        self.runtime_status_since: datetime | None = None
        self.runtime_desired_status: RuntimeDesiredStatus | None = None
        self.runtime_desired_status_since: datetime | None = None
        self.deployment_id: UUID | None = None
        self.deployment_initial: InitialStatus | None = None
        self.deployment_error: JsonObject | None = None
        self.storage_status = StorageStatus.CLEARED
        self.storage_status_since = at
        self.bootstrap_policy: BootstrapPolicy | None = None
        self.bootstrap_approved = False
        self.checkpoint_sequence_number = 0

    # --- derived (combined) status, §1.3 ------------------------------------------------

    @property
    def deployment_status(self) -> CombinedStatus:
        return combined_status(self.resources_status, self.runtime_status)

    @property
    def deployment_status_since(self) -> datetime:
        return _latest(self.resources_status_since, self.runtime_status_since)

    @property
    def deployment_desired_status(self) -> CombinedDesiredStatus:
        return combined_desired_status(
            self.resources_desired_status, self.runtime_desired_status, self.deployment_initial
        )

    @property
    def deployment_desired_status_since(self) -> datetime:
        return _latest(self.resources_desired_status_since, self.runtime_desired_status_since)

    # --- user actions ---------------------------------------------------------------------

    def update(
        self,
        *,
        at: datetime,
        name: str | None = None,
        description: str | None = None,
        config_id: UUID | None = None,
    ) -> None:
        """Edit the pipeline. Renaming also moves its `NameIndex` (the caller's job)."""
        self._check_live()
        core = [
            field
            for field, new, old in (
                ("name", name, self.name),
                ("config_id", config_id, self.config_id),
            )
            if new is not None and new != old
        ]
        if core and self._outcome(Action.UPDATE) is Outcome.UPDATE_RESTRICTED:
            raise err.update_restricted_to_stopped()
        if "name" in core and self.storage_status is not StorageStatus.CLEARED:
            raise err.edit_restricted_to_cleared_storage(["name"])
        new_description = description if description is not None else self.description
        if not core and new_description == self.description:
            return
        self._updated(
            name=name if name is not None else self.name,
            description=new_description,
            config_id=config_id if config_id is not None else self.config_id,
            at=at,
        )

    def start(
        self,
        initial: InitialStatus | str = InitialStatus.RUNNING,
        bootstrap_policy: BootstrapPolicy = BootstrapPolicy.AWAIT_APPROVAL,
        dismiss_error: bool = True,
        *,
        at: datetime,
    ) -> str:
        """`/start`, with Feldera's checks in Feldera's order (§2.1)."""
        self._check_live()
        if initial not in _INITIAL_VALUES:
            raise err.unknown_initial(str(initial))
        initial = InitialStatus(initial)
        if (
            self._outcome(Action.START) is Outcome.ILLEGAL
            # A suspend under way is a stop under way: nothing leaves Suspended.
            or self.runtime_desired_status is RD.SUSPENDED
        ):
            raise err.illegal_pipeline_action(
                self.resources_status, self.resources_desired_status, D.PROVISIONED
            )
        if self.deployment_error is not None and not dismiss_error:
            raise err.cannot_start_with_undismissed_error()
        if self.storage_status is StorageStatus.CLEARING:
            raise err.cannot_start_while_clearing_storage()
        if self.program_status is ProgramStatus.SQL_ERROR:
            raise err.cannot_start_with_compilation_error()
        if self.deployment_initial not in (None, initial):
            raise err.initial_immutable_unless_stopped()
        if self.bootstrap_policy not in (None, bootstrap_policy):
            raise err.bootstrap_policy_immutable_unless_stopped()
        if (
            self.resources_desired_status is D.STOPPED
            or self.deployment_initial is None
            or self.bootstrap_policy is None
            or (dismiss_error and self.deployment_error is not None)
        ):
            self._start_requested(
                initial=initial,
                bootstrap_policy=bootstrap_policy,
                dismiss_error=dismiss_error,
                at=at,
            )
        return "Pipeline is starting"

    def stop(self, force: bool = False, *, at: datetime) -> str:
        """`/stop`: forced, or (not forced, while Provisioned) a suspend to the runtime."""
        self._check_live()
        if force or self._outcome(Action.STOP) is Outcome.FORCED:
            if self.resources_desired_status is D.PROVISIONED or (
                self.resources_status is R.STOPPED
                and (self.deployment_initial is not None or self.bootstrap_policy is not None)
            ):
                self._stop_requested(at=at)
            return "Pipeline is forcefully stopping"
        current = self._forwarded(Action.STOP)
        if not may_transition_to(current, RD.SUSPENDED):
            raise err.invalid_transition("suspend", current)
        if current is not RD.SUSPENDED:
            self._runtime_desired_changed(desired=RD.SUSPENDED, at=at)
        return "Pipeline is suspending"

    def pause(self, *, at: datetime) -> str:
        return self._runtime_transition(Action.PAUSE, "pause", RD.PAUSED, at)

    def resume(self, *, at: datetime) -> str:
        # The pipeline process calls resuming its `start` transition.
        return self._runtime_transition(Action.RESUME, "start", RD.RUNNING, at)

    def approve(self, *, at: datetime) -> str:
        """Approve the bootstrap a modified program needs (`bootstrap_policy=await_approval`)."""
        self._check_live()
        self._forwarded(Action.APPROVE)
        if self.runtime_status is not RuntimeStatus.AWAITING_APPROVAL:
            raise err.invalid_transition("approve", str(self.runtime_status))
        if not self.bootstrap_approved:
            self._bootstrap_approved(deployment_id=self.deployment_id, at=at)
        return "Pipeline bootstrap has been approved"

    def checkpoint(self, *, at: datetime) -> dict[str, int]:
        self._check_live()
        self._forwarded(Action.CHECKPOINT)
        number = self.checkpoint_sequence_number + 1
        self._checkpoint_requested(deployment_id=self.deployment_id, sequence_number=number, at=at)
        return {"checkpoint_sequence_number": number}

    def dismiss_error(self, *, at: datetime) -> str:
        self._check_live()
        if self.deployment_error is not None:
            if self._outcome(Action.DISMISS_ERROR) is Outcome.DISMISS_RESTRICTED:
                raise err.dismiss_error_restricted_to_fully_stopped()
            self._error_dismissed(at=at)
        return "Pipeline deployment error has been dismissed"

    def clear(self, *, at: datetime) -> str:
        self._check_live()
        current = self.storage_status
        if current is not StorageStatus.CLEARED:
            if self._outcome(Action.CLEAR) is Outcome.STORAGE_IMMUTABLE:
                raise err.storage_status_immutable_unless_stopped(
                    self.resources_status,
                    self.resources_desired_status,
                    current,
                    StorageStatus.CLEARING,
                )
            self._check_storage_pair(StorageStatus.CLEARING)
            if current is not StorageStatus.CLEARING:
                self._storage_clear_requested(at=at)
        return "Pipeline storage is being cleared"

    def delete(self, *, at: datetime) -> None:
        """Delete; the caller also releases the pipeline's `NameIndex`."""
        self._check_live()
        if self._outcome(Action.DELETE) is Outcome.DELETE_RESTRICTED:
            raise err.delete_restricted_to_fully_stopped()
        if self.storage_status is not StorageStatus.CLEARED:
            raise err.delete_restricted_to_cleared_storage()
        self._deleted(at=at)

    # --- program ------------------------------------------------------------------------

    def program_validated(self, ok: bool, *, at: datetime, config_id: UUID | None = None) -> None:
        """The config's validation (our "compilation") finished: Success or SqlError."""
        self._check_live()
        if config_id is not None and config_id != self.config_id:
            raise err.stale_program(config_id, self.config_id)
        if self.resources_status is not R.STOPPED:
            raise err.program_status_update_restricted_to_stopped()
        status = ProgramStatus.SUCCESS if ok else ProgramStatus.SQL_ERROR
        if status is not self.program_status:
            self._program_validated(status=status, at=at)

    # --- reconciler steps ---------------------------------------------------------------

    def begin_provisioning(self, *, at: datetime, deployment_id: UUID | None = None) -> UUID:
        """Stopped -> Provisioning: storage becomes InUse under a new deployment id."""
        self._check_step(Step.BEGIN_PROVISIONING, None)
        if self.program_status is not ProgramStatus.SUCCESS:
            raise err.transition_requires_compiled_program(self.resources_status, R.PROVISIONING)
        self._check_storage_change(StorageStatus.IN_USE)
        new_id = deployment_id or uuid7()
        self._provisioning_begun(deployment_id=new_id, at=at)
        return new_id

    def start_failed(self, error: JsonObject, *, at: datetime) -> None:
        """An early start cannot go on (e.g. the program failed validation): stay Stopped."""
        self._check_step(Step.START_FAILED, None)
        self._start_failed(error=error, at=at)

    def provisioned(self, deployment_id: UUID, *, at: datetime) -> None:
        self._check_step(Step.PROVISIONED, deployment_id)
        self._provisioned(deployment_id=deployment_id, at=at)

    def runtime_status_reported(
        self,
        deployment_id: UUID,
        status: RuntimeStatus,
        *,
        at: datetime,
        details: JsonObject | None = None,
    ) -> None:
        self._check_step(Step.RUNTIME_STATUS_REPORTED, deployment_id)
        if status is not self.runtime_status or details != self.runtime_status_details:
            self._runtime_status_reported(
                deployment_id=deployment_id, status=status, details=details, at=at
            )

    def begin_stopping(
        self, deployment_id: UUID, error: JsonObject | None = None, *, at: datetime
    ) -> None:
        self._check_step(Step.BEGIN_STOPPING, deployment_id)
        self._stopping_begun(deployment_id=deployment_id, error=error, at=at)

    def provisioning_timed_out(self, deployment_id: UUID, timeout_s: int, *, at: datetime) -> None:
        self._check_step(Step.PROVISIONING_TIMED_OUT, deployment_id)
        error = err.deployment_error(err.automaton_provisioning_timeout(timeout_s))
        self._stopping_begun(deployment_id=deployment_id, error=error, at=at)

    def bootstrap_rejected(self, deployment_id: UUID, *, at: datetime) -> None:
        """The program changed and `bootstrap_policy=reject`: stop with BootstrapRejected."""
        self._check_step(Step.BOOTSTRAP_REJECTED, deployment_id)
        error = err.deployment_error(err.bootstrap_rejected())
        self._stopping_begun(deployment_id=deployment_id, error=error, at=at)

    def stopped(self, deployment_id: UUID, *, at: datetime) -> None:
        self._check_step(Step.STOPPED, deployment_id)
        self._stopped(deployment_id=deployment_id, at=at)

    def storage_cleared(self, *, at: datetime) -> None:
        self._check_live()
        self._check_storage_change(StorageStatus.CLEARED)
        self._storage_cleared(at=at)

    # --- guards -------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self.deleted:
            raise err.unknown_pipeline(self.name)

    def _outcome(self, action: Action) -> Outcome:
        return outcome(self.resources_status, self.resources_desired_status, action)

    def _forwarded(self, action: Action) -> RuntimeDesiredStatus:
        """The gate in front of the runtime (§2.3); answers the runtime's current target."""
        if self._outcome(action) is Outcome.NOT_DEPLOYED:
            raise err.pipeline_interaction_not_deployed(
                self.name, self.deployment_status, self.deployment_desired_status
            )
        if self.runtime_status is RuntimeStatus.UNAVAILABLE:
            raise err.pipeline_unavailable(self.name)
        assert self.runtime_desired_status is not None  # set on entering Provisioned
        return self.runtime_desired_status

    def _runtime_transition(self, action: Action, verb: str, new: RD, at: datetime) -> str:
        self._check_live()
        current = self._forwarded(action)
        # Leaving Standby is `/activate`'s job only (Feldera server.rs::state_transition).
        if current is RD.STANDBY or not may_transition_to(current, new):
            raise err.invalid_transition(verb, current)
        if current is not new:
            self._runtime_desired_changed(desired=new, at=at)
        return f"Pipeline transitioning from {current} to {new}"

    def _check_step(self, step: Step, deployment_id: UUID | None) -> None:
        self._check_live()
        if deployment_id is not None and deployment_id != self.deployment_id:
            raise err.stale_deployment(step, deployment_id, self.deployment_id)
        sources, target, desired = RECONCILER_STEPS[step]
        status, current_desired = self.resources_status, self.resources_desired_status
        if status not in sources:
            raise err.step_not_applicable(
                step, status, current_desired, f"it applies from {sorted(sources)} only"
            )
        if desired is not None and current_desired is not desired:
            raise err.step_not_applicable(
                step, status, current_desired, f"it needs desired status '{desired}'"
            )
        if not resources_transition_allowed(self.storage_status, status, target):
            raise err.invalid_resources_status_transition(self.storage_status, status, target)

    def _check_storage_change(self, new: StorageStatus) -> None:
        if storage_change_needs_stop(self.resources_status, self.resources_desired_status, new):
            raise err.storage_status_immutable_unless_stopped(
                self.resources_status, self.resources_desired_status, self.storage_status, new
            )
        self._check_storage_pair(new)

    def _check_storage_pair(self, new: StorageStatus) -> None:
        if (self.storage_status, new) not in STORAGE_TRANSITIONS:
            raise err.invalid_storage_status_transition(self.storage_status, new)

    # --- events: state changes only -----------------------------------------------------

    @event("Updated")
    def _updated(self, name: str, description: str, config_id: UUID | None, at: datetime) -> None:
        if config_id != self.config_id:
            self._set_program_status(ProgramStatus.PENDING, at)
        self.name, self.description, self.config_id = name, description, config_id
        self.pipeline_version += 1
        self.refresh_version += 1

    @event("ProgramValidated")
    def _program_validated(self, status: ProgramStatus, at: datetime) -> None:
        self._set_program_status(status, at)
        self.refresh_version += 1

    @event("StartRequested")
    def _start_requested(
        self,
        initial: InitialStatus,
        bootstrap_policy: BootstrapPolicy,
        dismiss_error: bool,
        at: datetime,
    ) -> None:
        self._set_resources_desired(D.PROVISIONED, at)
        self.deployment_initial = initial
        self.bootstrap_policy = bootstrap_policy
        if dismiss_error:
            self.deployment_error = None
        self.refresh_version += 1

    @event("StopRequested")
    def _stop_requested(self, at: datetime) -> None:
        self._set_resources_desired(D.STOPPED, at)
        if self.resources_status is R.STOPPED:
            # A start cancelled before the reconciler acted leaves nothing behind.
            self.deployment_initial = None
            self.bootstrap_policy = None
        self.refresh_version += 1

    @event("RuntimeDesiredChanged")
    def _runtime_desired_changed(self, desired: RuntimeDesiredStatus, at: datetime) -> None:
        self._set_runtime_desired(desired, at)
        self.refresh_version += 1

    @event("BootstrapApproved")
    def _bootstrap_approved(self, deployment_id: UUID | None, at: datetime) -> None:
        self.bootstrap_approved = True
        self.refresh_version += 1

    @event("CheckpointRequested")
    def _checkpoint_requested(
        self, deployment_id: UUID | None, sequence_number: int, at: datetime
    ) -> None:
        self.checkpoint_sequence_number = sequence_number
        self.refresh_version += 1

    @event("ErrorDismissed")
    def _error_dismissed(self, at: datetime) -> None:
        self.deployment_error = None
        self.refresh_version += 1

    @event("StorageClearRequested")
    def _storage_clear_requested(self, at: datetime) -> None:
        self._set_storage(StorageStatus.CLEARING, at)
        self.refresh_version += 1

    @event("Deleted")
    def _deleted(self, at: datetime) -> None:
        self.deleted = True
        self.refresh_version += 1

    @event("ProvisioningBegun")
    def _provisioning_begun(self, deployment_id: UUID, at: datetime) -> None:
        self._set_resources_status(R.PROVISIONING, at)
        self._set_storage(StorageStatus.IN_USE, at)
        self.deployment_id = deployment_id
        self.bootstrap_approved = False
        self.refresh_version += 1

    @event("StartFailed")
    def _start_failed(self, error: JsonObject, at: datetime) -> None:
        self._set_resources_desired(D.STOPPED, at)
        self.deployment_error = error
        self.deployment_initial = None
        self.bootstrap_policy = None
        self.refresh_version += 1

    @event("Provisioned")
    def _provisioned(self, deployment_id: UUID, at: datetime) -> None:
        assert self.deployment_initial is not None  # desired Provisioned implies /start's initial
        self._set_resources_status(R.PROVISIONED, at)
        self._set_runtime_status(RuntimeStatus.INITIALIZING, None, at)
        self._set_runtime_desired(INITIAL_RUNTIME_DESIRED[self.deployment_initial], at)
        self.refresh_version += 1

    @event("RuntimeStatusReported")
    def _runtime_status_reported(
        self, deployment_id: UUID, status: RuntimeStatus, details: JsonObject | None, at: datetime
    ) -> None:
        self._set_runtime_status(status, details, at)
        self.refresh_version += 1

    @event("StoppingBegun")
    def _stopping_begun(self, deployment_id: UUID, error: JsonObject | None, at: datetime) -> None:
        self._set_resources_status(R.STOPPING, at)
        self._set_resources_desired(D.STOPPED, at)
        self.deployment_error = error
        self.runtime_status = self.runtime_status_details = self.runtime_status_since = None
        self.runtime_desired_status = self.runtime_desired_status_since = None
        self.deployment_initial = None
        self.bootstrap_policy = None
        self.refresh_version += 1

    @event("Stopped")
    def _stopped(self, deployment_id: UUID, at: datetime) -> None:
        self._set_resources_status(R.STOPPED, at)
        self.deployment_id = None
        self.refresh_version += 1

    @event("StorageCleared")
    def _storage_cleared(self, at: datetime) -> None:
        self._set_storage(StorageStatus.CLEARED, at)
        self.refresh_version += 1

    # A status's `since` moves only when the status itself changes.

    def _set_program_status(self, status: ProgramStatus, at: datetime) -> None:
        if status is not self.program_status:
            self.program_status, self.program_status_since = status, at

    def _set_resources_status(self, status: ResourcesStatus, at: datetime) -> None:
        if status is not self.resources_status:
            self.resources_status, self.resources_status_since = status, at

    def _set_resources_desired(self, desired: ResourcesDesiredStatus, at: datetime) -> None:
        if desired is not self.resources_desired_status:
            self.resources_desired_status, self.resources_desired_status_since = desired, at

    def _set_runtime_status(
        self, status: RuntimeStatus, details: JsonObject | None, at: datetime
    ) -> None:
        if status is not self.runtime_status:
            self.runtime_status, self.runtime_status_since = status, at
        self.runtime_status_details = details

    def _set_runtime_desired(self, desired: RuntimeDesiredStatus, at: datetime) -> None:
        if desired is not self.runtime_desired_status:
            self.runtime_desired_status, self.runtime_desired_status_since = desired, at

    def _set_storage(self, status: StorageStatus, at: datetime) -> None:
        if status is not self.storage_status:
            self.storage_status, self.storage_status_since = status, at


def _latest(first: datetime, second: datetime | None) -> datetime:
    return first if second is None else max(first, second)
