"""A pipeline's combined deployment status (docs/pipeline-lifecycle.md §1.3), derived in
one place.

The Pipeline aggregate and the pipelines read model both show `deployment_status` and
`deployment_desired_status`; both compute them here, from the resources and runtime
statuses the events carry, so a reply and a read can never disagree.
"""

from __future__ import annotations

from typing import Final

from contracts.statuses import (
    CombinedDesiredStatus,
    CombinedStatus,
    InitialStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
)

# `/start?initial=` -> the runtime desired status a fresh deployment aims for.
INITIAL_RUNTIME_DESIRED: Final[dict[InitialStatus, RuntimeDesiredStatus]] = {
    InitialStatus.RUNNING: RuntimeDesiredStatus.RUNNING,
    InitialStatus.PAUSED: RuntimeDesiredStatus.PAUSED,
    InitialStatus.STANDBY: RuntimeDesiredStatus.STANDBY,
}

# What the resources status shows when it is not Provisioned (while Provisioned, the
# runtime status shows through instead).
COMBINED_OF_RESOURCES: Final[dict[ResourcesStatus, CombinedStatus]] = {
    ResourcesStatus.STOPPED: CombinedStatus.STOPPED,
    ResourcesStatus.PROVISIONING: CombinedStatus.PROVISIONING,
    ResourcesStatus.STOPPING: CombinedStatus.STOPPING,
}


def combined_status(resources: ResourcesStatus, runtime: RuntimeStatus | None) -> CombinedStatus:
    """`deployment_status`: never `Provisioned`; a missing runtime status reads Unavailable."""
    if resources is ResourcesStatus.PROVISIONED:
        return CombinedStatus.UNAVAILABLE if runtime is None else CombinedStatus(runtime.value)
    return COMBINED_OF_RESOURCES[resources]


def combined_desired_status(
    desired: ResourcesDesiredStatus,
    runtime_desired: RuntimeDesiredStatus | None,
    initial: InitialStatus | None,
) -> CombinedDesiredStatus:
    """`deployment_desired_status`: Stopped, else the runtime desired status, else the one
    `initial` aims for, else Unavailable."""
    if desired is ResourcesDesiredStatus.STOPPED:
        return CombinedDesiredStatus.STOPPED
    if runtime_desired is None and initial is not None:
        runtime_desired = INITIAL_RUNTIME_DESIRED[initial]
    if runtime_desired is None:
        return CombinedDesiredStatus.UNAVAILABLE
    return CombinedDesiredStatus(runtime_desired.value)
