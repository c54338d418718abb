"""The Pipeline's state machines as literal tables (§1.1-§1.4 and §2.5 of
docs/pipeline-lifecycle.md).

The aggregate and its tests both read these tables; the code holds no transition
rule that is not written down here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from contracts.statuses import (
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeDesiredStatus,
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
    ACTIVATE = "activate"
    APPROVE = "approve"
    CHECKPOINT = "checkpoint"
    CLEAR = "clear"
    DELETE = "delete"
    DISMISS_ERROR = "dismiss_error"
    # Core fields (name, the program, the runtime config); description and tags are
    # metadata, always allowed.
    UPDATE = "update"


class Outcome(StrEnum):
    """A cell of the action matrix: where the action goes, or the error it is refused with
    (the value is then the error code)."""

    # Goes on to the action's own checks (start §2.1 checks 5-9, storage, delete), then to its
    # next state: start -> desired Provisioned, stop -> desired Stopped, clear -> storage
    # Clearing, delete -> deleted, dismiss_error -> no error, update -> edited.
    ACCEPT = "accept"
    # Handed to the runtime rule (§2.3, `may_transition_to`): pause -> runtime desired
    # Paused, resume and activate -> Running (activate: or Paused), stop -> Suspended;
    # approve and checkpoint are recorded.
    FORWARD = "forward"
    # A non-forced stop that acts as a forced one: desired Stopped.
    FORCED = "forced"
    ILLEGAL = "IllegalPipelineAction"
    NOT_DEPLOYED = "PipelineInteractionNotDeployed"
    STORAGE_IMMUTABLE = "StorageStatusImmutableUnlessStopped"
    DELETE_RESTRICTED = "DeleteRestrictedToFullyStopped"
    UPDATE_RESTRICTED = "UpdateRestrictedToStopped"
    DISMISS_RESTRICTED = "DismissErrorRestrictedToFullyStopped"  # only when an error is set


A = Action
O = Outcome  # noqa: E741

# (resources status, resources desired status, action) -> outcome, one cell a line. Only
# reachable states are listed: every entry into Stopping sets desired Stopped, so
# Stopping/Provisioned never occurs.
ACTION_MATRIX: Final[dict[tuple[R, D, A], O]] = {
    # At rest.
    (R.STOPPED, D.STOPPED, A.START): O.ACCEPT,
    (R.STOPPED, D.STOPPED, A.STOP_FORCE): O.ACCEPT,
    (R.STOPPED, D.STOPPED, A.STOP): O.FORCED,
    (R.STOPPED, D.STOPPED, A.PAUSE): O.NOT_DEPLOYED,
    (R.STOPPED, D.STOPPED, A.RESUME): O.NOT_DEPLOYED,
    (R.STOPPED, D.STOPPED, A.ACTIVATE): O.NOT_DEPLOYED,
    (R.STOPPED, D.STOPPED, A.APPROVE): O.NOT_DEPLOYED,
    (R.STOPPED, D.STOPPED, A.CHECKPOINT): O.NOT_DEPLOYED,
    (R.STOPPED, D.STOPPED, A.CLEAR): O.ACCEPT,
    (R.STOPPED, D.STOPPED, A.DELETE): O.ACCEPT,
    (R.STOPPED, D.STOPPED, A.DISMISS_ERROR): O.ACCEPT,
    (R.STOPPED, D.STOPPED, A.UPDATE): O.ACCEPT,
    # Early start: the reconciler has not acted yet.
    (R.STOPPED, D.PROVISIONED, A.START): O.ACCEPT,
    (R.STOPPED, D.PROVISIONED, A.STOP_FORCE): O.ACCEPT,
    (R.STOPPED, D.PROVISIONED, A.STOP): O.FORCED,
    (R.STOPPED, D.PROVISIONED, A.PAUSE): O.NOT_DEPLOYED,
    (R.STOPPED, D.PROVISIONED, A.RESUME): O.NOT_DEPLOYED,
    (R.STOPPED, D.PROVISIONED, A.ACTIVATE): O.NOT_DEPLOYED,
    (R.STOPPED, D.PROVISIONED, A.APPROVE): O.NOT_DEPLOYED,
    (R.STOPPED, D.PROVISIONED, A.CHECKPOINT): O.NOT_DEPLOYED,
    (R.STOPPED, D.PROVISIONED, A.CLEAR): O.STORAGE_IMMUTABLE,
    (R.STOPPED, D.PROVISIONED, A.DELETE): O.DELETE_RESTRICTED,
    (R.STOPPED, D.PROVISIONED, A.DISMISS_ERROR): O.DISMISS_RESTRICTED,
    (R.STOPPED, D.PROVISIONED, A.UPDATE): O.UPDATE_RESTRICTED,
    # Starting.
    (R.PROVISIONING, D.PROVISIONED, A.START): O.ACCEPT,
    (R.PROVISIONING, D.PROVISIONED, A.STOP_FORCE): O.ACCEPT,
    (R.PROVISIONING, D.PROVISIONED, A.STOP): O.FORCED,
    (R.PROVISIONING, D.PROVISIONED, A.PAUSE): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.PROVISIONED, A.RESUME): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.PROVISIONED, A.ACTIVATE): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.PROVISIONED, A.APPROVE): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.PROVISIONED, A.CHECKPOINT): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.PROVISIONED, A.CLEAR): O.STORAGE_IMMUTABLE,
    (R.PROVISIONING, D.PROVISIONED, A.DELETE): O.DELETE_RESTRICTED,
    (R.PROVISIONING, D.PROVISIONED, A.DISMISS_ERROR): O.DISMISS_RESTRICTED,
    (R.PROVISIONING, D.PROVISIONED, A.UPDATE): O.UPDATE_RESTRICTED,
    # Deployed: the runtime answers the interactions.
    (R.PROVISIONED, D.PROVISIONED, A.START): O.ACCEPT,
    (R.PROVISIONED, D.PROVISIONED, A.STOP_FORCE): O.ACCEPT,
    (R.PROVISIONED, D.PROVISIONED, A.STOP): O.FORWARD,
    (R.PROVISIONED, D.PROVISIONED, A.PAUSE): O.FORWARD,
    (R.PROVISIONED, D.PROVISIONED, A.RESUME): O.FORWARD,
    (R.PROVISIONED, D.PROVISIONED, A.ACTIVATE): O.FORWARD,
    (R.PROVISIONED, D.PROVISIONED, A.APPROVE): O.FORWARD,
    (R.PROVISIONED, D.PROVISIONED, A.CHECKPOINT): O.FORWARD,
    (R.PROVISIONED, D.PROVISIONED, A.CLEAR): O.STORAGE_IMMUTABLE,
    (R.PROVISIONED, D.PROVISIONED, A.DELETE): O.DELETE_RESTRICTED,
    (R.PROVISIONED, D.PROVISIONED, A.DISMISS_ERROR): O.DISMISS_RESTRICTED,
    (R.PROVISIONED, D.PROVISIONED, A.UPDATE): O.UPDATE_RESTRICTED,
    # Stop asked while starting; the reconciler has not stopped it yet.
    (R.PROVISIONING, D.STOPPED, A.START): O.ILLEGAL,
    (R.PROVISIONING, D.STOPPED, A.STOP_FORCE): O.ACCEPT,
    (R.PROVISIONING, D.STOPPED, A.STOP): O.FORCED,
    (R.PROVISIONING, D.STOPPED, A.PAUSE): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.STOPPED, A.RESUME): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.STOPPED, A.ACTIVATE): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.STOPPED, A.APPROVE): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.STOPPED, A.CHECKPOINT): O.NOT_DEPLOYED,
    (R.PROVISIONING, D.STOPPED, A.CLEAR): O.STORAGE_IMMUTABLE,
    (R.PROVISIONING, D.STOPPED, A.DELETE): O.DELETE_RESTRICTED,
    (R.PROVISIONING, D.STOPPED, A.DISMISS_ERROR): O.DISMISS_RESTRICTED,
    (R.PROVISIONING, D.STOPPED, A.UPDATE): O.UPDATE_RESTRICTED,
    # Stop asked while deployed; the reconciler has not stopped it yet.
    (R.PROVISIONED, D.STOPPED, A.START): O.ILLEGAL,
    (R.PROVISIONED, D.STOPPED, A.STOP_FORCE): O.ACCEPT,
    (R.PROVISIONED, D.STOPPED, A.STOP): O.FORWARD,
    (R.PROVISIONED, D.STOPPED, A.PAUSE): O.FORWARD,
    (R.PROVISIONED, D.STOPPED, A.RESUME): O.FORWARD,
    (R.PROVISIONED, D.STOPPED, A.ACTIVATE): O.FORWARD,
    (R.PROVISIONED, D.STOPPED, A.APPROVE): O.FORWARD,
    (R.PROVISIONED, D.STOPPED, A.CHECKPOINT): O.FORWARD,
    (R.PROVISIONED, D.STOPPED, A.CLEAR): O.STORAGE_IMMUTABLE,
    (R.PROVISIONED, D.STOPPED, A.DELETE): O.DELETE_RESTRICTED,
    (R.PROVISIONED, D.STOPPED, A.DISMISS_ERROR): O.DISMISS_RESTRICTED,
    (R.PROVISIONED, D.STOPPED, A.UPDATE): O.UPDATE_RESTRICTED,
    # Stopping.
    (R.STOPPING, D.STOPPED, A.START): O.ILLEGAL,
    (R.STOPPING, D.STOPPED, A.STOP_FORCE): O.ACCEPT,
    (R.STOPPING, D.STOPPED, A.STOP): O.FORCED,
    (R.STOPPING, D.STOPPED, A.PAUSE): O.NOT_DEPLOYED,
    (R.STOPPING, D.STOPPED, A.RESUME): O.NOT_DEPLOYED,
    (R.STOPPING, D.STOPPED, A.ACTIVATE): O.NOT_DEPLOYED,
    (R.STOPPING, D.STOPPED, A.APPROVE): O.NOT_DEPLOYED,
    (R.STOPPING, D.STOPPED, A.CHECKPOINT): O.NOT_DEPLOYED,
    (R.STOPPING, D.STOPPED, A.CLEAR): O.STORAGE_IMMUTABLE,
    (R.STOPPING, D.STOPPED, A.DELETE): O.DELETE_RESTRICTED,
    (R.STOPPING, D.STOPPED, A.DISMISS_ERROR): O.DISMISS_RESTRICTED,
    (R.STOPPING, D.STOPPED, A.UPDATE): O.UPDATE_RESTRICTED,
}

# The reachable states, in the order of the matrix.
STATES: Final[tuple[tuple[R, D], ...]] = tuple(dict.fromkeys((r, d) for r, d, _ in ACTION_MATRIX))


def outcome(resources: R, desired: D, action: A) -> O:
    return ACTION_MATRIX[(resources, desired, action)]


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
