"""The JSON bodies commands are answered with, in each seed's own shape.

Plain functions from an aggregate to a JSON-ready dict, so the command handlers and the
HTTP API (which reads the same shapes from projections) spell every body one way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.config import Config
from domain.execution import Execution
from domain.pipeline import Pipeline

JsonObject = dict[str, Any]


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, as Marquez and FactFlow print timestamps."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def pipeline_reply(pipeline: Pipeline) -> JsonObject:
    """The pipeline's identity and status (a subset of Feldera's `selector=status`)."""
    return {
        "id": str(pipeline.id),
        "name": pipeline.name,
        "description": pipeline.description,
        "config_id": _str(pipeline.config_id),
        "version": pipeline.pipeline_version,
        "created_at": iso(pipeline.created_at),
        "program_status": str(pipeline.program_status),
        "deployment_status": str(pipeline.deployment_status),
        "deployment_desired_status": str(pipeline.deployment_desired_status),
        "storage_status": str(pipeline.storage_status),
    }


def config_reply(config: Config) -> JsonObject:
    return {
        "id": str(config.id),
        "name": config.name,
        "description": config.description,
        "version": config.config_version,
        "document": config.document,
        "created_at": iso(config.created_at),
        "updated_at": iso(config.updated_at),
        "validation_report": config.report.model_dump(mode="json"),
    }


def marquez_run(run: Execution) -> JsonObject:
    """Seed 002's run (Marquez `Run`): camelCase, NEW/RUNNING/COMPLETED/FAILED/ABORTED."""
    return {
        "id": str(run.id),
        "createdAt": iso(run.created_at),
        "updatedAt": iso(run.updated_at),
        "nominalStartTime": iso(run.nominal_start_time),
        "nominalEndTime": iso(run.nominal_end_time),
        "state": str(run.marquez_state),
        "startedAt": iso(run.started_at),
        "endedAt": iso(run.ended_at),
        "durationMs": run.duration_ms,
        "args": dict(run.args),
        "facets": dict(run.facets),
    }


def pipeline_run(run: Execution, pipeline_name: str | None = None) -> JsonObject:
    """Seed 003's PipelineRun (Esper): lower-case canonical status, run_number per pipeline."""
    return {
        "id": str(run.id),
        "run_number": run.run_number,
        "pipeline_id": _str(run.pipeline_id),
        "pipeline_name": pipeline_name,
        "status": str(run.status),
        "status_meta": {},
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
    }


def execution_response(
    execution: Execution, *, started_by: str | None = None, completed_by: str | None = None
) -> JsonObject:
    """Seed 004's ExecutionResponse (FactFlow): running/completed/failed/cancelled/interrupted.

    `started_at` is required there and an execution counts as started once it exists.
    `started_by` / `completed_by` are ours: the aggregate does not know who sent what (its
    events do), so a handler passes the sender it knows, its own command's.
    """
    return {
        "id": str(execution.id),
        "config_id": _str(execution.config_id),
        "status": str(execution.execution_status),
        "started_at": iso(execution.started_at or execution.created_at),
        "completed_at": iso(execution.ended_at),
        "parent_execution_id": _str(execution.parent_execution_id),
        "root_execution_id": _str(execution.root_execution_id),
        "replay_source": None if execution.replay_source is None else str(execution.replay_source),
        "tag": execution.tag,
        "started_by": started_by,
        "completed_by": completed_by,
    }
