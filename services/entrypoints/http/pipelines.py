"""Seeds 000/001 (Feldera's pipeline endpoints), the writes: each request becomes one
command; its result is answered with the seed's status code and body.

Query parameters are read as text and parsed here, so a bad value gets Feldera's own
error shape (FastAPI would answer 422): `initial` is checked the way Feldera's handler
does (405 UnsupportedPipelineAction); booleans and `bootstrap_policy`, which Feldera's
query extractor parses before its handler runs, give a 400 first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts.command_base import Command, PipelineCommand
from contracts.pipeline_commands import (
    ApprovePipeline,
    CheckpointPipeline,
    ClearPipelineStorage,
    CreatePipeline,
    DeletePipeline,
    DismissPipelineError,
    PausePipeline,
    ResumePipeline,
    StartPipeline,
    StopPipeline,
)
from contracts.results import CommandAccepted
from contracts.statuses import BootstrapPolicy, InitialStatus
from domain import pipeline_errors
from domain.errors import DomainError
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import (
    domain_error_response,
    feldera_response,
    invalid_query_parameter,
    not_published,
    result_timeout,
)
from services.entrypoints.http.gateway import CommandGateway, GatewayTimeout, GatewayUnavailable

VERSION_HEADER = "X-Pipelines-Version"

router = APIRouter(prefix="/v0/pipelines", tags=["pipelines"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="The command id: a request repeated with the same key is the same "
        "command and gets the same answer.",
    ),
]
BoolParam = Annotated[str | None, Query(description="`true` or `false`", examples=["true"])]

_BOOLEANS = {"true": True, "false": False}


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


def parse_bootstrap_policy(raw: str | None) -> BootstrapPolicy:
    if raw is None:
        return BootstrapPolicy.AWAIT_APPROVAL
    try:
        return BootstrapPolicy(raw)
    except ValueError:
        expected = "one of " + ", ".join(p.value for p in BootstrapPolicy)
        raise invalid_query_parameter("bootstrap_policy", raw, expected) from None


def parse_initial(raw: str | None) -> InitialStatus:
    if raw is None:
        return InitialStatus.RUNNING
    try:
        return InitialStatus(raw)
    except ValueError:
        raise pipeline_errors.unknown_initial(raw) from None


# --- answering -----------------------------------------------------------------------------


def gateway_of(request: Request) -> CommandGateway:
    gateway: CommandGateway = request.app.state.gateway
    return gateway


async def answer(request: Request, command: Command, idempotency_key: str | None) -> Response:
    """Send `command`; answer with its result's status and body (the reply, or Feldera's
    ErrorResponse), and the aggregate version it left in `X-Pipelines-Version`."""
    try:
        result = await gateway_of(request).send(command, command_id=idempotency_key or None)
    except GatewayTimeout as error:
        return domain_error_response(result_timeout(error))
    except GatewayUnavailable as error:
        return domain_error_response(not_published(error))
    headers = {}
    if result.aggregate_version is not None:
        headers[VERSION_HEADER] = str(result.aggregate_version)
    if not isinstance(result, CommandAccepted):
        return feldera_response(result.http_status, result.body(), headers)
    if result.reply is None:
        return Response(status_code=result.http_status, headers=headers)
    return JSONResponse(result.reply, status_code=result.http_status, headers=headers)


async def act(
    request: Request, idempotency_key: str | None, build: Callable[[], Command]
) -> Response:
    """Parse the query (a bad one is answered without sending anything), then send."""
    try:
        command = build()
    except DomainError as error:
        return domain_error_response(error)
    return await answer(request, command, idempotency_key)


# --- endpoints -----------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    summary="Create a pipeline",
    responses=error_docs.feldera(400, 404, 409, 503),
)
async def post_pipeline(
    request: Request, body: PipelineCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    command = CreatePipeline(name=body.name, description=body.description, config_id=body.config_id)
    return await answer(request, command, idempotency_key)


@router.delete(
    "/{pipeline_name}", summary="Delete a pipeline", responses=error_docs.feldera(400, 404, 503)
)
async def delete_pipeline(
    request: Request, pipeline_name: str, idempotency_key: IdempotencyKey = None
) -> Response:
    return await answer(request, DeletePipeline(pipeline_name=pipeline_name), idempotency_key)


@router.post(
    "/{pipeline_name}/start",
    status_code=202,
    summary="Start the pipeline",
    responses=error_docs.feldera(400, 404, 405, 503),
)
async def post_start(
    request: Request,
    pipeline_name: str,
    initial: Annotated[
        str | None, Query(description="standby, paused or running (the default)")
    ] = None,
    bootstrap_policy: Annotated[
        str | None, Query(description="allow, reject or await_approval (the default)")
    ] = None,
    dismiss_error: BoolParam = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    def build() -> Command:
        policy = parse_bootstrap_policy(bootstrap_policy)
        dismiss = parse_bool("dismiss_error", dismiss_error, True)
        return StartPipeline(
            pipeline_name=pipeline_name,
            initial=parse_initial(initial),
            bootstrap_policy=policy,
            dismiss_error=dismiss,
        )

    return await act(request, idempotency_key, build)


@router.post(
    "/{pipeline_name}/stop",
    status_code=202,
    summary="Stop the pipeline",
    responses=error_docs.feldera(400, 404, 503),
)
async def post_stop(
    request: Request,
    pipeline_name: str,
    force: BoolParam = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    def build() -> Command:
        return StopPipeline(pipeline_name=pipeline_name, force=parse_bool("force", force, False))

    return await act(request, idempotency_key, build)


def _simple_action(path: str, model: type[PipelineCommand], summary: str, status: int) -> None:
    """An action with no parameters besides the pipeline's name. `status` is the success
    status the OpenAPI document shows; the answer's own comes with the command's result."""

    async def endpoint(
        request: Request, pipeline_name: str, idempotency_key: IdempotencyKey = None
    ) -> Response:
        return await answer(request, model(pipeline_name=pipeline_name), idempotency_key)

    endpoint.__name__ = f"post_{path.strip('/')}"
    router.add_api_route(
        f"/{{pipeline_name}}{path}",
        endpoint,
        methods=["POST"],
        status_code=status,
        summary=summary,
        responses=error_docs.feldera(400, 404, 503),
    )


# path -> (command, summary, the success status Feldera answers with)
SIMPLE_ACTIONS: dict[str, tuple[type[PipelineCommand], str, int]] = {
    "/pause": (PausePipeline, "Pause the pipeline", 202),
    "/resume": (ResumePipeline, "Resume the pipeline", 202),
    "/checkpoint": (CheckpointPipeline, "Checkpoint the pipeline", 200),
    "/approve": (ApprovePipeline, "Approve the bootstrap of a modified pipeline", 202),
    "/dismiss_error": (DismissPipelineError, "Dismiss the deployment error", 200),
    "/clear": (ClearPipelineStorage, "Clear the pipeline's storage", 202),
}

for _path, (_model, _summary, _status) in SIMPLE_ACTIONS.items():
    _simple_action(_path, _model, _summary, _status)
