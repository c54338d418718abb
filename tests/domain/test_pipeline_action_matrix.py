"""Walk every (state, action) pair of the Pipeline's action matrix against the aggregate.

The expected outcome of each pair comes from the table; the expected error bodies are
written out here from Feldera's documented lifecycle (docs/pipeline-lifecycle.md §2-§3)
and the seeds, not taken from the error catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

import pytest

from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from contracts.statuses import StorageStatus as S
from domain.errors import RetryableError
from domain.pipeline import Pipeline
from domain.pipeline_table import ACTION_MATRIX, STATES, Action, Outcome, storage_change_needs_stop
from tests.domain.pipeline_builders import body, in_state, now, refused

A = Action

SEED_HINT = (
    "Cannot restart the pipeline while it is stopping. "
    "Wait for it to stop before starting a new instance of the pipeline."
)


ACTIONS: dict[Action, Callable[[Pipeline], object]] = {
    A.START: lambda p: p.start(at=now()),
    A.STOP_FORCE: lambda p: p.stop(force=True, at=now()),
    A.STOP: lambda p: p.stop(force=False, at=now()),
    A.PAUSE: lambda p: p.pause(at=now()),
    A.RESUME: lambda p: p.resume(at=now()),
    A.ACTIVATE: lambda p: p.activate(at=now()),
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
    (A.ACTIVATE, Outcome.FORWARD): "Pipeline transitioning from Running to Running",
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
        case _ if (action, expected) == (A.CHECKPOINT, Outcome.FORWARD):
            # The request's number, and the deployment it was made to (Feldera's
            # incarnation_uuid).
            assert call(p) == {
                "checkpoint_sequence_number": 1,
                "incarnation_uuid": str(p.deployment_id),
            }
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
    assert len(ACTION_MATRIX) == 7 * 12


def test_matrix_spot_checks_from_the_reference_summary() -> None:
    """docs/pipeline-lifecycle.md §2.5 read directly: the cells its summary spells out."""
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
        assert ACTION_MATRIX[(resources, desired, A.ACTIVATE)] is expected


def test_clear_rule_in_matrix_agrees_with_storage_rule() -> None:
    for resources, desired in STATES:
        immutable = ACTION_MATRIX[(resources, desired, A.CLEAR)] is Outcome.STORAGE_IMMUTABLE
        assert immutable == storage_change_needs_stop(resources, desired, S.CLEARING)
