"""The automaton's decision table (services.runtimes.reconciler.decide.RULES), row by row,
on Pipeline aggregates taken through their lifecycle in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product
from uuid import UUID, uuid4

import pytest

from contracts.reconciler_commands import ReconcileStep
from contracts.statuses import (
    BootstrapPolicy,
    InitialStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeStatus,
)
from domain.pipeline import Pipeline
from services.runtimes.reconciler.decide import RULES, Next, Seen, Workers, always, decide

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMEOUT_S = 20.0
S = ReconcileStep
FAILURE = {"message": "Route 'r' failed: boom", "error_code": "RouteFailed", "details": {}}


def started(initial: InitialStatus = InitialStatus.RUNNING, *, valid: bool = True) -> Pipeline:
    pipeline = Pipeline(name="p", config_id=uuid4(), at=T0)
    pipeline.program_validated(valid, at=T0)
    if valid:
        pipeline.start(initial, at=T0)
    return pipeline


def provisioning(initial: InitialStatus = InitialStatus.RUNNING) -> tuple[Pipeline, UUID]:
    pipeline = started(initial)
    return pipeline, pipeline.begin_provisioning(at=T0)


def provisioned(initial: InitialStatus = InitialStatus.RUNNING) -> tuple[Pipeline, UUID]:
    pipeline, deployment = provisioning(initial)
    pipeline.provisioned(deployment, at=T0)
    return pipeline, deployment


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_every_state_has_a_row_that_always_matches() -> None:
    """The table is total: whatever the workers report, some row decides."""
    for resources, desired in product(ResourcesStatus, ResourcesDesiredStatus):
        assert any(
            resources in rule.resources and desired in rule.desired and rule.when is always
            for rule in RULES
        ), (resources, desired)


def test_a_stopped_pipeline_clearing_its_storage_deletes_the_checkpoint() -> None:
    pipeline, deployment = provisioned()
    pipeline.stop(force=True, at=T0)
    pipeline.begin_stopping(deployment, at=T0)
    pipeline.stopped(deployment, at=T0)
    assert decide(pipeline, Seen(), at(1), TIMEOUT_S) == Next(Workers.RELEASE)
    pipeline.clear(at=T0)
    assert decide(pipeline, Seen(), at(1), TIMEOUT_S) == Next(Workers.CLEAR, S.STORAGE_CLEARED)


def test_stopped_and_desired_provisioned_begins_provisioning_under_a_new_deployment() -> None:
    found = decide(started(), Seen(), at(1), TIMEOUT_S)
    assert (found.workers, found.step) == (Workers.RELEASE, S.BEGIN_PROVISIONING)
    assert isinstance(found.data["deployment_id"], UUID)
    again = decide(started(), Seen(), at(1), TIMEOUT_S)
    assert again.data["deployment_id"] != found.data["deployment_id"]


def test_a_pipeline_at_rest_or_without_a_program_waits() -> None:
    at_rest = Pipeline(name="p", config_id=None, at=T0)
    assert decide(at_rest, Seen(), at(1), TIMEOUT_S) == Next(Workers.RELEASE)
    pending = Pipeline(name="p", config_id=None, at=T0)
    pending.start(at=T0)  # no config: the program stays Pending
    assert decide(pending, Seen(), at(1), TIMEOUT_S) == Next(Workers.RELEASE)


def test_a_program_that_failed_validation_fails_the_start() -> None:
    pipeline = started()
    pipeline.program_validated(False, at=T0)  # a config update failed validation after /start
    found = decide(pipeline, Seen(), at(1), TIMEOUT_S)
    assert (found.workers, found.step) == (Workers.RELEASE, S.START_FAILED)
    assert found.data["error"]["error_code"] == "StartFailedDueToFailedCompilation"


def test_provisioning_runs_the_workers_until_they_are_assigned() -> None:
    pipeline, deployment = provisioning()
    assert decide(pipeline, Seen(), at(1), TIMEOUT_S) == Next(Workers.RUN)
    ready = decide(pipeline, Seen(ready=True), at(1), TIMEOUT_S)
    assert ready == Next(Workers.RUN, S.PROVISIONED, {"deployment_id": deployment})


def test_provisioning_past_the_timeout_times_out() -> None:
    pipeline, deployment = provisioning()
    assert decide(pipeline, Seen(), at(TIMEOUT_S - 0.5), TIMEOUT_S).step is None
    found = decide(pipeline, Seen(), at(TIMEOUT_S), TIMEOUT_S)
    assert found == Next(
        Workers.STOP, S.PROVISIONING_TIMED_OUT, {"deployment_id": deployment, "timeout_s": 20}
    )


@pytest.mark.parametrize("make", [provisioning, provisioned])
def test_a_worker_failure_stops_with_its_error(make: object) -> None:
    pipeline, deployment = make()  # type: ignore[operator]
    found = decide(pipeline, Seen(ready=True, failure=FAILURE), at(1), TIMEOUT_S)
    assert found == Next(
        Workers.STOP, S.BEGIN_STOPPING, {"deployment_id": deployment, "error": FAILURE}
    )


@pytest.mark.parametrize("make", [provisioning, provisioned])
def test_desired_stopped_while_deployed_begins_stopping(make: object) -> None:
    pipeline, deployment = make()  # type: ignore[operator]
    pipeline.stop(force=True, at=T0)
    found = decide(pipeline, Seen(ready=True), at(1), TIMEOUT_S)
    assert found == Next(Workers.STOP, S.BEGIN_STOPPING, {"deployment_id": deployment})


@pytest.mark.parametrize(
    ("initial", "status", "workers"),
    [
        (InitialStatus.RUNNING, RuntimeStatus.RUNNING, Workers.CONSUME),
        (InitialStatus.PAUSED, RuntimeStatus.PAUSED, Workers.HOLD),
        (InitialStatus.STANDBY, RuntimeStatus.STANDBY, Workers.HOLD),
    ],
)
def test_provisioned_reports_the_runtime_status_the_workers_are_put_in(
    initial: InitialStatus, status: RuntimeStatus, workers: Workers
) -> None:
    pipeline, deployment = provisioned(initial)
    assert decide(pipeline, Seen(), at(1), TIMEOUT_S) == Next(Workers.RUN)  # not assigned yet
    found = decide(pipeline, Seen(ready=True), at(1), TIMEOUT_S)
    assert found == Next(
        workers, S.RUNTIME_STATUS, {"deployment_id": deployment, "runtime_status": status}
    )
    pipeline.runtime_status_reported(deployment, status, at=T0)
    assert decide(pipeline, Seen(ready=True), at(1), TIMEOUT_S) == Next(workers)


def test_pause_and_resume_follow_the_runtime_desired_status() -> None:
    pipeline, deployment = provisioned()
    pipeline.runtime_status_reported(deployment, RuntimeStatus.RUNNING, at=T0)

    def decided() -> tuple[Workers, object]:
        """What the workers are told and the runtime status the step reports."""
        found = decide(pipeline, Seen(ready=True), at(1), TIMEOUT_S)
        return found.workers, found.data.get("runtime_status")

    pipeline.pause(at=T0)
    assert decided() == (Workers.HOLD, RuntimeStatus.PAUSED)
    pipeline.runtime_status_reported(deployment, RuntimeStatus.PAUSED, at=T0)
    pipeline.resume(at=T0)
    assert decided() == (Workers.CONSUME, RuntimeStatus.RUNNING)


def test_a_suspend_checkpoints_reports_suspended_then_stops() -> None:
    pipeline, deployment = provisioned()
    pipeline.runtime_status_reported(deployment, RuntimeStatus.RUNNING, at=T0)
    pipeline.stop(force=False, at=T0)
    # A restarted reconciler first runs the workers again: their offsets are the checkpoint.
    assert decide(pipeline, Seen(), at(1), TIMEOUT_S) == Next(Workers.RUN)
    found = decide(pipeline, Seen(ready=True), at(1), TIMEOUT_S)
    suspended = {"deployment_id": deployment, "runtime_status": RuntimeStatus.SUSPENDED}
    assert found == Next(Workers.SUSPEND, S.RUNTIME_STATUS, suspended)
    pipeline.runtime_status_reported(deployment, RuntimeStatus.SUSPENDED, at=T0)
    for seen in (Seen(ready=True), Seen()):
        found = decide(pipeline, seen, at(1), TIMEOUT_S)
        assert found == Next(Workers.STOP, S.BEGIN_STOPPING, {"deployment_id": deployment})


def test_stopping_stops_the_workers_then_reports_stopped() -> None:
    pipeline, deployment = provisioned()
    pipeline.begin_stopping(deployment, at=T0)
    found = decide(pipeline, Seen(), at(1), TIMEOUT_S)
    assert found == Next(Workers.STOP, S.STOPPED, {"deployment_id": deployment})


DIFF = {"checkpoint": {"config_version": 1}, "current": {"config_version": 2}}
CHANGED = Seen(ready=True, bootstrap=DIFF)


def with_policy(policy: BootstrapPolicy) -> tuple[Pipeline, UUID]:
    pipeline = Pipeline(name="p", config_id=uuid4(), at=T0)
    pipeline.program_validated(True, at=T0)
    pipeline.start(bootstrap_policy=policy, at=T0)
    deployment = pipeline.begin_provisioning(at=T0)
    pipeline.provisioned(deployment, at=T0)
    return pipeline, deployment


def test_an_unchanged_config_or_allow_goes_on_to_the_runtime_target() -> None:
    pipeline, _ = with_policy(BootstrapPolicy.REJECT)
    unchanged = decide(pipeline, Seen(ready=True), at(1), TIMEOUT_S)
    assert (unchanged.workers, unchanged.step) == (Workers.CONSUME, S.RUNTIME_STATUS)
    allowed, _ = with_policy(BootstrapPolicy.ALLOW)
    found = decide(allowed, CHANGED, at(1), TIMEOUT_S)
    assert (found.workers, found.step) == (Workers.CONSUME, S.RUNTIME_STATUS)
    assert found.data["runtime_status"] is RuntimeStatus.RUNNING


def test_reject_stops_a_changed_config_with_bootstrap_rejected() -> None:
    pipeline, deployment = with_policy(BootstrapPolicy.REJECT)
    found = decide(pipeline, CHANGED, at(1), TIMEOUT_S)
    assert (found.workers, found.step) == (Workers.STOP, S.BEGIN_STOPPING)
    assert found.data["deployment_id"] == deployment
    assert found.data["error"]["error_code"] == "BootstrapRejected"


def test_await_approval_holds_the_workers_until_approved() -> None:
    pipeline, deployment = with_policy(BootstrapPolicy.AWAIT_APPROVAL)
    found = decide(pipeline, CHANGED, at(1), TIMEOUT_S)
    assert (found.workers, found.step) == (Workers.HOLD, S.RUNTIME_STATUS)
    assert found.data["runtime_status"] is RuntimeStatus.AWAITING_APPROVAL
    assert found.data["details"] == {"approval_diff": DIFF}
    pipeline.runtime_status_reported(
        deployment, RuntimeStatus.AWAITING_APPROVAL, at=at(1), details=found.data["details"]
    )
    assert decide(pipeline, CHANGED, at(2), TIMEOUT_S) == Next(Workers.HOLD)
    # Nor does a /checkpoint run meanwhile: it would approve the new config silently.
    pipeline.checkpoint(at=at(2))
    assert decide(pipeline, CHANGED, at(2), TIMEOUT_S) == Next(Workers.HOLD)
    pipeline.approve(at=at(3))
    approved = decide(pipeline, CHANGED, at(3), TIMEOUT_S)
    assert approved.workers is Workers.CHECKPOINT  # the /checkpoint asked for meanwhile


def test_a_suspend_awaiting_approval_reports_suspended_without_a_checkpoint() -> None:
    pipeline, deployment = with_policy(BootstrapPolicy.AWAIT_APPROVAL)
    pipeline.runtime_status_reported(deployment, RuntimeStatus.AWAITING_APPROVAL, at=at(1))
    pipeline.stop(force=False, at=at(2))
    found = decide(pipeline, CHANGED, at(2), TIMEOUT_S)
    assert (found.workers, found.step) == (Workers.HOLD, S.RUNTIME_STATUS)
    assert found.data["runtime_status"] is RuntimeStatus.SUSPENDED


def test_a_checkpoint_request_checkpoints_once() -> None:
    pipeline, deployment = provisioned()
    pipeline.runtime_status_reported(deployment, RuntimeStatus.RUNNING, at=at(1))
    assert decide(pipeline, Seen(ready=True), at(1), TIMEOUT_S) == Next(Workers.CONSUME)
    assert pipeline.checkpoint(at=at(2))["checkpoint_sequence_number"] == 1
    assert decide(pipeline, Seen(ready=True), at(2), TIMEOUT_S) == Next(Workers.CHECKPOINT)
    taken = Seen(ready=True, checkpointed=1)
    assert decide(pipeline, taken, at(3), TIMEOUT_S) == Next(Workers.CONSUME)
