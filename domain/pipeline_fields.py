"""A Pipeline's state, named once: the snapshot validates it and the verbs read it.

`PipelineFields` lists what a Pipeline holds; `PipelineState` (the snapshot) gets its
fields from it, and `PipelineBase` is what the verb mixins (`domain.pipeline_actions`,
`domain.pipeline_steps`) see of the aggregate: the fields, the combined status derived
from them (`contracts.deployment_status`, as the read model derives it) and the guards
they share.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from contracts.deployment_status import combined_desired_status, combined_status
from contracts.statuses import (
    BootstrapPolicy,
    CombinedDesiredStatus,
    CombinedStatus,
    InitialStatus,
    ProgramStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
    StorageStatus,
)
from domain import pipeline_errors as err
from domain.base import SnapshotState
from domain.pipeline_table import STORAGE_TRANSITIONS

JsonObject = dict[str, Any]


class PipelineFields:
    name: str
    description: str
    config_id: UUID | None
    program_status: ProgramStatus
    program_status_since: datetime
    pipeline_version: int
    refresh_version: int
    created_at: datetime
    deleted: bool
    resources_status: ResourcesStatus
    resources_status_since: datetime
    resources_desired_status: ResourcesDesiredStatus
    resources_desired_status_since: datetime
    runtime_status: RuntimeStatus | None
    runtime_status_details: JsonObject | None
    runtime_status_since: datetime | None
    runtime_desired_status: RuntimeDesiredStatus | None
    runtime_desired_status_since: datetime | None
    deployment_id: UUID | None
    deployment_initial: InitialStatus | None
    deployment_error: JsonObject | None
    storage_status: StorageStatus
    storage_status_since: datetime
    bootstrap_policy: BootstrapPolicy | None
    bootstrap_approved: bool
    checkpoint_sequence_number: int
    # Feldera's program fields (domain.pipeline_program); defaults for the snapshots of
    # pipelines stored before they existed.
    program_code: str = ""
    udf_rust: str = ""
    udf_toml: str = ""
    program_config: JsonObject = {}
    program_report: JsonObject | None = None
    program_version: int = 0
    runtime_config: JsonObject = {}
    tags: list[str] = []


class PipelineState(SnapshotState, PipelineFields):
    pass


class PipelineBase(PipelineFields):
    # --- derived (combined) status, docs/pipeline-lifecycle.md §1.3 ---------------------

    @property
    def deployment_status(self) -> CombinedStatus:
        return combined_status(self.resources_status, self.runtime_status)

    @property
    def deployment_status_since(self) -> datetime:
        return _latest(self.resources_status_since, self.runtime_status_since)

    @property
    def deployment_desired_status(self) -> CombinedDesiredStatus:
        return combined_desired_status(
            self.resources_desired_status, self.runtime_desired_status, self.deployment_initial
        )

    @property
    def deployment_desired_status_since(self) -> datetime:
        return _latest(self.resources_desired_status_since, self.runtime_desired_status_since)

    # --- guards every kind of verb uses -------------------------------------------------

    def _check_live(self) -> None:
        if self.deleted:
            raise err.unknown_pipeline(self.name)

    def _check_storage_pair(self, new: StorageStatus) -> None:
        if (self.storage_status, new) not in STORAGE_TRANSITIONS:
            raise err.invalid_storage_status_transition(self.storage_status, new)


def _latest(first: datetime, second: datetime | None) -> datetime:
    return first if second is None else max(first, second)
