"""A Pipeline's reconciler steps (docs/pipeline-lifecycle.md §1.1, §5): what the
reconciler reports of the deployment it runs, each checked against the step table
(`domain.pipeline_table.RECONCILER_STEPS`) and the resources and storage transition
tables before its event.

A step about a deployment that is no longer the current one, or one the pipeline has
moved past, is refused (409) with the errors of `domain.deployment_errors`: the
reconciler decided on a stale view, and its next sweep decides again. The events
themselves are `Pipeline`'s (a mixin: the aggregate holds the state and the events).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from uuid6 import uuid7

from contracts.statuses import ProgramStatus, RuntimeStatus, StorageStatus
from contracts.statuses import ResourcesStatus as R
from domain import deployment_errors as err
from domain import pipeline_errors
from domain.pipeline_fields import JsonObject, PipelineBase
from domain.pipeline_table import (
    RECONCILER_STEPS,
    Step,
    resources_transition_allowed,
    storage_change_needs_stop,
)


class PipelineSteps(PipelineBase):
    """The reconciler steps of `Pipeline`."""

    # The events these steps trigger, defined on Pipeline (their topics name it).
    _provisioning_begun: Callable[..., None]
    _start_failed: Callable[..., None]
    _provisioned: Callable[..., None]
    _runtime_status_reported: Callable[..., None]
    _stopping_begun: Callable[..., None]
    _stopped: Callable[..., None]
    _storage_cleared: Callable[..., None]

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

    # --- guards ---------------------------------------------------------------------------

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
            raise pipeline_errors.storage_status_immutable_unless_stopped(
                self.resources_status, self.resources_desired_status, self.storage_status, new
            )
        self._check_storage_pair(new)
