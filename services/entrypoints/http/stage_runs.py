"""Stage runs over HTTP: each route's progress in one run, for seed 003 and seed 004 readers.

A stage run is one route of one run (a config execution, or a pipeline run whose pipeline
has a config), as the executions read model keeps it (`ReadStore.get_stage_runs`, filled
by the orchestrator's `ReportStageProgress`): its status (the canonical vocabulary, seed
003's words: pending, running, success, failure, cancelled) and messages in, out and
failed, counted in our own ledger.

- Esper (seed 003, reference §B): `GET /pipelines/v0/runs/{run_id}/stageruns` (filter
  `status` in any case; paged by `limit`/`offset` as the run lists are) and
  `GET /pipelines/v0/runs/{run_id}/stageruns/{stage_run_id}`, trailing slash both ways,
  in Esper's envelope; an unknown run or stage run is 404 in Esper's error envelope.
- FactFlow (seed 004): `GET /api/v1/executions/{execution_id}/stages`, the execution's
  stage runs as a JSON array; an unknown execution (or a pipeline run's id) is 404
  ErrorResponse, a non-UUID id FastAPI's 422.

A stage run's `id` is a UUIDv5 derived from the run id (as the namespace) and the route
id, so it is the same on every read and every replica and never clashes between runs;
`stage_run_id` in the path may also be the route id itself (`.../stageruns/enrich/`).
Stage runs are listed in the config's route order. Every path takes `X-Min-Version` as
the run reads do: the answer waits (up to 5 s) until the read model has that version of
the run (a write's `X-Pipelines-Version`), else 503; a header that does not parse is
Esper's 400 / FastAPI's 422.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final
from uuid import UUID, uuid5

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from contracts.statuses import RunStatus
from domain.errors import DomainError
from domain.run_status import unknown_run
from projections.rows import Row
from projections.store import ReadStore
from services.entrypoints.http import error_docs, factflow
from services.entrypoints.http.errors import render_esper
from services.entrypoints.http.executions import PREFIX as EXECUTIONS
from services.entrypoints.http.executions import is_execution
from services.entrypoints.http.factflow import MinVersion, error_response
from services.entrypoints.http.pipeline_reads import MIN_VERSION_WAIT_S, parse_min_version
from services.entrypoints.http.runs_esper import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PREFIX,
    envelope,
    page_links,
    parse_count,
    parse_run_id,
    parse_status,
)
from services.entrypoints.http.runs_esper import MinVersion as EsperMinVersion
from services.entrypoints.http.runs_marquez import read_run
from services.service_layer.handlers.runs import unknown_execution

STAGE_RUNS: Final = f"{PREFIX}/runs/{{run_id}}/stageruns"
ONE_STAGE_RUN: Final = f"{STAGE_RUNS}/{{stage_run_id}}"


class StageRunResponse(BaseModel):
    """One route's progress in one run."""

    id: UUID = Field(description="The stage run's id: UUIDv5 of the run id and the route id")
    pipeline_run_id: UUID = Field(description="The run (execution) it belongs to")
    stage: str = Field(description="The route id")
    status: RunStatus = Field(description="pending, running, success, failure or cancelled")
    messages_in: int = Field(description="Messages the route consumed or dead-lettered")
    messages_out: int = Field(description="Messages the route published")
    messages_failed: int = Field(description="Messages the route dead-lettered")
    started_at: str | None = Field(description="When the route first reported progress")
    ended_at: str | None = Field(description="When the route's stage run finished")


# The read model's stage fields shown as they are (after id, pipeline_run_id and stage).
STAGE_FIELDS: Final[tuple[str, ...]] = (
    "status",
    "messages_in",
    "messages_out",
    "messages_failed",
    "started_at",
    "ended_at",
)
assert ("id", "pipeline_run_id", "stage", *STAGE_FIELDS) == tuple(StageRunResponse.model_fields)


def derive_stage_run_id(run_id: UUID, route: str) -> UUID:
    """The stage run's id: stable for (run, route), distinct across runs."""
    return uuid5(run_id, route)


def stage_run_of(run_id: UUID, stage: Row) -> dict[str, Any]:
    route = str(stage["route"])
    return {
        "id": str(derive_stage_run_id(run_id, route)),
        "pipeline_run_id": str(run_id),
        "stage": route,
        **{field: stage[field] for field in STAGE_FIELDS},
    }


def unknown_stage_run(run_id: UUID, raw: str) -> DomainError:
    return DomainError(
        "UnknownStageRun",
        f"Stage run '{raw}' of run '{run_id}' not found.",
        {"run_id": str(run_id), "stage_run_id": raw},
        404,
    )


