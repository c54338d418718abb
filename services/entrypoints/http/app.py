"""The FastAPI application: routers of the seed families, error shapes, and what runs
with the app (its lifespan): the command bus writes go through (submit.py,
`app.state.bus`), the read store (the read models in the event store's database,
`app.state.read_store`) and the event store's history, which tells an id never written
from one the read model has not caught up with (read_your_writes.py,
`app.state.event_history`).

Every route needs an API key (services.entrypoints.http.auth: an app-wide dependency, so a router
added here is covered without asking) except `GET /health`, `GET /metrics` (docs/operations.md)
and the documentation (`/docs`, `/redoc`, `/openapi.json`, `/asyncapi*`), plain routes
outside it, and the web console under `/ui` (services.entrypoints.http.ui: an app mounted
here, with its own login, whose pages call these routes with the user's key)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from projections.store import ReadStore
from services.adapters.api_keys import ApiKeyStore
from services.adapters.eventstore import open_event_store
from services.adapters.kafka.command_bus import CommandBus
from services.entrypoints.http import (
    api_keys,
    config_runs,
    configs,
    execution_events,
    executions,
    feldera_config,
    openlineage,
    pipeline_events,
    pipeline_history,
    pipeline_reads,
    pipeline_stats,
    pipelines,
    replays,
    runs_esper,
    runs_marquez,
    stage_runs,
    stream_tokens,
)
from services.entrypoints.http.auth import KeyVerifier, authenticate, install_auth
from services.entrypoints.http.docs import install_docs
from services.entrypoints.http.errors import install_error_handling
from services.entrypoints.http.observed import ObservedRequests, metrics
from services.entrypoints.http.read_your_writes import EventHistory
from services.entrypoints.http.stream_hub import StreamHub
from services.entrypoints.http.submit import API_SOURCE
from services.entrypoints.http.ui import install_console
from services.settings import Settings


async def health(_: Request) -> Response:
    """Open to all (load balancers, `curl`): the process serves HTTP."""
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings, bus: CommandBus | None = None) -> FastAPI:
    """The API app; `bus` defaults to one built from `settings`. The bus runs while the
    app does (FastAPI lifespan), so serve the app with lifespan on."""
    the_bus = bus or CommandBus(
        settings, source=API_SOURCE, timeout_s=settings.api_result_timeout_s
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            read_store = await asyncio.to_thread(ReadStore, settings.event_store_url)
            stack.push_async_callback(asyncio.to_thread, read_store.close)
            app.state.read_store = read_store
            events = await asyncio.to_thread(open_event_store, settings.event_store_url)
            stack.push_async_callback(asyncio.to_thread, events.close)
            app.state.event_history = EventHistory(events)
            records = await asyncio.to_thread(
                pipeline_stats.DeploymentRecords, settings.event_store_url
            )
            stack.push_async_callback(asyncio.to_thread, records.close)
            app.state.deployment_records = records
            key_store = await asyncio.to_thread(ApiKeyStore, settings.event_store_url)
            stack.push_async_callback(asyncio.to_thread, key_store.close)
            app.state.key_verifier = KeyVerifier(key_store, settings.api_key_cache_ttl_s)
            secret = settings.api_stream_token_secret
            app.state.stream_tokens = stream_tokens.StreamTokens(
                key_store, None if secret is None else secret.get_secret_value().encode()
            )
            app.state.stream_hub = StreamHub(settings)
            stack.push_async_callback(app.state.stream_hub.close)
            await the_bus.start(results=True)
            stack.push_async_callback(the_bus.stop)
            yield

    app = FastAPI(
        title="pipeline-service",
        description="Seed-compatible HTTP API of the pipeline control plane.",
        lifespan=lifespan,
        dependencies=[Depends(authenticate)],
        # Served by install_docs from vendored files: FastAPI's load from CDNs.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.bus = the_bus
    install_error_handling(app)
    install_auth(app)
    app.router.add_route("/health", health, methods=["GET"])
    if settings.api_metrics:
        app.router.add_route("/metrics", metrics, methods=["GET"])  # open, like /health
    app.add_middleware(ObservedRequests)
    app.include_router(api_keys.router)
    app.include_router(feldera_config.router)
    app.include_router(pipelines.router)
    app.include_router(pipeline_reads.router)
    app.include_router(pipeline_stats.router)
    app.include_router(pipeline_history.router)
    app.include_router(runs_marquez.router)
    app.include_router(openlineage.router)
    app.include_router(runs_esper.router)
    app.include_router(stage_runs.esper_router)
    app.include_router(configs.router)
    app.include_router(executions.router)
    app.include_router(stage_runs.factflow_router)
    app.include_router(config_runs.config_router)
    app.include_router(config_runs.execution_router)
    app.include_router(execution_events.router)
    app.include_router(pipeline_events.router)
    app.include_router(stream_tokens.router)
    app.include_router(replays.router)
    install_docs(app)
    install_console(app)
    return app


__all__ = ["create_app"]
