"""An Execution's state, named once: the snapshot validates it and the verbs read it.

`ExecutionFields` lists what an Execution holds; `ExecutionState` (the snapshot) gets its
fields from it, and `ExecutionBase` is what the verb mixins (`domain.stage_runs`) see of
the aggregate: the fields, the events the aggregate defines, and the guards they share.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from contracts.run_views import TERMINAL
from contracts.statuses import ReplaySource, RunStatus
from domain.base import Immutable, SnapshotState
from domain.run_status import unknown_run

JsonObject = dict[str, Any]


def aware(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class RunOwnerKind(StrEnum):
    PIPELINE = "pipeline"
    CONFIG = "config"


class StageRun(Immutable):
    """One route's part of an execution."""

    route: str
    status: RunStatus = RunStatus.PENDING
    messages_in: int = 0
    messages_out: int = 0
    messages_failed: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None


class ExecutionFields:
    owner_kind: RunOwnerKind
    pipeline_id: UUID | None
    config_id: UUID | None
    config_version: int | None
    run_number: int | None
    tag: str | None
    parent_execution_id: UUID | None
    replay_source: ReplaySource | None
    skip_init_message: bool
    init_route: str | None
    # Snapshots taken before these existed lack them.
    init_topic: str | None = None
    root_execution_id: UUID | None = None
    replay: JsonObject | None = None
    init_payload: JsonObject | None
    init_payload_overrides: JsonObject | None
    args: JsonObject
    facets: JsonObject
    nominal_start_time: datetime | None
    nominal_end_time: datetime | None
    timeout: timedelta
    routes: dict[str, StageRun]
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    last_transition_at: datetime | None
    deleted: bool


class ExecutionState(SnapshotState, ExecutionFields):
    pass


class ExecutionBase(ExecutionFields):
    # The aggregate's own (eventsourcing's) attributes.
    id: UUID
    version: int
    # The stage events, defined on Execution (their topics name it).
    _stage_started: Callable[..., None]
    _stage_progressed: Callable[..., None]
    _stage_finished: Callable[..., None]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def _check_live(self) -> None:
        if self.deleted:
            raise unknown_run(self.id)
