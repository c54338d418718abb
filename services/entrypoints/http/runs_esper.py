"""Seed 003 (Esper "Pipelines v0" pipeline runs) over HTTP (reference §B).

- `GET /v0/runs` and `GET /pipelines/v0/runs`: every run, filtered by `status` (any
  case) and `pipeline_name`, ordered by `ordering`, paged by `limit`/`offset`.
- `GET`/`POST /pipelines/v0/pipelines/{pipeline_id}/runs`: one pipeline's runs; a new
  run (CreateRun; the body is `{}` and the answer 200, as the seed says).
- `GET`/`PUT`/`DELETE /pipelines/v0/pipelines/{pipeline_id}/runs/{pipeline_run_id}`:
  one run; its status (UpdateRunStatus, body `{status}` in any case); its deletion
  (DeleteRun, answering the deleted run).

`pipeline_id` is the pipeline's name or its id. Every path answers with and without a
trailing slash (both are registered: no redirect). Answers are Esper's envelope
`{code, message, content}`; lists put `{count, previous, next, results}` in `content`
(Django REST Framework's limit/offset paging, which `pipeline__name` points to). Errors
use the same envelope with `content: {error_code, details}` (the family in errors.py).

Where we differ from Esper, on purpose: an unknown pipeline or run is 404 and an illegal
transition is the run table's status (Esper documents neither); without `limit` a page
holds DEFAULT_LIMIT runs (the `next` link leads on), at most MAX_LIMIT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from contracts.command_base import Command
from contracts.results import CommandAccepted
from contracts.run_commands import CreateRun, DeleteRun, UpdateRunStatus
from contracts.statuses import RunStatus
from domain import pipeline_errors
from domain.errors import DomainError
from domain.run_status import unknown_run
from projections.rows import Row
from projections.store import ORDERINGS, ReadStore
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import (
    invalid_query_parameter,
    not_published,
    render_esper,
    result_timeout,
)
from services.entrypoints.http.gateway import CommandGateway, GatewayTimeout, GatewayUnavailable
from services.entrypoints.http.pipeline_reads import (
    MIN_VERSION_HEADER,
    MIN_VERSION_WAIT_S,
    parse_min_version,
)
from services.entrypoints.http.pipelines import VERSION_HEADER
from services.entrypoints.http.runs_marquez import read_run

PREFIX: Final = "/pipelines/v0"
LIST_PATHS: Final = ("/v0/runs", f"{PREFIX}/runs")
PIPELINE_RUNS: Final = f"{PREFIX}/pipelines/{{pipeline_id}}/runs"
ONE_RUN: Final = f"{PIPELINE_RUNS}/{{pipeline_run_id}}"
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000

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

StatusParam = Annotated[
    str | None, Query(description="Filter by run status, any case: " + ", ".join(RunStatus))
]
OrderingParam = Annotated[
    str | None, Query(description="±run_number, ±status, ±pipeline__name, ±started_at, ...")
]
LimitParam = Annotated[str | None, Query(description=f"Page size (default {DEFAULT_LIMIT})")]
OffsetParam = Annotated[str | None, Query(description="Runs to skip (default 0)")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="The command id (a retry is the same command)."),
]
MinVersion = Annotated[
    str | None,
    Header(
        alias=MIN_VERSION_HEADER,
        description="Wait (up to 5 s) until the read model has applied this version of the "
        "run (a write's `X-Pipelines-Version`); 503 if it has not.",
    ),
]


# --- parsing -------------------------------------------------------------------------------


def parse_status(name: str, raw: str) -> RunStatus:
    try:
        return RunStatus(raw.strip().lower())
    except ValueError:
        expected = "one of " + ", ".join(RunStatus)
        raise invalid_query_parameter(name, raw, expected) from None


def parse_ordering(raw: str | None, allowed: tuple[str, ...]) -> str | None:
    if raw is None or raw in allowed:
        return raw
    raise invalid_query_parameter("ordering", raw, "one of " + ", ".join(allowed))


def parse_count(name: str, raw: str | None, default: int, low: int, high: int | None) -> int:
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = low - 1
    if value < low:
        bound = f"an integer >= {low}"
        raise invalid_query_parameter(name, raw, bound)
    return value if high is None else min(value, high)


def parse_run_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise DomainError("UnknownRun", f"Run '{raw}' not found.", {"run_id": raw}, 404) from None


def pipeline_run_of(row: Row) -> dict[str, Any]:
    run = {field: row.get(field) for field in RUN_FIELDS}
    run["status_meta"] = {}
    return run


# --- answering -----------------------------------------------------------------------------


def envelope(content: Any, message: str, status: int = 200, **headers: str) -> Response:
    return JSONResponse(
        {"code": status, "message": message, "content": content},
        status_code=status,
        headers=headers,
    )


def _error(error: DomainError) -> Response:
    return render_esper(error.http_status, error.error_code, error.message, error.details)


async def send(
    request: Request, command: Command, idempotency_key: str | None, message: str
) -> Response:
    """Send `command`; the accepted reply (a PipelineRun) in the envelope, or the
    rejection's status in the error envelope; `X-Pipelines-Version` either way."""
    gateway: CommandGateway = request.app.state.gateway
    try:
        result = await gateway.send(command, command_id=idempotency_key or None)
    except GatewayTimeout as error:
        return _error(result_timeout(error))
    except GatewayUnavailable as error:
        return _error(not_published(error))
    headers = {}
    if result.aggregate_version is not None:
        headers[VERSION_HEADER] = str(result.aggregate_version)
    if not isinstance(result, CommandAccepted):
        response = render_esper(
            result.http_status, result.error_code, result.message, result.details
        )
        response.headers.update(headers)
        return response
    return envelope(result.reply, message, result.http_status, **headers)


