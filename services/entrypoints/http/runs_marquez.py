"""Seed 002 (Marquez's deprecated run API): `POST /api/v1/jobs/runs/{id}/start|complete|
fail|abort?at=` and `GET /api/v1/jobs/runs/{id}`, in Marquez's shapes.

The verbs become StartRun/CompleteRun/FailRun/AbortRun and answer 200 with the run the
command's reply holds; the read comes from the executions read model. Errors use
Marquez's `{"code", "message"}` (the `/api/v1/jobs` family in errors.py).

Where we differ from Marquez, on purpose: a bad `at` is our 400, not Marquez's unhandled
500; and transitions are checked by the run's table, so a change to a finished run is the
result's 409 (Marquez accepts every move). A non-UUID id is 404, as Marquez's path
conversion answers (runs.py). `at` must be an instant (with `Z` or an offset), as Marquez's
`ISO_INSTANT` parser requires: a time without one names no moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from contracts.run_commands import AbortRun, CompleteRun, FailRun, RunTransition, StartRun
from domain.errors import DomainError
from domain.run_status import unknown_run
from projections.rows import Row
from services.entrypoints.http import error_docs
from services.entrypoints.http.read_your_writes import RunMinVersion, parse_min_version
from services.entrypoints.http.runs import parse_run_id, read_run
from services.entrypoints.http.submit import SUBMIT_ERRORS, IdempotencyKey, submit

PREFIX: Final = "/api/v1/jobs"

router = APIRouter(prefix=f"{PREFIX}/runs", tags=["runs (Marquez)"])

# path verb -> the command it sends (Marquez's markRunAs RUNNING/COMPLETED/FAILED/ABORTED)
VERBS: Final[dict[str, type[RunTransition]]] = {
    "start": StartRun,
    "complete": CompleteRun,
    "fail": FailRun,
    "abort": AbortRun,
}

# Marquez's Run, in its field order; the read model's column for each.
RUN_FIELDS: Final[dict[str, str]] = {
    "id": "id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "nominalStartTime": "nominal_start_time",
    "nominalEndTime": "nominal_end_time",
    "state": "marquez_state",
    "startedAt": "started_at",
    "endedAt": "ended_at",
    "durationMs": "duration_ms",
    "args": "args",
    "facets": "facets",
}

AtParam = Annotated[
    str | None,
    Query(
        description="An ISO-8601 timestamp with `Z` or an offset: when the run "
        "transitioned (default: when the command is handled).",
        json_schema_extra={"format": "date-time"},
    ),
]


# --- parsing -------------------------------------------------------------------------------


def parse_at(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise DomainError(
            "InvalidQueryParameter",
            f"Invalid value '{raw}' for query parameter 'at': expected an ISO-8601 "
            "timestamp with 'Z' or an offset, e.g. 2019-05-09T19:49:24.201361Z",
            {"parameter": "at", "value": raw},
            400,
        )
    return moment


def marquez_run_of(row: Row) -> dict[str, Any]:
    return {field: row.get(column) for field, column in RUN_FIELDS.items()}


# --- endpoints -----------------------------------------------------------------------------


def _verb(verb: str, model: type[RunTransition]) -> None:
    async def endpoint(
        request: Request, run_id: str, at: AtParam = None, idempotency_key: IdempotencyKey = None
    ) -> Response:
        command = model(run_id=parse_run_id(run_id), at=parse_at(at))
        return await submit(request, command, idempotency_key)

    endpoint.__name__ = f"post_run_{verb}"
    router.add_api_route(
        f"/{{run_id}}/{verb}",
        endpoint,
        methods=["POST"],
        summary=f"{verb.capitalize()} a run (Marquez markRunAs)",
        responses=error_docs.marquez(404, *SUBMIT_ERRORS),
    )


for _verb_name, _model in VERBS.items():
    _verb(_verb_name, _model)


@router.get(
    "/{run_id}", summary="Get a run (Marquez Run)", responses=error_docs.marquez(400, 404, 503)
)
async def get_run(request: Request, run_id: str, min_version: RunMinVersion = None) -> Response:
    parsed = parse_run_id(run_id)
    row = await read_run(request, parsed, parse_min_version(min_version))
    if row is None:
        raise unknown_run(parsed)
    return JSONResponse(marquez_run_of(row))


__all__ = [
    "PREFIX",
    "RUN_FIELDS",
    "VERBS",
    "marquez_run_of",
    "parse_at",
    "router",
]
