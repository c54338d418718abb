"""The automaton's decision (docs/pipeline-lifecycle.md §5), pure: a pipeline as the event
store has it and what the reconciler sees of its deployment's route workers -> what to do
next.

The decision is the table `RULES`, read top to bottom: the first row whose resources
status, resources desired status and condition match the pipeline says what happens.
A forced stop needs no row of its own: desired Stopped is decided on before anything the
workers report.

Bootstrap (§2.1): when the deployment's config is not the one the checkpoint it starts
from was taken at (`Seen.bootstrap`), and the bootstrap is not approved yet,
`bootstrap_policy` says what happens before the workers may consume: `allow` goes on as
approved, `reject` stops with `BootstrapRejected` as the deployment error, and
`await_approval` holds the workers with the runtime AwaitingApproval (its details carry
the `approval_diff`) until `/approve`. Awaiting approval, a suspend records no checkpoint
(one taken at the new config would approve it silently): it reports Suspended at once,
and the old checkpoint stands.

The role carries the decision out: it starts, pauses, resumes and stops the workers the
decision names before it sends the step (so `provisioned` is only ever sent for workers
that are assigned, and a runtime status only once the workers are in it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from uuid6 import uuid7

from contracts.reconciler_commands import ReconcileStep
from contracts.statuses import BootstrapPolicy, ProgramStatus, RuntimeStatus, StorageStatus
from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from contracts.statuses import RuntimeDesiredStatus as RD
from domain import deployment_errors as err
from domain.pipeline import Pipeline

Step = ReconcileStep


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


@dataclass(frozen=True)
class Situation:
    """Everything a row's condition and outcome read."""

    pipeline: Pipeline
    seen: Seen
    now: datetime
    provisioning_timeout_s: float

    @property
    def deployment(self) -> dict[str, Any]:
        return {"deployment_id": self.pipeline.deployment_id}

    @property
    def bootstrap_pending(self) -> bool:
        return self.seen.bootstrap is not None and not self.pipeline.bootstrap_approved


Condition = Callable[[Situation], bool]
Outcome = Callable[[Situation], Next]


@dataclass(frozen=True)
class Rule:
    resources: frozenset[R]
    desired: frozenset[D]
    when: Condition
    then: Outcome

    def matches(self, s: Situation) -> bool:
        p = s.pipeline
        status, desired = p.resources_status, p.resources_desired_status
        return status in self.resources and desired in self.desired and self.when(s)


def decide(pipeline: Pipeline, seen: Seen, now: datetime, provisioning_timeout_s: float) -> Next:
    situation = Situation(pipeline, seen, now, provisioning_timeout_s)
    return next(rule.then(situation) for rule in RULES if rule.matches(situation))


# --- conditions ----------------------------------------------------------------------------


def always(s: Situation) -> bool:
    return True


def storage_clearing(s: Situation) -> bool:
    return s.pipeline.storage_status is StorageStatus.CLEARING


def program_succeeded(s: Situation) -> bool:
    return s.pipeline.program_status is ProgramStatus.SUCCESS


def program_pending(s: Situation) -> bool:
    return s.pipeline.program_status is ProgramStatus.PENDING  # no config, or not validated


def worker_failed(s: Situation) -> bool:
    return s.seen.failure is not None


def workers_ready(s: Situation) -> bool:
    return s.seen.ready


def workers_not_ready(s: Situation) -> bool:
    return not s.seen.ready  # e.g. a restarted reconciler: run them again first


def provisioning_overdue(s: Situation) -> bool:
    waited = (s.now - s.pipeline.resources_status_since).total_seconds()
    return waited >= s.provisioning_timeout_s


def suspended(s: Situation) -> bool:
    p = s.pipeline
    return p.runtime_desired_status is RD.SUSPENDED and p.runtime_status is RuntimeStatus.SUSPENDED


def bootstrap_rejected(s: Situation) -> bool:
    return s.bootstrap_pending and s.pipeline.bootstrap_policy is BootstrapPolicy.REJECT


def bootstrap_awaits_approval(s: Situation) -> bool:
    return s.bootstrap_pending and s.pipeline.bootstrap_policy is BootstrapPolicy.AWAIT_APPROVAL


def suspend_asked(s: Situation) -> bool:
    return s.pipeline.runtime_desired_status is RD.SUSPENDED


def no_runtime_target(s: Situation) -> bool:
    return s.pipeline.runtime_desired_status not in RUNTIME_TARGET


def checkpoint_asked(s: Situation) -> bool:
    return s.pipeline.checkpoint_sequence_number > s.seen.checkpointed


# --- outcomes ------------------------------------------------------------------------------


def release_workers(s: Situation) -> Next:
    return Next(Workers.RELEASE)


def clear_storage(s: Situation) -> Next:
    return Next(Workers.CLEAR, Step.STORAGE_CLEARED)


def begin_provisioning(s: Situation) -> Next:
    new: UUID = UUID(int=uuid7().int)
    return Next(Workers.RELEASE, Step.BEGIN_PROVISIONING, {"deployment_id": new})


def fail_start(s: Situation) -> Next:
    compiled = err.start_failed_due_to_failed_compilation(str(s.pipeline.program_status))
    return Next(Workers.RELEASE, Step.START_FAILED, {"error": err.deployment_error(compiled)})


def begin_stopping(s: Situation) -> Next:
    return Next(Workers.STOP, Step.BEGIN_STOPPING, s.deployment)