async def _stage_runs(
    store: ReadStore, run_id: UUID, min_version: str | None
) -> list[dict[str, Any]] | None:
    """The run's stage runs, or None if there is no such run (or it was deleted); with
    `X-Min-Version`, once the read model has that version of the run (else the 503)."""
    row = await read_run(store, run_id, parse_min_version(min_version), MIN_VERSION_WAIT_S)
    if row is None:
        return None
    return [stage_run_of(run_id, stage) for stage in row["stages"]]


def _find(stage_runs: list[dict[str, Any]], raw: str) -> dict[str, Any] | None:
    """The stage run named by its id (any UUID spelling) or by its route id."""
    try:
        as_id = str(UUID(raw))
    except ValueError:
        as_id = None
    return next((s for s in stage_runs if as_id == s["id"] or raw == s["stage"]), None)


# --- seed 003 (Esper) ----------------------------------------------------------------------

esper_router = APIRouter(tags=["pipeline runs (Esper)"])


def _esper_error(error: DomainError) -> Response:
    return render_esper(error.http_status, error.error_code, error.message, error.details)


async def get_stage_runs(
    request: Request,
    run_id: str,
    status: Annotated[
        str | None,
        Query(description="Filter by stage run status, any case: " + ", ".join(RunStatus)),
    ] = None,
    limit: Annotated[str | None, Query(description=f"Page size (default {DEFAULT_LIMIT})")] = None,
    offset: Annotated[str | None, Query(description="Stage runs to skip (default 0)")] = None,
    min_version: EsperMinVersion = None,
) -> Response:
    store: ReadStore = request.app.state.read_store
    try:
        wanted = None if status is None else str(parse_status("status", status))
        size = parse_count("limit", limit, DEFAULT_LIMIT, 1, MAX_LIMIT)
        skip = parse_count("offset", offset, 0, 0, None)
        run = parse_run_id(run_id)
        found = await _stage_runs(store, run, min_version)
        if found is None:
            raise unknown_run(run)
    except DomainError as error:
        return _esper_error(error)
    matching = [s for s in found if wanted is None or s["status"] == wanted]
    previous, following = page_links(request, len(matching), size, skip)
    content = {
        "count": len(matching),
        "previous": previous,
        "next": following,
        "results": matching[skip : skip + size],
    }
    return envelope(content, "Stage runs")


async def get_stage_run(
    request: Request, run_id: str, stage_run_id: str, min_version: EsperMinVersion = None
) -> Response:
    store: ReadStore = request.app.state.read_store
    try:
        run = parse_run_id(run_id)
        found = await _stage_runs(store, run, min_version)
        if found is None:
            raise unknown_run(run)
        stage_run = _find(found, stage_run_id)
        if stage_run is None:
            raise unknown_stage_run(run, stage_run_id)
    except DomainError as error:
        return _esper_error(error)
    return envelope(stage_run, "Stage run")


def _esper_route(
    path: str, endpoint: Callable[..., Awaitable[Response]], summary: str, *statuses: int
) -> None:
    # Both spellings are served (no redirect), as the run paths are; the document lists one.
    for variant in (path, f"{path}/"):
        esper_router.add_api_route(
            variant,
            endpoint,
            methods=["GET"],
            summary=summary,
            responses=error_docs.esper(*statuses),
            include_in_schema=not variant.endswith("/"),
        )


_esper_route(STAGE_RUNS, get_stage_runs, "Get all stage runs of a pipeline run", 400, 404, 503)
_esper_route(ONE_STAGE_RUN, get_stage_run, "Get a stage run", 400, 404, 503)


# --- seed 004 (FactFlow) -------------------------------------------------------------------

factflow_router = APIRouter(prefix=EXECUTIONS, tags=["executions (FactFlow)"])


@factflow_router.get(
    "/{execution_id}/stages",
    summary="Get an execution's stage runs",
    response_model=list[StageRunResponse],
    responses=factflow.errors(404, 503),
)
async def get_execution_stages(
    request: Request, execution_id: UUID, min_version: MinVersion = None
) -> Response:
    store: ReadStore = request.app.state.read_store
    try:
        await factflow.wait_for_version(store, "execution", execution_id, min_version)
        row = await asyncio.to_thread(store.get_execution, str(execution_id))
        if row is None or not is_execution(row):
            raise unknown_execution(execution_id)
    except DomainError as error:
        return error_response(error)
    return JSONResponse([stage_run_of(execution_id, stage) for stage in row["stages"]])


__all__ = [
    "ONE_STAGE_RUN",
    "STAGE_FIELDS",
    "STAGE_RUNS",
    "StageRunResponse",
    "derive_stage_run_id",
    "esper_router",
    "factflow_router",
    "stage_run_of",
    "unknown_stage_run",
]
