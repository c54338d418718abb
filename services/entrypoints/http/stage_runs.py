"""Stage runs over HTTP: each route's progress in one run, for seed 003 and seed 004 readers.

A stage run is one route of one run (a config execution, or a pipeline run whose pipeline
has a config), as the executions read model keeps it (`ReadStore.get_stage_runs`, filled
by the orchestrator's `ReportStageProgress`): its status (the canonical vocabulary, seed
003's words: pending, running, success, failure, cancelled) and messages in, out and
failed, counted in our own ledger.

- Esper (seed 003, Esper's Pipelines v0 run API):
  `GET /pipelines/v0/runs/{run_id}/stageruns` (filter `status` in any case; paged by
  `limit`/`offset` as the run lists are) and
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

from typing import Annotated, Any, Final
from uuid import UUID, uuid5

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from contracts.statuses import RunStatus
from domain.errors import DomainError
from domain.run_status import unknown_run
from projections.rows import Row
from services.entrypoints.http import error_docs
from services.entrypoints.http.esper import PREFIX, ListQuery, add_route, envelope, page
from services.entrypoints.http.executions import PREFIX as EXECUTIONS
from services.entrypoints.http.executions import read_execution
from services.entrypoints.http.read_your_writes import (
    MinVersion,
    RunMinVersion,
    parse_min_version,
)
from services.entrypoints.http.runs import parse_run_id, read_run

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


def stage_runs_of(run_id: UUID, run: Row) -> list[dict[str, Any]]:
    return [stage_run_of(run_id, stage) for stage in run["stages"]]


def unknown_stage_run(run_id: UUID, raw: str) -> DomainError:
    return DomainError(
        "UnknownStageRun",
        f"Stage run '{raw}' of run '{run_id}' not found.",
        {"run_id": str(run_id), "stage_run_id": raw},
        404,
    )


def _find(stage_runs: list[dict[str, Any]], raw: str) -> dict[str, Any] | None:
    """The stage run named by its id (any UUID spelling) or by its route id."""
    try:
        as_id = str(UUID(raw))
    except ValueError:
        as_id = None
    return next((s for s in stage_runs if as_id == s["id"] or raw == s["stage"]), None)


# --- seed 003 (Esper) ----------------------------------------------------------------------

esper_router = APIRouter(tags=["pipeline runs (Esper)"])


async def _run_stages(
    request: Request, raw_run_id: str, min_version: str | None
) -> tuple[UUID, list[dict[str, Any]]]:
    """(run id, its stage runs); raises the 404 if there is no such run (or it was
    deleted); with `X-Min-Version`, once the read model has that version of the run."""
    run_id = parse_run_id(raw_run_id)
    row = await read_run(request, run_id, parse_min_version(min_version))
    if row is None:
        raise unknown_run(run_id)
    return run_id, stage_runs_of(run_id, row)


async def get_stage_runs(
    request: Request,
    run_id: str,
    query: Annotated[ListQuery, Depends()],
    min_version: RunMinVersion = None,
) -> Response:
    window = query.parsed()
    _, found = await _run_stages(request, run_id, min_version)
    wanted = None if window.status is None else str(window.status)
    matching = [s for s in found if wanted is None or s["status"] == wanted]
    shown = matching[window.offset : window.offset + window.limit]
    return page(request, window, len(matching), shown, "Stage runs")


async def get_stage_run(
    request: Request, run_id: str, stage_run_id: str, min_version: RunMinVersion = None
) -> Response:
    run, found = await _run_stages(request, run_id, min_version)
    stage_run = _find(found, stage_run_id)
    if stage_run is None:
        raise unknown_stage_run(run, stage_run_id)
    return envelope(stage_run, "Stage run")


add_route(
    esper_router,
    STAGE_RUNS,
    get_stage_runs,
    "GET",
    "Get all stage runs of a pipeline run",
    400,
    404,
    503,
)
add_route(esper_router, ONE_STAGE_RUN, get_stage_run, "GET", "Get a stage run", 400, 404, 503)


# --- seed 004 (FactFlow) -------------------------------------------------------------------

factflow_router = APIRouter(prefix=EXECUTIONS, tags=["executions (FactFlow)"])


@factflow_router.get(
    "/{execution_id}/stages",
    summary="Get an execution's stage runs",
    response_model=list[StageRunResponse],
    responses=error_docs.factflow(404, 503),
)
async def get_execution_stages(
    request: Request, execution_id: UUID, min_version: MinVersion = None
) -> Response:
    row = await read_execution(request, execution_id, min_version)
    return JSONResponse(stage_runs_of(execution_id, row))


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