def stop_with_worker_error(s: Situation) -> Next:
    return Next(Workers.STOP, Step.BEGIN_STOPPING, {**s.deployment, "error": s.seen.failure})


def reject_bootstrap(s: Situation) -> Next:
    error = err.deployment_error(err.bootstrap_rejected())
    return Next(Workers.STOP, Step.BEGIN_STOPPING, {**s.deployment, "error": error})


def report_stopped(s: Situation) -> Next:
    return Next(Workers.STOP, Step.STOPPED, s.deployment)


def run_workers(s: Situation) -> Next:
    return Next(Workers.RUN)


def report_provisioned(s: Situation) -> Next:
    return Next(Workers.RUN, Step.PROVISIONED, s.deployment)


def time_out_provisioning(s: Situation) -> Next:
    data = {**s.deployment, "timeout_s": round(s.provisioning_timeout_s)}
    return Next(Workers.STOP, Step.PROVISIONING_TIMED_OUT, data)


def await_approval(s: Situation) -> Next:
    """Hold the workers; the runtime shows AwaitingApproval, or Suspended at once when a
    suspend is asked meanwhile (nothing consumed: the old checkpoint stands)."""
    if s.pipeline.runtime_desired_status is RD.SUSPENDED:
        return _report(s, Workers.HOLD, RuntimeStatus.SUSPENDED, None)
    details = {"approval_diff": s.seen.bootstrap}
    return _report(s, Workers.HOLD, RuntimeStatus.AWAITING_APPROVAL, details)


def suspend(s: Situation) -> Next:
    # Suspended only once the checkpoint is recorded; Stopping follows (§5).
    data = {**s.deployment, "runtime_status": RuntimeStatus.SUSPENDED}
    return Next(Workers.SUSPEND, Step.RUNTIME_STATUS, data)


def take_checkpoint(s: Situation) -> Next:
    return Next(Workers.CHECKPOINT)


def reach_runtime_target(s: Situation) -> Next:
    assert s.pipeline.runtime_desired_status is not None  # no_runtime_target came first
    status, workers = RUNTIME_TARGET[s.pipeline.runtime_desired_status]
    if s.pipeline.runtime_status is status:
        return Next(workers)
    return Next(workers, Step.RUNTIME_STATUS, {**s.deployment, "runtime_status": status})


def _report(
    s: Situation, workers: Workers, status: RuntimeStatus, details: dict[str, Any] | None
) -> Next:
    """Put the workers in `workers`; report `status` (and `details`) unless already shown."""
    p = s.pipeline
    if p.runtime_status is status and p.runtime_status_details == details:
        return Next(workers)
    data = {**s.deployment, "runtime_status": status, "details": details}
    return Next(workers, Step.RUNTIME_STATUS, data)


# --- the table -----------------------------------------------------------------------------


def rule(
    resources: R | frozenset[R],
    desired: D | frozenset[D],
    when: Condition,
    then: Outcome,
) -> Rule:
    return Rule(
        resources if isinstance(resources, frozenset) else frozenset({resources}),
        desired if isinstance(desired, frozenset) else frozenset({desired}),
        when,
        then,
    )


ANY: Final = frozenset(D)
DEPLOYED: Final = frozenset({R.PROVISIONING, R.PROVISIONED})

# fmt: off
RULES: Final[tuple[Rule, ...]] = (
    #    resources       desired         when                        then
    rule(R.STOPPING,     ANY,            always,                     report_stopped),
    rule(R.STOPPED,      D.STOPPED,      storage_clearing,           clear_storage),
    rule(R.STOPPED,      D.STOPPED,      always,                     release_workers),
    rule(R.STOPPED,      D.PROVISIONED,  program_succeeded,          begin_provisioning),
    rule(R.STOPPED,      D.PROVISIONED,  program_pending,            release_workers),
    rule(R.STOPPED,      D.PROVISIONED,  always,                     fail_start),
    rule(DEPLOYED,       D.STOPPED,      always,                     begin_stopping),
    rule(DEPLOYED,       D.PROVISIONED,  worker_failed,              stop_with_worker_error),
    rule(R.PROVISIONING, D.PROVISIONED,  workers_ready,              report_provisioned),
    rule(R.PROVISIONING, D.PROVISIONED,  provisioning_overdue,       time_out_provisioning),
    rule(R.PROVISIONING, D.PROVISIONED,  always,                     run_workers),
    rule(R.PROVISIONED,  D.PROVISIONED,  suspended,                  begin_stopping),
    rule(R.PROVISIONED,  D.PROVISIONED,  workers_not_ready,          run_workers),
    rule(R.PROVISIONED,  D.PROVISIONED,  bootstrap_rejected,         reject_bootstrap),
    rule(R.PROVISIONED,  D.PROVISIONED,  bootstrap_awaits_approval,  await_approval),
    rule(R.PROVISIONED,  D.PROVISIONED,  suspend_asked,              suspend),
    rule(R.PROVISIONED,  D.PROVISIONED,  no_runtime_target,          run_workers),
    rule(R.PROVISIONED,  D.PROVISIONED,  checkpoint_asked,           take_checkpoint),
    rule(R.PROVISIONED,  D.PROVISIONED,  always,                     reach_runtime_target),
)
# fmt: on

__all__ = ["RULES", "RUNTIME_TARGET", "Next", "Seen", "Workers", "decide"]
