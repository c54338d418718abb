"""Family dispatch of FastAPI's own errors and the Retry-After safety net (no broker)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

from services.entrypoints.http.errors import (
    family_of,
    install_error_handling,
    render_factflow,
    render_feldera,
    render_marquez,
)


def test_a_path_belongs_to_the_family_of_its_longest_prefix_only() -> None:
    assert family_of("/v0/pipelines") is render_feldera
    assert family_of("/v0/pipelines/p1/start") is render_feldera
    assert family_of("/v0/pipelinesX") is None
    assert family_of("/api/v1/configs") is render_factflow
    assert family_of("/api/v1/lineage") is render_marquez  # OpenLineage in (Marquez's)
    assert family_of("/api/v1/namespaces") is None


def app_with_routes() -> FastAPI:
    app = FastAPI()
    install_error_handling(app)

    @app.get("/any/unavailable")
    async def unavailable() -> Response:
        return PlainTextResponse("down", status_code=503)

    @app.get("/any/own-retry")
    async def own_retry() -> Response:
        return PlainTextResponse("down", status_code=503, headers={"Retry-After": "30"})

    @app.get("/any/items/{n}")
    async def item(n: int) -> int:
        return n

    return app


async def test_every_503_carries_retry_after_and_keeps_its_own() -> None:
    transport = httpx.ASGITransport(app=app_with_routes())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        plain = await client.get("/any/unavailable")
        own = await client.get("/any/own-retry")
        ok = await client.get("/any/items/3")
    assert (plain.status_code, plain.headers["Retry-After"]) == (503, "5")
    assert own.headers["Retry-After"] == "30"
    assert ok.status_code == 200
    assert "Retry-After" not in ok.headers


async def test_paths_no_family_claims_keep_fastapis_own_errors() -> None:
    transport = httpx.ASGITransport(app=app_with_routes())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        invalid = await client.get("/any/items/x")
        missing = await client.get("/nowhere")
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["path", "n"]
    assert missing.json() == {"detail": "Not Found"}
