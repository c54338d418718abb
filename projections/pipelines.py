"""The pipelines read model: one row per Pipeline aggregate, in Feldera's field names.

Each step mirrors the matching `@event` method of `domain.pipeline.Pipeline` (its data
are that method's arguments). A status's `_since` moves only when the status changes;
`deployment_status` / `deployment_desired_status` and their `_since` are derived after
every step (docs/pipeline-lifecycle.md §1.3, `derive`) by `contracts.deployment_status`,
as the aggregate derives them. `refresh_version` counts every change after creation;
`version` counts edits.
"""

from __future__ import annotations

from typing import Final

from contracts.deployment_status import (
    INITIAL_RUNTIME_DESIRED,
    combined_desired_status,
    combined_status,
)
from contracts.events import LifecycleEvent
from contracts.statuses import (
    InitialStatus,
    ProgramStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
    StorageStatus,
)
from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from projections.rows import Data, Row, Step, apply_with
from projections.times import iso, latest


def derive(row: Row) -> Row:
    """Fill in the combined fields from the resources and runtime fields."""
    row["deployment_status"] = str(
        combined_status(
            R(row["deployment_resources_status"]),
            None
            if (runtime := row["deployment_runtime_status"]) is None
            else RuntimeStatus(runtime),
        )
    )
    row["deployment_status_since"] = latest(
        row["deployment_resources_status_since"], row["deployment_runtime_status_since"]
    )
    row["deployment_desired_status"] = str(
        combined_desired_status(
            D(row["deployment_resources_desired_status"]),
            None
            if (wanted := row["deployment_runtime_desired_status"]) is None
            else RuntimeDesiredStatus(wanted),
            None if (initial := row["deployment_initial"]) is None else InitialStatus(initial),
        )
    )
    row["deployment_desired_status_since"] = latest(
        row["deployment_resources_desired_status_since"],
        row["deployment_runtime_desired_status_since"],
    )
    return row


# --- steps ---------------------------------------------------------------------------------


def _set(row: Row, field: str, value: object, at: str | None) -> None:
    """Set a status; its `_since` moves only when the value changes."""
    value = None if value is None else str(value)
    if row[field] != value:
        row[field] = value
        row[f"{field}_since"] = at


def _created(event: LifecycleEvent) -> Row:
    data = event.data
    at = iso(data["at"])
    return derive(
        {
            "id": event.aggregate_id,
            "name": data["name"],
            "description": data.get("description", ""),
            "config_id": data.get("config_id"),
            "created_at": at,
            "version": 1,
            "refresh_version": 1,
            "program_status": str(ProgramStatus.PENDING),
            "program_status_since": at,
            "deployment_error": None,
            "deployment_id": None,
            "deployment_initial": None,
            "deployment_resources_status": str(R.STOPPED),
            "deployment_resources_status_since": at,
            "deployment_resources_desired_status": str(D.STOPPED),
            "deployment_resources_desired_status_since": at,
            "deployment_runtime_status": None,
            "deployment_runtime_status_details": None,
            "deployment_runtime_status_since": None,
            "deployment_runtime_desired_status": None,
            "deployment_runtime_desired_status_since": None,
            "storage_status": str(StorageStatus.CLEARED),
            "storage_status_since": at,
            "bootstrap_policy": None,
            "checkpoint_sequence_number": 0,
            "deleted": False,
        }
    )


def _updated(row: Row, data: Data) -> Row:
    if data.get("config_id") != row["config_id"]:
        _set(row, "program_status", ProgramStatus.PENDING, iso(data["at"]))
    row["name"], row["description"] = data["name"], data["description"]
    row["config_id"] = data.get("config_id")
    row["version"] += 1
    return row


def _start_requested(row: Row, data: Data) -> Row:
    _set(row, "deployment_resources_desired_status", D.PROVISIONED, iso(data["at"]))
    row["deployment_initial"] = data["initial"]
    row["bootstrap_policy"] = data["bootstrap_policy"]
    if data["dismiss_error"]:
        row["deployment_error"] = None
    return row


def _stop_requested(row: Row, data: Data) -> Row:
    _set(row, "deployment_resources_desired_status", D.STOPPED, iso(data["at"]))
    if row["deployment_resources_status"] == R.STOPPED:
        row["deployment_initial"] = row["bootstrap_policy"] = None
    return row


