"""The error answers a route declares in the OpenAPI document (`responses=`), in the shape
of its family: `responses=error_docs.feldera(404, 503)`.

services/entrypoints/http/errors.py renders these bodies; the models here only describe them for the
document (tests/entrypoints/http/test_docs.py checks real answers against them). Every declared 503
carries `Retry-After`, as the middleware in errors.py makes sure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, Field

from contracts.errors import ErrorBody
from services.entrypoints.http.errors import (
    Renderer,
    render_esper,
    render_factflow,
    render_feldera,
    render_marquez,
)

Responses = dict[int | str, dict[str, Any]]


class MarquezError(BaseModel):
    """Marquez's ErrorMessage (`/api/v1/jobs`, seed 002)."""

    code: int = Field(description="The HTTP status")
    message: str = Field(description="Human-readable error message")


class EsperErrorContent(BaseModel):
    error_code: str = Field(description="Stable error code, e.g. `UnknownRun`")
    details: Any = Field(default=None, description="Determined by `error_code`")


class EsperError(BaseModel):
    """Esper's envelope (`/pipelines/v0`, `/v0/runs`, seed 003) around an error."""

    code: int = Field(description="The HTTP status")
    message: str = Field(description="Human-readable error message")
    content: EsperErrorContent


class ErrorResponse(BaseModel):
    """Standard error response matching FastAPI's HTTPException format."""

    detail: str = Field(description="Error message (matches FastAPI HTTPException)")
    error_code: str | None = Field(default=None, description="Stable error code")
    correlation_id: str | None = Field(
        default=None, description="The request's X-Correlation-ID, or one made for it"
    )
    timestamp: datetime = Field(description="Error timestamp")


# Each family's error model, by the renderer errors.py answers it with.
FAMILY_MODELS: Final[dict[Renderer, type[BaseModel]]] = {
    render_feldera: ErrorBody,
    render_marquez: MarquezError,
    render_esper: EsperError,
    render_factflow: ErrorResponse,
}

DESCRIPTIONS: Final[dict[int, str]] = {
    400: "Invalid request (a parameter, header or body that does not parse), or an action "
    "the current state does not allow",
    401: "No API key, or not a live one (`Authorization: Bearer <api key>`)",
    403: "The API key's scope does not allow this request",
    404: "Not found",
    405: "Action is not supported",
    409: "Conflicts with the current state (e.g. a duplicate name, or a finished run), or "
    "the `Idempotency-Key` was used by another request",
    410: "Gone: what the request needs was removed by retention (e.g. a replay's stored messages)",
    413: "The request is larger than one command message",
    415: "Unsupported Content-Type",
    503: "Try again later: no command result within the timeout (retry with the same "
    "`Idempotency-Key`), the read model has not reached `X-Min-Version`, or the pipeline "
    "cannot be reached",
}

RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer"},
    }
}


def error_responses(model: type[BaseModel], *statuses: int) -> Responses:
    """`statuses`, each answered with `model` (and `Retry-After` on a 503)."""
    responses: Responses = {}
    for status in statuses:
        response: dict[str, Any] = {"model": model, "description": DESCRIPTIONS[status]}
        if status == 503:
            response["headers"] = RETRY_AFTER
        responses[status] = response
    return responses


def feldera(*statuses: int) -> Responses:
    """Feldera's ErrorResponse `{message, error_code, details}` (seeds 000/001)."""
    return error_responses(ErrorBody, *statuses)


def marquez(*statuses: int) -> Responses:
    """Marquez's `{code, message}` (seed 002)."""
    return error_responses(MarquezError, *statuses)


def esper(*statuses: int) -> Responses:
    """Esper's `{code, message, content: {error_code, details}}` (seed 003)."""
    return error_responses(EsperError, *statuses)


def factflow(*statuses: int) -> Responses:
    """FactFlow's ErrorResponse `{detail, error_code, correlation_id, timestamp}` (seed
    004)."""
    return error_responses(ErrorResponse, *statuses)


__all__ = [
    "DESCRIPTIONS",
    "FAMILY_MODELS",
    "ErrorResponse",
    "EsperError",
    "EsperErrorContent",
    "MarquezError",
    "Responses",
    "error_responses",
    "esper",
    "factflow",
    "feldera",
    "marquez",
]
