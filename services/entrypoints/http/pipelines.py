"""Seeds 000/001 (Feldera's pipeline endpoints), the writes: each request becomes one
command; its result is answered with the seed's status code and body.

Query parameters are read as text and parsed here, so a bad value gets Feldera's own
error shape (FastAPI would answer 422): `initial` is checked the way Feldera's handler
does (405 UnsupportedPipelineAction); booleans and `bootstrap_policy`, which Feldera's
query extractor parses before its handler runs, give a 400 first.
"""

from __future__ import annotations

from typing import Annotated, Final
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from contracts import commands as c
from contracts.statuses import BootstrapPolicy, InitialStatus
from domain import pipeline_errors
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import invalid_query_parameter, parse_choice
from services.entrypoints.http.submit import (
    SUBMIT_ERRORS,
    VERSION_HEADER,
    IdempotencyKey,
    submit,
)

router = APIRouter(prefix="/v0/pipelines", tags=["pipelines"])

# Read as text and parsed here (Feldera's 400 and 405); the schemas document what parses.
BoolParam = Annotated[
    str | None,
    Query(
        description="`true` or `false`",
        examples=["true"],
        json_schema_extra={"enum": ["true", "false"]},
    ),
]

_BOOLEANS: Final = {"true": True, "false": False}
_ERRORS: Final = (404, *SUBMIT_ERRORS)


class PipelineCreate(BaseModel):
    """`POST /v0/pipelines`: `config_id` names the Config that is the pipeline's program."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Unique pipeline name")
    description: str = ""
    config_id: UUID | None = None


# --- query parameters ----------------------------------------------------------------------


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    value = _BOOLEANS.get(raw.lower())
    if value is None:
        raise invalid_query_parameter(name, raw, "true or false")
    return value


def parse_initial(raw: str | None) -> InitialStatus:
    if raw is None:
        return InitialStatus.RUNNING
    try:
        return InitialStatus(raw)
    except ValueError:
        raise pipeline_errors.unknown_initial(raw) from None


# --- endpoints -----------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    summary="Create a pipeline",
    responses=error_docs.feldera(*_ERRORS),
)
async def post_pipeline(
    request: Request, body: PipelineCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    command = c.CreatePipeline(
        name=body.name, description=body.description, config_id=body.config_id
    )
    return await submit(request, command, idempotency_key)


@router.delete(
    "/{pipeline_name}",
    summary="Delete a pipeline",
    response_class=Response,  # 200 with an empty body, as Feldera answers
    responses=error_docs.feldera(*_ERRORS),
)
async def delete_pipeline(
    request: Request, pipeline_name: str, idempotency_key: IdempotencyKey = None
) -> Response:
    return await submit(request, c.DeletePipeline(pipeline_name=pipeline_name), idempotency_key)


@router.post(
    "/{pipeline_name}/start",
    status_code=202,
    summary="Start the pipeline",
    responses=error_docs.feldera(405, *_ERRORS),
)
async def post_start(
    request: Request,
    pipeline_name: str,
    initial: Annotated[
        str | None,
        Query(
            description="standby, paused or running (the default)",
            json_schema_extra={"enum": list(InitialStatus)},
        ),
    ] = None,
    bootstrap_policy: Annotated[
        str | None,
        Query(
            description="allow, reject or await_approval (the default)",
            json_schema_extra={"enum": list(BootstrapPolicy)},
        ),
    ] = None,
    dismiss_error: BoolParam = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # Feldera's query extractor parses the policy and the boolean before its handler
    # checks `initial`: a bad one of those is the 400 first.
    policy = parse_choice(
        "bootstrap_policy", bootstrap_policy, BootstrapPolicy, BootstrapPolicy.AWAIT_APPROVAL
    )
    dismiss = parse_bool("dismiss_error", dismiss_error, True)
    command = c.StartPipeline(
        pipeline_name=pipeline_name,
        initial=parse_initial(initial),
        bootstrap_policy=policy,
        dismiss_error=dismiss,
    )
    return await submit(request, command, idempotency_key)


@router.post(
    "/{pipeline_name}/stop",
    status_code=202,
    summary="Stop the pipeline",
    responses=error_docs.feldera(*_ERRORS),
)
async def post_stop(
    request: Request,
    pipeline_name: str,
    force: BoolParam = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    command = c.StopPipeline(pipeline_name=pipeline_name, force=parse_bool("force", force, False))
    return await submit(request, command, idempotency_key)


def _simple_action(path: str, model: type[c.PipelineCommand], summary: str, status: int) -> None:
    """An action with no parameters besides the pipeline's name. `status` is the success
    status the OpenAPI document shows; the answer's own comes with the command's result."""

    async def endpoint(
        request: Request, pipeline_name: str, idempotency_key: IdempotencyKey = None
    ) -> Response:
        return await submit(request, model(pipeline_name=pipeline_name), idempotency_key)

    endpoint.__name__ = f"post_{path.strip('/')}"
    router.add_api_route(
        f"/{{pipeline_name}}{path}",
        endpoint,
        methods=["POST"],
        status_code=status,
        summary=summary,
        responses=error_docs.feldera(*_ERRORS),
    )


# path -> (command, summary, the success status Feldera answers with)
SIMPLE_ACTIONS: dict[str, tuple[type[c.PipelineCommand], str, int]] = {
    "/pause": (c.PausePipeline, "Pause the pipeline", 202),
    "/resume": (c.ResumePipeline, "Resume the pipeline", 202),
    "/checkpoint": (c.CheckpointPipeline, "Checkpoint the pipeline", 200),
    "/approve": (c.ApprovePipeline, "Approve the bootstrap of a modified pipeline", 202),
    "/dismiss_error": (c.DismissPipelineError, "Dismiss the deployment error", 200),
    "/clear": (c.ClearPipelineStorage, "Clear the pipeline's storage", 202),
}

for _path, (_model, _summary, _status) in SIMPLE_ACTIONS.items():
    _simple_action(_path, _model, _summary, _status)


__all__ = [
    "SIMPLE_ACTIONS",
    "VERSION_HEADER",
    "PipelineCreate",
    "parse_bool",
    "parse_initial",
    "router",
]
