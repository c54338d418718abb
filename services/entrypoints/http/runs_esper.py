"""Seed 003 (the pipeline runs of Esper's Pipelines v0 run API) over HTTP.

- `GET /v0/runs` and `GET /pipelines/v0/runs`: every run, filtered by `status` (any
  case) and `pipeline_name`, ordered by `ordering`, paged by `limit`/`offset`.
- `GET`/`POST /pipelines/v0/pipelines/{pipeline_id}/runs`: one pipeline's runs; a new
  run (CreateRun; the body is `{}` and the answer 200, as the seed says).
- `GET`/`PUT`/`DELETE /pipelines/v0/pipelines/{pipeline_id}/runs/{pipeline_run_id}`:
  one run; its status (UpdateRunStatus, body `{status}` in any case); its deletion
  (DeleteRun, answering the deleted run).

`pipeline_id` is the pipeline's name or its id. The envelope, paging and both path
spellings are esper.py's.

Where we differ from Esper, on purpose: an unknown pipeline or run is 404 and an illegal
transition is the run table's status (Esper documents neither).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response

from contracts.run_commands import CreateRun, DeleteRun, UpdateRunStatus
from domain import pipeline_errors
from domain.run_status import unknown_run
from projections.rows import Row
from projections.store import ORDERINGS
from services.entrypoints.http.errors import invalid_query_parameter
from services.entrypoints.http.esper import (
    PREFIX,
    ListQuery,
    Window,
    add_route,
    envelope,
    page,
    parse_status,
    renderer,
)
from services.entrypoints.http.read_your_writes import (
    RunMinVersion,
    parse_min_version,
    read_store_of,
)
from services.entrypoints.http.runs import parse_run_id, read_run
from services.entrypoints.http.submit import SUBMIT_ERRORS, IdempotencyKey, submit

LIST_PATHS: Final = ("/v0/runs", f"{PREFIX}/runs")
PIPELINE_RUNS: Final = f"{PREFIX}/pipelines/{{pipeline_id}}/runs"
ONE_RUN: Final = f"{PIPELINE_RUNS}/{{pipeline_run_id}}"

router = APIRouter(tags=["pipeline runs (Esper)"])

# Esper's PipelineRun, in its field order; the read model's column for each (it keeps no
# status_meta: the seed's object is always empty here).
RUN_FIELDS: Final[tuple[str, ...]] = (
    "id",
    "run_number",
    "pipeline_id",
    "pipeline_name",
    "status",
    "status_meta",
    "created_at",
    "updated_at",
    "started_at",
    "ended_at",
)

# The seed's orderings: the enterprise list has ±pipeline__name, one pipeline's list not.
# The store also orders by ±created_at (its default, newest first), which we accept too.
ENTERPRISE_ORDERINGS: Final[tuple[str, ...]] = tuple(
    f"{sign}{key}" for key in ORDERINGS for sign in ("", "-")
)
PIPELINE_ORDERINGS: Final[tuple[str, ...]] = tuple(
    name for name in ENTERPRISE_ORDERINGS if name.removeprefix("-") != "pipeline__name"
)

Listed = Annotated[ListQuery, Depends()]


def _ordering(allowed: tuple[str, ...]) -> Any:
    return Query(
        description="One of " + ", ".join(allowed),
        json_schema_extra={"enum": list(allowed)},
    )


EnterpriseOrdering = Annotated[str | None, _ordering(ENTERPRISE_ORDERINGS)]
PipelineOrdering = Annotated[str | None, _ordering(PIPELINE_ORDERINGS)]


def parse_ordering(raw: str | None, allowed: tuple[str, ...]) -> str | None:
    if raw is None or raw in allowed:
        return raw
    raise invalid_query_parameter("ordering", raw, "one of " + ", ".join(allowed))


def pipeline_run_of(row: Row) -> dict[str, Any]:
    run = {field: row.get(field) for field in RUN_FIELDS}
    run["status_meta"] = {}
    return run


# --- reading -------------------------------------------------------------------------------


async def resolve_pipeline(request: Request, pipeline_id: str) -> Row:
    """The path's pipeline, by name first, else by id (as CreateRun resolves it)."""
    store = read_store_of(request)
    row = await asyncio.to_thread(store.get_pipeline, pipeline_id)
    if row is None:
        row = await asyncio.to_thread(store.get_pipeline_by_id, pipeline_id)
    if row is None:
        raise pipeline_errors.unknown_pipeline(pipeline_id)
    return row


