"""Seed 004 (FactFlow's config endpoints): create, update, list, read and validate configs.

- `POST /api/v1/configs?name=<name>`: the body is the config document itself, YAML or
  JSON (config_bodies.py: by `Content-Type`, told apart by its text without one); the
  name travels as the `name` query parameter, because the document's own keys are fixed
  (an unknown top-level key is E005). Or the body is FactFlow's JSON request
  `{name, description, config_yaml}` (config_bodies.FactFlowConfigRequest: an
  `application/json` object with a `config_yaml` key), the name in it or in the query
  (both: they must agree). It becomes CreateConfig: 201 with the config
  (ConfigResponse), `Location` and `X-Pipelines-Version`.
- `PUT /api/v1/configs/{config_id}[?name=<new name>]`: UpdateConfig, same body rules; a
  name or description left out is kept. 200 with the config, its version one up; 404
  UnknownConfig.
- `GET /api/v1/configs[?name=&limit=&offset=]`: a page of configs from the read model,
  newest first, `name` matching exactly; `limit` 1-1000 (default 100), FactFlow's
  `{total, limit, offset, has_more, configs}` (ConfigListResponse). Configs stored before
  the read model had its name and created-at columns come last and match no name until
  `pipelines projections rebuild` (projections.config_queries).
- `GET /api/v1/configs/{config_id}`: from the configs read model (`X-Min-Version`,
  read_your_writes.py).
- `DELETE /api/v1/configs/{config_id}` (ours: FactFlow has none): DeleteConfig, 204 and
  `X-Pipelines-Version`. Refused with 409 ConfigInUse while executions of the config are
  unfinished or live pipelines name it: FactFlow's ErrorResponse with the executions
  (id and status) and the pipelines' names beside it (ConfigInUseResponse). 404
  UnknownConfig for a config that does not exist or is deleted already: a second DELETE
  is 404, while a retry with the same `Idempotency-Key` is the same command and gets
  the first answer (204) again. 503 (`Retry-After`) when an execution of it started a
  moment ago is not in the read models yet. Its executions stay readable; the config is
  gone from the list and its GET is 404.
- `POST /api/v1/configs/validate`: always 200 with the ValidationReportResponse, valid or
  not. It runs the command handler's validator in-process (no command: the report is a
  pure function of the document and the adapter registry). Its body is the document.

A config that fails validation is 400: the ValidationReportResponse with the
ErrorResponse fields (`detail`, `error_code` ConfigValidationFailed, `correlation_id`,
`timestamp`) beside its own. A body that is no YAML/JSON document at all (the validator's
E001, or not UTF-8, or declared JSON and is not; FactFlow's `config_yaml` text alike) is
400 ErrorResponse UnparseableConfigDocument, answered here without sending a command; for
`validate` it is a report holding that E001 issue. A body larger than one command message
is 413, another media type 415. A create without a name, a FactFlow request that does
not fit its model, a bad list parameter or a non-UUID id is FastAPI's 422.

Where we differ from FactFlow, on purpose: FactFlow stores an invalid config (only its
run is refused); ours refuses it with the report (issue 4), so a stored config is always
runnable. Our create also takes the bare document, and our ConfigResponse carries the
normalized document and its report where FactFlow's has the YAML text.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from contracts.command_base import Command
from contracts.config_commands import CreateConfig, DeleteConfig, UpdateConfig
from contracts.results import CommandAccepted, CommandRejected
from contracts.validation import ValidationIssue, ValidationReport
from domain.adapters import BUILTIN_ADAPTERS, AdapterRegistry
from domain.config import CONFIG_IN_USE
from domain.errors import DomainError
from domain.validation import validate_config
from projections.store import ReadStore
from services.entrypoints.http import error_docs, factflow
from services.entrypoints.http.config_bodies import (
    MEDIA_TYPES,
    FactFlowConfigRequest,
    Written,
    document_format,
    document_text,
    read_body,
    written_of,
)
from services.entrypoints.http.errors import factflow_error
from services.entrypoints.http.esper import MAX_COUNT
from services.entrypoints.http.executions import DEFAULT_LIMIT, MAX_LIMIT
from services.entrypoints.http.factflow import (
    ConfigResponse,
    ErrorResponse,
    ValidationFailedResponse,
)
from services.entrypoints.http.read_your_writes import (
    Awaited,
    MinVersion,
    read_after,
    read_store_of,
)
from services.entrypoints.http.submit import SUBMIT_ERRORS, IdempotencyKey, submit
from services.service_layer.handlers.pipelines import unknown_config

PREFIX: Final = "/api/v1/configs"
# The registry the command handler validates with (the Decider's default,
# services.entrypoints.roles): `validate` must answer what a create would.
ADAPTERS: Final[AdapterRegistry] = BUILTIN_ADAPTERS
UNPARSEABLE: Final = "UnparseableConfigDocument"

CONFIG_FIELDS: Final[tuple[str, ...]] = tuple(ConfigResponse.model_fields)

router = APIRouter(prefix=PREFIX, tags=["configs (FactFlow)"])

NameParam = Annotated[
    str | None,
    Query(
        min_length=1,
        description="The config's name (human-readable, not unique); required unless "
        "FactFlow's JSON request carries it",
    ),
]
NewNameParam = Annotated[
    str | None, Query(min_length=1, description="A new name (default: keep the name)")
]

_DOCUMENT_DESCRIPTION: Final = (
    "The config document (docs/validation-codes.md describes it), as YAML or JSON; without "
    "a Content-Type the text tells which."
)
_DOCUMENT_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": _DOCUMENT_DESCRIPTION,
        "content": {
            media_type: {"schema": {"type": "object"} if "json" in media_type else {}}
            for media_type in MEDIA_TYPES
        },
    }
}
# Create and update also take FactFlow's request as JSON.
_WRITE_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": f"{_DOCUMENT_DESCRIPTION} Or, as application/json, FactFlow's request "
        "with the document as `config_yaml` text.",
        "content": {
            **_DOCUMENT_BODY["requestBody"]["content"],
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"type": "object", "description": "The config document"},
                        FactFlowConfigRequest.model_json_schema(),
                    ]
                }
            },
        },
    }
}
_WRITE_ERRORS: Final[error_docs.Responses] = {
    **error_docs.factflow(415, *SUBMIT_ERRORS),
    400: {
        "model": ValidationFailedResponse | ErrorResponse,
        "description": "Validation failed (the report), or the document cannot be parsed "
        "(an ErrorResponse, error_code UnparseableConfigDocument)",
    },
}


# --- the document ----------------------------------------------------------------------------


async def read_document(request: Request) -> tuple[str | None, ValidationIssue | None]:
    """(text, None), or (None, E001 issue) for a body that is no document; raises the
    415/413 DomainErrors."""
    form = document_format(request.headers.get("content-type"))
    body = await read_body(request, request.app.state.settings.max_message_bytes)
    return document_text(body, form)


def unparseable(problem: ValidationIssue) -> DomainError:
    return DomainError(
        UNPARSEABLE,
        f"The config document cannot be parsed: {problem.message}",
        problem.model_dump(mode="json"),
        400,
    )


def parse_failure(report: ValidationReport) -> ValidationIssue | None:
    """The E001 issue of a report: the text is no YAML/JSON document."""
    return next((found for found in report.issues if found.code == "E001"), None)


def config_body(source: Mapping[str, Any]) -> dict[str, Any]:
    return {field: source.get(field) for field in CONFIG_FIELDS}


# --- answering a write -----------------------------------------------------------------------


async def read_written(request: Request, query_name: str | None) -> Written:
    """What a create or update sends (config_bodies.written_of); raises the 400/413/415
    DomainErrors and the 422s."""
    form = document_format(request.headers.get("content-type"))
    body = await read_body(request, request.app.state.settings.max_message_bytes)
    written, problem = written_of(body, form, query_name)
    if problem is not None:
        raise unparseable(problem)
    assert written is not None
    return written


async def write(
    request: Request,
    idempotency_key: str | None,
    query_name: str | None,
    build: Callable[[Written], Command],
) -> Response:
    """Read and check the document, submit the command `build` makes of it; the answer
    is the config, its document the one sent, normalized as the handler stored it (the
    validator is deterministic)."""
    written = await read_written(request, query_name)
    command = build(written)
    # Locally too: an unparseable text is answered without a command.
    report, parsed = await asyncio.to_thread(validate_config, written.text, ADAPTERS)
    problem = parse_failure(report)
    if problem is not None:
        raise unparseable(problem)
    normalized = None if parsed is None else parsed.model_dump(mode="json")

    def accepted(result: CommandAccepted) -> Response:
        body = config_body({"document": normalized, **result.reply})
        headers = {"Location": f"{PREFIX}/{body['id']}"} if result.http_status == 201 else None
        return JSONResponse(body, status_code=result.http_status, headers=headers)

    renderer = dataclasses.replace(factflow.RENDERER, accepted=accepted)
    return await submit(request, command, idempotency_key, renderer)


# --- endpoints -------------------------------------------------------------------------------


@router.post(
    "/validate",
    summary="Validate a config document",
    response_model=ValidationReport,
    responses=error_docs.factflow(413, 415),
    openapi_extra=_DOCUMENT_BODY,
)
async def post_validate(request: Request) -> Response:
    text, problem = await read_document(request)
    if problem is not None:
        report = ValidationReport.of([problem])
    else:
        assert text is not None
        report, _ = await asyncio.to_thread(validate_config, text, ADAPTERS)
    return JSONResponse(report.model_dump(mode="json"))


@router.post(
    "",
    status_code=201,
    summary="Create a config",
    response_model=ConfigResponse,
    responses=_WRITE_ERRORS,
    openapi_extra=_WRITE_BODY,
)
async def post_config(
    request: Request, name: NameParam = None, idempotency_key: IdempotencyKey = None
) -> Response:
    return await write(
        request,
        idempotency_key,
        name,
        lambda sent: CreateConfig(
            name=sent.required_name(), document=sent.text, description=sent.description
        ),
    )


@router.put(
    "/{config_id}",
    summary="Update a config (a new version)",
    response_model=ConfigResponse,
    responses={**_WRITE_ERRORS, **error_docs.factflow(404)},
    openapi_extra=_WRITE_BODY,
)
async def put_config(
    request: Request,
    config_id: UUID,
    name: NewNameParam = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await write(
        request,
        idempotency_key,
        name,
        lambda sent: UpdateConfig(
            config_id=config_id,
            document=sent.text,
            name=sent.name,
            description=sent.description,
        ),
    )


class RunningExecution(BaseModel):
    id: UUID
    status: str = Field(description="Its canonical status (not finished)")


class ConfigInUseResponse(ErrorResponse):
    """FactFlow's ErrorResponse (error_code ConfigInUse) with what still uses the config:
    at most 100 of each, and how many there are."""

    config_id: UUID
    running_executions: list[RunningExecution]
    running_executions_total: int
    pipelines: list[str] = Field(description="The names of the pipelines that name it")
    pipelines_total: int


def delete_rejected(result: CommandRejected) -> Response:
    if result.error_code != CONFIG_IN_USE or not isinstance(result.details, dict):
        return factflow.rejected(result)
    body = {**factflow_error(result.message, result.error_code), **result.details}
    return JSONResponse(body, status_code=result.http_status)


@router.delete(
    "/{config_id}",
    status_code=204,
    summary="Delete a config (refused while it is in use)",
    response_class=Response,
    responses={
        **error_docs.factflow(404, 503),
        409: {
            "model": ConfigInUseResponse | ErrorResponse,
            "description": "Executions of the config are running or pipelines name it "
            "(ConfigInUse: which ones), or the Idempotency-Key was used for another request",
        },
    },
)
async def delete_config(
    request: Request, config_id: UUID, idempotency_key: IdempotencyKey = None
) -> Response:
    renderer = dataclasses.replace(factflow.RENDERER, rejected=delete_rejected)
    return await submit(request, DeleteConfig(config_id=config_id), idempotency_key, renderer)


class ConfigListResponse(BaseModel):
    """A page of configs, newest first, with the count before paging (FactFlow's)."""

    total: int = Field(description="Configs matching the filter")
    limit: int
    offset: int
    has_more: bool = Field(description="Whether configs follow this page")
    configs: list[ConfigResponse]


@router.get("", summary="List configs", response_model=ConfigListResponse)
async def get_configs(
    request: Request,
    name: Annotated[
        str | None, Query(min_length=1, description="Only the configs with exactly this name")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_COUNT, description="Configs to skip")] = 0,
) -> Response:
    """Newest first; `name` matches the whole name exactly (case included)."""
    store = read_store_of(request)
    total, rows = await asyncio.to_thread(
        lambda: store.list_configs(name=name, limit=limit, offset=offset)
    )
    return JSONResponse(
        {
            "total": total,
            "limit": limit,
            "offset": offset,
            "has_more": offset + len(rows) < total,
            "configs": [config_body(row) for row in rows],
        }
    )


@router.get(
    "/{config_id}",
    summary="Get a config",
    response_model=ConfigResponse,
    responses=error_docs.factflow(404, 503),
)
async def get_config(request: Request, config_id: UUID, min_version: MinVersion = None) -> Response:
    awaited = Awaited.aggregate("config", "id", config_id, ReadStore.get_config)
    row = await read_after(request, awaited, min_version)
    if row is None:
        raise unknown_config(config_id)
    return JSONResponse(config_body(row))


__all__ = [
    "ADAPTERS",
    "CONFIG_FIELDS",
    "PREFIX",
    "UNPARSEABLE",
    "ConfigInUseResponse",
    "ConfigListResponse",
    "config_body",
    "router",
]
