"""Seed 004 watched instead of polled: `GET /api/v1/executions/{execution_id}/events`, an
execution's lifecycle as server-sent events (`text/event-stream`).

Each event is one stored event of the execution: `id:` its version (the execution's
aggregate version, 1 = created), `event:` one of `created`, `status`, `stage_started`,
`stage_progressed`, `stage_finished`, `deleted`, and `data:` JSON with the execution after
it: `execution` (the ExecutionResponse `GET /api/v1/executions/{id}` answers, status in
seed 004's words), `run_status` (the canonical status, e.g. `timeout`), `stages` (every
stage run as `GET .../stages` shows it) and, for a stage event, that `stage`. The stream
sends the stored events first (after `Last-Event-ID: N` or `?last_event_id=N`: only
versions above N), then the live ones, each once and in order, and ends with `end`
(`{"reason": "finished"|"deleted"|"timeout", "status", "version"}`) once the execution
reached a final status, or after `timeout` seconds (1-3600, default 300).

The execution is read from the event store, not the read model, so a stream opened right
after `POST .../run` answered never waits for the projector. An id the store never saw
(or a pipeline run's, or a deleted execution's) is 404 ErrorResponse; a `Last-Event-ID`
that is not an integer >= 0 is FastAPI's 422, one above the execution's version 400
(`LastEventIdAhead`): no stream sent it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Security
from fastapi.sse import EventSourceResponse, ServerSentEvent

from contracts.run_views import TERMINAL
from contracts.statuses import RunStatus
from domain.errors import DomainError
from projections import executions as execution_rows
from projections.rows import Row
from projections.times import iso
from services.entrypoints.http import error_docs
from services.entrypoints.http.auth import takes_stream_token
from services.entrypoints.http.event_follow import Follower, Step, StoredEvents
from services.entrypoints.http.executions import PREFIX, execution_of, is_execution
from services.entrypoints.http.sse import (
    DEFAULT_TIMEOUT_S,
    TimeoutParam,
    ended,
    framed,
    resume_header,
    resume_query,
)
from services.entrypoints.http.stage_runs import stage_run_of, stage_runs_of
from services.entrypoints.http.stream_hub import StopReason, Stream, hub_of
from services.entrypoints.http.stream_tokens import still_allowed, stream_token
from services.service_layer.handlers.runs import unknown_execution

PATH: Final = f"{PREFIX}/{{execution_id}}/events"

EVENT_NAMES: Final[dict[str, str]] = {
    "Created": "created",
    "StatusChanged": "status",
    "StageStarted": "stage_started",
    "StageProgressed": "stage_progressed",
    "StageFinished": "stage_finished",
    "Deleted": "deleted",
}

router = APIRouter(tags=["executions (FactFlow)"])

LastEventId = Annotated[int | None, resume_header(ge=0)]
LastEventIdParam = Annotated[int | None, resume_query(ge=0)]


def last_event_id_ahead(execution_id: UUID, given: int, version: int) -> DomainError:
    return DomainError(
        "LastEventIdAhead",
        f"Last-Event-ID {given} is past execution {execution_id}'s latest event "
        f"(version {version}); its stream never sent it",
        {"execution_id": str(execution_id), "last_event_id": given, "version": version},
        400,
    )


def event_of(step: Step) -> ServerSentEvent:
    event, row = step.event, step.row
    run_id = UUID(row["id"])
    data: dict[str, Any] = {
        "version": event.version,
        "event_type": event.event_type,
        "time": iso(event.time),
        "execution": execution_of(row),
        "run_status": row["status"],
        "stages": stage_runs_of(run_id, row),
    }
    route = event.data.get("route")
    if event.event_type.startswith("Stage") and isinstance(route, str):
        stage = next(s for s in row["stages"] if s["route"] == route)
        data["stage"] = stage_run_of(run_id, stage)
    name = EVENT_NAMES.get(event.event_type, event.event_type)
    return framed(name, data, str(event.version))


def end_of(row: Row) -> str | None:
    """Why a stream of this execution is over (None: it is not)."""
    if row.get("deleted"):
        return "deleted"
    return "finished" if RunStatus(row["status"]) in TERMINAL else None


def closing(reason: str, step: Step) -> ServerSentEvent:
    status = step.row.get("execution_status")
    return ended(reason, status=status, version=step.event.version)


@dataclass(frozen=True)
class Feed:
    """An open stream of one execution: what to send first, then its follower."""

    stream: Stream
    follower: Follower
    unsent: list[Step]  # the stored events after the client's Last-Event-ID
    current: Step  # the newest stored event


async def open_feed(
    request: Request,
    execution_id: UUID,
    timeout_s: TimeoutParam = DEFAULT_TIMEOUT_S,
    last_event_id: LastEventId = None,
    last_event_id_param: Annotated[int | None, resume_query(ge=0, alias="last_event_id")] = None,
) -> AsyncIterator[Feed]:
    """Registered on the shared reader, then the history read (the 404 before the stream
    starts); the watcher is left when the response is done."""
    after = last_event_id if last_event_id is not None else last_event_id_param or 0
    hub = hub_of(request)
    stored = StoredEvents(request.app.state.event_history.store)
    async with (
        hub.open(timeout_s, still_allowed(request)) as stream,
        Follower(hub, stream, stored, execution_id, execution_rows.apply) as follower,
    ):
        history = await follower.history()
        if not history or not is_execution(history[-1].row) or history[-1].row.get("deleted"):
            raise unknown_execution(execution_id)
        current = history[-1]
        if after > current.event.version:
            raise last_event_id_ahead(execution_id, after, current.event.version)
        unsent = [step for step in history if step.event.version > after]
        yield Feed(stream, follower, unsent, current)


@router.get(
    PATH,
    summary="Watch an execution",
    description=__doc__,
    operation_id="watch_execution",
    response_class=EventSourceResponse,
    responses=error_docs.factflow(400, 404),
    dependencies=[Security(stream_token)],
)
@takes_stream_token
async def watch_execution(
    feed: Annotated[Feed, Depends(open_feed)],
) -> AsyncIterable[ServerSentEvent]:
    for step in feed.unsent:
        yield event_of(step)
        if (reason := end_of(step.row)) is not None:
            yield closing(reason, step)
            return
    if (reason := end_of(feed.current.row)) is not None:  # ended before the Last-Event-ID
        yield closing(reason, feed.current)
        return
    last = feed.current
    async for step in feed.follower.live():
        yield event_of(step)
        last = step
        if (reason := end_of(step.row)) is not None:
            yield closing(reason, step)
            return
    if feed.stream.reason is StopReason.TIMEOUT:
        yield closing("timeout", last)


__all__ = ["EVENT_NAMES", "PATH", "event_of", "open_feed", "router"]
