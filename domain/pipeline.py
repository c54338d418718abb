"""The Pipeline aggregate: Feldera's deployment lifecycle (resources and runtime status).

User actions (start, stop, pause, ...; `domain.pipeline_actions`) and reconciler steps
(begin_provisioning, provisioned, ...; `domain.pipeline_steps`) are both verbs of it.
Each verb checks the tables in `domain.pipeline_table` and raises a `DomainError` before
its event is triggered, so a refused command leaves no pending event. This module holds
the events: the `@event` methods only mutate state, from their arguments and the state
alone, so replay is exact. The state's field list is `domain.pipeline_fields`.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from contracts.deployment_status import INITIAL_RUNTIME_DESIRED
from contracts.statuses import (
    BootstrapPolicy,
    InitialStatus,
    ProgramStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
    StorageStatus,
)
from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from domain.base import Aggregate, AggregateSnapshot
from domain.pipeline_actions import PipelineActions
from domain.pipeline_fields import JsonObject, PipelineState
from domain.pipeline_steps import PipelineSteps


class Pipeline(PipelineActions, PipelineSteps, Aggregate):
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
        self.runtime_status = None
        self.runtime_status_details = None
        self.runtime_status_since = None
        self.runtime_desired_status = None
        self.runtime_desired_status_since = None
        self.deployment_id = None
        self.deployment_initial = None
        self.deployment_error = None
        self.storage_status = StorageStatus.CLEARED
        self.storage_status_since = at
        self.bootstrap_policy = None
        self.bootstrap_approved = False
        self.checkpoint_sequence_number = 0
        self.program_code = self.udf_rust = self.udf_toml = ""
        self.program_config = {}
        self.program_report = None
        # A program counts from 1; a pipeline created without one has none yet.
        self.program_version = 0 if config_id is None else 1
        self.runtime_config = {}
        self.tags = []

    # --- events: state changes only -----------------------------------------------------

    @event("Updated")
    def _updated(self, name: str, description: str, config_id: UUID | None, at: datetime) -> None:
        if config_id != self.config_id:
            # The program is now that config: what Feldera's fields said of another is gone.
            self._set("program_status", ProgramStatus.PENDING, at)
            self.program_code = self.udf_rust = self.udf_toml = ""
            self.program_config = {}
            self.program_report = None
            self.program_version += 1
        self.name, self.description, self.config_id = name, description, config_id
        self.pipeline_version += 1
        self.refresh_version += 1

    @event("ProgramChanged")
    def _program_changed(
        self,
        program_code: str,
        udf_rust: str,
        udf_toml: str,
        program_config: JsonObject,
        config_id: UUID | None,
        status: ProgramStatus,
        report: JsonObject | None,
        at: datetime,
    ) -> None:
        self.program_code, self.udf_rust, self.udf_toml = program_code, udf_rust, udf_toml
        self.program_config = program_config
        self.config_id = config_id
        self._set("program_status", status, at)
        self.program_report = report
        self.program_version += 1
        self.pipeline_version += 1
        self.refresh_version += 1

    @event("RuntimeConfigChanged")
    def _runtime_config_changed(self, runtime_config: JsonObject, at: datetime) -> None:
        self.runtime_config = runtime_config
        self.pipeline_version += 1
        self.refresh_version += 1

    @event("TagsChanged")
    def _tags_changed(self, tags: list[str], at: datetime) -> None:
        self.tags = tags
        self.pipeline_version += 1
        self.refresh_version += 1

    @event("ProgramValidated")
    def _program_validated(self, status: ProgramStatus, at: datetime) -> None:
        self._set("program_status", status, at)
        self.refresh_version += 1

    @event("StartRequested")
    def _start_requested(
        self,
        initial: InitialStatus,
        bootstrap_policy: BootstrapPolicy,
        dismiss_error: bool,
        at: datetime,
    ) -> None:
        self._set("resources_desired_status", D.PROVISIONED, at)
        self.deployment_initial = initial
        self.bootstrap_policy = bootstrap_policy
        if dismiss_error:
            self.deployment_error = None
        self.refresh_version += 1

    @event("StopRequested")
    def _stop_requested(self, at: datetime) -> None:
        self._set("resources_desired_status", D.STOPPED, at)
        if self.resources_status is R.STOPPED:
            # A start cancelled before the reconciler acted leaves nothing behind.
            self.deployment_initial = None
            self.bootstrap_policy = None
        self.refresh_version += 1

    @event("RuntimeDesiredChanged")
    def _runtime_desired_changed(self, desired: RuntimeDesiredStatus, at: datetime) -> None:
        self._set("runtime_desired_status", desired, at)
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
        self._set("storage_status", StorageStatus.CLEARING, at)
        self.refresh_version += 1

    @event("Deleted")
    def _deleted(self, at: datetime) -> None:
        self.deleted = True
        self.refresh_version += 1

    @event("ProvisioningBegun")
    def _provisioning_begun(self, deployment_id: UUID, at: datetime) -> None:
        self._set("resources_status", R.PROVISIONING, at)
        self._set("storage_status", StorageStatus.IN_USE, at)
        self.deployment_id = deployment_id
        self.bootstrap_approved = False
        self.refresh_version += 1

    @event("StartFailed")
    def _start_failed(self, error: JsonObject, at: datetime) -> None:
        self._set("resources_desired_status", D.STOPPED, at)
        self.deployment_error = error
        self.deployment_initial = None
        self.bootstrap_policy = None
        self.refresh_version += 1

    @event("Provisioned")
    def _provisioned(self, deployment_id: UUID, at: datetime) -> None:
        assert self.deployment_initial is not None  # desired Provisioned implies /start's initial
        self._set("resources_status", R.PROVISIONED, at)
        self._set("runtime_status", RuntimeStatus.INITIALIZING, at)
        self.runtime_status_details = None
        self._set("runtime_desired_status", INITIAL_RUNTIME_DESIRED[self.deployment_initial], at)
        self.refresh_version += 1

    @event("RuntimeStatusReported")
    def _runtime_status_reported(
        self, deployment_id: UUID, status: RuntimeStatus, details: JsonObject | None, at: datetime
    ) -> None:
        self._set("runtime_status", status, at)
        self.runtime_status_details = details
        self.refresh_version += 1

    @event("StoppingBegun")
    def _stopping_begun(self, deployment_id: UUID, error: JsonObject | None, at: datetime) -> None:
        self._set("resources_status", R.STOPPING, at)
        self._set("resources_desired_status", D.STOPPED, at)
        self.deployment_error = error
        self.runtime_status = self.runtime_status_details = self.runtime_status_since = None
        self.runtime_desired_status = self.runtime_desired_status_since = None
        self.deployment_initial = None
        self.bootstrap_policy = None
        self.refresh_version += 1

    @event("Stopped")
    def _stopped(self, deployment_id: UUID, at: datetime) -> None:
        self._set("resources_status", R.STOPPED, at)
        self.deployment_id = None
        self.refresh_version += 1

    @event("StorageCleared")
    def _storage_cleared(self, at: datetime) -> None:
        self._set("storage_status", StorageStatus.CLEARED, at)
        self.refresh_version += 1

    # A status's `since` moves only when the status itself changes.

    def _set(self, field: str, value: object, at: datetime) -> None:
        """Set a status; its `<field>_since` moves only when the status itself changes."""
        if getattr(self, field) is not value:
            setattr(self, field, value)
            setattr(self, f"{field}_since", at)
