"""Seed 004's writes about executions: run a config, cancel an execution.

- `POST /api/v1/configs/{config_id}/run?skip_init_message=&tag=`: the JSON body, when
  there is one, is the init payload overrides object itself (deep-merged into the
  config's init payload). It becomes RunConfig: 200 with the new execution
  (ExecutionResponse) and `X-Pipelines-Version`. 404 UnknownConfig; 400
  ConfigValidationFailed with the validation report beside the ErrorResponse fields (a
  stored config that no longer validates against the handler's adapters); 409 for a tag
  some execution has; 503 with `Retry-After` when no orchestrator is alive
  (OrchestratorUnavailable) or the running executions are at the limit
  (ExecutionCapacityReached). A non-UUID id, a body that is not a JSON object or an empty
  `tag` is FastAPI's 422; a body larger than one command message is 413.
- `POST /api/v1/executions/{execution_id}/cancel`: CancelExecution: 200 with the
  execution, now cancelled (again 200 for a cancelled one); 404 UnknownExecution (a
  pipeline run's id too, as the executions reads answer); 409 RunAlreadyTerminal for one
  that has finished otherwise.

Both take `Idempotency-Key` as the command id, as every write does.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response

from contracts.cloudevents import encode_command
from contracts.command_base import Command, new_id
from contracts.config_commands import RunConfig
from contracts.results import CommandAccepted
from contracts.run_commands import CancelExecution
from projections.store import ReadStore
from services.entrypoints.http import configs, executions, factflow
from services.entrypoints.http.config_bodies import body_too_large, message_bytes
from services.entrypoints.http.errors import not_published, result_timeout
from services.entrypoints.http.factflow import ExecutionResponse, IdempotencyKey, error_response
from services.entrypoints.http.gateway import CommandGateway, GatewayTimeout, GatewayUnavailable
from services.entrypoints.http.pipelines import VERSION_HEADER
from services.service_layer.handlers.runs import unknown_execution

config_router = APIRouter(prefix=configs.PREFIX, tags=["configs (FactFlow)"])
execution_router = APIRouter(prefix=executions.PREFIX, tags=["executions (FactFlow)"])

_CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {"model": factflow.ErrorResponse, "description": "Conflicts with the current state"}
}
_RUN_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    **factflow.errors(404, 413, 503),
    **_CONFLICT,
    400: {
        "model": factflow.ValidationFailedResponse,
        "description": "The config does not validate against the handler's adapters",
    },
}

Overrides = Annotated[
    dict[str, Any] | None,
    Body(
        description="Init payload overrides: a JSON object deep-merged into the config's "
        "init payload (optional)",
    ),
]


async def send(request: Request, command: Command, idempotency_key: str | None) -> Response:
    """Send `command` and answer with its result: the reply as it is, or the error."""
    command_id = idempotency_key or str(new_id())
    limit = request.app.state.settings.max_message_bytes
    size = message_bytes(encode_command(command, command_id=command_id))
    if size > limit:
        return error_response(body_too_large(limit, size))
    gateway: CommandGateway = request.app.state.gateway
    try:
        result = await gateway.send(command, command_id=command_id)
    except GatewayTimeout as error:
        return error_response(result_timeout(error))
    except GatewayUnavailable as error:
        return error_response(not_published(error))
    headers = {}
    if result.aggregate_version is not None:
        headers[VERSION_HEADER] = str(result.aggregate_version)
    if not isinstance(result, CommandAccepted):
        return configs.rejected(result, headers)
    return JSONResponse(result.reply, status_code=result.http_status, headers=headers)


@config_router.post(
    "/{config_id}/run",
    summary="Run a config (a new execution)",
    response_model=ExecutionResponse,
    responses=_RUN_ERRORS,
)
async def post_run(
    request: Request,
    config_id: UUID,
    overrides: Overrides = None,
    skip_init_message: Annotated[
        bool, Query(description="Start the routes without publishing the init message")
    ] = False,
    tag: Annotated[
        str | None, Query(min_length=1, description="A tag no other execution has")
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    command = RunConfig(
        config_id=config_id,
        skip_init_message=skip_init_message,
        tag=tag,
        init_payload_overrides=overrides or {},
    )
    return await send(request, command, idempotency_key)


@execution_router.post(
    "/{execution_id}/cancel",
    summary="Cancel an execution",
    response_model=ExecutionResponse,
    responses={**factflow.errors(404, 503), **_CONFLICT},
)
async def post_cancel(
    request: Request, execution_id: UUID, idempotency_key: IdempotencyKey = None
) -> Response:
    store: ReadStore = request.app.state.read_store
    row = await asyncio.to_thread(store.get_execution, str(execution_id))
    if row is not None and not executions.is_execution(row):
        # A pipeline run (seeds 002/003) is not an execution here, as GET answers. A row
        # the read model does not have yet is the handler's to judge.
        return error_response(unknown_execution(execution_id))
    return await send(request, CancelExecution(execution_id=execution_id), idempotency_key)


__all__ = ["config_router", "execution_router", "post_cancel", "post_run"]
