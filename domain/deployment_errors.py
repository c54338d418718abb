"""The errors of the reconciler's side of a pipeline: the refusals of a reconciler step
(a decision on a stale view, refused so the next sweep decides again) and the errors a
step stores as the pipeline's `deployment_error` (Feldera's runner errors,
docs/pipeline-lifecycle.md §3).

Messages follow Feldera's `runner/error.rs` wording.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from contracts.statuses import ResourcesDesiredStatus, ResourcesStatus, StorageStatus
from domain.errors import DomainError

# --- refusals of a reconciler step ---------------------------------------------------


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


# --- runner-set errors, stored as `deployment_error` -------------------------------------

BOOTSTRAP_REJECTED_MESSAGE = "Bootstrapping of the modified pipeline was rejected by the user."


def deployment_error(error: DomainError) -> dict[str, Any]:
    """The `deployment_error` value a runner-set error is stored as (ErrorResponse shape)."""
    return error.body().model_dump(mode="json")


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
