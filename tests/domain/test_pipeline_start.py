"""A Pipeline's /start: the seeds' bodies verbatim (000/001) and Feldera's checks, in
Feldera's order."""

from __future__ import annotations

from uuid import UUID, uuid4

from contracts.statuses import BootstrapPolicy, InitialStatus
from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from domain.pipeline import Pipeline
from domain.pipeline_errors import unknown_pipeline
from tests.domain.pipeline_builders import body, in_state, new_pipeline, now, provisioned, refused
from tests.expected_bodies import STOPPING_BODY


def test_seed_start_while_stopping_body_verbatim() -> None:
    p, _ = in_state(R.STOPPING, D.STOPPED)
    e = refused(p, lambda: p.start(at=now()))
    assert e.http_status == 400
    assert e.body().model_dump(mode="json") == STOPPING_BODY


def test_seed_unknown_pipeline_body_verbatim() -> None:
    e = unknown_pipeline("non-existent-pipeline")
    assert e.http_status == 404
    assert e.body().model_dump(mode="json") == {
        "message": "Unknown pipeline name 'non-existent-pipeline'",
        "error_code": "UnknownPipelineName",
        "details": {"pipeline_name": "non-existent-pipeline"},
    }


# --- /start: Feldera's checks, in Feldera's order ----------------------------------------


def test_unknown_initial_is_checked_before_the_state() -> None:
    p, _ = in_state(R.STOPPING, D.STOPPED)
    assert body(refused(p, lambda: p.start("bogus", at=now()))) == (
        405,
        "UnsupportedPipelineAction",
        "Unsupported pipeline action '/start?initial=bogus': "
        "unknown initial runtime desired status: bogus",
        {
            "action": "/start?initial=bogus",
            "reason": "unknown initial runtime desired status: bogus",
        },
    )


def _stopping_with_error() -> tuple[Pipeline, UUID]:
    p, dep = provisioned()
    p.begin_stopping(dep, {"message": "boom", "error_code": "RunnerCheckError"}, at=now())
    return p, dep


def test_illegal_action_before_undismissed_error() -> None:
    p, _ = _stopping_with_error()
    e = refused(p, lambda: p.start(dismiss_error=False, at=now()))
    assert e.error_code == "IllegalPipelineAction"


def _stopped_with_error() -> Pipeline:
    p, dep = _stopping_with_error()
    p.stopped(dep, at=now())
    return p


def test_undismissed_error_before_clearing_storage() -> None:
    p = _stopped_with_error()
    p.clear(at=now())
    e = refused(p, lambda: p.start(dismiss_error=False, at=now()))
    assert body(e)[:3] == (
        400,
        "CannotStartWithUndismissedError",
        "Cannot process `/start?dismiss_error=false` if the `deployment_error` is set. "
        "You can dismiss the error by calling `/start?dismiss_error=true`, or alternatively "
        "first call `/dismiss_error`, after which `/start?dismiss_error=false` is again possible.",
    )


def test_clearing_storage_before_compilation_error() -> None:
    p = _stopped_with_error()
    p.update(config_id=uuid4(), at=now())
    p.program_validated(False, at=now())
    p.clear(at=now())
    assert refused(p, lambda: p.start(at=now())).error_code == "CannotStartWhileClearingStorage"


def test_compilation_error_before_initial_immutable() -> None:
    p = new_pipeline(validated=False)
    p.start(InitialStatus.RUNNING, at=now())
    p.program_validated(False, at=now())
    e = refused(p, lambda: p.start(InitialStatus.PAUSED, at=now()))
    assert body(e)[:2] == (400, "CannotStartWithCompilationError")


def test_initial_immutable_before_bootstrap_policy() -> None:
    p, _ = provisioned()
    e = refused(p, lambda: p.start("paused", BootstrapPolicy.ALLOW, at=now()))
    assert body(e)[:3] == (
        400,
        "InitialImmutableUnlessStopped",
        "Initial desired runtime status cannot be changed unless the pipeline is desired to "
        "become Stopped.",
    )
    e = refused(p, lambda: p.start("running", BootstrapPolicy.ALLOW, at=now()))
    assert body(e)[:2] == (400, "BootstrapPolicyImmutableUnlessStopped")


def test_start_again_with_same_parameters_is_idempotent() -> None:
    p, _ = provisioned()
    p.collect_events()
    assert p.start(at=now()) == "Pipeline is starting"
    assert p.collect_events() == []


def test_start_while_suspending_is_illegal() -> None:
    p, _ = provisioned()
    p.stop(at=now())
    e = refused(p, lambda: p.start(at=now()))
    assert e.error_code == "IllegalPipelineAction"
    assert e.details["status"] == "Provisioned"
