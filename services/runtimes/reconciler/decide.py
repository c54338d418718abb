"""The automaton's decision (reference §5), pure: a pipeline as the event store has it and
what the reconciler sees of its deployment's route workers -> what to do next.

| resources, desired        | seen                            | next                               |
|---------------------------|---------------------------------|------------------------------------|
| Stopped, Provisioned      | program Success                 | begin_provisioning (new deployment)|
| Stopped, Provisioned      | program SqlError                | start_failed                       |
| Stopped, Provisioned      | program Pending (no config yet) | wait                               |
| Provisioning, Stopped     | -                               | begin_stopping                     |
| Provisioning, Provisioned | a worker failed                 | begin_stopping with its error      |
| Provisioning, Provisioned | all workers assigned            | provisioned                        |
| Provisioning, Provisioned | past the provisioning timeout   | provisioning_timed_out             |
| Provisioning, Provisioned | otherwise                       | run the workers, wait              |
| Provisioned, Stopped      | -                               | begin_stopping                     |
| Provisioned, Provisioned  | a worker failed                 | begin_stopping with its error      |
| Provisioned, Provisioned  | runtime Suspended               | begin_stopping                     |
| Provisioned, Provisioned  | workers not assigned (restart)  | run the workers, wait              |
| Provisioned, Provisioned  | config changed, not approved    | the bootstrap policy (below)       |
| Provisioned, Provisioned  | runtime desired Suspended       | checkpoint, runtime Suspended      |
| Provisioned, Provisioned  | a `/checkpoint` not yet taken   | checkpoint, no step                |
| Provisioned, Provisioned  | runtime status is not desired's | set the workers, runtime_status    |
| Stopping, any             | -                               | stop the workers, then stopped     |
| Stopped, Stopped          | storage Clearing                | delete checkpoint, storage_cleared |
| Stopped, Stopped          | -                               | release any workers left           |

Bootstrap (reference §2.1): when the deployment's config is not the one the checkpoint it
starts from was taken at, and the bootstrap is not approved yet, `bootstrap_policy` says
what happens before the workers may consume:

| bootstrap_policy | next                                                            |
|------------------|-----------------------------------------------------------------|
| allow            | go on (as approved)                                             |
| reject           | begin_stopping with `BootstrapRejected` as the deployment error |
| await_approval   | hold the workers, runtime AwaitingApproval until `/approve`     |

Awaiting approval, the runtime status details carry the `approval_diff`, and a suspend
records no checkpoint (one taken at the new config would approve it silently): it reports
Suspended at once, and the old checkpoint stands.

A forced stop needs nothing here: desired Stopped is decided on first.

The role carries the decision out: it starts, pauses, resumes and stops the workers the
decision names before it sends the step (so `provisioned` is only ever sent for workers
that are assigned, and a runtime status only once the workers are in it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from uuid6 import uuid7

from contracts.reconciler_commands import ReconcileStep
from contracts.statuses import (
    BootstrapPolicy,
    ProgramStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
    StorageStatus,
)
from domain import pipeline_errors as err
from domain.pipeline import Pipeline

R = ResourcesStatus
D = ResourcesDesiredStatus
RD = RuntimeDesiredStatus


class Workers(StrEnum):
    """What the role does to the pipeline's route workers before it sends the step."""

    KEEP = "keep"  # leave them as they are
    RUN = "run"  # make sure the current deployment's workers run (not consuming yet)
    CONSUME = "consume"  # running and consuming
    HOLD = "hold"  # running, not consuming (paused, standby)
    SUSPEND = "suspend"  # not consuming, and their offsets recorded as the checkpoint
    CHECKPOINT = "checkpoint"  # their offsets recorded as the checkpoint, then as they were
    STOP = "stop"  # stop them, remembering why (a failure is decided on until handled)
    RELEASE = "release"  # stop them and forget the deployment (the pipeline is Stopped)
    CLEAR = "clear"  # released, and the checkpoint (the pipeline's storage) deleted


# The runtime status the workers are put in for each runtime desired status, and how.
RUNTIME_TARGET: Final[dict[RD, tuple[RuntimeStatus, Workers]]] = {
    RD.RUNNING: (RuntimeStatus.RUNNING, Workers.CONSUME),
    RD.PAUSED: (RuntimeStatus.PAUSED, Workers.HOLD),
    RD.STANDBY: (RuntimeStatus.STANDBY, Workers.HOLD),
}


@dataclass(frozen=True)
class Seen:
    """The current deployment's workers as the role sees them."""

    ready: bool = False  # every route's partitions assigned and positioned
    failure: dict[str, Any] | None = None  # a worker's error (ErrorResponse shape)
    # The config changed since the checkpoint the workers started from: the approval diff
    # (None: nothing to bootstrap).
    bootstrap: dict[str, Any] | None = None
    checkpointed: int = 0  # the highest `/checkpoint` sequence number recorded


