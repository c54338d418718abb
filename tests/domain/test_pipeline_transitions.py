"""Walk the Pipeline's transition tables against the aggregate: resources (driven through
the reconciler steps), runtime and storage. Each table is also checked against the
rows of Feldera's documented lifecycle (docs/pipeline-lifecycle.md §1), transcribed here
independently.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

import pytest

from contracts.statuses import InitialStatus, RuntimeStatus
from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from contracts.statuses import RuntimeDesiredStatus as RD
from contracts.statuses import StorageStatus as S
from domain.pipeline import Pipeline
from domain.pipeline_table import (
    RECONCILER_STEPS,
    RESOURCES_FAIL_SAFE,
    RESOURCES_TRANSITIONS,
    RUNTIME_TRANSITIONS,
    STATES,
    STORAGE_TRANSITIONS,
    Step,
    resources_transition_allowed,
)
from tests.domain.pipeline_builders import body, in_state, new_pipeline, now, provisioned, refused

# --- (a) resources transitions, driven through the reconciler steps ----------------------


def _step(p: Pipeline, step: Step, dep: UUID | None) -> Callable[[], object]:
    some = dep or uuid4()
    calls: dict[Step, Callable[[], object]] = {
        Step.BEGIN_PROVISIONING: lambda: p.begin_provisioning(at=now()),
        Step.START_FAILED: lambda: p.start_failed({"error_code": "X"}, at=now()),
        Step.PROVISIONED: lambda: p.provisioned(some, at=now()),
        Step.RUNTIME_STATUS_REPORTED: lambda: p.runtime_status_reported(
            some, RuntimeStatus.PAUSED, at=now()
        ),
        Step.BEGIN_STOPPING: lambda: p.begin_stopping(some, at=now()),
        Step.PROVISIONING_TIMED_OUT: lambda: p.provisioning_timed_out(some, 20, at=now()),
        Step.BOOTSTRAP_REJECTED: lambda: p.bootstrap_rejected(some, at=now()),
        Step.STOPPED: lambda: p.stopped(some, at=now()),
    }
    return calls[step]


STEP_PAIRS = [(state, step) for state in STATES for step in Step]
_NO_DEPLOYMENT_STEPS = {Step.BEGIN_PROVISIONING, Step.START_FAILED}


@pytest.mark.parametrize(
    ("state", "step"), STEP_PAIRS, ids=[f"{s[0]}/{s[1]}-{st}" for s, st in STEP_PAIRS]
)
def test_reconciler_step_table(state: tuple[R, D], step: Step) -> None:
    p, dep = in_state(*state)
    sources, target, needed = RECONCILER_STEPS[step]
    call = _step(p, step, dep)
    if dep is None and step not in _NO_DEPLOYMENT_STEPS:
        e = refused(p, call)
        assert (e.http_status, e.error_code) == (409, "StaleDeployment")
        assert e.details["current_deployment_id"] is None
    elif state[0] not in sources or (needed is not None and state[1] is not needed):
        e = refused(p, call)
        assert (e.http_status, e.error_code) == (409, "ReconcilerStepNotApplicable")
        assert e.details["step"] == step.value
        assert (e.details["status"], e.details["desired_status"]) == (state[0], state[1])
    else:
        assert resources_transition_allowed(p.storage_status, state[0], target)
        call()
        assert p.resources_status is target


def test_stale_deployment_id_is_refused_with_both_ids() -> None:
    p, dep = provisioned()
    old = uuid4()
    e = refused(p, lambda: p.begin_stopping(old, at=now()))
    assert body(e) == (
        409,
        "StaleDeployment",
        f"Reconciler step 'begin_stopping' is about deployment '{old}', "
        f"but the pipeline's current deployment is '{dep}'",
        {"step": "begin_stopping", "deployment_id": str(old), "current_deployment_id": str(dep)},
    )


def test_resources_table_matches_reference_rows() -> None:
    """§1.1 transcribed independently: (storage, from, to) triples that are legal."""
    legal = {
        (s, R.STOPPED, to) for s in (S.CLEARED, S.IN_USE) for to in (R.PROVISIONING, R.STOPPED)
    }
    legal |= {(S.IN_USE, R.PROVISIONING, to) for to in (R.PROVISIONING, R.PROVISIONED, R.STOPPING)}
    legal |= {(S.IN_USE, R.PROVISIONED, to) for to in (R.PROVISIONED, R.STOPPING)}
    legal |= {(s, R.STOPPING, R.STOPPED) for s in (S.CLEARED, S.IN_USE)}
    table = {(s, a, b) for (a, b), storages in RESOURCES_TRANSITIONS.items() for s in storages}
    assert table == legal
    for s in S:
        for a in R:
            for b in R:
                fail_safe = (a, b) in {
                    (R.PROVISIONING, R.STOPPING),
                    (R.PROVISIONED, R.STOPPING),
                    (R.STOPPING, R.STOPPED),
                }
                assert resources_transition_allowed(s, a, b) == ((s, a, b) in legal or fail_safe)
    assert len(RESOURCES_FAIL_SAFE) == 3


def test_provisioning_from_clearing_storage_is_an_invalid_resources_transition() -> None:
    p, dep = provisioned()
    p.stop(force=True, at=now())
    p.begin_stopping(dep, at=now())
    p.stopped(dep, at=now())
    p.clear(at=now())
    # Only reachable by a reconciler acting on a stale view: /start refuses while Clearing.
    e = refused(p, lambda: p.start(at=now()))
    assert e.error_code == "CannotStartWhileClearingStorage"
    assert p.storage_status is S.CLEARING


# --- (b) runtime may_transition_to -------------------------------------------------------


def _with_runtime_desired(target: RD) -> Pipeline:
    if target is RD.STANDBY:
        return provisioned(InitialStatus.STANDBY, RuntimeStatus.STANDBY)[0]
    p, _ = provisioned(InitialStatus.PAUSED, RuntimeStatus.PAUSED)
    if target is RD.RUNNING:
        p.resume(at=now())
    elif target is RD.SUSPENDED:
        p.stop(force=False, at=now())
    assert p.runtime_desired_status is target
    return p


RUNTIME_CASES = [
    (current, verb)
    for current in (RD.STANDBY, RD.PAUSED, RD.RUNNING, RD.SUSPENDED)
    for verb in ("pause", "start", "suspend")
]
_VERB_TARGET = {"pause": RD.PAUSED, "start": RD.RUNNING, "suspend": RD.SUSPENDED}


@pytest.mark.parametrize(("current", "verb"), RUNTIME_CASES)
def test_runtime_table(current: RD, verb: str) -> None:
    p = _with_runtime_desired(current)
    new = _VERB_TARGET[verb]
    call = {
        "pause": lambda: p.pause(at=now()),
        "start": lambda: p.resume(at=now()),
        "suspend": lambda: p.stop(force=False, at=now()),
    }[verb]
    # Only `/activate` may leave Standby; a suspend is not a state_transition call.
    allowed = new in RUNTIME_TRANSITIONS[current] and (
        current is not RD.STANDBY or verb == "suspend"
    )
    if allowed:
        reply = call()
        suspending = "Pipeline is suspending"
        assert reply == (
            suspending if verb == "suspend" else f"Pipeline transitioning from {current} to {new}"
        )
        assert p.runtime_desired_status is new
    else:
        assert body(refused(p, call))[:3] == (
            400,
            "InvalidTransition",
            f"Cannot execute {verb} transition starting from {current}",
        )


def test_runtime_table_matches_reference() -> None:
    assert {(a, b) for a, bs in RUNTIME_TRANSITIONS.items() for b in bs if a != b} == {
        (RD.STANDBY, RD.PAUSED),
        (RD.STANDBY, RD.RUNNING),
        (RD.PAUSED, RD.RUNNING),
        (RD.PAUSED, RD.SUSPENDED),
        (RD.RUNNING, RD.PAUSED),
        (RD.RUNNING, RD.SUSPENDED),
    }
    assert all(a in bs for a, bs in RUNTIME_TRANSITIONS.items())


# --- (c) storage transitions -------------------------------------------------------------


def _stopped_with_storage(storage: S) -> Pipeline:
    if storage is S.CLEARED:
        return new_pipeline()
    p, _ = in_state(R.STOPPED, D.STOPPED)
    if storage is S.CLEARING:
        p.clear(at=now())
    assert p.storage_status is storage
    return p


@pytest.mark.parametrize("current", list(S))
def test_storage_cleared_step_follows_storage_table(current: S) -> None:
    p = _stopped_with_storage(current)
    if (current, S.CLEARED) in STORAGE_TRANSITIONS:
        p.storage_cleared(at=now())
        assert p.storage_status is S.CLEARED
    else:
        assert body(refused(p, lambda: p.storage_cleared(at=now()))) == (
            400,
            "InvalidStorageStatusTransition",
            f"Cannot transition from storage status '{current}' to 'Cleared'",
            {"current_status": current.value, "new_status": "Cleared"},
        )


@pytest.mark.parametrize("current", list(S))
def test_clear_follows_storage_table(current: S) -> None:
    p = _stopped_with_storage(current)
    p.collect_events()
    assert p.clear(at=now()) == "Pipeline storage is being cleared"
    changed = current is S.IN_USE
    assert len(p.collect_events()) == (1 if changed else 0)
    assert p.storage_status is (S.CLEARED if current is S.CLEARED else S.CLEARING)


def test_storage_table_matches_reference() -> None:
    assert {
        (S.CLEARED, S.IN_USE),
        (S.IN_USE, S.IN_USE),
        (S.IN_USE, S.CLEARING),
        (S.CLEARING, S.CLEARING),
        (S.CLEARING, S.CLEARED),
    } == STORAGE_TRANSITIONS


def test_storage_cleared_while_not_stopped_is_immutable() -> None:
    p, _ = provisioned()
    assert body(refused(p, lambda: p.storage_cleared(at=now())))[:2] == (
        400,
        "StorageStatusImmutableUnlessStopped",
    )
