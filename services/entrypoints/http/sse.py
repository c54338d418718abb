"""What every stream endpoint shares: its `timeout` parameter and the events it frames.

FastAPI writes the `text/event-stream` (an endpoint that yields with
`response_class=EventSourceResponse`), with `Cache-Control: no-cache`,
`X-Accel-Buffering: no` and a `: ping` comment after 15 s without an event, so proxies
keep an idle stream open. Data is one line of JSON (orjson).

A stream that ends of itself says why first: an `end` event (no `id`, so a resuming
client keeps its last one) with `{"reason": ...}`: the watched thing reached its end
(`finished`, `deleted`) or the stream its `timeout`. A stream cut without `end` (the
server stopping, its key revoked, the network) is one to reconnect with `Last-Event-ID`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import orjson
from fastapi import Header, Query
from fastapi.sse import ServerSentEvent

DEFAULT_TIMEOUT_S: Final = 300
MAX_TIMEOUT_S: Final = 3600
END: Final = "end"

TimeoutParam = Annotated[
    int,
    Query(
        alias="timeout",
        ge=1,
        le=MAX_TIMEOUT_S,
        description="Seconds after which the stream ends (with an `end` event): 1-3600",
    ),
]

LAST_EVENT_ID: Final = "Last-Event-ID"
RESUME_HEADER: Final = (
    "Resume after the event with this id (what `EventSource` sends when it reconnects)"
)
RESUME_QUERY: Final = (
    "As `Last-Event-ID`, for a client opening a new stream (a new `EventSource` sends no "
    "header); the header wins when both are given"
)


def resume_header(**constraints: Any) -> Any:
    return Header(alias=LAST_EVENT_ID, description=RESUME_HEADER, **constraints)


def resume_query(**constraints: Any) -> Any:
    return Query(description=RESUME_QUERY, **constraints)


def framed(name: str, data: dict[str, Any], event_id: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(event=name, id=event_id, raw_data=orjson.dumps(data).decode())


def ended(reason: str, **data: Any) -> ServerSentEvent:
    return framed(END, {"reason": reason, **data})


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "END",
    "LAST_EVENT_ID",
    "MAX_TIMEOUT_S",
    "TimeoutParam",
    "ended",
    "framed",
    "resume_header",
    "resume_query",
]
