"""Every error a pipeline command can be refused with (Feldera lifecycle §3), one named
constructor each: code, HTTP status, message and `details` are fixed here and nowhere else.

Messages follow Feldera's `db/error.rs` / `runner/error.rs` wording; where the seed documents
differ from Feldera's code, the seeds win (the IllegalPipelineAction hint).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from contracts.statuses import (
    CombinedDesiredStatus,
    CombinedStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    StorageStatus,
)
from domain.errors import DomainError

RETRY_AFTER_SECONDS = 5

RESTART_WHILE_STOPPING_HINT = (
    "Cannot restart the pipeline while it is stopping. "
    "Wait for it to stop before starting a new instance of the pipeline."
)
BOOTSTRAP_REJECTED_MESSAGE = "Bootstrapping of the modified pipeline was rejected by the user."


class RetryableError(DomainError):
    """A 503: the API answers it with `Retry-After: {retry_after}`."""

    retry_after: int = RETRY_AFTER_SECONDS

    def __init__(self, error_code: str, message: str, details: Any = None) -> None:
        super().__init__(error_code, message, details, http_status=503)


def deployment_error(error: DomainError) -> dict[str, Any]:
    """The `deployment_error` value a runner-set error is stored as (ErrorResponse shape)."""
    return error.body().model_dump(mode="json")


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


def outdated_pipeline_version(outdated: int, latest: int) -> DomainError:
    return DomainError(
        "OutdatedPipelineVersion",
        f"Pipeline version ({outdated}) is outdated by latest ({latest})",
        {"outdated_version": outdated, "latest_version": latest},
        409,
    )


# --- /start ------------------------------------------------------------------------------


def invalid_bootstrap_config() -> DomainError:
    return DomainError(
        "InvalidBootstrapConfig",
        "Invalid bootstrap configuration: `silent_bootstrap` and `concurrent_bootstrap` "
        "cannot both be enabled.",
    )


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


def initial_standby_not_allowed() -> DomainError:
    return DomainError(
        "InitialStandbyNotAllowed",
        "Initial desired runtime status can only be set to Standby if: "
        "(1) `runtime_config.storage.backend.name` is set to `file`, and "
        "(2) `runtime_config.storage.backend.config.sync` is configured.",
    )


def enterprise_feature(feature: str) -> DomainError:
    return DomainError(
        "EnterpriseFeature",
        f"Cannot use enterprise-only feature ({feature}) in Feldera community edition.",
        {"feature": feature},
        501,
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


def pipeline_interaction_unreachable(name: str, request: str, error: str) -> RetryableError:
    return RetryableError(
        "PipelineInteractionUnreachable",
        f"Unable to reach pipeline to interact due to: {error}",
        {"pipeline_name": name, "request": request, "error": error},
    )


def pipeline_interaction_invalid_response(error: str) -> DomainError:
    return DomainError(
        "PipelineInteractionInvalidResponse",
        "During pipeline interaction an unexpected invalid response was encountered: " + error,
        {"error": error},
        500,
    )


def invalid_transition(transition: str, current: str) -> DomainError:
    """The pipeline process's own refusal (§2.3), e.g. `pause` from `Standby`."""
    return DomainError(
        "InvalidTransition",
        f"Cannot execute {transition} transition starting from {current}",
        {"transition": transition, "current_status": current},
    )


def invalid_activate_status(value: str) -> DomainError:
    return DomainError(
        "InvalidActivateStatus",
        f"Invalid activate status '{value}': it must be 'running' or 'paused'",
        {"value": value},
    )


def pause_while_not_provisioned() -> DomainError:
    return DomainError(
        "PauseWhileNotProvisioned",
        "You can only call /pause when the pipeline is not Stopped, Provisioning or Stopping.",
    )


def resume_while_not_provisioned() -> DomainError:
    return DomainError(
        "ResumeWhileNotProvisioned",
        "You can only call /resume when the pipeline is not Stopped, Provisioning or Stopping.",
    )


# --- reconciler steps --------------------------------------------------------------------


