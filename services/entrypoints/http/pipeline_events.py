"""Seeds 000/001 watched instead of polled: a pipeline's status changes as server-sent
events, so a client waiting for `Running` after `POST /v0/pipelines/{name}/start` need
not poll `GET /v0/pipelines/{name}`.

- `GET /v0/watch/pipelines/{pipeline_name}`: one pipeline, its stored events first
  (after `Last-Event-ID`), then the live ones, each once and in order.
- `GET /v0/watch/pipelines`: every pipeline, live only: the changes from the moment the
  stream opened (open it, then list `GET /v0/pipelines`, to miss nothing); no resuming.

The paths live under `/v0/watch`, not `/v0/pipelines`, where any word after the prefix is
a pipeline's name (`/v0/pipelines/watch` is the pipeline named `watch`).

Each event is one stored event of a pipeline: `event: status` (`deleted` for its
deletion), `id: <pipeline id>:<version>` (the pipeline's aggregate version, 1 = created;
the id names the pipeline, since a name can pass to a new pipeline after a delete), and
`data:` the pipeline after it as `?selector=status` shows it (name, deployment_status,
deployment_desired_status, deployment_error, version, ...) plus `event_type`. Resuming
one pipeline's stream after `<id>:<N>` sends its versions above N; an id of another
pipeline than the one holding the name now (deleted, the name reused) starts from the
beginning of the one holding it. One pipeline's stream ends with `end` (`{"reason":
"deleted"|"timeout"}`) after its deletion or `timeout` (1-3600 s, default 300).

Errors are Feldera's: an unknown name 404 `UnknownPipelineName`, a `Last-Event-ID` that
is not `<uuid>:<integer>` 400 `InvalidLastEventId`, one past the pipeline's version 400
`LastEventIdAhead`, a bad `timeout` 400.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Security
from fastapi.sse import EventSourceResponse, ServerSentEvent

from contracts.events import event_id
from domain import pipeline_errors
from domain.errors import DomainError
from domain.name_index import name_index_id
from projections import pipelines as pipeline_rows
from services.entrypoints.http import error_docs
from services.entrypoints.http.auth import takes_stream_token
from services.entrypoints.http.event_follow import (
    Follower,
    PipelinesFollower,
    Step,
    StoredEvents,
)
from services.entrypoints.http.pipeline_reads import Selector, select
from services.entrypoints.http.sse import (
    DEFAULT_TIMEOUT_S,
    LAST_EVENT_ID,
    TimeoutParam,
    ended,
    framed,
    resume_header,
    resume_query,
)
from services.entrypoints.http.stream_hub import StopReason, Stream, hub_of
from services.entrypoints.http.stream_tokens import still_allowed, stream_token

PREFIX: Final = "/v0/watch/pipelines"
STATUS: Final = "status"
DELETED: Final = "deleted"

router = APIRouter(prefix=PREFIX, tags=["pipelines"])


def event_of(step: Step) -> ServerSentEvent:
    event = step.event
    data: dict[str, Any] = {**select(step.row, Selector.STATUS), "event_type": event.event_type}
    name = DELETED if event.event_type == "Deleted" else STATUS
    return framed(name, data, event_id(event.aggregate_id, event.version))


def invalid_last_event_id(raw: str) -> DomainError:
    return DomainError(
        "InvalidLastEventId",
        f"Invalid {LAST_EVENT_ID} '{raw}': expected '<pipeline id>:<version>', as the "
        "stream's event ids",
        {"last_event_id": raw},
        400,
    )


def parse_last_event_id(raw: str) -> tuple[UUID, int]:
    the_id, _, version = raw.strip().rpartition(":")
    try:
        parsed = UUID(the_id), int(version)
    except ValueError:
        raise invalid_last_event_id(raw) from None
    if parsed[1] < 0:
        raise invalid_last_event_id(raw)
    return parsed


def last_event_id_ahead(name: str, given: str, version: int) -> DomainError:
    return DomainError(
        "LastEventIdAhead",
        f"{LAST_EVENT_ID} '{given}' is past pipeline '{name}''s latest event (version "
        f"{version}); its stream never sent it",
        {"pipeline_name": name, "last_event_id": given, "version": version},
        400,
    )


async def holder_of(stored: StoredEvents, name: str) -> UUID | None:
    """The pipeline holding `name` now, from its NameIndex's events."""
    claims = await stored.after(str(name_index_id(name)), 0)
    if not claims or claims[-1].event_type == "Released":
        return None
    return UUID(str(claims[-1].data["pipeline_id"]))


