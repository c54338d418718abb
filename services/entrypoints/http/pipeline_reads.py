"""Seeds 000/001 (Feldera's pipeline endpoints), the reads: `GET /v0/pipelines` and
`GET /v0/pipelines/{name}` answered from the pipelines read model
(docs/pipeline-lifecycle.md §4).

`selector` is read as text and checked here, so an unknown value is Feldera's 400, never
FastAPI's 422. Every answer carries `Cache-Control: no-cache`: clients poll these.

Read-your-writes (read_your_writes.py): a `GET /v0/pipelines/{name}` sent with
`X-Min-Version: N` (a write's `X-Pipelines-Version`) waits until the projection of that
pipeline has applied version N, else answers 503 (with `Retry-After`); a name no
pipeline ever held is 404 at once. The version names one aggregate, so the list endpoint
has no such header.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from importlib.metadata import version
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from domain import pipeline_errors
from domain.errors import DomainError
from projections.pipelines import with_feldera_fields
from projections.rows import Row
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import parse_choice, render_error
from services.entrypoints.http.pipeline_writes_seen import settled_row
from services.entrypoints.http.read_your_writes import (
    Awaited,
    PipelineMinVersion,
    parse_min_version,
    read_after,
    read_store_of,
)

NO_CACHE: Final = {"Cache-Control": "no-cache"}
PLATFORM_VERSION: Final = version("pipeline-service")

router = APIRouter(prefix="/v0/pipelines", tags=["pipelines"])


class Selector(StrEnum):
    ALL = "all"
    STATUS = "status"


# What `selector=status` keeps: Feldera's `new_status` fields that the read model has
# (§4). The program itself (`config_id`, `program_code` and its companions, the
# runtime config) is left out, as Feldera leaves it out.
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
    "program_version",
    "program_config",
    "tags",
    "platform_version",
    "deployment_location",
    "deployment_resources_status_details",
    "storage_status_details",
)

# Fields of Feldera's pipeline that have no counterpart here, answered with what Feldera
# answers when it has nothing to say, so its clients find every field they read
# (`platform_version` is filled in per app: the service's version).
FELDERA_CONSTANTS: Final[Row] = {
    "program_info": None,
    "deployment_config": None,
    "deployment_location": None,
    "deployment_resources_status_details": None,
    "storage_status_details": None,
}

SelectorParam = Annotated[
    str | None,
    Query(
        description="`all` (the default) or `status` (the fields a poller needs)",
        json_schema_extra={"enum": list(Selector)},
    ),
]


def parse_selector(raw: str | None) -> Selector:
    return parse_choice("selector", raw, Selector, Selector.ALL)


def select(row: Row, selector: Selector) -> Row:
    row = {**with_feldera_fields(row), **FELDERA_CONSTANTS, "platform_version": PLATFORM_VERSION}
    if selector is Selector.ALL:
        return row
    return {field: row.get(field) for field in STATUS_FIELDS}


def no_cache(request: Request, answer: Any) -> Response:
    if isinstance(answer, DomainError):
        response = render_error(request.url.path, answer)
    else:
        response = JSONResponse(answer)
    response.headers.update(NO_CACHE)
    return response


# --- endpoints -----------------------------------------------------------------------------


@router.get("", summary="List pipelines", responses=error_docs.feldera(400))
async def get_pipelines(request: Request, selector: SelectorParam = None) -> Response:
    try:
        chosen = parse_selector(selector)
    except DomainError as error:
        return no_cache(request, error)
    rows = await asyncio.to_thread(read_store_of(request).list_pipelines)
    return no_cache(request, [select(row, chosen) for row in rows])


@router.get(
    "/{pipeline_name}", summary="Get a pipeline", responses=error_docs.feldera(400, 404, 503)
)
async def get_pipeline(
    request: Request,
    pipeline_name: str,
    selector: SelectorParam = None,
    min_version: PipelineMinVersion = None,
) -> Response:
    try:
        chosen = parse_selector(selector)
        wanted = parse_min_version(min_version)
        if wanted is None:
            row = await settled_row(request, pipeline_name)
        else:
            row = await read_after(request, Awaited.pipeline(pipeline_name), wanted)
        if row is None:
            raise pipeline_errors.unknown_pipeline(pipeline_name)
    except DomainError as error:
        return no_cache(request, error)
    return no_cache(request, select(row, chosen))


__all__ = [
    "FELDERA_CONSTANTS",
    "NO_CACHE",
    "PLATFORM_VERSION",
    "STATUS_FIELDS",
    "Selector",
    "no_cache",
    "parse_selector",
    "router",
    "select",
]
