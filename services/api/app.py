"""The FastAPI application: routers of the seed families, error shapes, and what runs
with the app (its lifespan): the command gateway and the read store (the read models in
the event store's database, kept on `app.state.read_store`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from projections.store import ReadStore
from services.api import pipeline_reads, pipelines, runs_esper, runs_marquez
from services.api.errors import install_error_handling
from services.api.gateway import CommandGateway
from services.settings import Settings


def create_app(settings: Settings, gateway: CommandGateway | None = None) -> FastAPI:
    """The API app; `gateway` defaults to one built from `settings`. The gateway runs
    while the app does (FastAPI lifespan), so serve the app with lifespan on."""
    the_gateway = gateway if gateway is not None else CommandGateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.read_store = await asyncio.to_thread(ReadStore, settings.event_store_url)
        try:
            await the_gateway.start()
            try:
                yield
            finally:
                await the_gateway.stop()
        finally:
            await asyncio.to_thread(app.state.read_store.close)

    app = FastAPI(
        title="pipeline-service",
        description="Seed-compatible HTTP API of the pipeline control plane.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.gateway = the_gateway
    install_error_handling(app)
    app.include_router(pipelines.router)
    app.include_router(pipeline_reads.router)
    app.include_router(runs_marquez.router)
    app.include_router(runs_esper.router)
    return app


__all__ = ["create_app"]
