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

- `POST /api/v1/executions {config_id, trigger_context, idempotency_key}`: FactFlow's
  other way to start a run, the same RunConfig (no overrides, the init message sent);
  `trigger_context` is kept in the execution's facets. `idempotency_key` is the command
  id: the same key answers the first run again, however long after (FactFlow promises
  "within a short window"); the same key on another kind of write is 409
  IdempotencyKeyReused.

All take `Idempotency-Key` as the command id, as every write does.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from contracts.config_commands import RunConfig
from contracts.run_commands import CancelExecution
from services.entrypoints.http import configs, error_docs, executions, factflow
from services.entrypoints.http.factflow import ExecutionResponse
from services.entrypoints.http.read_your_writes import read_store_of
from services.entrypoints.http.submit import SUBMIT_ERRORS, IdempotencyKey, submit
from services.service_layer.handlers.runs import unknown_execution

config_router = APIRouter(prefix=configs.PREFIX, tags=["configs (FactFlow)"])
execution_router = APIRouter(prefix=executions.PREFIX, tags=["executions (FactFlow)"])

_RUN_ERRORS: Final[error_docs.Responses] = {
    **error_docs.factflow(404, *SUBMIT_ERRORS),
    400: {
        "model": factflow.ValidationFailedResponse | factflow.ErrorResponse,
        "description": "The config does not validate against the handler's adapters (the "
        "report), or the body is no JSON at all (an ErrorResponse)",
    },
}

Overrides = Annotated[
    dict[str, Any] | None,
    Body(
        description="Init payload overrides: a JSON object deep-merged into the config's "
        "init payload (optional)",
    ),
]


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
    return await submit(request, command, idempotency_key, factflow.RENDERER)


class StartExecution(BaseModel):
    """FactFlow's other way to start a run (`POST /api/v1/executions`)."""

    model_config = ConfigDict(extra="forbid")

    config_id: UUID
    trigger_context: dict[str, Any] = Field(
        default_factory=dict, description="What started the run; kept with it"
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The same key is the same run: answered again, never started twice "
        "(the Idempotency-Key header does the same; the body's wins)",
    )


@execution_router.post(
    "",
    summary="Start an execution of a config",
    response_model=ExecutionResponse,
    responses=_RUN_ERRORS,
)
async def post_execution(
    request: Request, body: StartExecution, idempotency_key: IdempotencyKey = None
) -> Response:
    command = RunConfig(config_id=body.config_id, trigger_context=body.trigger_context)
    key = body.idempotency_key or idempotency_key
    return await submit(request, command, key, factflow.RENDERER)


@execution_router.post(
    "/{execution_id}/cancel",
    summary="Cancel an execution",
    response_model=ExecutionResponse,
    responses=error_docs.factflow(404, *SUBMIT_ERRORS),
)
async def post_cancel(
    request: Request, execution_id: UUID, idempotency_key: IdempotencyKey = None
) -> Response:
    row = await asyncio.to_thread(read_store_of(request).get_execution, str(execution_id))
    if row is not None and not executions.is_execution(row):
        # A pipeline run (seeds 002/003) is not an execution here, as GET answers. A row
        # the read model does not have yet is the handler's to judge.
        raise unknown_execution(execution_id)
    command = CancelExecution(execution_id=execution_id)
    return await submit(request, command, idempotency_key, factflow.RENDERER)


__all__ = [
    "StartExecution",
    "config_router",
    "execution_router",
    "post_cancel",
    "post_execution",
    "post_run",
]
