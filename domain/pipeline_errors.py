"""Every error a user's pipeline command can be refused with (docs/pipeline-lifecycle.md
§3), one named constructor each: code, HTTP status, message and `details` are fixed here
and nowhere else. The reconciler's refusals and the errors it stores as
`deployment_error` are `domain.deployment_errors`.

Messages follow Feldera's `db/error.rs` / `runner/error.rs` wording; where the seed documents
differ from Feldera's code, the seeds win (the IllegalPipelineAction hint).
"""

from __future__ import annotations

from uuid import UUID

from contracts.statuses import (
    CombinedDesiredStatus,
    CombinedStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    StorageStatus,
)
from domain.errors import DomainError, RetryableError

RESTART_WHILE_STOPPING_HINT = (
    "Cannot restart the pipeline while it is stopping. "
    "Wait for it to stop before starting a new instance of the pipeline."
)


# --- lookup and naming -------------------------------------------------------------------


def unknown_pipeline(name: str) -> DomainError:
    return DomainError(
        "UnknownPipelineName", f"Unknown pipeline name '{name}'", {"pipeline_name": name}, 404
    )


def duplicate_name() -> DomainError:
    return DomainError("DuplicateName", "An entity with this name already exists", None, 409)


def name_held_by_another(name: str, given: UUID, holder: UUID) -> DomainError:
    return DomainError(
        "NameHeldByAnotherPipeline",
        f"Pipeline '{given}' cannot release name '{name}': it is held by pipeline '{holder}'",
        {"pipeline_name": name, "pipeline_id": str(given), "holder_id": str(holder)},
        409,
    )


# --- /start ------------------------------------------------------------------------------


def unsupported_pipeline_action(action: str, reason: str) -> DomainError:
    return DomainError(
        "UnsupportedPipelineAction",
        f"Unsupported pipeline action '{action}': {reason}",
        {"action": action, "reason": reason},
        405,
    )


def unknown_initial(initial: str) -> DomainError:
    return unsupported_pipeline_action(
        f"/start?initial={initial}", f"unknown initial runtime desired status: {initial}"
    )


def illegal_pipeline_action(
    status: ResourcesStatus,
    current_desired: ResourcesDesiredStatus,
    new_desired: ResourcesDesiredStatus,
    hint: str = RESTART_WHILE_STOPPING_HINT,
) -> DomainError:
    return DomainError(
        "IllegalPipelineAction",
        f"Deployment resources status (current: '{status}', desired: '{current_desired}') "
        f"cannot have desired changed to '{new_desired}'. {hint}",
        {
            "status": str(status),
            "current_desired_status": str(current_desired),
            "new_desired_status": str(new_desired),
            "hint": hint,
        },
    )


def cannot_start_with_undismissed_error() -> DomainError:
    return DomainError(
        "CannotStartWithUndismissedError",
        "Cannot process `/start?dismiss_error=false` if the `deployment_error` is set. "
        "You can dismiss the error by calling `/start?dismiss_error=true`, or alternatively "
        "first call `/dismiss_error`, after which `/start?dismiss_error=false` is again possible.",
    )


def cannot_start_while_clearing_storage() -> DomainError:
    return DomainError(
        "CannotStartWhileClearingStorage",
        "Cannot process `/start` if the `storage_status` is `Clearing`. "
        "Wait for the storage to become cleared before trying again.",
    )


def cannot_start_with_compilation_error() -> DomainError:
    return DomainError(
        "CannotStartWithCompilationError",
        "Cannot process `/start` if the `program_status` is `SqlError`, `RustError` or "
        "`SystemError`. Make changes to fix the error, which will trigger recompilation.",
    )


def initial_immutable_unless_stopped() -> DomainError:
    return DomainError(
        "InitialImmutableUnlessStopped",
        "Initial desired runtime status cannot be changed unless the pipeline is desired to "
        "become Stopped.",
    )


def bootstrap_policy_immutable_unless_stopped() -> DomainError:
    return DomainError(
        "BootstrapPolicyImmutableUnlessStopped",
        "Bootstrap policy cannot be changed unless the pipeline is desired to become Stopped.",
    )


# --- other user actions ------------------------------------------------------------------


def dismiss_error_restricted_to_fully_stopped() -> DomainError:
    return DomainError(
        "DismissErrorRestrictedToFullyStopped",
        "The pipeline must have both status `Stopped` and desired status `Stopped` to dismiss "
        "the `deployment_error` if it is set.",
    )