async def list_runs(
    request: Request,
    window: Window,
    ordering: str | None,
    *,
    pipeline_name: str | None = None,
    pipeline_id: str | None = None,
) -> Response:
    store = read_store_of(request)
    count, rows = await asyncio.to_thread(
        lambda: store.list_executions(
            status=None if window.status is None else str(window.status),
            pipeline_name=pipeline_name,
            pipeline_id=pipeline_id,
            owner_kind="pipeline",
            ordering=ordering,
            limit=window.limit,
            offset=window.offset,
        )
    )
    return page(request, window, count, [pipeline_run_of(row) for row in rows], "Pipeline runs")


async def pipelines_run(
    request: Request, pipeline_id: str, pipeline_run_id: str, min_version: int | None
) -> Row:
    """The run, if it is the path's pipeline's (else 404, as the handler answers). The
    run's own row names its pipeline, so a pipeline projection lagging the run's does not
    hide it; the pipeline is looked up only to tell an unknown pipeline from a foreign run."""
    run_id = parse_run_id(pipeline_run_id)
    row = await read_run(request, run_id, min_version)
    if row is not None and pipeline_id in (row.get("pipeline_id"), row.get("pipeline_name")):
        return row
    await resolve_pipeline(request, pipeline_id)
    raise unknown_run(run_id)


# --- endpoints -----------------------------------------------------------------------------


async def get_enterprise_runs(
    request: Request,
    query: Listed,
    pipeline_name: Annotated[str | None, Query(description="Filter by pipeline name")] = None,
    ordering: EnterpriseOrdering = None,
) -> Response:
    window = query.parsed()
    order = parse_ordering(ordering, ENTERPRISE_ORDERINGS)
    return await list_runs(request, window, order, pipeline_name=pipeline_name)


async def get_pipeline_runs(
    request: Request, pipeline_id: str, query: Listed, ordering: PipelineOrdering = None
) -> Response:
    window = query.parsed()
    order = parse_ordering(ordering, PIPELINE_ORDERINGS)
    pipeline = await resolve_pipeline(request, pipeline_id)
    return await list_runs(request, window, order, pipeline_id=str(pipeline["id"]))


async def post_pipeline_run(
    request: Request,
    pipeline_id: str,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # The seed's PipelineRun_POST is an empty object: its fields, if any, are ignored.
    command = CreateRun(pipeline_id=pipeline_id)
    return await submit(request, command, idempotency_key, renderer("Pipeline run created"))


async def get_pipeline_run(
    request: Request, pipeline_id: str, pipeline_run_id: str, min_version: RunMinVersion = None
) -> Response:
    wanted = parse_min_version(min_version)
    row = await pipelines_run(request, pipeline_id, pipeline_run_id, wanted)
    return envelope(pipeline_run_of(row), "Pipeline run")


async def put_pipeline_run(
    request: Request,
    pipeline_id: str,
    pipeline_run_id: str,
    status: Annotated[str, Body(embed=True, description="The new status, any case")],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    command = UpdateRunStatus(
        run_id=parse_run_id(pipeline_run_id),
        status=parse_status("status", status),
        pipeline_id=pipeline_id,
    )
    return await submit(request, command, idempotency_key, renderer("Pipeline run updated"))


async def delete_pipeline_run(
    request: Request,
    pipeline_id: str,
    pipeline_run_id: str,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    command = DeleteRun(run_id=parse_run_id(pipeline_run_id), pipeline_id=pipeline_id)
    return await submit(request, command, idempotency_key, renderer("Pipeline run deleted"))


for _path in LIST_PATHS:
    add_route(
        router, _path, get_enterprise_runs, "GET", "Get all runs of the enterprise's pipelines", 400
    )
add_route(router, PIPELINE_RUNS, get_pipeline_runs, "GET", "Get all runs of a pipeline", 400, 404)
add_route(
    router,
    PIPELINE_RUNS,
    post_pipeline_run,
    "POST",
    "Create a pipeline run",
    404,
    *SUBMIT_ERRORS,
)
add_route(router, ONE_RUN, get_pipeline_run, "GET", "Get a pipeline run", 400, 404, 503)
add_route(
    router,
    ONE_RUN,
    put_pipeline_run,
    "PUT",
    "Update a pipeline run's status",
    404,
    *SUBMIT_ERRORS,
)
add_route(
    router, ONE_RUN, delete_pipeline_run, "DELETE", "Delete a pipeline run", 404, *SUBMIT_ERRORS
)


__all__ = [
    "ENTERPRISE_ORDERINGS",
    "LIST_PATHS",
    "PIPELINE_ORDERINGS",
    "RUN_FIELDS",
    "pipeline_run_of",
    "router",
]