def _checkpoint_requested(row: Row, data: Data) -> Row:
    row["checkpoint_sequence_number"] = data["sequence_number"]
    return row


def _error_dismissed(row: Row, data: Data) -> Row:
    row["deployment_error"] = None
    return row


def _deleted(row: Row, data: Data) -> Row:
    row["deleted"] = True
    return row


def _provisioning_begun(row: Row, data: Data) -> Row:
    at = iso(data["at"])
    _set(row, "deployment_resources_status", R.PROVISIONING, at)
    _set(row, "storage_status", StorageStatus.IN_USE, at)
    row["deployment_id"] = data["deployment_id"]
    return row


def _start_failed(row: Row, data: Data) -> Row:
    _set(row, "deployment_resources_desired_status", D.STOPPED, iso(data["at"]))
    row["deployment_error"] = data["error"]
    row["deployment_initial"] = row["bootstrap_policy"] = None
    return row


def _provisioned(row: Row, data: Data) -> Row:
    at = iso(data["at"])
    _set(row, "deployment_resources_status", R.PROVISIONED, at)
    _set(row, "deployment_runtime_status", RuntimeStatus.INITIALIZING, at)
    row["deployment_runtime_status_details"] = None
    initial = InitialStatus(row["deployment_initial"])
    _set(row, "deployment_runtime_desired_status", INITIAL_RUNTIME_DESIRED[initial], at)
    return row


def _runtime_status_reported(row: Row, data: Data) -> Row:
    _set(row, "deployment_runtime_status", data["status"], iso(data["at"]))
    row["deployment_runtime_status_details"] = data.get("details")
    return row


def _stopping_begun(row: Row, data: Data) -> Row:
    at = iso(data["at"])
    _set(row, "deployment_resources_status", R.STOPPING, at)
    _set(row, "deployment_resources_desired_status", D.STOPPED, at)
    row["deployment_error"] = data.get("error")
    for field in (
        "deployment_runtime_status",
        "deployment_runtime_status_details",
        "deployment_runtime_status_since",
        "deployment_runtime_desired_status",
        "deployment_runtime_desired_status_since",
        "deployment_initial",
        "bootstrap_policy",
    ):
        row[field] = None
    return row


def _stopped(row: Row, data: Data) -> Row:
    _set(row, "deployment_resources_status", R.STOPPED, iso(data["at"]))
    row["deployment_id"] = None
    return row


def _unchanged(row: Row, data: Data) -> Row:
    return row


def _status_step(field: str, *, to: object = None, from_data: str | None = None) -> Step:
    """A step that only sets one status (and its `_since`): to `to`, or to the event's
    field `from_data`."""

    def step(row: Row, data: Data) -> Row:
        _set(row, field, to if from_data is None else data[from_data], iso(data["at"]))
        return row

    return step


# event type -> step; every one of them also bumps `refresh_version` (see `apply`).
STEPS: Final[dict[str, Step]] = {
    "Updated": _updated,
    "ProgramValidated": _status_step("program_status", from_data="status"),
    "StartRequested": _start_requested,
    "StopRequested": _stop_requested,
    "RuntimeDesiredChanged": _status_step("deployment_runtime_desired_status", from_data="desired"),
    "BootstrapApproved": _unchanged,  # approval is not a polled field
    "CheckpointRequested": _checkpoint_requested,
    "ErrorDismissed": _error_dismissed,
    "StorageClearRequested": _status_step("storage_status", to=StorageStatus.CLEARING),
    "Deleted": _deleted,
    "ProvisioningBegun": _provisioning_begun,
    "StartFailed": _start_failed,
    "Provisioned": _provisioned,
    "RuntimeStatusReported": _runtime_status_reported,
    "StoppingBegun": _stopping_begun,
    "Stopped": _stopped,
    "StorageCleared": _status_step("storage_status", to=StorageStatus.CLEARED),
}


def _refreshed(step: Step) -> Step:
    def refreshed(row: Row, data: Data) -> Row:
        row = step(row, data)
        row["refresh_version"] += 1
        return derive(row)

    return refreshed


_REFRESHING_STEPS: Final[dict[str, Step]] = {name: _refreshed(s) for name, s in STEPS.items()}


def apply(event: LifecycleEvent, row: Row | None) -> Row:
    return apply_with(_created, _REFRESHING_STEPS, event, row)