def page_links(request: Request, count: int, limit: int, offset: int) -> tuple[str | None, ...]:
    """DRF's LimitOffsetPagination links: (previous, next), each the request's URL with
    another offset, or None at either end."""
    url = request.url
    following = (
        str(url.include_query_params(limit=limit, offset=offset + limit))
        if offset + limit < count
        else None
    )
    if offset <= 0:
        return None, following
    if offset - limit <= 0:
        return str(url.include_query_params(limit=limit).remove_query_params("offset")), following
    return str(url.include_query_params(limit=limit, offset=offset - limit)), following


async def resolve_pipeline(store: ReadStore, pipeline_id: str) -> Row:
    """The path's pipeline, by name first, else by id (as CreateRun resolves it)."""
    row = await asyncio.to_thread(store.get_pipeline, pipeline_id)
    if row is None:
        row = await asyncio.to_thread(store.get_pipeline_by_id, pipeline_id)
    if row is None:
        raise pipeline_errors.unknown_pipeline(pipeline_id)
    return row


async def list_runs(
    request: Request,
    *,
    status: str | None,
    ordering: str | None,
    limit: str | None,
    offset: str | None,
    allowed: tuple[str, ...],
    pipeline_name: str | None = None,
    pipeline_id: str | None = None,
) -> Response:
    store: ReadStore = request.app.state.read_store
    try:
        wanted = None if status is None else parse_status("status", status)
        order = parse_ordering(ordering, allowed)
        size = parse_count("limit", limit, DEFAULT_LIMIT, 1, MAX_LIMIT)
        skip = parse_count("offset", offset, 0, 0, None)
        if pipeline_id is not None:
            pipeline_id = str((await resolve_pipeline(store, pipeline_id))["id"])
    except DomainError as error:
        return _error(error)
    count, rows = await asyncio.to_thread(
        lambda: store.list_executions(
            status=None if wanted is None else str(wanted),
            pipeline_name=pipeline_name,
            pipeline_id=pipeline_id,
            owner_kind="pipeline",
            ordering=order,
            limit=size,
            offset=skip,
        )
    )
    previous, following = page_links(request, count, size, skip)
    content = {
        "count": count,
        "previous": previous,
        "next": following,
        "results": [pipeline_run_of(row) for row in rows],
    }
    return envelope(content, "Pipeline runs")


async def pipelines_run(
    request: Request, pipeline_id: str, pipeline_run_id: str, min_version: int | None
) -> Row:
    """The run, if it is the path's pipeline's (else 404, as the handler answers). The
    run's own row names its pipeline, so a pipeline projection lagging the run's does not
    hide it; the pipeline is looked up only to tell an unknown pipeline from a foreign run."""
    store: ReadStore = request.app.state.read_store
    run_id = parse_run_id(pipeline_run_id)
    row = await read_run(store, run_id, min_version, MIN_VERSION_WAIT_S)
    if row is not None and pipeline_id in (row.get("pipeline_id"), row.get("pipeline_name")):
        return row
    await resolve_pipeline(store, pipeline_id)
    raise unknown_run(run_id)


