"""Seed 004 (FactFlow's config endpoints): create, update, read and validate configs.

- `POST /api/v1/configs?name=<name>`: the body is the config document itself, YAML or
  JSON (config_bodies.py: by `Content-Type`, told apart by its text without one); the
  name travels as the `name` query parameter, because the document's own keys are fixed
  (an unknown top-level key is E005). It becomes CreateConfig: 201 with the config
  (ConfigResponse), `Location` and `X-Pipelines-Version`.
- `PUT /api/v1/configs/{config_id}[?name=<new name>]`: UpdateConfig, same body rules;
  200 with the config, its version one up; 404 UnknownConfig.
- `GET /api/v1/configs/{config_id}`: from the configs read model (`X-Min-Version`,
  read_your_writes.py).
- `POST /api/v1/configs/validate`: always 200 with the ValidationReportResponse, valid or
  not. It runs the command handler's validator in-process (no command: the report is a
  pure function of the document and the adapter registry).

A config that fails validation is 400: the ValidationReportResponse with the
ErrorResponse fields (`detail`, `error_code` ConfigValidationFailed, `correlation_id`,
`timestamp`) beside its own. A body that is no YAML/JSON document at all (the validator's
E001, or not UTF-8, or declared JSON and is not) is 400 ErrorResponse
UnparseableConfigDocument, answered here without sending a command; for `validate` it is
a report holding that E001 issue. A body larger than one command message is 413, another
media type 415. A missing `name` or a non-UUID id is FastAPI's 422.

Where we differ from FactFlow, on purpose: FactFlow's create takes a JSON request
`{name, config_yaml, ...}` and stores an invalid config (only its run is refused); ours
refuses it with the report (issue 4), so a stored config is always runnable. Listing
configs (`GET /api/v1/configs`) is not served: the read store has no config query yet.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from contracts.command_base import Command
from contracts.config_commands import CreateConfig, UpdateConfig
from contracts.results import CommandAccepted
from contracts.validation import ValidationIssue, ValidationReport
from domain.adapters import BUILTIN_ADAPTERS, AdapterRegistry
from domain.errors import DomainError
from domain.validation import validate_config
from projections.store import ReadStore
from services.entrypoints.http import error_docs, factflow
from services.entrypoints.http.config_bodies import (
    MEDIA_TYPES,
    document_format,
    document_text,
    read_body,
)
from services.entrypoints.http.factflow import (
    ConfigResponse,
    ErrorResponse,
    ValidationFailedResponse,
)
from services.entrypoints.http.read_your_writes import Awaited, MinVersion, read_after
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
    str, Query(min_length=1, description="The config's name (human-readable, not unique)")
]
NewNameParam = Annotated[
    str | None, Query(min_length=1, description="A new name (default: keep the name)")
]

_DOCUMENT_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": "The config document (docs/validation-codes.md describes it), as YAML "
        "or JSON; without a Content-Type the text tells which.",
        "content": {
            media_type: {"schema": {"type": "object"} if "json" in media_type else {}}
            for media_type in MEDIA_TYPES
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


async def write(
    request: Request, idempotency_key: str | None, build: Callable[[str], Command]
) -> Response:
    """Read and check the document, submit the command `build` makes of its text; the
    answer is the config, its document the one sent, normalized as the handler stored it
    (the validator is deterministic)."""
    text, problem = await read_document(request)
    if problem is not None:
        raise unparseable(problem)
    assert text is not None
    # Locally too: an unparseable text is answered without a command.
    report, parsed = await asyncio.to_thread(validate_config, text, ADAPTERS)
    problem = parse_failure(report)
    if problem is not None:
        raise unparseable(problem)
    normalized = None if parsed is None else parsed.model_dump(mode="json")

    def accepted(result: CommandAccepted) -> Response:
        body = config_body({"document": normalized, **result.reply})
        headers = {"Location": f"{PREFIX}/{body['id']}"} if result.http_status == 201 else None
        return JSONResponse(body, status_code=result.http_status, headers=headers)

    renderer = dataclasses.replace(factflow.RENDERER, accepted=accepted)
    return await submit(request, build(text), idempotency_key, renderer)


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
    openapi_extra=_DOCUMENT_BODY,
)
async def post_config(
    request: Request, name: NameParam, idempotency_key: IdempotencyKey = None
) -> Response:
    return await write(
        request, idempotency_key, lambda text: CreateConfig(name=name, document=text)
    )


@router.put(
    "/{config_id}",
    summary="Update a config (a new version)",
    response_model=ConfigResponse,
    responses={**_WRITE_ERRORS, **error_docs.factflow(404)},
    openapi_extra=_DOCUMENT_BODY,
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
        lambda text: UpdateConfig(config_id=config_id, document=text, name=name),
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
    "config_body",
    "router",
]
