"""What the API shows of itself: `GET /metrics` (the process's metrics, open to all like
`/health`: see docs/operations.md; `PIPELINES_API_METRICS=false` leaves it out), and every
request counted, timed and — while tracing is on — traced.

`ObservedRequests` is plain ASGI middleware (services.entrypoints.http.asgi): it counts
a request by its route template, never by its path (`/v0/pipelines/{pipeline_name}`,
not one series per pipeline), and makes the request's span current, so a command the
request submits carries it as its parent (services.adapters.kafka.command_bus puts its
`traceparent` on the command).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from services.entrypoints.http.asgi import HttpMiddleware, on_start
from services.observability import exposition, tracing
from services.observability.metrics import HTTP_REQUESTS, HTTP_SECONDS
from services.observability.tracing import TRACEPARENT

UNMATCHED = "unmatched"  # no route: one series for every unknown path
_TRACEPARENT = TRACEPARENT.encode()  # ASGI header names are lower-case bytes


async def metrics(_: Request) -> Response:
    """The process's metrics in Prometheus' text format."""
    body = await asyncio.to_thread(exposition.render)  # runs scrape-time queries
    return Response(body, headers={"Content-Type": exposition.CONTENT_TYPE})


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # A plain route (`/health`, `/metrics`, the documentation) is matched without a route
    # object in the scope, only its endpoint; their paths have no parameters.
    return str(scope.get("path", UNMATCHED)) if "endpoint" in scope else UNMATCHED


class ObservedRequests(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # unless an answer starts: what the server answers an exception with
        method = str(scope.get("method", "GET"))

        def seen(start: Message) -> None:
            nonlocal status
            status = int(start["status"])

        observed_send = on_start(send, seen)
        span = _server_span(scope, method) if tracing.enabled() else None
        try:
            if span is None:
                await self.app(scope, receive, observed_send)
            else:
                with trace.use_span(span, end_on_exit=False):
                    await self.app(scope, receive, observed_send)
        finally:
            route = _route(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            if span is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                span.end()


def _server_span(scope: Scope, method: str) -> Any:
    traceparent = None
    for name, value in scope.get("headers") or ():
        if name == _TRACEPARENT:
            traceparent = value.decode("latin-1")
    return tracing.tracer().start_span(
        method,
        context=tracing.parent_of(traceparent),  # a client's own trace, if it sent one
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": str(scope.get("path", ""))},
    )


__all__ = ["ObservedRequests", "metrics"]