@dataclass(frozen=True)
class Feed:
    stream: Stream
    follower: Follower
    unsent: list[Step]


LastEventId = Annotated[str | None, resume_header()]
LastEventIdParam = Annotated[str | None, resume_query(alias="last_event_id")]


async def open_feed(
    request: Request,
    pipeline_name: str,
    timeout_s: TimeoutParam = DEFAULT_TIMEOUT_S,
    last_event_id: LastEventId = None,
    last_event_id_param: LastEventIdParam = None,
) -> AsyncIterator[Feed]:
    raw = last_event_id if last_event_id is not None else last_event_id_param
    resume = None if raw is None else parse_last_event_id(raw)
    stored = StoredEvents(request.app.state.event_history.store)
    pipeline_id = await holder_of(stored, pipeline_name)
    if pipeline_id is None:
        raise pipeline_errors.unknown_pipeline(pipeline_name)
    hub = hub_of(request)
    async with (
        hub.open(timeout_s, still_allowed(request)) as stream,
        Follower(hub, stream, stored, pipeline_id, pipeline_rows.apply) as follower,
    ):
        history = await follower.history()
        if not history:  # the name was claimed in the same transaction as the creation
            raise pipeline_errors.unknown_pipeline(pipeline_name)
        after = 0 if resume is None or resume[0] != pipeline_id else resume[1]
        if after > history[-1].event.version:
            assert raw is not None
            raise last_event_id_ahead(pipeline_name, raw, history[-1].event.version)
        yield Feed(stream, follower, [step for step in history if step.event.version > after])


def _deleted(step: Step) -> bool:
    return step.event.event_type == "Deleted"


@router.get(
    "/{pipeline_name}",
    summary="Watch a pipeline",
    description="One pipeline's status changes as server-sent events (see *Watch all "
    "pipelines* for the events); stored ones after `Last-Event-ID` first, then live.",
    operation_id="watch_pipeline",
    response_class=EventSourceResponse,
    responses=error_docs.feldera(400, 404),
    dependencies=[Security(stream_token)],
)
@takes_stream_token
async def watch_pipeline(
    feed: Annotated[Feed, Depends(open_feed)],
) -> AsyncIterable[ServerSentEvent]:
    for step in feed.unsent:
        yield event_of(step)
        if _deleted(step):
            yield ended(DELETED)
            return
    async for step in feed.follower.live():
        yield event_of(step)
        if _deleted(step):
            yield ended(DELETED)
            return
    if feed.stream.reason is StopReason.TIMEOUT:
        yield ended("timeout")


@dataclass(frozen=True)
class AllFeed:
    stream: Stream
    follower: PipelinesFollower


async def open_all_feed(
    request: Request, timeout_s: TimeoutParam = DEFAULT_TIMEOUT_S
) -> AsyncIterator[AllFeed]:
    hub = hub_of(request)
    stored = StoredEvents(request.app.state.event_history.store)
    async with (
        hub.open(timeout_s, still_allowed(request)) as stream,
        PipelinesFollower(hub, stream, stored, pipeline_rows.apply) as follower,
    ):
        await follower.start()
        yield AllFeed(stream, follower)


@router.get(
    "",
    summary="Watch all pipelines",
    description=__doc__,
    operation_id="watch_pipelines",
    response_class=EventSourceResponse,
    responses=error_docs.feldera(400),
    dependencies=[Security(stream_token)],
)
@takes_stream_token
async def watch_pipelines(
    feed: Annotated[AllFeed, Depends(open_all_feed)],
) -> AsyncIterable[ServerSentEvent]:
    async for step in feed.follower.live():
        yield event_of(step)
    if feed.stream.reason is StopReason.TIMEOUT:
        yield ended("timeout")


__all__ = ["PREFIX", "event_of", "holder_of", "parse_last_event_id", "router"]