@dataclass(frozen=True)
class Next:
    workers: Workers
    step: ReconcileStep | None = None
    data: dict[str, Any] = field(default_factory=dict)


WAIT: Final = Next(Workers.KEEP)


def decide(pipeline: Pipeline, seen: Seen, now: datetime, provisioning_timeout_s: float) -> Next:
    status, desired = pipeline.resources_status, pipeline.resources_desired_status
    deployment: dict[str, Any] = {"deployment_id": pipeline.deployment_id}
    if status is R.STOPPING:
        return Next(Workers.STOP, ReconcileStep.STOPPED, deployment)
    if status is R.STOPPED:
        if desired is D.STOPPED:
            if pipeline.storage_status is StorageStatus.CLEARING:
                return Next(Workers.CLEAR, ReconcileStep.STORAGE_CLEARED)
            return Next(Workers.RELEASE)
        return _start(pipeline)
    if desired is D.STOPPED:
        return Next(Workers.STOP, ReconcileStep.BEGIN_STOPPING, deployment)
    if seen.failure is not None:
        return Next(
            Workers.STOP, ReconcileStep.BEGIN_STOPPING, {**deployment, "error": seen.failure}
        )
    if status is R.PROVISIONING:
        if seen.ready:
            return Next(Workers.RUN, ReconcileStep.PROVISIONED, deployment)
        timeout = (now - pipeline.resources_status_since).total_seconds()
        if timeout >= provisioning_timeout_s:
            data = {**deployment, "timeout_s": round(provisioning_timeout_s)}
            return Next(Workers.STOP, ReconcileStep.PROVISIONING_TIMED_OUT, data)
        return Next(Workers.RUN)
    # Provisioned.
    runtime_desired = pipeline.runtime_desired_status
    if runtime_desired is RD.SUSPENDED and pipeline.runtime_status is RuntimeStatus.SUSPENDED:
        return Next(Workers.STOP, ReconcileStep.BEGIN_STOPPING, deployment)
    if not seen.ready:
        return Next(Workers.RUN)
    if seen.bootstrap is not None and not pipeline.bootstrap_approved:
        held = _bootstrap(pipeline, seen.bootstrap, deployment)
        if held is not None:
            return held
    if runtime_desired is RD.SUSPENDED:
        # Suspended only once the checkpoint is recorded; Stopping follows (reference §5).
        data = {**deployment, "runtime_status": RuntimeStatus.SUSPENDED}
        return Next(Workers.SUSPEND, ReconcileStep.RUNTIME_STATUS, data)
    if runtime_desired not in RUNTIME_TARGET:
        return Next(Workers.RUN)
    if pipeline.checkpoint_sequence_number > seen.checkpointed:
        return Next(Workers.CHECKPOINT)
    target, workers = RUNTIME_TARGET[runtime_desired]
    if pipeline.runtime_status is target:
        return Next(workers)
    return Next(workers, ReconcileStep.RUNTIME_STATUS, {**deployment, "runtime_status": target})


def _bootstrap(pipeline: Pipeline, diff: dict[str, Any], deployment: dict[str, Any]) -> Next | None:
    """The bootstrap policy on a changed config (None: go on as if approved)."""
    match pipeline.bootstrap_policy:
        case BootstrapPolicy.REJECT:
            error = err.deployment_error(err.bootstrap_rejected())
            return Next(Workers.STOP, ReconcileStep.BEGIN_STOPPING, {**deployment, "error": error})
        case BootstrapPolicy.AWAIT_APPROVAL:
            if pipeline.runtime_desired_status is RD.SUSPENDED:
                status = RuntimeStatus.SUSPENDED  # nothing consumed: the old checkpoint stands
            else:
                status = RuntimeStatus.AWAITING_APPROVAL
            details = {"approval_diff": diff} if status is RuntimeStatus.AWAITING_APPROVAL else None
            if pipeline.runtime_status is status and pipeline.runtime_status_details == details:
                return Next(Workers.HOLD)
            data = {**deployment, "runtime_status": status, "details": details}
            return Next(Workers.HOLD, ReconcileStep.RUNTIME_STATUS, data)
        case _:
            return None  # allow (or no policy: a pipeline started before policies existed)


def _start(pipeline: Pipeline) -> Next:
    match pipeline.program_status:
        case ProgramStatus.SUCCESS:
            new: UUID = UUID(int=uuid7().int)
            return Next(Workers.RELEASE, ReconcileStep.BEGIN_PROVISIONING, {"deployment_id": new})
        case ProgramStatus.PENDING:
            return Next(Workers.RELEASE)  # no config (or not validated) yet
        case _:
            error = err.deployment_error(
                err.start_failed_due_to_failed_compilation(str(pipeline.program_status))
            )
            return Next(Workers.RELEASE, ReconcileStep.START_FAILED, {"error": error})


__all__ = ["RUNTIME_TARGET", "WAIT", "Next", "Seen", "Workers", "decide"]
