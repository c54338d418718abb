"""The pipelines read model: one row per Pipeline aggregate, in Feldera's field names.

Each step mirrors the matching `@event` method of `domain.pipeline.Pipeline` (its data
are that method's arguments). A status's `_since` moves only when the status changes;
`deployment_status` / `deployment_desired_status` and their `_since` are derived after
every step (docs/pipeline-lifecycle.md §1.3, `derive`) by `contracts.deployment_status`,
as the aggregate derives them. `refresh_version` counts every change after creation;
`version` counts edits.

Feldera's program fields (`program_code`, `udf_rust`, `udf_toml`, `program_config`,
`runtime_config`, `tags`, `program_version`, `program_error`) are the aggregate's too;
`program_error` is derived from the program status and its validation report by
`contracts.program_error`, as the aggregate's replies would. Rows written before those
fields existed lack them: `FELDERA_DEFAULTS` fills them in on reading
(`with_feldera_fields`).
"""

from __future__ import annotations

from typing import Final

from contracts.deployment_status import (
    INITIAL_RUNTIME_DESIRED,
    combined_desired_status,
    combined_status,
)
from contracts.events import LifecycleEvent
from contracts.program_error import program_error
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

# What a row of a pipeline stored before Feldera's program fields existed holds for them.
FELDERA_DEFAULTS: Final[Row] = {
    "program_code": "",
    "udf_rust": "",
    "udf_toml": "",
    "program_config": {},
    "runtime_config": {},
    "tags": [],
}


def with_feldera_fields(row: Row) -> Row:
    """`row` with Feldera's program fields, filled in if it predates them."""
    if "program_error" in row:
        return row
    filled = {**FELDERA_DEFAULTS, **row}
    filled["program_version"] = 0 if row.get("config_id") is None else 1
    filled["program_error"] = program_error(row["program_status"], None)
    return filled


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
            "deployment_desired_status_by": data.get("sent_by"),
            "deployment_runtime_status": None,
            "deployment_runtime_status_details": None,
            "deployment_runtime_status_since": None,
            "deployment_runtime_desired_status": None,
            "deployment_runtime_desired_status_since": None,
            "storage_status": str(StorageStatus.CLEARED),
            "storage_status_since": at,
            "bootstrap_policy": None,
            "checkpoint_sequence_number": 0,
            **FELDERA_DEFAULTS,
            "program_version": 0 if data.get("config_id") is None else 1,
            "program_error": program_error(ProgramStatus.PENDING, None),
            "deleted": False,
        }
    )


def _updated(row: Row, data: Data) -> Row:
    row = with_feldera_fields(row)
    if data.get("config_id") != row["config_id"]:
        _set(row, "program_status", ProgramStatus.PENDING, iso(data["at"]))
        # The program is now that config (domain.pipeline.Pipeline._updated).
        for field in ("program_code", "udf_rust", "udf_toml", "program_config"):
            row[field] = FELDERA_DEFAULTS[field]
        row["program_error"] = program_error(ProgramStatus.PENDING, None)
        row["program_version"] += 1
    row["name"], row["description"] = data["name"], data["description"]
    row["config_id"] = data.get("config_id")
    row["version"] += 1
    return row


def _program_validated(row: Row, data: Data) -> Row:
    row = with_feldera_fields(row)
    _set(row, "program_status", data["status"], iso(data["at"]))
    row["program_error"] = program_error(row["program_status"], None)
    return row


def _program_changed(row: Row, data: Data) -> Row:
    row = with_feldera_fields(row)
    for field in ("program_code", "udf_rust", "udf_toml", "program_config", "config_id"):
        row[field] = data[field]
    _set(row, "program_status", data["status"], iso(data["at"]))
    row["program_error"] = program_error(row["program_status"], data.get("report"))
    row["program_version"] += 1
    row["version"] += 1
    return row


def _runtime_config_changed(row: Row, data: Data) -> Row:
    row = with_feldera_fields(row)
    row["runtime_config"] = data["runtime_config"]
    row["version"] += 1
    return row


def _tags_changed(row: Row, data: Data) -> Row:
    row = with_feldera_fields(row)
    row["tags"] = data["tags"]
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
    "ProgramValidated": _program_validated,
    "ProgramChanged": _program_changed,
    "RuntimeConfigChanged": _runtime_config_changed,
    "TagsChanged": _tags_changed,
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
        desired = row["deployment_desired_status"]
        row = step(row, data)
        row["refresh_version"] += 1
        row = derive(row)
        # Who changed what the pipeline should be: the sender of the command whose event
        # moved the combined desired status (None: unknown, e.g. an older event).
        if row["deployment_desired_status"] != desired:
            row["deployment_desired_status_by"] = data.get("sent_by")
        return row

    return refreshed


_REFRESHING_STEPS: Final[dict[str, Step]] = {name: _refreshed(s) for name, s in STEPS.items()}


def apply(event: LifecycleEvent, row: Row | None) -> Row:
    return apply_with(_created, _REFRESHING_STEPS, event, row)
