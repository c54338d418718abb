"""The api role stops promptly with streams open: it ends them first (without `end`, so
their clients reconnect elsewhere), where uvicorn alone would wait out each stream's
timeout (an hour here). Real HTTP, the real broker, SQLite."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from services.entrypoints.cli.executions import sse_events
from tests.entrypoints.http.support import api_only

pytestmark = pytest.mark.broker


async def test_stopping_the_api_ends_its_open_streams(kafka_bootstrap: str, tmp_path: Path) -> None:
    opened = asyncio.Event()
    names: list[str] = []

    async def watch(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/v0/watch/pipelines", params={"timeout": 3600}) as r:
            assert r.status_code == 200
            opened.set()
            names.extend([event.name async for event in sse_events(r.aiter_lines())])

    async with contextlib.AsyncExitStack() as outlives:  # a client the server's stop spares
        async with api_only(kafka_bootstrap, f"sqlite:///{tmp_path / 'events.db'}") as (_, api):
            client = await outlives.enter_async_context(
                httpx.AsyncClient(base_url=api.base_url, headers=api.headers, timeout=60)
            )
            watching = asyncio.create_task(watch(client))
            await asyncio.wait_for(opened.wait(), 30)
        # api_only gives the role 30 s to stop: it stopped, and the stream ended with it.
        await asyncio.wait_for(watching, 30)
    assert names == []
