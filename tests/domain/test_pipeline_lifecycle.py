"""The Pipeline's lifecycle as stories: a whole deployment, the reconciler steps, the
derived statuses and replay of the recorded events."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.statuses import (
    BootstrapPolicy,
    CombinedDesiredStatus,
    CombinedStatus,
    InitialStatus,
    ProgramStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
)
from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from contracts.statuses import StorageStatus as S
from domain.deployment_errors import deployment_error, start_failed_due_to_failed_compilation
from domain.errors import RetryableError
from domain.pipeline import Pipeline
from tests.domain.pipeline_builders import body, new_pipeline, now, provisioned, refused, state_of

# --- a whole deployment ------------------------------------------------------------------


def test_a_deployment_from_start_to_stopped() -> None:
    p = new_pipeline()
    assert (p.deployment_status, p.deployment_desired_status) == ("Stopped", "Stopped")
    assert (p.storage_status, p.program_status) == (S.CLEARED, ProgramStatus.SUCCESS)

    t = now()
    assert p.start("paused", BootstrapPolicy.ALLOW, at=t) == "Pipeline is starting"
    assert p.deployment_desired_status is CombinedDesiredStatus.PAUSED  # from `initial`
    assert p.deployment_desired_status_since == t

    t = now()
    dep = p.begin_provisioning(at=t)
    assert dep.version == 7
    assert (p.deployment_id, p.deployment_status, p.storage_status) == (
        dep,
        CombinedStatus.PROVISIONING,
        S.IN_USE,
    )
    assert p.deployment_status_since == t

    p.provisioned(dep, at=now())
    assert p.resources_status is R.PROVISIONED
    assert p.deployment_status is CombinedStatus.INITIALIZING
    assert p.runtime_desired_status is RuntimeDesiredStatus.PAUSED

    t = now()
    p.runtime_status_reported(dep, RuntimeStatus.PAUSED, at=t)
    assert (p.deployment_status, p.deployment_status_since) == (CombinedStatus.PAUSED, t)

    assert p.resume(at=now()) == "Pipeline transitioning from Paused to Running"
    assert p.stop(at=now()) == "Pipeline is suspending"
    assert p.deployment_desired_status is CombinedDesiredStatus.SUSPENDED
    assert p.resources_desired_status is D.PROVISIONED

    p.runtime_status_reported(dep, RuntimeStatus.SUSPENDED, at=now())
    assert p.deployment_status is CombinedStatus.SUSPENDED

    p.begin_stopping(dep, at=now())
    assert (p.deployment_status, p.deployment_desired_status) == ("Stopping", "Stopped")
    assert p.runtime_status is p.runtime_desired_status is p.runtime_status_since is None
    assert p.deployment_initial is p.bootstrap_policy is None
    assert p.deployment_id == dep

    p.stopped(dep, at=now())
    assert (p.deployment_status, p.deployment_id, p.deployment_error) == ("Stopped", None, None)
    assert p.storage_status is S.IN_USE
    assert p.pipeline_version == 1
    assert p.refresh_version == 1 + len(p.collect_events()) - 1  # every event after Created


@pytest.mark.parametrize("initial", list(InitialStatus))
def test_provisioned_aims_the_runtime_at_initial(initial: InitialStatus) -> None:
    p = new_pipeline()
    p.start(initial, at=now())
    assert p.deployment_desired_status == initial.value.capitalize()
    dep = p.begin_provisioning(at=now())
    p.provisioned(dep, at=now())
    assert p.runtime_status is RuntimeStatus.INITIALIZING
    assert p.runtime_desired_status == initial.value.capitalize()


def test_provisioning_timeout_stops_with_the_error_kept_until_dismissed() -> None:
    p = new_pipeline()
    p.start(at=now())
    dep = p.begin_provisioning(at=now())
    p.provisioning_timed_out(dep, 20, at=now())
    assert (p.resources_status, p.resources_desired_status) == (R.STOPPING, D.STOPPED)
    assert p.deployment_error is not None
    assert p.deployment_error["error_code"] == "AutomatonProvisioningTimeout"
    assert p.deployment_error["message"].startswith(
        "Pipeline could not be provisioned within the timeout of 20s. Possible reasons:"
    )
    assert p.deployment_error["details"] == {"timeout": {"secs": 20, "nanos": 0}}
    e = refused(p, lambda: p.dismiss_error(at=now()))
    assert body(e)[:3] == (
        400,
        "DismissErrorRestrictedToFullyStopped",
        "The pipeline must have both status `Stopped` and desired status `Stopped` to dismiss "
        "the `deployment_error` if it is set.",
    )
    p.stopped(dep, at=now())
    assert p.deployment_error is not None
    assert p.dismiss_error(at=now()) == "Pipeline deployment error has been dismissed"
    assert p.deployment_error is None


def test_bootstrap_rejected_stops_with_its_error() -> None:
    p, dep = provisioned(runtime=RuntimeStatus.INITIALIZING)
    p.bootstrap_rejected(dep, at=now())
    assert p.resources_status is R.STOPPING
    assert p.deployment_error == {
        "message": "Bootstrapping of the modified pipeline was rejected by the user.",
        "error_code": "BootstrapRejected",
        "details": None,
    }


def test_approve_only_while_awaiting_approval() -> None:
    p, dep = provisioned(runtime=RuntimeStatus.AWAITING_APPROVAL)
    p.collect_events()
    assert p.approve(at=now()) == "Pipeline bootstrap has been approved"
    assert p.approve(at=now()) == "Pipeline bootstrap has been approved"
    assert len(p.collect_events()) == 1
    p.runtime_status_reported(dep, RuntimeStatus.BOOTSTRAPPING, at=now())
    e = refused(p, lambda: p.approve(at=now()))
    assert (e.error_code, e.message) == (
        "InvalidTransition",
        "Cannot execute approve transition starting from Bootstrapping",
    )


def test_checkpoint_numbers_increase_and_name_the_deployment() -> None:
    p, dep = provisioned()
    assert p.checkpoint(at=now()) == {"checkpoint_sequence_number": 1, "incarnation_uuid": str(dep)}
    assert p.checkpoint(at=now()) == {"checkpoint_sequence_number": 2, "incarnation_uuid": str(dep)}


def test_unavailable_runtime_refuses_interaction_with_retry_after() -> None:
    p, dep = provisioned()
    p.runtime_status_reported(dep, RuntimeStatus.UNAVAILABLE, at=now())
    for call in (p.pause, p.resume, p.checkpoint, p.approve):
        e = refused(p, lambda call=call: call(at=now()))
        assert isinstance(e, RetryableError)
        assert (e.http_status, e.error_code, e.details) == (
            503,
            "PipelineUnavailable",
            {"pipeline_name": "p1"},
        )


def test_forced_stop_of_an_early_start_forgets_initial_and_policy() -> None:
    p = new_pipeline()
    p.start("standby", BootstrapPolicy.REJECT, at=now())
    assert p.stop(force=True, at=now()) == "Pipeline is forcefully stopping"
    assert (p.resources_desired_status, p.deployment_initial, p.bootstrap_policy) == (
        D.STOPPED,
        None,
        None,
    )
    p.start("paused", BootstrapPolicy.ALLOW, at=now())  # nothing left to be immutable


def test_early_start_waits_for_validation_and_fails_on_invalid_program() -> None:
    p = new_pipeline(validated=False)
    assert p.start(at=now()) == "Pipeline is starting"
    e = refused(p, lambda: p.begin_provisioning(at=now()))
    assert body(e) == (
        500,
        "TransitionRequiresCompiledProgram",
        "Transition from 'Stopped' to 'Provisioning' requires a successfully compiled program",
        {"current": "Stopped", "transition_to": "Provisioning"},
    )
    p.program_validated(False, at=now())
    failure = deployment_error(start_failed_due_to_failed_compilation("E202"))
    p.start_failed(failure, at=now())
    assert (p.resources_status, p.resources_desired_status) == (R.STOPPED, D.STOPPED)
    assert (p.deployment_error, p.deployment_initial) == (failure, None)
    assert refused(p, lambda: p.start(at=now())).error_code == "CannotStartWithCompilationError"


def test_runtime_report_writes_only_on_change() -> None:
    p, dep = provisioned()
    p.collect_events()
    p.runtime_status_reported(dep, RuntimeStatus.RUNNING, at=now())
    assert p.collect_events() == []
    p.runtime_status_reported(dep, RuntimeStatus.RUNNING, at=now(), details={"reason": "x"})
    assert len(p.collect_events()) == 1
    assert p.runtime_status_details == {"reason": "x"}


# --- replay ------------------------------------------------------------------------------


def _lifecycle() -> tuple[Pipeline, list[Any]]:
    p, dep = provisioned(InitialStatus.PAUSED, RuntimeStatus.AWAITING_APPROVAL)
    events = p.collect_events()
    p.approve(at=now())
    p.runtime_status_reported(dep, RuntimeStatus.PAUSED, at=now(), details={"n": 1})
    p.resume(at=now())
    p.checkpoint(at=now())
    p.begin_stopping(
        dep, {"message": "m", "error_code": "RunnerCheckError", "details": None}, at=now()
    )
    p.stopped(dep, at=now())
    p.clear(at=now())
    p.storage_cleared(at=now())
    p.update(name="renamed", description="d", at=now())
    return p, events + p.collect_events()


def test_replaying_serialized_events_rebuilds_the_same_state() -> None:
    p, events = _lifecycle()
    rebuilt: Pipeline | None = None
    for e in events:
        copy_ = type(e).model_validate_json(e.model_dump_json())
        rebuilt = copy_.mutate(rebuilt)
    assert rebuilt is not None
    assert state_of(rebuilt) == state_of(p)
    assert rebuilt.deployment_status_since == p.deployment_status_since


def test_snapshot_round_trip() -> None:
    p, _ = _lifecycle()
    snapshot = Pipeline.Snapshot.take(p)
    restored = type(snapshot).model_validate_json(snapshot.model_dump_json()).mutate(None)
    assert state_of(restored) == state_of(p)
