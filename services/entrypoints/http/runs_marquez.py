"""Seed 002 (Marquez's deprecated run API): `POST /api/v1/jobs/runs/{id}/start|complete|
fail|abort?at=` and `GET /api/v1/jobs/runs/{id}`, in Marquez's shapes (reference §A).

The verbs become StartRun/CompleteRun/FailRun/AbortRun and answer 200 with the run the
command's reply holds; the read comes from the executions read model. Errors use
Marquez's `{"code", "message"}` (the `/api/v1/jobs` family in errors.py).

Where we differ from Marquez, on purpose: a bad `at` is our 400, not Marquez's unhandled
500; and transitions are checked by the run's table, so a change to a finished run is the
result's 409 (Marquez accepts every move). A non-UUID id is 404, as Marquez's path
conversion answers. `at` must be an instant (with `Z` or an offset), as Marquez's
`ISO_INSTANT` parser requires: a time without one names no moment.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from contracts.results import CommandAccepted
from contracts.run_commands import AbortRun, CompleteRun, FailRun, RunTransition, StartRun
from domain.errors import DomainError
from domain.run_status import unknown_run
from projections.rows import Row
from projections.store import ReadStore
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import not_published, render_marquez, result_timeout
from services.entrypoints.http.gateway import CommandGateway, GatewayTimeout, GatewayUnavailable
from services.entrypoints.http.pipeline_reads import (
    MIN_VERSION_HEADER,
    MIN_VERSION_WAIT_S,
    parse_min_version,
)
from services.entrypoints.http.pipelines import VERSION_HEADER

PREFIX: Final = "/api/v1/jobs"
_POLL_S: Final = 0.02

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
        "transitioned (default: when the command is handled)."
    ),
]
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


def parse_run_id(raw: str) -> UUID:
    """Marquez answers a malformed id like an unknown one: 404."""
    try:
        return UUID(raw)
    except ValueError:
        raise DomainError("UnknownRun", f"Run '{raw}' not found.", {"run_id": raw}, 404) from None


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


# --- answering -----------------------------------------------------------------------------


def _error(error: DomainError) -> Response:
    return render_marquez(error.http_status, error.error_code, error.message, error.details)


async def send_transition(
    request: Request, command: RunTransition, idempotency_key: str | None
) -> Response:
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
        response = render_marquez(
            result.http_status, result.error_code, result.message, result.details
        )
        response.headers.update(headers)
        return response
    return JSONResponse(result.reply, status_code=result.http_status, headers=headers)


def projection_behind(run_id: UUID, version: int, timeout_s: float) -> DomainError:
    return DomainError(
        "ReadModelBehind",
        f"The read model has not reached version {version} of run '{run_id}' within "
        f"{timeout_s:g} s; retry later.",
        {"run_id": str(run_id), "min_version": version, "timeout_s": timeout_s},
        503,
    )


async def read_run(
    store: ReadStore, run_id: UUID, min_version: int | None, timeout_s: float
) -> Row | None:
    """The run's row; with `min_version`, once that version of the execution aggregate is
    applied (raises the 503 DomainError after `timeout_s`). The version is checked before
    the row is read, so the row holds at least that version."""
    if min_version:
        reached = await store.wait_for_version(str(run_id), min_version, timeout_s)
        if not reached:
            raise projection_behind(run_id, min_version, timeout_s)
    return await asyncio.to_thread(store.get_execution, str(run_id))


# --- endpoints -----------------------------------------------------------------------------


def _verb(verb: str, model: type[RunTransition]) -> None:
    async def endpoint(
        request: Request, run_id: str, at: AtParam = None, idempotency_key: IdempotencyKey = None
    ) -> Response:
        try:
            command = model(run_id=parse_run_id(run_id), at=parse_at(at))
        except DomainError as error:
            return _error(error)
        return await send_transition(request, command, idempotency_key)

    endpoint.__name__ = f"post_run_{verb}"
    router.add_api_route(
        f"/{{run_id}}/{verb}",
        endpoint,
        methods=["POST"],
        summary=f"{verb.capitalize()} a run (Marquez markRunAs)",
        responses=error_docs.marquez(400, 404, 409, 503),
    )


for _verb_name, _model in VERBS.items():
    _verb(_verb_name, _model)


@router.get(
    "/{run_id}", summary="Get a run (Marquez Run)", responses=error_docs.marquez(400, 404, 503)
)
async def get_run(request: Request, run_id: str, min_version: MinVersion = None) -> Response:
    store: ReadStore = request.app.state.read_store
    try:
        parsed = parse_run_id(run_id)
        wanted = parse_min_version(min_version)
        row = await read_run(store, parsed, wanted, MIN_VERSION_WAIT_S)
        if row is None:
            raise unknown_run(parsed)
    except DomainError as error:
        return _error(error)
    return JSONResponse(marquez_run_of(row))


__all__ = [
    "PREFIX",
    "RUN_FIELDS",
    "VERBS",
    "marquez_run_of",
    "parse_at",
    "parse_run_id",
    "read_run",
    "router",
]
