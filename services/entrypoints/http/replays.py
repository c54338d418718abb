"""Seed 004's (FactFlow's) replay: `POST /api/v1/executions/{execution_id}/replay`.

The path takes the parent's execution id or its tag. The body is FactFlow's
(`replay_source`, `from_stage`, `to_route`, `from_path`, `metadata`, `tag`, `config_id`)
plus ours (`direction`, `messages`, `only_failed`, `dry_run`, `allow_large`,
`config_version`); what each means is docs/replay.md. It becomes ReplayExecution, keyed by
`Idempotency-Key` as every write: 200 with the child (ExecutionResponse) or, for a dry
run, the plan; 404 UnknownExecution / NoStoredMessages / UnknownConfigVersion; 400
InvalidReplay (a route or stage not in the config, fields that do not go together) and
ReplayTooLarge; 409 for a child id or tag that exists; 503 as for a run.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from contracts.replay_commands import MAX_MANUAL_MESSAGES, ReplayDirection, ReplayExecution
from contracts.statuses import ReplaySource
from domain.errors import DomainError
from services.entrypoints.http import error_docs, executions, factflow
from services.entrypoints.http.factflow import ExecutionResponse
from services.entrypoints.http.submit import SUBMIT_ERRORS, IdempotencyKey, submit

router = APIRouter(prefix=executions.PREFIX, tags=["executions (FactFlow)"])


class ReplayRequest(BaseModel):
    """A replay of the execution in the path: a new child execution."""

    replay_source: ReplaySource = ReplaySource.STORAGE
    from_stage: str | None = Field(
        default=None, min_length=1, description="The route replayed from (`route` or `route/N`)"
    )
    to_route: str | None = Field(
        default=None, min_length=1, description="The child's route the messages go to"
    )
    from_path: str | None = Field(
        default=None,
        min_length=1,
        description="manual: `{execution_id}/{route}/{consumed|produced}` of stored messages",
    )
    messages: list[dict[str, Any]] | None = Field(
        default=None, max_length=MAX_MANUAL_MESSAGES, description="manual: payloads to publish"
    )
    direction: ReplayDirection = ReplayDirection.CONSUMED
    only_failed: bool = False
    init_payload_overrides: dict[str, Any] = Field(
        default_factory=dict, description="Deep-merged into every replayed payload"
    )
    dry_run: bool = False
    allow_large: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    tag: str | None = Field(default=None, min_length=1)
    config_id: UUID | None = None
    config_version: int | None = Field(default=None, ge=1)


class PlannedMessage(BaseModel):
    id: UUID = Field(description="The id the message will have in the child")
    route: str = Field(description="The child's route that will consume it")
    topic: str
    payload: dict[str, Any]


class ReplayPlan(BaseModel):
    """A dry run's answer: what the replay would publish; nothing was changed."""

    dry_run: bool
    parent_execution_id: UUID
    root_execution_id: UUID
    replay_source: ReplaySource
    config_id: UUID
    config_version: int
    to_route: str | None = Field(description="The target route (none for lineage)")
    to_topic: str | None
    from_: dict[str, str] | None = Field(alias="from", description="Where they were stored")
    message_count: int
    routes: dict[str, int] = Field(description="How many messages each route gets")
    messages: list[PlannedMessage] = Field(description="The first 100 of them")


@router.post(
    "/{execution_id}/replay",
    summary="Replay an execution (a new child execution)",
    response_model=ExecutionResponse | ReplayPlan,
    responses=error_docs.factflow(400, 404, 409, 410, *SUBMIT_ERRORS),
)
async def post_replay(
    request: Request,
    execution_id: str,
    body: Annotated[ReplayRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    try:
        command = ReplayExecution(parent=execution_id, **body.model_dump(exclude_unset=True))
    except ValidationError as error:
        raise DomainError(
            "InvalidReplay",
            "; ".join(str(e["msg"]) for e in error.errors()),
            {"errors": error.errors(include_url=False, include_context=False)},
            400,
        ) from None
    return await submit(request, command, idempotency_key, factflow.RENDERER)


__all__ = ["ReplayRequest", "post_replay", "router"]
