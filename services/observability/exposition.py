"""Serving the process's metrics: the metrics port (`PIPELINES_METRICS_PORT`, any role) and
the text the API's `GET /metrics` answers (services.entrypoints.http.observed).

The port is prometheus_client's own HTTP server, in a thread of its own: a scrape never
waits for the event loop, and a busy loop never delays a scrape. Every path it serves
answers the metrics (`/metrics` is what Prometheus asks by default).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server

from services.observability import collectors  # noqa: F401  (registers the scrape-time metrics)
from services.observability.metrics import REGISTRY
from services.settings import Settings

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def render() -> bytes:
    """The registry in Prometheus' text format (runs the scrape-time queries: call it off
    the event loop)."""
    return generate_latest(REGISTRY)


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[int | None]:
    """The metrics port while the block runs; yields the bound port (None: no port set).
    Port 0 binds a free one."""
    if settings.metrics_port is None:
        yield None
        return
    server, thread = start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=REGISTRY
    )
    port = int(server.server_port)
    log.info("Metrics on http://%s:%d/metrics", settings.metrics_host, port)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


__all__ = ["CONTENT_TYPE", "render", "serving"]
