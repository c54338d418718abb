"""What seed 004's (FactFlow's) routers share: response shapes and how a command's result
is answered.

The models describe the bodies for the OpenAPI document and give the field order the
routers answer in (`list(Model.model_fields)`); the bodies themselves are built from the
read model's rows and the command replies, whose timestamps are already ISO-8601 text.
Errors are ErrorResponse (error_docs.py), but a request that fails validation, a bad
`X-Min-Version` included, is FastAPI's 422 in this family.

A rejection that carries a validation report (a config that does not validate) is the
ValidationReportResponse with the ErrorResponse fields beside its own (RENDERER).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from contracts.results import CommandRejected
from contracts.statuses import ExecutionStatus, ReplaySource
from contracts.validation import ValidationReport
from services.entrypoints.http.error_docs import ErrorResponse
from services.entrypoints.http.errors import factflow_error, render_factflow
from services.entrypoints.http.submit import Renderer


class ValidationFailedResponse(ValidationReport):
    """A 400 for a config that failed validation: the ValidationReportResponse, with the
    ErrorResponse fields beside its own."""

    detail: str
    error_code: str
    correlation_id: str
    timestamp: datetime


class ConfigResponse(BaseModel):
    """A stored config: its latest version's document (normalized: defaults filled in)
    and that version's validation report (a stored config is valid; warnings may remain)."""

    id: UUID = Field(description="Configuration UUID")
    name: str
    description: str | None = Field(default=None, description="What the config is for")
    version: int = Field(description="Version number: 1 when created, +1 per update")
    document: dict[str, Any] = Field(description="The config document, normalized")
    created_at: datetime
    updated_at: datetime
    validation_report: ValidationReport


class ExecutionResponse(BaseModel):
    """Pipeline execution response (seed 004)."""

    id: UUID = Field(description="Execution UUID (UUIDv7)")
    config_id: UUID = Field(description="Configuration ID")
    status: ExecutionStatus = Field(description="Current status")
    started_at: datetime = Field(description="Start timestamp")
    completed_at: datetime | None = None
    parent_execution_id: UUID | None = None
    # Ours, beside the seed's fields: the run a chain of replays started from.
    root_execution_id: UUID | None = Field(
        default=None, description="A replay's first ancestor (null: not a replay)"
    )
    replay_source: ReplaySource | None = None
    tag: str | None = None
    # Ours: who sent the command that started it, and the one that ended it (e.g. a
    # cancel); an API key's name, else the command's ce_source (null: unknown).
    started_by: str | None = Field(default=None, description="Who started it")
    completed_by: str | None = Field(
        default=None, description="Who ended it (a cancel's sender, or the orchestrator)"
    )


class ExecutionListResponse(BaseModel):
    """A page of executions, newest first, with the count before paging."""

    total: int = Field(description="Executions matching the filters")
    limit: int
    offset: int
    has_more: bool = Field(description="Whether executions follow this page")
    executions: list[ExecutionResponse]


# --- answering a command's result ------------------------------------------------------------


def rejected(result: CommandRejected) -> Response:
    if result.validation_report is None:
        return render_factflow(
            result.http_status, result.error_code, result.message, result.details
        )
    body = result.validation_report.model_dump(mode="json")
    body.update(factflow_error(result.message, result.error_code))
    return JSONResponse(body, status_code=result.http_status)


RENDERER: Final = Renderer(rejected=rejected)


__all__ = [
    "RENDERER",
    "ConfigResponse",
    "ErrorResponse",
    "ExecutionListResponse",
    "ExecutionResponse",
    "ValidationFailedResponse",
    "rejected",
]
