"""A Pipeline's user actions (docs/pipeline-lifecycle.md §2): what `/start`, `/stop`,
`/pause`, ... ask of it, and the program's validation result.

Each action reads the action matrix (`domain.pipeline_table.ACTION_MATRIX`) for the
pipeline's state, then makes its own checks in Feldera's order, and raises a
`DomainError` from `domain.pipeline_errors` before any event: a refused action leaves no
pending event. The events themselves are `Pipeline`'s (a mixin: the aggregate holds the
state and the events).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from contracts.statuses import (
    BootstrapPolicy,
    InitialStatus,
    ProgramStatus,
    RuntimeStatus,
    StorageStatus,
)
from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from contracts.statuses import RuntimeDesiredStatus as RD
from domain import pipeline_errors as err
from domain.pipeline_fields import JsonObject, PipelineBase
from domain.pipeline_program import Program
from domain.pipeline_table import Action, Outcome, may_transition_to, outcome

_INITIAL_VALUES = frozenset(s.value for s in InitialStatus)


class PipelineActions(PipelineBase):
    """The user actions of `Pipeline`."""

    # The events these actions trigger, defined on Pipeline (their topics name it).
    _updated: Callable[..., None]
    _program_changed: Callable[..., None]
    _runtime_config_changed: Callable[..., None]
    _tags_changed: Callable[..., None]
    _program_validated: Callable[..., None]
    _start_requested: Callable[..., None]
    _stop_requested: Callable[..., None]
    _runtime_desired_changed: Callable[..., None]
    _bootstrap_approved: Callable[..., None]
    _checkpoint_requested: Callable[..., None]
    _error_dismissed: Callable[..., None]
    _storage_clear_requested: Callable[..., None]
    _deleted: Callable[..., None]

    def update(
        self,
        *,
        at: datetime,
        name: str | None = None,
        description: str | None = None,
        config_id: UUID | None = None,
        program: Program | None = None,
        runtime_config: JsonObject | None = None,
        tags: list[str] | None = None,
    ) -> None:
        """Edit the pipeline (a field left None keeps its value). The core fields (name,
        program, runtime config) only change while it is stopped; description and tags at
        any time. Renaming also moves its `NameIndex` (the caller's job)."""
        self._check_live()
        program_changed = program is not None and program != self.program
        runtime_changed = runtime_config is not None and runtime_config != self.runtime_config
        core = [
            field
            for field, new, old in (
                ("name", name, self.name),
                ("config_id", config_id, self.config_id),
            )
            if new is not None and new != old
        ]
        if (core or program_changed or runtime_changed) and self._outcome(
            Action.UPDATE
        ) is Outcome.UPDATE_RESTRICTED:
            raise err.update_restricted_to_stopped()
        if "name" in core and self.storage_status is not StorageStatus.CLEARED:
            raise err.edit_restricted_to_cleared_storage(["name"])
        new_description = description if description is not None else self.description
        if core or new_description != self.description:
            self._updated(
                name=name if name is not None else self.name,
                description=new_description,
                config_id=config_id if config_id is not None else self.config_id,
                at=at,
            )
        if program is not None and program_changed:
            self._program_changed(
                program_code=program.program_code,
                udf_rust=program.udf_rust,
                udf_toml=program.udf_toml,
                program_config=program.program_config,
                config_id=program.config_id,
                status=program.status,
                report=program.report,
                at=at,
            )
        if runtime_config is not None and runtime_changed:
            self._runtime_config_changed(runtime_config=runtime_config, at=at)
        if tags is not None and tags != self.tags:
            self._tags_changed(tags=tags, at=at)

    @property
    def program(self) -> Program:
        """The program as the pipeline holds it now (domain.pipeline_program)."""
        return Program(
            program_code=self.program_code,
            udf_rust=self.udf_rust,
            udf_toml=self.udf_toml,
            program_config=self.program_config,
            config_id=self.config_id,
            status=self.program_status,
            report=self.program_report,
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

    def activate(self, initial: RD = RD.RUNNING, *, at: datetime) -> str:
        """`/activate`: the one way out of Standby (Feldera server.rs::activate); from
        Paused or Running it acts as `/resume` or `/pause` would."""
        self._check_live()
        if initial not in (RD.RUNNING, RD.PAUSED):
            raise err.invalid_activate_status(initial)
        current = self._forwarded(Action.ACTIVATE)
        if not may_transition_to(current, initial):
            raise err.invalid_transition("activate", current)
        if current is not initial:
            self._runtime_desired_changed(desired=initial, at=at)
        return f"Pipeline transitioning from {current} to {initial}"

    def checkpoint(self, *, at: datetime) -> dict[str, int | str | None]:
        """Answers the request's number and the deployment it was made to (Feldera's
        `incarnation_uuid`: the pipeline process; here the deployment)."""
        self._check_live()
        self._forwarded(Action.CHECKPOINT)
        number = self.checkpoint_sequence_number + 1
        self._checkpoint_requested(deployment_id=self.deployment_id, sequence_number=number, at=at)
        incarnation = None if self.deployment_id is None else str(self.deployment_id)
        return {"checkpoint_sequence_number": number, "incarnation_uuid": incarnation}

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

    # --- the program's validation ---------------------------------------------------------

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

    # --- guards ---------------------------------------------------------------------------

    def _outcome(self, action: Action) -> Outcome:
        return outcome(self.resources_status, self.resources_desired_status, action)

    def _forwarded(self, action: Action) -> RD:
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
