"""Seed 004 (FactFlow's executions), the reads: `GET /api/v1/executions/{id}`,
`GET /api/v1/executions`, and a replay's family, `GET /api/v1/executions/{id}/replays`
and `GET /api/v1/executions/{id}/lineage`, answered from the executions read model.

The executions here are a config's (RunConfig, replays): the seed's ExecutionResponse
requires a `config_id`, and a pipeline's runs (seeds 002/003) live under their own paths,
so a pipeline run's id is 404 here and the list leaves pipeline runs out.
ExecutionResponse carries fields of ours beside the seed's: `root_execution_id`, and
`started_by` / `completed_by`, who sent the command that created the execution and the
one that ended it (the read model's `created_by` / `ended_by`).

`status` is seed 004's view of the run's canonical status (running, completed, failed,
cancelled, interrupted); `started_at` is when the execution was
created until a stage has started it (the seed requires one), `completed_at` when it
ended.

The list filters by `config_id`, `status` (seed 004's vocabulary) and `tag`, newest first,
paged by `limit` (1-1000, default 100) and `offset`, as FactFlow's config list pages:
`{total, limit, offset, has_more, executions}`. `/replays` is the same page of the
execution's children (the replays whose parent it is), as FactFlow answers it.
`/lineage` is ours (FactFlow has none): the execution's root and parent and its
children's ids (LineageResponse). Both are 404 for an execution that does not exist. A
filter or header that does not parse is FastAPI's 422; other errors are ErrorResponse
(errors.py).

A replay's parent and root are SQL columns of the read model that rows stored before
they existed lack: such children show in neither list until `pipelines projections
rebuild` (projections.schema).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from contracts.statuses import ExecutionStatus
from domain.execution import RunOwnerKind
from projections.execution_queries import LINEAGE_CHILDREN_MAX
from projections.rows import Row
from projections.store import ReadStore
from services.entrypoints.http import error_docs
from services.entrypoints.http.esper import MAX_COUNT
from services.entrypoints.http.factflow import ExecutionListResponse, ExecutionResponse
from services.entrypoints.http.read_your_writes import (
    Awaited,
    MinVersion,
    read_after,
    read_store_of,
)
from services.service_layer.handlers.runs import unknown_execution

PREFIX: Final = "/api/v1/executions"
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
CONFIG_OWNED: Final = str(RunOwnerKind.CONFIG)

# ExecutionResponse field -> the read model's column it shows (or a function of the row).
EXECUTION_FIELDS: Final[dict[str, str]] = {
    "id": "id",
    "config_id": "config_id",
    "status": "execution_status",
    "started_at": "started_at",
    "completed_at": "ended_at",
    "parent_execution_id": "parent_execution_id",
    "root_execution_id": "root_execution_id",
    "replay_source": "replay_source",
    "tag": "tag",
    "started_by": "created_by",
    "completed_by": "ended_by",
}
assert list(EXECUTION_FIELDS) == list(ExecutionResponse.model_fields)

router = APIRouter(prefix=PREFIX, tags=["executions (FactFlow)"])


def execution_of(row: Row) -> dict[str, Any]:
    body = {field: row.get(column) for field, column in EXECUTION_FIELDS.items()}
    # Required by the seed; an execution counts as started once it exists.
    body["started_at"] = body["started_at"] or row["created_at"]
    return body


def is_execution(row: Row | None) -> bool:
    return row is not None and row.get("owner_kind") == CONFIG_OWNED


async def read_execution(request: Request, execution_id: UUID, min_version: int | None) -> Row:
    """The execution's row (with `X-Min-Version`, once the read model has that version);
    raises its 404, also for a pipeline run's id."""
    awaited = Awaited.aggregate("execution", "id", execution_id, ReadStore.get_execution)
    row = await read_after(request, awaited, min_version)
    if row is None or not is_execution(row):
        raise unknown_execution(execution_id)
    return row


@router.get(
    "/{execution_id}",
    summary="Get an execution",
    response_model=ExecutionResponse,
    responses=error_docs.factflow(404, 503),
)
async def get_execution(
    request: Request, execution_id: UUID, min_version: MinVersion = None
) -> Response:
    return JSONResponse(execution_of(await read_execution(request, execution_id, min_version)))


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_COUNT, description="Executions to skip")]


class LineageResponse(BaseModel):
    """Where an execution sits among replays (ours; FactFlow has no such read)."""

    execution_id: UUID
    root_execution_id: UUID | None = Field(
        description="The run its chain of replays started from (null: it is not a replay)"
    )
    parent_execution_id: UUID | None = Field(description="The execution it replays")
    children: list[UUID] = Field(
        description=f"Its replays' ids, newest first: the first {LINEAGE_CHILDREN_MAX} "
        "(`/replays` pages through them all)"
    )
    children_total: int = Field(description="How many replays it has")


@router.get("", summary="List executions", response_model=ExecutionListResponse)
async def get_executions(
    request: Request,
    config_id: Annotated[UUID | None, Query(description="Only this config's")] = None,
    status: Annotated[ExecutionStatus | None, Query(description="Only in this status")] = None,
    tag: Annotated[str | None, Query(description="Only the one with this tag")] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Response:
    return await _page(
        request,
        limit,
        offset,
        config_id=None if config_id is None else str(config_id),
        execution_status=None if status is None else str(status),
        tag=tag,
    )


@router.get(
    "/{execution_id}/replays",
    summary="List an execution's replays",
    response_model=ExecutionListResponse,
    responses=error_docs.factflow(404),
)
async def get_replays(
    request: Request, execution_id: UUID, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> Response:
    """The executions whose parent is this one, newest first."""
    await read_execution(request, execution_id, None)
    return await _page(request, limit, offset, parent_execution_id=str(execution_id))


@router.get(
    "/{execution_id}/lineage",
    summary="An execution's root, parent and replays",
    response_model=LineageResponse,
    responses=error_docs.factflow(404, 503),
)
async def get_lineage(
    request: Request, execution_id: UUID, min_version: MinVersion = None
) -> Response:
    await read_execution(request, execution_id, min_version)
    store = read_store_of(request)
    lineage = await asyncio.to_thread(store.lineage, str(execution_id))
    if lineage is None:  # deleted since it was read
        raise unknown_execution(execution_id)
    return JSONResponse(lineage)


async def _page(request: Request, limit: int, offset: int, **filters: str | None) -> Response:
    """A page of config executions matching `filters` (list_executions'), newest first."""
    store = read_store_of(request)
    total, rows = await asyncio.to_thread(
        lambda: store.list_executions(
            owner_kind=CONFIG_OWNED, limit=limit, offset=offset, **filters
        )
    )
    return JSONResponse(
        {
            "total": total,
            "limit": limit,
            "offset": offset,
            "has_more": offset + len(rows) < total,
            "executions": [execution_of(row) for row in rows],
        }
    )


__all__ = [
    "EXECUTION_FIELDS",
    "MAX_LIMIT",
    "PREFIX",
    "LineageResponse",
    "execution_of",
    "is_execution",
    "read_execution",
    "router",
]
