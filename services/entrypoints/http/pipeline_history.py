"""Seeds 000/001: a pipeline's status history, as Feldera's pipeline monitor events.

- `GET /v0/pipelines/{name}/events?selector=status|all`: the newest 720 first.
- `GET /v0/pipelines/{name}/events/{event_id}?selector=`: one of them, or `latest`.

Feldera records a monitor event when it sees a status change (and every so often
without one); here every stored event of the pipeline is one: the statuses after it,
as a read of the pipeline would have shown them then (the read model's pure `apply`
folded over the event store's history, as the watch streams do, pipeline_events.py).
`event_id` is a UUID derived from the event's id (`<pipeline id>:<version>`), which is
given too, as `version`, with the event's type as `event_type`; `recorded_at` is when the
event was stored. `selector=status` (the default) leaves out the error and the details,
as Feldera does. The name is the pipeline holding it now; a deleted pipeline's history
is not served (404, as for any unknown name).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from domain import pipeline_errors
from domain.errors import DomainError
from projections import pipelines as pipeline_rows
from projections.times import iso
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import parse_choice
from services.entrypoints.http.event_follow import Fold, Step, StoredEvents
from services.entrypoints.http.pipeline_events import holder_of
from services.entrypoints.http.pipeline_reads import no_cache

router = APIRouter(prefix="/v0/pipelines", tags=["pipelines"])

RETAINED: Final = 720  # as many as Feldera keeps by default
LATEST: Final = "latest"
_EVENT_IDS: Final = uuid5(NAMESPACE_URL, "urn:pipeline-service:pipeline-monitor-event")


class EventSelector(StrEnum):
    ALL = "all"
    STATUS = "status"


SelectorParam = Annotated[
    str | None,
    Query(
        description="`status` (the default) or `all` (with the error and the details)",
        json_schema_extra={"enum": list(EventSelector)},
    ),
]


def monitor_event_id(step: Step) -> UUID:
    return uuid5(_EVENT_IDS, step.event.event_id)


def monitor_event(step: Step, selector: EventSelector) -> dict[str, Any]:
    """Feldera's PipelineMonitorEventSelectedInfo of one stored event."""
    row = step.row
    event: dict[str, Any] = {
        "event_id": str(monitor_event_id(step)),
        "recorded_at": iso(step.event.time),
        "deployment_resources_status": row["deployment_resources_status"],
        "deployment_resources_desired_status": row["deployment_resources_desired_status"],
        "deployment_runtime_status": row["deployment_runtime_status"],
        "deployment_runtime_desired_status": row["deployment_runtime_desired_status"],
        "deployment_has_error": row["deployment_error"] is not None,
        "program_status": row["program_status"],
        "storage_status": row["storage_status"],
        "version": step.event.version,
        "event_type": step.event.event_type,
    }
    if selector is EventSelector.ALL:
        event.update(
            deployment_error=row["deployment_error"],
            deployment_resources_status_details=None,
            deployment_runtime_status_details=row["deployment_runtime_status_details"],
            storage_status_details=None,
        )
    return event


def unknown_event(event_id: str) -> DomainError:
    return DomainError(
        "UnknownPipelineMonitorEvent",
        f"Pipeline monitor event with identifier '{event_id}' does not exist -- it might "
        "have been deleted as only a limited number of events are retained",
        {"event_id": event_id},
        404,
    )


def invalid_uuid(value: str, error: str) -> DomainError:
    return DomainError(
        "InvalidUuidParam",
        f"Invalid UUID string '{value}': {error}",
        {"value": value, "error": error},
        400,
    )


async def history(request: Request, name: str) -> list[Step]:
    """The pipeline's stored events, oldest first, each with its row after it."""
    stored = StoredEvents(request.app.state.event_history.store)
    pipeline_id = await holder_of(stored, name)
    if pipeline_id is None:
        raise pipeline_errors.unknown_pipeline(name)
    fold = Fold(pipeline_rows.apply)
    steps = [
        step
        for event in await stored.after(str(pipeline_id), 0)
        if (step := fold.take(event)) is not None
    ]
    if not steps:  # the name was claimed in the same transaction as the creation
        raise pipeline_errors.unknown_pipeline(name)
    return steps[-RETAINED:]


@router.get(
    "/{pipeline_name}/events",
    summary="List the pipeline's events",
    description="The pipeline's status after each of its stored events, newest first "
    "(at most 720), as Feldera's pipeline monitor events.",
    responses=error_docs.feldera(400, 404),
)
async def list_events(
    request: Request, pipeline_name: str, selector: SelectorParam = None
) -> Response:
    try:
        chosen = parse_choice("selector", selector, EventSelector, EventSelector.STATUS)
        steps = await history(request, pipeline_name)
    except DomainError as error:
        return no_cache(request, error)
    return no_cache(request, [monitor_event(step, chosen) for step in reversed(steps)])


@router.get(
    "/{pipeline_name}/events/{event_id}",
    summary="Get one of the pipeline's events",
    description="By the `event_id` the list gave, or `latest`.",
    responses=error_docs.feldera(400, 404),
)
async def get_event(
    request: Request, pipeline_name: str, event_id: str, selector: SelectorParam = None
) -> Response:
    try:
        chosen = parse_choice("selector", selector, EventSelector, EventSelector.STATUS)
        wanted = None
        if event_id != LATEST:
            try:
                wanted = UUID(event_id)
            except ValueError as error:
                raise invalid_uuid(event_id, str(error)) from None
        steps = await history(request, pipeline_name)
        found = next(
            (s for s in reversed(steps) if wanted is None or monitor_event_id(s) == wanted),
            None,
        )
        if found is None:
            raise unknown_event(event_id)
    except DomainError as error:
        return no_cache(request, error)
    return no_cache(request, monitor_event(found, chosen))


__all__ = ["RETAINED", "history", "monitor_event", "monitor_event_id", "router"]
