"""What seed 004's (FactFlow's) routers share: response shapes, errors, read-your-writes.

The models describe the bodies for the OpenAPI document and give the field order the
routers answer in (`list(Model.model_fields)`); the bodies themselves are built from the
read model's rows and the command replies, whose timestamps are already ISO-8601 text.

Read-your-writes: a write answers with the aggregate's version in `X-Pipelines-Version`;
a read of one config or execution sent with `X-Min-Version: N` waits (up to
MIN_VERSION_WAIT_S) until its projection has applied version N, else answers 503
ReadModelBehind (with `Retry-After`). A header that is not an integer >= 0 is FastAPI's 422,
like every request that fails validation in this family.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import Header
from fastapi.responses import Response
from pydantic import BaseModel, Field

from contracts.statuses import ExecutionStatus, ReplaySource
from contracts.validation import ValidationReport
from domain.errors import DomainError
from projections.store import ReadStore
from services.entrypoints.http.errors import RETRY_AFTER, render_factflow
from services.entrypoints.http.pipeline_reads import MIN_VERSION_HEADER

# Read at call time, so a test may shorten it.
MIN_VERSION_WAIT_S: float = 5.0

MinVersion = Annotated[
    int | None,
    Header(
        alias=MIN_VERSION_HEADER,
        ge=0,
        description="Wait (up to 5 s) until the read model has applied this version of the "
        "resource (a write's `X-Pipelines-Version`); 503 if it has not.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="The command id: a request repeated with the same key is the same "
        "command and gets the same answer.",
    ),
]


class ErrorResponse(BaseModel):
    """Standard error response matching FastAPI's HTTPException format."""

    detail: str = Field(description="Error message (matches FastAPI HTTPException)")
    error_code: str | None = Field(default=None, description="Stable error code")
    correlation_id: str | None = Field(
        default=None, description="The request's X-Correlation-ID, or one made for it"
    )
    timestamp: datetime = Field(description="Error timestamp")


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
    replay_source: ReplaySource | None = None
    tag: str | None = None


class ExecutionListResponse(BaseModel):
    """A page of executions, newest first, with the count before paging."""

    total: int = Field(description="Executions matching the filters")
    limit: int
    offset: int
    has_more: bool = Field(description="Whether executions follow this page")
    executions: list[ExecutionResponse]


# --- answering -----------------------------------------------------------------------------


def error_response(error: DomainError) -> Response:
    return render_factflow(error.http_status, error.error_code, error.message, error.details)


def projection_behind(what: str, aggregate_id: UUID, version: int, timeout_s: float) -> DomainError:
    return DomainError(
        "ReadModelBehind",
        f"The read model has not reached version {version} of {what} {aggregate_id} within "
        f"{timeout_s:g} s; retry later.",
        {"id": str(aggregate_id), "min_version": version, "timeout_s": timeout_s},
        503,
    )


async def wait_for_version(
    store: ReadStore, what: str, aggregate_id: UUID, min_version: int | None
) -> None:
    """Return once the projection holds `min_version` of the aggregate (at once without
    one); raise the 503 DomainError after MIN_VERSION_WAIT_S. Checked before the row is
    read, so the row read next holds at least that version."""
    if not min_version:
        return
    timeout_s = MIN_VERSION_WAIT_S
    if not await store.wait_for_version(str(aggregate_id), min_version, timeout_s):
        raise projection_behind(what, aggregate_id, min_version, timeout_s)


# --- the OpenAPI document ------------------------------------------------------------------

_DESCRIPTIONS: Final[dict[int, str]] = {
    400: "Invalid request",
    404: "Not found",
    413: "The body is larger than one command message",
    415: "Unsupported Content-Type",
    503: "Try again later: no command result within the timeout (retry with the same "
    "`Idempotency-Key`), or the read model has not reached `X-Min-Version`",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these statuses, each an ErrorResponse (503s with Retry-After)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        if status == 503:
            response["headers"] = {
                name: {"description": "Seconds to wait", "schema": {"type": "integer"}}
                for name in RETRY_AFTER
            }
        responses[status] = response
    return responses


__all__ = [
    "MIN_VERSION_WAIT_S",
    "ConfigResponse",
    "ErrorResponse",
    "ExecutionListResponse",
    "ExecutionResponse",
    "IdempotencyKey",
    "MinVersion",
    "ValidationFailedResponse",
    "error_response",
    "errors",
    "projection_behind",
    "wait_for_version",
]