# --- endpoints -----------------------------------------------------------------------------


def _route(
    path: str,
    endpoint: Callable[..., Awaitable[Response]],
    method: str,
    summary: str,
    responses: error_docs.Responses | None = None,
) -> None:
    for variant in (path, f"{path}/"):
        router.add_api_route(
            variant,
            endpoint,
            methods=[method],
            summary=summary,
            responses=responses,
            include_in_schema=not variant.endswith("/"),
        )


async def get_enterprise_runs(
    request: Request,
    status: StatusParam = None,
    pipeline_name: Annotated[str | None, Query(description="Filter by pipeline name")] = None,
    ordering: OrderingParam = None,
    limit: LimitParam = None,
    offset: OffsetParam = None,
) -> Response:
    return await list_runs(
        request,
        status=status,
        ordering=ordering,
        limit=limit,
        offset=offset,
        allowed=ENTERPRISE_ORDERINGS,
        pipeline_name=pipeline_name,
    )


async def get_pipeline_runs(
    request: Request,
    pipeline_id: str,
    status: StatusParam = None,
    ordering: OrderingParam = None,
    limit: LimitParam = None,
    offset: OffsetParam = None,
) -> Response:
    return await list_runs(
        request,
        status=status,
        ordering=ordering,
        limit=limit,
        offset=offset,
        allowed=PIPELINE_ORDERINGS,
        pipeline_id=pipeline_id,
    )


async def post_pipeline_run(
    request: Request,
    pipeline_id: str,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # The seed's PipelineRun_POST is an empty object: its fields, if any, are ignored.
    return await send(
        request, CreateRun(pipeline_id=pipeline_id), idempotency_key, "Pipeline run created"
    )


async def get_pipeline_run(
    request: Request, pipeline_id: str, pipeline_run_id: str, min_version: MinVersion = None
) -> Response:
    try:
        wanted = parse_min_version(min_version)
        row = await pipelines_run(request, pipeline_id, pipeline_run_id, wanted)
    except DomainError as error:
        return _error(error)
    return envelope(pipeline_run_of(row), "Pipeline run")


async def put_pipeline_run(
    request: Request,
    pipeline_id: str,
    pipeline_run_id: str,
    status: Annotated[str, Body(embed=True, description="The new status, any case")],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    try:
        command = UpdateRunStatus(
            run_id=parse_run_id(pipeline_run_id),
            status=parse_status("status", status),
            pipeline_id=pipeline_id,
        )
    except DomainError as error:
        return _error(error)
    return await send(request, command, idempotency_key, "Pipeline run updated")


async def delete_pipeline_run(
    request: Request,
    pipeline_id: str,
    pipeline_run_id: str,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    try:
        command = DeleteRun(run_id=parse_run_id(pipeline_run_id), pipeline_id=pipeline_id)
    except DomainError as error:
        return _error(error)
    return await send(request, command, idempotency_key, "Pipeline run deleted")


for _path in LIST_PATHS:
    _route(
        _path,
        get_enterprise_runs,
        "GET",
        "Get all runs of the enterprise's pipelines",
        error_docs.esper(400),
    )
_route(
    PIPELINE_RUNS,
    get_pipeline_runs,
    "GET",
    "Get all runs of a pipeline",
    error_docs.esper(400, 404),
)
_route(
    PIPELINE_RUNS,
    post_pipeline_run,
    "POST",
    "Create a pipeline run",
    error_docs.esper(400, 404, 503),
)
_route(ONE_RUN, get_pipeline_run, "GET", "Get a pipeline run", error_docs.esper(400, 404, 503))
_route(
    ONE_RUN,
    put_pipeline_run,
    "PUT",
    "Update a pipeline run's status",
    error_docs.esper(400, 404, 409, 503),
)
_route(ONE_RUN, delete_pipeline_run, "DELETE", "Delete a pipeline run", error_docs.esper(404, 503))


__all__ = [
    "DEFAULT_LIMIT",
    "ENTERPRISE_ORDERINGS",
    "LIST_PATHS",
    "MAX_LIMIT",
    "PIPELINE_ORDERINGS",
    "PREFIX",
    "RUN_FIELDS",
    "page_links",
    "pipeline_run_of",
    "router",
]
