"""The Pipeline's state machines as literal tables (Feldera lifecycle §1.1-§1.4, §2.5).

The aggregate and its tests both read these tables; the code holds no transition
rule that is not written down here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from contracts.statuses import (
    CombinedDesiredStatus,
    CombinedStatus,
    InitialStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
    StorageStatus,
)

R = ResourcesStatus
D = ResourcesDesiredStatus
S = StorageStatus
RD = RuntimeDesiredStatus

# (a) Resources status transitions, §1.1: (from, to) -> storage statuses in which it is legal.
RESOURCES_TRANSITIONS: Final[dict[tuple[R, R], frozenset[S]]] = {
    (R.STOPPED, R.PROVISIONING): frozenset({S.CLEARED, S.IN_USE}),
    (R.STOPPED, R.STOPPED): frozenset({S.CLEARED, S.IN_USE}),
    (R.PROVISIONING, R.PROVISIONING): frozenset({S.IN_USE}),
    (R.PROVISIONING, R.PROVISIONED): frozenset({S.IN_USE}),
    (R.PROVISIONING, R.STOPPING): frozenset({S.IN_USE}),
    (R.PROVISIONED, R.PROVISIONED): frozenset({S.IN_USE}),
    (R.PROVISIONED, R.STOPPING): frozenset({S.IN_USE}),
    (R.STOPPING, R.STOPPED): frozenset({S.CLEARED, S.IN_USE}),
}

# Feldera lets these through whatever the storage status, so a pipeline can always be
# brought down; an out-of-table use is an internal inconsistency, never a dead end.
RESOURCES_FAIL_SAFE: Final[frozenset[tuple[R, R]]] = frozenset(
    {
        (R.PROVISIONING, R.STOPPING),
        (R.PROVISIONED, R.STOPPING),
        (R.STOPPING, R.STOPPED),
    }
)


def resources_transition_allowed(storage: S, current: R, new: R) -> bool:
    return storage in RESOURCES_TRANSITIONS.get((current, new), frozenset()) or (
        (current, new) in RESOURCES_FAIL_SAFE
    )


# (b) Runtime `may_transition_to`, §1.2: current -> reachable desired statuses.
RUNTIME_TRANSITIONS: Final[dict[RD, frozenset[RD]]] = {
    RD.UNAVAILABLE: frozenset({RD.UNAVAILABLE}),
    RD.STANDBY: frozenset({RD.STANDBY, RD.PAUSED, RD.RUNNING}),
    RD.PAUSED: frozenset({RD.PAUSED, RD.RUNNING, RD.SUSPENDED}),
    RD.RUNNING: frozenset({RD.RUNNING, RD.PAUSED, RD.SUSPENDED}),
    RD.SUSPENDED: frozenset({RD.SUSPENDED}),
}


def may_transition_to(current: RD, new: RD) -> bool:
    return new in RUNTIME_TRANSITIONS[current]


# (c) Storage status transitions, §1.4.
STORAGE_TRANSITIONS: Final[frozenset[tuple[S, S]]] = frozenset(
    {
        (S.CLEARED, S.IN_USE),
        (S.IN_USE, S.IN_USE),
        (S.IN_USE, S.CLEARING),
        (S.CLEARING, S.CLEARING),
        (S.CLEARING, S.CLEARED),
    }
)


def storage_change_needs_stop(resources: R, desired: D, new: S) -> bool:
    """§1.4: storage only changes while fully stopped; →InUse happens at start (desired
    Provisioned), so for that target only the resources status must be Stopped."""
    if resources is not R.STOPPED:
        return True
    return desired is not D.STOPPED and new is not S.IN_USE


# (d) The action matrix, §2.5.
class Action(StrEnum):
    START = "start"
    STOP_FORCE = "stop?force=true"
    STOP = "stop?force=false"
    PAUSE = "pause"
    RESUME = "resume"
    APPROVE = "approve"
    CHECKPOINT = "checkpoint"
    CLEAR = "clear"
    DELETE = "delete"
    DISMISS_ERROR = "dismiss_error"
    UPDATE = "update"  # core fields (name, config_id); description is metadata, always allowed


class Outcome(StrEnum):
    ACCEPT = "accept"  # goes on to the action's own checks (start 5-9, storage, delete)
    ILLEGAL = "IllegalPipelineAction"
    NOT_DEPLOYED = "PipelineInteractionNotDeployed"
    FORWARD = "forward"  # handed to the runtime rule (§2.3, may_transition_to)
    FORCED = "forced"  # a non-forced stop that acts as a forced one
    STORAGE_IMMUTABLE = "StorageStatusImmutableUnlessStopped"
    DELETE_RESTRICTED = "DeleteRestrictedToFullyStopped"
    UPDATE_RESTRICTED = "UpdateRestrictedToStopped"
    DISMISS_RESTRICTED = "DismissErrorRestrictedToFullyStopped"  # only when an error is set


A = Action
O = Outcome  # noqa: E741

_STOPPED_ROW: Final[dict[A, O]] = {
    A.START: O.ACCEPT,
    A.STOP_FORCE: O.ACCEPT,
    A.STOP: O.FORCED,
    A.PAUSE: O.NOT_DEPLOYED,
    A.RESUME: O.NOT_DEPLOYED,
    A.APPROVE: O.NOT_DEPLOYED,
    A.CHECKPOINT: O.NOT_DEPLOYED,
    A.CLEAR: O.ACCEPT,
    A.DELETE: O.ACCEPT,
    A.DISMISS_ERROR: O.ACCEPT,
    A.UPDATE: O.ACCEPT,
}


def _not_stopped_row(start: O, stop: O, interact: O) -> dict[A, O]:
    return {
        A.START: start,
        A.STOP_FORCE: O.ACCEPT,
        A.STOP: stop,
        A.PAUSE: interact,
        A.RESUME: interact,
        A.APPROVE: interact,
        A.CHECKPOINT: interact,
        A.CLEAR: O.STORAGE_IMMUTABLE,
        A.DELETE: O.DELETE_RESTRICTED,
        A.DISMISS_ERROR: O.DISMISS_RESTRICTED,
        A.UPDATE: O.UPDATE_RESTRICTED,
    }


# (resources status, resources desired) -> action -> outcome. Only reachable states are
# listed: every entry into Stopping sets desired Stopped, so Stopping/Provisioned never occurs.
ACTION_MATRIX: Final[dict[tuple[R, D], dict[A, O]]] = {
    (R.STOPPED, D.STOPPED): _STOPPED_ROW,
    # Early start: the reconciler has not acted yet.
    (R.STOPPED, D.PROVISIONED): _not_stopped_row(O.ACCEPT, O.FORCED, O.NOT_DEPLOYED),
    (R.PROVISIONING, D.PROVISIONED): _not_stopped_row(O.ACCEPT, O.FORCED, O.NOT_DEPLOYED),
    (R.PROVISIONED, D.PROVISIONED): _not_stopped_row(O.ACCEPT, O.FORWARD, O.FORWARD),
    (R.PROVISIONING, D.STOPPED): _not_stopped_row(O.ILLEGAL, O.FORCED, O.NOT_DEPLOYED),
    (R.PROVISIONED, D.STOPPED): _not_stopped_row(O.ILLEGAL, O.FORWARD, O.FORWARD),
    (R.STOPPING, D.STOPPED): _not_stopped_row(O.ILLEGAL, O.FORCED, O.NOT_DEPLOYED),
}


def outcome(resources: R, desired: D, action: A) -> O:
    return ACTION_MATRIX[(resources, desired)][action]


# `/start?initial=` -> the runtime desired status a fresh deployment aims for.
INITIAL_RUNTIME_DESIRED: Final[dict[InitialStatus, RD]] = {
    InitialStatus.RUNNING: RD.RUNNING,
    InitialStatus.PAUSED: RD.PAUSED,
    InitialStatus.STANDBY: RD.STANDBY,
}

# Combined status, §1.3: what the resources status shows when it is not Provisioned
# (while Provisioned, the runtime status shows through instead).
COMBINED_OF_RESOURCES: Final[dict[R, CombinedStatus]] = {
    R.STOPPED: CombinedStatus.STOPPED,
    R.PROVISIONING: CombinedStatus.PROVISIONING,
    R.STOPPING: CombinedStatus.STOPPING,
}


def combined_status(resources: R, runtime: RuntimeStatus | None) -> CombinedStatus:
    """`deployment_status`: never `Provisioned`; a missing runtime status reads Unavailable."""
    if resources is R.PROVISIONED:
        return CombinedStatus(runtime.value) if runtime else CombinedStatus.UNAVAILABLE
    return COMBINED_OF_RESOURCES[resources]


def combined_desired_status(
    desired: D, runtime_desired: RD | None, initial: InitialStatus | None
) -> CombinedDesiredStatus:
    """`deployment_desired_status`: Stopped, else runtime desired, else initial, else
    Unavailable."""
    if desired is D.STOPPED:
        return CombinedDesiredStatus.STOPPED
    if runtime_desired is not None:
        return CombinedDesiredStatus(runtime_desired.value)
    if initial is not None:
        return CombinedDesiredStatus(INITIAL_RUNTIME_DESIRED[initial].value)
    return CombinedDesiredStatus.UNAVAILABLE


# Reconciler steps: the resources statuses a step applies to, the status it leads to and
# the resources desired status it requires (None: any). A step outside its row is a stale
# or redelivered decision, refused before the transition table (a) is consulted.
class Step(StrEnum):
    BEGIN_PROVISIONING = "begin_provisioning"
    START_FAILED = "start_failed"
    PROVISIONED = "provisioned"
    RUNTIME_STATUS_REPORTED = "runtime_status_reported"
    BEGIN_STOPPING = "begin_stopping"
    PROVISIONING_TIMED_OUT = "provisioning_timed_out"
    BOOTSTRAP_REJECTED = "bootstrap_rejected"
    STOPPED = "stopped"


RECONCILER_STEPS: Final[dict[Step, tuple[frozenset[R], R, D | None]]] = {
    Step.BEGIN_PROVISIONING: (frozenset({R.STOPPED}), R.PROVISIONING, D.PROVISIONED),
    Step.START_FAILED: (frozenset({R.STOPPED}), R.STOPPED, D.PROVISIONED),
    Step.PROVISIONED: (frozenset({R.PROVISIONING}), R.PROVISIONED, D.PROVISIONED),
    Step.RUNTIME_STATUS_REPORTED: (frozenset({R.PROVISIONED}), R.PROVISIONED, None),
    Step.BEGIN_STOPPING: (frozenset({R.PROVISIONING, R.PROVISIONED}), R.STOPPING, None),
    Step.PROVISIONING_TIMED_OUT: (frozenset({R.PROVISIONING}), R.STOPPING, None),
    Step.BOOTSTRAP_REJECTED: (frozenset({R.PROVISIONED}), R.STOPPING, None),
    Step.STOPPED: (frozenset({R.STOPPING}), R.STOPPED, None),
}