def invalid_resources_status_transition(
    storage: StorageStatus, current: ResourcesStatus, new: ResourcesStatus
) -> DomainError:
    return DomainError(
        "InvalidResourcesStatusTransition",
        f"Cannot transition from deployment resources status '{current}' "
        f"(storage status: '{storage}') to '{new}'",
        {"storage_status": str(storage), "current_status": str(current), "new_status": str(new)},
        500,
    )


def transition_requires_compiled_program(
    current: ResourcesStatus, transition_to: ResourcesStatus
) -> DomainError:
    return DomainError(
        "TransitionRequiresCompiledProgram",
        f"Transition from '{current}' to '{transition_to}' requires a successfully compiled "
        "program",
        {"current": str(current), "transition_to": str(transition_to)},
        500,
    )


def stale_deployment(step: str, given: UUID | None, current: UUID | None) -> DomainError:
    """A reconciler decision about a deployment that is no longer the current one."""
    return DomainError(
        "StaleDeployment",
        f"Reconciler step '{step}' is about deployment '{given}', "
        f"but the pipeline's current deployment is '{current}'",
        {
            "step": step,
            "deployment_id": None if given is None else str(given),
            "current_deployment_id": None if current is None else str(current),
        },
        409,
    )


def step_not_applicable(
    step: str, status: ResourcesStatus, desired: ResourcesDesiredStatus, reason: str
) -> DomainError:
    """A reconciler decision the pipeline has moved past (e.g. desired changed meanwhile)."""
    return DomainError(
        "ReconcilerStepNotApplicable",
        f"Reconciler step '{step}' does not apply to deployment resources status "
        f"'{status}' (desired: '{desired}'): {reason}",
        {"step": step, "status": str(status), "desired_status": str(desired), "reason": reason},
        409,
    )


def stale_program(given: UUID, current: UUID | None) -> DomainError:
    return DomainError(
        "StaleProgram",
        f"Validation result is for config '{given}', but the pipeline's program is '{current}'",
        {"config_id": str(given), "current_config_id": None if current is None else str(current)},
        409,
    )


# --- runner-set errors, stored as `deployment_error` -------------------------------------


def automaton_provisioning_timeout(timeout_s: int) -> DomainError:
    return DomainError(
        "AutomatonProvisioningTimeout",
        f"Pipeline could not be provisioned within the timeout of {timeout_s}s. Possible "
        "reasons:\n\n"
        "1) It takes too long to bring up the pipeline (e.g., cloud resources) compared to the "
        "timeout.\n   If so, try increasing `provisioning_timeout_secs` in the Pipeline "
        "settings.\n\n"
        "2) Your cloud environment could not provision some required resources like volumes or "
        "containers.\n   The pipeline logs might provide more insight if this is the case.\n",
        {"timeout": {"secs": timeout_s, "nanos": 0}},
        500,
    )


def bootstrap_rejected() -> DomainError:
    return DomainError("BootstrapRejected", BOOTSTRAP_REJECTED_MESSAGE, None, 500)


def start_failed_due_to_failed_compilation(compiler_error: str) -> DomainError:
    return DomainError(
        "StartFailedDueToFailedCompilation",
        "Not possible to start the pipeline because the program failed to compile",
        {"compiler_error": compiler_error},
    )


def runner_provision_error(error: str) -> DomainError:
    return DomainError(
        "RunnerProvisionError", f"Pipeline provision failed: {error}", {"error": error}, 500
    )


def runner_check_error(error: str) -> DomainError:
    return DomainError(
        "RunnerCheckError",
        "Pipeline check failed: compute and/or storage resources encountered a fatal error."
        f"\n\n{error}",
        {"error": error},
        500,
    )


def automaton_impossible_desired_status(
    current: ResourcesStatus, desired: ResourcesDesiredStatus
) -> DomainError:
    return DomainError(
        "AutomatonImpossibleDesiredStatus",
        f"Current deployment status {current} cannot reach desired status {desired}",
        {"current_status": str(current), "desired_status": str(desired)},
        500,
    )


def program_status_update_restricted_to_stopped() -> DomainError:
    return DomainError(
        "ProgramStatusUpdateRestrictedToStopped",
        "Program status can only be updated while stopped.",
    )
