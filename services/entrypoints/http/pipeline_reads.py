"""Seeds 000/001 (Feldera's pipeline endpoints), the reads: `GET /v0/pipelines` and
`GET /v0/pipelines/{name}` answered from the pipelines read model (reference §4).

`selector` is read as text and checked here, so an unknown value is Feldera's 400, never
FastAPI's 422. Every answer carries `Cache-Control: no-cache`: clients poll these.

Read-your-writes: a write answers with the pipeline aggregate's version in
`X-Pipelines-Version`; a `GET /v0/pipelines/{name}` sent with `X-Min-Version: N` waits
(up to `MIN_VERSION_WAIT_S`) until the projection of that pipeline has applied version
N, else answers 503 (with `Retry-After`). The version names one aggregate, so the list
endpoint has no such header.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from domain import pipeline_errors
from domain.errors import DomainError
from projections.rows import Row
from projections.store import ReadStore
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import domain_error_response, invalid_query_parameter

MIN_VERSION_HEADER = "X-Min-Version"
MIN_VERSION_WAIT_S: Final = 5.0
NO_CACHE: Final = {"Cache-Control": "no-cache"}
_POLL_S: Final = 0.02

router = APIRouter(prefix="/v0/pipelines", tags=["pipelines"])


class Selector(StrEnum):
    ALL = "all"
    STATUS = "status"


# What `selector=status` keeps: Feldera's `new_status` fields that the read model has
# (§4). Only the program reference (`config_id`, Feldera's program code) is left out.
STATUS_FIELDS: Final = (
    "id",
    "name",
    "description",
    "created_at",
    "version",
    "refresh_version",
    "program_status",
    "program_status_since",
    "deployment_error",
    "deployment_id",
    "deployment_initial",
    "deployment_status",
    "deployment_status_since",
    "deployment_desired_status",
    "deployment_desired_status_since",
    "deployment_resources_status",
    "deployment_resources_status_since",
    "deployment_resources_desired_status",
    "deployment_resources_desired_status_since",
    "deployment_runtime_status",
    "deployment_runtime_status_details",
    "deployment_runtime_status_since",
    "deployment_runtime_desired_status",
    "deployment_runtime_desired_status_since",
    "storage_status",
    "storage_status_since",
    "checkpoint_sequence_number",
    "bootstrap_policy",
)

SelectorParam = Annotated[
    str | None,
    Query(description="`all` (the default) or `status` (the fields a poller needs)"),
]
MinVersion = Annotated[
    str | None,
    Header(
        alias=MIN_VERSION_HEADER,
        description="Wait (up to 5 s) until the read model has applied this version of the "
        "pipeline (a write's `X-Pipelines-Version`); 503 if it has not.",
    ),
]


# --- parsing -------------------------------------------------------------------------------


def parse_selector(raw: str | None) -> Selector:
    if raw is None:
        return Selector.ALL
    try:
        return Selector(raw)
    except ValueError:
        expected = "one of " + ", ".join(s.value for s in Selector)
        raise invalid_query_parameter("selector", raw, expected) from None


def parse_min_version(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        version = int(raw.strip())
    except ValueError:
        version = -1
    if version < 0:
        raise DomainError(
            "InvalidHeader",
            f"Invalid value '{raw}' for header '{MIN_VERSION_HEADER}': expected an integer >= 0",
            {"header": MIN_VERSION_HEADER, "value": raw},
            400,
        )
    return version


def select(row: Row, selector: Selector) -> Row:
    if selector is Selector.ALL:
        return row
    return {field: row.get(field) for field in STATUS_FIELDS}


def projection_behind(name: str, version: int, timeout_s: float) -> DomainError:
    return DomainError(
        "ReadModelBehind",
        f"The read model has not reached version {version} of pipeline '{name}' within "
        f"{timeout_s:g} s; retry later.",
        {"pipeline_name": name, "min_version": version, "timeout_s": timeout_s},
        503,
    )


# --- reading -------------------------------------------------------------------------------


def read_store_of(request: Request) -> ReadStore:
    store: ReadStore = request.app.state.read_store
    return store


def _fresh_enough(store: ReadStore, name: str, version: int) -> tuple[bool, Row | None]:
    """(reached, row): the version is checked before the row is read, so a row read
    after the check holds at least that version (versions never move back)."""
    found = store.get_pipeline(name)
    if found is None:
        # Not created yet as far as the projection knows (or deleted): keep waiting.
        return False, None
    if store.applied_version(found["id"]) < version:
        return False, None
    return True, store.get_pipeline_by_id(found["id"])


async def read_pipeline(
    store: ReadStore, name: str, min_version: int | None, timeout_s: float
) -> Row | None:
    """The pipeline's row; with `min_version`, once that version is applied (raises the
    503 DomainError after `timeout_s`)."""
    if not min_version:
        return await asyncio.to_thread(store.get_pipeline, name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        reached, row = await asyncio.to_thread(_fresh_enough, store, name, min_version)
        if reached:
            return row
        if loop.time() >= deadline:
            raise projection_behind(name, min_version, timeout_s)
        await asyncio.sleep(_POLL_S)


def _json(content: Any) -> Response:
    return JSONResponse(content, headers=dict(NO_CACHE))


def _error(error: DomainError) -> Response:
    response = domain_error_response(error)
    response.headers.update(NO_CACHE)
    return response


# --- endpoints -----------------------------------------------------------------------------


@router.get("", summary="List pipelines", responses=error_docs.feldera(400))
async def get_pipelines(request: Request, selector: SelectorParam = None) -> Response:
    try:
        chosen = parse_selector(selector)
    except DomainError as error:
        return _error(error)
    rows = await asyncio.to_thread(read_store_of(request).list_pipelines)
    return _json([select(row, chosen) for row in rows])


@router.get(
    "/{pipeline_name}", summary="Get a pipeline", responses=error_docs.feldera(400, 404, 503)
)
async def get_pipeline(
    request: Request,
    pipeline_name: str,
    selector: SelectorParam = None,
    min_version: MinVersion = None,
) -> Response:
    try:
        chosen = parse_selector(selector)
        wanted = parse_min_version(min_version)
        row = await read_pipeline(read_store_of(request), pipeline_name, wanted, MIN_VERSION_WAIT_S)
    except DomainError as error:
        return _error(error)
    if row is None:
        return _error(pipeline_errors.unknown_pipeline(pipeline_name))
    return _json(select(row, chosen))


__all__ = [
    "MIN_VERSION_HEADER",
    "MIN_VERSION_WAIT_S",
    "STATUS_FIELDS",
    "Selector",
    "parse_min_version",
    "parse_selector",
    "read_pipeline",
    "router",
    "select",
]
