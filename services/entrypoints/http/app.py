"""The FastAPI application: routers of the seed families, error shapes, and what runs
with the app (its lifespan): the command gateway and the read store (the read models in
the event store's database, kept on `app.state.read_store`).

Every route needs an API key (services.entrypoints.http.auth: an app-wide dependency, so a router
added here is covered without asking) except `GET /health` and the documentation
(`/docs`, `/redoc`, `/openapi.json`, `/asyncapi*`), plain routes outside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from projections.store import ReadStore
from services.adapters.api_keys import ApiKeyStore
from services.entrypoints.http import (
    api_keys,
    config_runs,
    configs,
    executions,
    pipeline_reads,
    pipelines,
    runs_esper,
    runs_marquez,
    stage_runs,
)
from services.entrypoints.http.auth import KeyVerifier, authenticate, install_auth
from services.entrypoints.http.docs import install_docs
from services.entrypoints.http.errors import install_error_handling
from services.entrypoints.http.gateway import CommandGateway
from services.settings import Settings


async def health(_: Request) -> Response:
    """Open to all (load balancers, `curl`): the process serves HTTP."""
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings, gateway: CommandGateway | None = None) -> FastAPI:
    """The API app; `gateway` defaults to one built from `settings`. The gateway runs
    while the app does (FastAPI lifespan), so serve the app with lifespan on."""
    the_gateway = gateway if gateway is not None else CommandGateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.read_store = await asyncio.to_thread(ReadStore, settings.event_store_url)
        try:
            key_store = await asyncio.to_thread(ApiKeyStore, settings.event_store_url)
            app.state.key_verifier = KeyVerifier(key_store, settings.api_key_cache_ttl_s)
            try:
                await the_gateway.start()
                try:
                    yield
                finally:
                    await the_gateway.stop()
            finally:
                await asyncio.to_thread(key_store.close)
        finally:
            await asyncio.to_thread(app.state.read_store.close)

    app = FastAPI(
        title="pipeline-service",
        description="Seed-compatible HTTP API of the pipeline control plane.",
        lifespan=lifespan,
        dependencies=[Depends(authenticate)],
    )
    app.state.settings = settings
    app.state.gateway = the_gateway
    install_error_handling(app)
    install_auth(app)
    app.router.add_route("/health", health, methods=["GET"])
    app.include_router(api_keys.router)
    app.include_router(pipelines.router)
    app.include_router(pipeline_reads.router)
    app.include_router(runs_marquez.router)
    app.include_router(runs_esper.router)
    app.include_router(stage_runs.esper_router)
    app.include_router(configs.router)
    app.include_router(executions.router)
    app.include_router(stage_runs.factflow_router)
    app.include_router(config_runs.config_router)
    app.include_router(config_runs.execution_router)
    install_docs(app)
    return app


__all__ = ["create_app"]
