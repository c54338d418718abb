"""The handler of the reconciler's steps (docs/reconciler.md): `ReconcilePipeline` -> one
reconciler verb of the Pipeline aggregate, answered with the pipeline's status.

The step is refused before any verb runs when it was decided on something the pipeline
has left: another pipeline under the same name (`UnknownPipelineName`, the one it was
about is gone) or another version (`StaleDecision`, 409). The verbs themselves refuse a
step about another deployment (`StaleDeployment`) or from the wrong status. A repeated
step never gets here: its command id is derived from what it was decided on
(`contracts.reconciler_commands.reconcile_command_id`), so the decider answers it from
its records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from contracts.reconciler_commands import ReconcilePipeline, ReconcileStep
from domain import pipeline_errors as err
from domain.errors import DomainError
from domain.pipeline import Pipeline
from services.service_layer.handlers.pipelines import pipeline_named
from services.service_layer.handling import Context, Decision
from services.service_layer.replies import pipeline_reply

Apply = Callable[[Pipeline, ReconcilePipeline, datetime], None]

# The command's fields are checked per step when it is built (contracts), so the asserts
# below only narrow types for mypy.


def _begin_provisioning(p: Pipeline, cmd: ReconcilePipeline, at: datetime) -> None:
    p.begin_provisioning(at=at, deployment_id=cmd.deployment_id)


def _provisioned(p: Pipeline, cmd: ReconcilePipeline, at: datetime) -> None:
    assert cmd.deployment_id is not None
    p.provisioned(cmd.deployment_id, at=at)


def _runtime_status(p: Pipeline, cmd: ReconcilePipeline, at: datetime) -> None:
    assert cmd.deployment_id is not None and cmd.runtime_status is not None
    p.runtime_status_reported(cmd.deployment_id, cmd.runtime_status, at=at, details=cmd.details)


def _provisioning_timed_out(p: Pipeline, cmd: ReconcilePipeline, at: datetime) -> None:
    assert cmd.deployment_id is not None and cmd.timeout_s is not None
    p.provisioning_timed_out(cmd.deployment_id, cmd.timeout_s, at=at)


def _start_failed(p: Pipeline, cmd: ReconcilePipeline, at: datetime) -> None:
    assert cmd.error is not None
    p.start_failed(cmd.error, at=at)


def _begin_stopping(p: Pipeline, cmd: ReconcilePipeline, at: datetime) -> None:
    assert cmd.deployment_id is not None
    p.begin_stopping(cmd.deployment_id, cmd.error, at=at)


def _stopped(p: Pipeline, cmd: ReconcilePipeline, at: datetime) -> None:
    assert cmd.deployment_id is not None
    p.stopped(cmd.deployment_id, at=at)


def _storage_cleared(p: Pipeline, cmd: ReconcilePipeline, at: datetime) -> None:
    p.storage_cleared(at=at)


STEPS: Final[dict[ReconcileStep, Apply]] = {
    ReconcileStep.BEGIN_PROVISIONING: _begin_provisioning,
    ReconcileStep.PROVISIONED: _provisioned,
    ReconcileStep.RUNTIME_STATUS: _runtime_status,
    ReconcileStep.PROVISIONING_TIMED_OUT: _provisioning_timed_out,
    ReconcileStep.START_FAILED: _start_failed,
    ReconcileStep.BEGIN_STOPPING: _begin_stopping,
    ReconcileStep.STOPPED: _stopped,
    ReconcileStep.STORAGE_CLEARED: _storage_cleared,
}


def stale_decision(cmd: ReconcilePipeline, version: int) -> DomainError:
    return DomainError(
        "StaleDecision",
        f"Step '{cmd.step}' on pipeline '{cmd.pipeline_name}' was decided at version "
        f"{cmd.expected_version}, but the pipeline is at version {version}",
        {
            "pipeline_name": cmd.pipeline_name,
            "step": cmd.step.value,
            "expected_version": cmd.expected_version,
            "version": version,
        },
        409,
    )


def reconcile_pipeline(cmd: ReconcilePipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    if pipeline.id != cmd.pipeline_id:
        # The name now belongs to a re-created pipeline; the one decided on is gone.
        raise err.unknown_pipeline(cmd.pipeline_name)
    if cmd.expected_version not in (None, pipeline.version):
        raise stale_decision(cmd, pipeline.version)
    STEPS[cmd.step](pipeline, cmd, cmd.at or ctx.now)
    return Decision(pipeline.id, pipeline_reply(pipeline), 200)
