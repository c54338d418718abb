"""The command the reconciler sends about the pipelines it drives (docs/reconciler.md).

`ReconcilePipeline` is one step of the deployment automaton (docs/pipeline-lifecycle.md
§5) on one pipeline. Like every pipeline command it is keyed by the pipeline's name, so a
pipeline's user actions and reconciler steps are handled in the order they were sent.

A step says what it was decided on: `pipeline_id` (a pipeline deleted and re-created
under the same name is another pipeline), `deployment_id` (a step about an old
deployment can never move a newer one) and `expected_version`, the pipeline's aggregate
version when it was decided: a step on a version the pipeline has since left is refused
(`StaleDecision`, 409) and decided again by the next sweep on a fresh read. Its command id
is derived (`reconcile_command_id`), so the same step on the same version is one command
however often, and by whichever reconciler, it is sent.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Self
from uuid import UUID

from pydantic import Field, model_validator

from contracts.command_base import Command, DecidedCommandIds, PipelineName
from contracts.statuses import RuntimeStatus


class ReconcileStep(StrEnum):
    """A step of the automaton; each is one reconciler verb of `domain.pipeline.Pipeline`."""

    BEGIN_PROVISIONING = "begin_provisioning"
    PROVISIONED = "provisioned"
    RUNTIME_STATUS = "runtime_status"
    PROVISIONING_TIMED_OUT = "provisioning_timed_out"
    START_FAILED = "start_failed"
    BEGIN_STOPPING = "begin_stopping"
    STOPPED = "stopped"
    STORAGE_CLEARED = "storage_cleared"


# What each step must carry besides the pipeline (checked when the command is built, so a
# step missing its data is a CommandSchemaViolation, never a half-applied step).
# begin_provisioning's deployment id is optional: without one the pipeline makes one up.
_NEEDS: Final[dict[ReconcileStep, tuple[str, ...]]] = {
    ReconcileStep.BEGIN_PROVISIONING: (),
    ReconcileStep.PROVISIONED: ("deployment_id",),
    ReconcileStep.RUNTIME_STATUS: ("deployment_id", "runtime_status"),
    ReconcileStep.PROVISIONING_TIMED_OUT: ("deployment_id", "timeout_s"),
    ReconcileStep.START_FAILED: ("error",),
    ReconcileStep.BEGIN_STOPPING: ("deployment_id",),
    ReconcileStep.STOPPED: ("deployment_id",),
    ReconcileStep.STORAGE_CLEARED: (),
}


class ReconcilePipeline(Command):
    """One reconciler step on one pipeline (see the module docstring).

    Keyed by `pipeline_name` like the pipeline commands, but not a `PipelineCommand` (a
    user action, addressed by the name alone): a step also names the pipeline it was
    decided on.

    `runtime_status` (with optional `details`) is what a `runtime_status` step reports;
    `error` is the deployment error a `start_failed` or `begin_stopping` step records
    (Feldera's ErrorResponse); `timeout_s` is the provisioning timeout that ran out.
    `expected_version` `None` skips the version check; `at` is when it was decided
    (`None`: when handled).
    """

    pipeline_name: PipelineName
    pipeline_id: UUID
    step: ReconcileStep
    deployment_id: UUID | None = None
    runtime_status: RuntimeStatus | None = None
    details: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    timeout_s: int | None = Field(default=None, ge=0)
    expected_version: int | None = Field(default=None, ge=1)
    at: datetime | None = None

    def key(self) -> str:
        return self.pipeline_name

    @model_validator(mode="after")
    def _carries_its_data(self) -> Self:
        missing = [name for name in _NEEDS[self.step] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"step '{self.step}' needs {', '.join(missing)}")
        return self


_STEP_IDS: Final = DecidedCommandIds("reconciler-decision")


def reconcile_command_id(role: str, pipeline_id: UUID, version: int, step: ReconcileStep) -> UUID:
    """The command id of `step` by `role` on `pipeline_id` at `version` (a UUIDv5).

    Deterministic, so a step re-sent after a crash, or by a second reconciler, is one
    command."""
    return _STEP_IDS(role, pipeline_id, version, ReconcileStep(step))


__all__ = ["ReconcilePipeline", "ReconcileStep", "reconcile_command_id"]
