"""Part (2) of the latency benchmark (benchmarks.latency): a command published -> visible
in GET /v0/pipelines/{name} over real HTTP, the roles handler, relay, projector and api
running in this process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import httpx

from benchmarks.bench import open_store
from benchmarks.latency_support import (
    HTTP_CONNECTIONS,
    POLL_S,
    VISIBILITY_PIPELINES,
    VISIBILITY_RATE,
    VISIBLE_TIMEOUT_S,
    Figure,
    client_bus,
    guarded,
    on_schedule,
    running_roles,
    send_all,
)
from benchmarks.workload import commands, setup_commands
from contracts import Command, StartPipeline, StopPipeline
from services.adapters.api_keys import ApiKeyStore, Scope
from services.adapters.kafka.command_bus import CommandBus
from services.settings import Settings


def free_port() -> int:
    # What tests/entrypoints/http/support.py does: the api role binds the port it is given.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_key(url: str) -> str:
    open_store(url).close()  # creates the schema on PostgreSQL
    with ApiKeyStore(url) as keys:
        return keys.create(f"latency-{uuid.uuid4().hex[:8]}", Scope.READ).secret


RolesRunner = Callable[[Settings, list[str]], AbstractAsyncContextManager[asyncio.Task[None]]]


@dataclass(frozen=True)
class Probe:
    """One timed change: the pipeline's id, when its command was published and when a GET
    first showed the change (perf_counter seconds: CLOCK_MONOTONIC, one clock for every
    process of the machine)."""

    pipeline_id: str
    published: float
    seen: float


async def pipeline_status(client: httpx.AsyncClient, name: str) -> tuple[str, str] | None:
    """(id, deployment_desired_status) as GET shows them now; None if not found."""
    response = await client.get(f"/v0/pipelines/{name}", params={"selector": "status"})
    if response.status_code != 200:
        return None
    body = response.json()
    return str(body["id"]), str(body["deployment_desired_status"])


async def desired_status(client: httpx.AsyncClient, name: str) -> str | None:
    found = await pipeline_status(client, name)
    return None if found is None else found[1]


async def until_projected(client: httpx.AsyncClient, name: str) -> str:
    while True:
        with contextlib.suppress(httpx.TransportError):  # the api role is not serving yet
            if (status := await desired_status(client, name)) is not None:
                return status
        await asyncio.sleep(0.05)


async def visibility(
    settings: Settings,
    seconds: float,
    *,
    roles_runner: RolesRunner = running_roles,
    probes_log: list[Probe] | None = None,
) -> Figure:
    url = settings.event_store_url
    key = await asyncio.to_thread(read_key, url)
    config, config_id = setup_commands()
    creates = list(commands(VISIBILITY_PIPELINES, VISIBILITY_PIPELINES, config_id, "vis"))
    names = [c.name for c in creates]  # type: ignore[attr-defined]
    roles_named = ["handler", "relay", "projector", "api"]
    base = f"http://{settings.api_host}:{settings.api_port}"
    limits = httpx.Limits(max_connections=HTTP_CONNECTIONS)
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        roles_runner(settings, roles_named) as roles,
        httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client,
        client_bus(settings) as bus,
    ):
        await send_all(bus, [config], roles)
        await send_all(bus, creates, roles)
        found = await guarded(asyncio.gather(*(until_projected(client, n) for n in names)), roles)
        statuses = dict(zip(names, found, strict=True))
        return await guarded(probes(bus, client, statuses, seconds, probes_log), roles)


async def probes(
    bus: CommandBus,
    client: httpx.AsyncClient,
    statuses: dict[str, str],
    seconds: float,
    probes_log: list[Probe] | None = None,
) -> Figure:
    count = max(2, int(VISIBILITY_RATE * seconds))
    figure = Figure(f"(2) visible in GET /v0/pipelines/{{name}} @ {VISIBILITY_RATE}/s")
    free: asyncio.Queue[str] = asyncio.Queue()
    for name in statuses:
        free.put_nowait(name)
    polls = skipped = 0

    async def probe(name: str) -> None:
        nonlocal polls
        before = statuses[name]
        command: Command = (
            StartPipeline(pipeline_name=name)
            if before == "Stopped"
            else StopPipeline(pipeline_name=name, force=True)
        )
        start = time.perf_counter()
        await bus.publish(command)
        while time.perf_counter() - start < VISIBLE_TIMEOUT_S:
            polls += 1
            found = await pipeline_status(client, name)
            if found is not None and found[1] != before:
                seen = time.perf_counter()
                figure.latencies.append(seen - start)
                if probes_log is not None:
                    probes_log.append(Probe(found[0], start, seen))
                status = found[1]
                statuses[name] = status
                free.put_nowait(name)  # a lost pipeline's state is unknown: not reused
                return
            await asyncio.sleep(POLL_S)

    def fire() -> asyncio.Task[None] | None:
        nonlocal skipped
        if free.empty():
            skipped += 1  # every pipeline still awaits its last change
            return None
        figure.sent += 1
        return asyncio.create_task(probe(free.get_nowait()))

    tasks, figure.rate = await on_schedule(VISIBILITY_RATE, count, fire)
    await asyncio.gather(*tasks)
    figure.note = f"(2): {polls} GETs; {skipped} slots skipped (no pipeline free)"
    return figure


# --- the run ---------------------------------------------------------------------------------