def storage_status_immutable_unless_stopped(
    resources: ResourcesStatus,
    desired: ResourcesDesiredStatus,
    current: StorageStatus,
    new: StorageStatus,
) -> DomainError:
    return DomainError(
        "StorageStatusImmutableUnlessStopped",
        f"Cannot transition storage status from '{current}' to '{new}' with resources status "
        f"'{resources}' and desired status '{desired}'. "
        "Storage status cannot be changed unless the pipeline is fully stopped.",
        {
            "resources_status": str(resources),
            "resources_desired_status": str(desired),
            "current_status": str(current),
            "new_status": str(new),
        },
    )


def invalid_storage_status_transition(current: StorageStatus, new: StorageStatus) -> DomainError:
    return DomainError(
        "InvalidStorageStatusTransition",
        f"Cannot transition from storage status '{current}' to '{new}'",
        {"current_status": str(current), "new_status": str(new)},
    )


def update_restricted_to_stopped() -> DomainError:
    return DomainError(
        "UpdateRestrictedToStopped",
        "Pipeline can only be updated while stopped. Stop it first by invoking '/stop'.",
    )


def edit_restricted_to_cleared_storage(not_allowed: list[str]) -> DomainError:
    return DomainError(
        "EditRestrictedToClearedStorage",
        "The following pipeline edits are not allowed while storage is not cleared: "
        + ", ".join(not_allowed),
        {"not_allowed": not_allowed},
    )


def delete_restricted_to_fully_stopped() -> DomainError:
    return DomainError(
        "DeleteRestrictedToFullyStopped",
        "Cannot delete a pipeline which is not fully stopped. "
        "Stop the pipeline first fully by invoking the '/stop' endpoint.",
    )


def delete_restricted_to_cleared_storage() -> DomainError:
    return DomainError(
        "DeleteRestrictedToClearedStorage",
        "Cannot delete pipeline unless its storage is cleared. Clear storage first using `/clear`.",
    )


# --- interaction with the running pipeline (503s carry Retry-After) ----------------------


def pipeline_interaction_not_deployed(
    name: str, status: CombinedStatus, desired: CombinedDesiredStatus
) -> RetryableError:
    return RetryableError(
        "PipelineInteractionNotDeployed",
        f"Unable to interact with pipeline because the deployment status ({status.lower()}) "
        f'indicates it is not (yet) fully provisioned pipeline-id=N/A pipeline-name="{name}"',
        {"pipeline_name": name, "status": str(status), "desired_status": str(desired)},
    )


def pipeline_unavailable(name: str) -> RetryableError:
    return RetryableError(
        "PipelineUnavailable",
        "Unable to interact with pipeline because its status is currently 'unavailable': "
        "the runner could not determine its status. Try again later "
        f'pipeline-name="{name}"',
        {"pipeline_name": name},
    )


def invalid_activate_status(initial: str) -> DomainError:
    """`/activate?initial=` names neither running nor paused (Feldera server/error.rs)."""
    return DomainError(
        "InvalidActivateStatus",
        f"Invalid activation status {initial} (only running and paused are valid)",
        {"initial": str(initial)},
    )


def incarnation_uuid_mismatch(requested: UUID, expected: UUID | None) -> DomainError:
    """`/checkpoint_status?incarnation_uuid=` names another deployment than the current
    one: the checkpoint was asked of a deployment that is gone (Feldera's pipeline
    process restarted)."""
    return DomainError(
        "IncarnationUuidMismatch",
        f"Incarnation UUID mismatch ({requested} in request, expected {expected})",
        {"requested": str(requested), "expected": None if expected is None else str(expected)},
    )


def invalid_transition(transition: str, current: str) -> DomainError:
    """The pipeline process's own refusal (§2.3), e.g. `pause` from `Standby`."""
    return DomainError(
        "InvalidTransition",
        f"Cannot execute {transition} transition starting from {current}",
        {"transition": transition, "current_status": current},
    )


# --- the program's validation result ----------------------------------------------------


def stale_program(given: UUID, current: UUID | None) -> DomainError:
    return DomainError(
        "StaleProgram",
        f"Validation result is for config '{given}', but the pipeline's program is '{current}'",
        {"config_id": str(given), "current_config_id": None if current is None else str(current)},
        409,
    )


def program_status_update_restricted_to_stopped() -> DomainError:
    return DomainError(
        "ProgramStatusUpdateRestrictedToStopped",
        "Program status can only be updated while stopped.",
    )


def program_code_with_config_id() -> DomainError:
    """Both ways of naming a program at once (docs/pipeline-lifecycle.md, "Feldera's SDK")."""
    return DomainError(
        "ProgramCodeWithConfigId",
        "Give the pipeline's program as `program_code` or as `config_id`, not both",
        {"fields": ["program_code", "config_id"]},
    )
