"""Walk every (state, action) pair of the Pipeline's tables against the aggregate.

The expected outcome of each pair comes from the table; the expected error bodies are
written out here from the Feldera reference / seeds, not taken from the error catalogue.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.statuses import (
    InitialStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
    StorageStatus,
)
from domain.base import Aggregate
from domain.errors import DomainError, RetryableError
from domain.pipeline import Pipeline
from domain.pipeline_table import (
    ACTION_MATRIX,
    RECONCILER_STEPS,
    RESOURCES_FAIL_SAFE,
    RESOURCES_TRANSITIONS,
    RUNTIME_TRANSITIONS,
    STATES,
    STORAGE_TRANSITIONS,
    Action,
    Outcome,
    Step,
    resources_transition_allowed,
    storage_change_needs_stop,
)
from tests.domain.pipeline_builders import in_state, new_pipeline, now, provisioned

R = ResourcesStatus
D = ResourcesDesiredStatus
S = StorageStatus
RD = RuntimeDesiredStatus
A = Action

SEED_HINT = (
    "Cannot restart the pipeline while it is stopping. "
    "Wait for it to stop before starting a new instance of the pipeline."
)


def state_of(p: Aggregate) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in vars(p).items() if k != "_pending_events"})


def refused(p: Aggregate, call: Callable[[], object]) -> DomainError:
    """Run a call that must be refused; a refusal leaves no event and no state change."""
    p.collect_events()
    before = state_of(p)
    with pytest.raises(DomainError) as caught:
        call()
    assert p.collect_events() == []
    assert state_of(p) == before
    return caught.value


def body(e: DomainError) -> tuple[int, str, str, Any]:
    return e.http_status, e.error_code, e.message, e.details


ACTIONS: dict[Action, Callable[[Pipeline], object]] = {
    A.START: lambda p: p.start(at=now()),
    A.STOP_FORCE: lambda p: p.stop(force=True, at=now()),
    A.STOP: lambda p: p.stop(force=False, at=now()),
    A.PAUSE: lambda p: p.pause(at=now()),
    A.RESUME: lambda p: p.resume(at=now()),
    A.APPROVE: lambda p: p.approve(at=now()),
    A.CHECKPOINT: lambda p: p.checkpoint(at=now()),
    A.CLEAR: lambda p: p.clear(at=now()),
    A.DELETE: lambda p: p.delete(at=now()),
    A.DISMISS_ERROR: lambda p: p.dismiss_error(at=now()),
    A.UPDATE: lambda p: p.update(config_id=uuid4(), at=now()),
}

# What an accepted or forwarded action answers in the states `in_state` builds
# (storage InUse wherever a deployment existed, runtime Running while Provisioned).
REPLIES: dict[tuple[Action, Outcome], object] = {
    (A.START, Outcome.ACCEPT): "Pipeline is starting",
    (A.STOP_FORCE, Outcome.ACCEPT): "Pipeline is forcefully stopping",
    (A.STOP, Outcome.FORCED): "Pipeline is forcefully stopping",
    (A.STOP, Outcome.FORWARD): "Pipeline is suspending",
    (A.PAUSE, Outcome.FORWARD): "Pipeline transitioning from Running to Paused",
    (A.RESUME, Outcome.FORWARD): "Pipeline transitioning from Running to Running",
    (A.CHECKPOINT, Outcome.FORWARD): {"checkpoint_sequence_number": 1},
    (A.CLEAR, Outcome.ACCEPT): "Pipeline storage is being cleared",
    (A.DISMISS_ERROR, Outcome.ACCEPT): "Pipeline deployment error has been dismissed",
    (A.DISMISS_ERROR, Outcome.DISMISS_RESTRICTED): "Pipeline deployment error has been dismissed",
    (A.UPDATE, Outcome.ACCEPT): None,
}

PAIRS = [(state, action) for state in STATES for action in Action]


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s[0]}/{s[1]}-{a}" for s, a in PAIRS])
def test_action_matrix(state: tuple[R, D], action: Action) -> None:
    p, _ = in_state(*state)
    expected = ACTION_MATRIX[(*state, action)]
    call = ACTIONS[action]
    status, desired = p.deployment_status, p.deployment_desired_status
    match expected:
        case Outcome.ILLEGAL:
            assert body(refused(p, lambda: call(p))) == (
                400,
                "IllegalPipelineAction",
                f"Deployment resources status (current: '{state[0]}', desired: '{state[1]}') "
                f"cannot have desired changed to 'Provisioned'. {SEED_HINT}",
                {
                    "status": state[0].value,
                    "current_desired_status": state[1].value,
                    "new_desired_status": "Provisioned",
                    "hint": SEED_HINT,
                },
            )
        case Outcome.NOT_DEPLOYED:
            e = refused(p, lambda: call(p))
            assert isinstance(e, RetryableError) and e.retry_after == 5
            assert body(e) == (
                503,
                "PipelineInteractionNotDeployed",
                f"Unable to interact with pipeline because the deployment status "
                f"({status.value.lower()}) indicates it is not (yet) fully provisioned "
                'pipeline-id=N/A pipeline-name="p1"',
                {"pipeline_name": "p1", "status": status.value, "desired_status": desired.value},
            )
        case Outcome.STORAGE_IMMUTABLE:
            assert body(refused(p, lambda: call(p))) == (
                400,
                "StorageStatusImmutableUnlessStopped",
                f"Cannot transition storage status from 'InUse' to 'Clearing' with resources "
                f"status '{state[0]}' and desired status '{state[1]}'. "
                "Storage status cannot be changed unless the pipeline is fully stopped.",
                {
                    "resources_status": state[0].value,
                    "resources_desired_status": state[1].value,
                    "current_status": "InUse",
                    "new_status": "Clearing",
                },
            )
        case Outcome.DELETE_RESTRICTED:
            assert body(refused(p, lambda: call(p)))[:3] == (
                400,
                "DeleteRestrictedToFullyStopped",
                "Cannot delete a pipeline which is not fully stopped. "
                "Stop the pipeline first fully by invoking the '/stop' endpoint.",
            )
        case Outcome.UPDATE_RESTRICTED:
            assert body(refused(p, lambda: call(p)))[:3] == (
                400,
                "UpdateRestrictedToStopped",
                "Pipeline can only be updated while stopped. Stop it first by invoking '/stop'.",
            )
        case _ if (action, expected) == (A.APPROVE, Outcome.FORWARD):
            assert body(refused(p, lambda: call(p)))[:3] == (
                400,
                "InvalidTransition",
                "Cannot execute approve transition starting from Running",
            )
        case _ if (action, expected) == (A.DELETE, Outcome.ACCEPT):
            # Every accepting state `in_state` builds has had a deployment: storage InUse.
            assert body(refused(p, lambda: call(p)))[:3] == (
                400,
                "DeleteRestrictedToClearedStorage",
                "Cannot delete pipeline unless its storage is cleared. "
                "Clear storage first using `/clear`.",
            )
        case _:
            assert call(p) == REPLIES[(action, expected)]


def test_every_reachable_state_and_action_is_in_the_matrix() -> None:
    assert set(STATES) == {
        (R.STOPPED, D.STOPPED),
        (R.STOPPED, D.PROVISIONED),
        (R.PROVISIONING, D.PROVISIONED),
        (R.PROVISIONED, D.PROVISIONED),
        (R.PROVISIONING, D.STOPPED),
        (R.PROVISIONED, D.STOPPED),
        (R.STOPPING, D.STOPPED),
    }
    assert set(ACTION_MATRIX) == {(*state, action) for state in STATES for action in Action}
    assert len(ACTION_MATRIX) == 7 * 11


def test_matrix_spot_checks_from_the_reference_summary() -> None:
    """§2.5 read directly: the cells the reference spells out."""
    assert ACTION_MATRIX[(R.STOPPING, D.STOPPED, A.START)] is Outcome.ILLEGAL
    assert ACTION_MATRIX[(R.PROVISIONED, D.STOPPED, A.START)] is Outcome.ILLEGAL
    assert ACTION_MATRIX[(R.PROVISIONING, D.STOPPED, A.START)] is Outcome.ILLEGAL
    assert ACTION_MATRIX[(R.PROVISIONED, D.PROVISIONED, A.STOP)] is Outcome.FORWARD
    assert ACTION_MATRIX[(R.STOPPED, D.PROVISIONED, A.CLEAR)] is Outcome.STORAGE_IMMUTABLE
    assert all(ACTION_MATRIX[(*state, A.STOP_FORCE)] is Outcome.ACCEPT for state in STATES)
    for resources, desired in STATES:
        deployed = resources is R.PROVISIONED
        expected = Outcome.FORWARD if deployed else Outcome.NOT_DEPLOYED
        assert ACTION_MATRIX[(resources, desired, A.PAUSE)] is expected


def test_clear_rule_in_matrix_agrees_with_storage_rule() -> None:
    for resources, desired in STATES:
        immutable = ACTION_MATRIX[(resources, desired, A.CLEAR)] is Outcome.STORAGE_IMMUTABLE
        assert immutable == storage_change_needs_stop(resources, desired, S.CLEARING)


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
