"""The API under test as it runs in production: the `api` role (uvicorn on a free port,
the app's lifespan starting its command bus) in front of the real broker, with an
in-process command handler (CommandConsumer + Decider on SQLite) whose store the tests
can reach to drive reconciler steps no command covers, and with `read_models=True` the
relay and projector roles keeping the read models. The client sends a write API key
made in the store before the API starts (as `pipelines api-keys create` does)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import httpx
import pytest

from services.adapters.api_keys import ApiKeyStore, Scope
from services.adapters.eventstore import EventStore
from services.adapters.kafka.clients import ensure_topics
from services.adapters.kafka.command_bus import CommandBus
from services.adapters.kafka.engine import Tuning
from services.adapters.stores import open_command_store
from services.entrypoints.http.server import run_api
from services.entrypoints.http.submit import API_SOURCE
from services.entrypoints.roles import ROLES, run_roles
from services.runtimes.command_handler import CommandConsumer
from services.service_layer.decider import Decider
from services.service_layer.handlers import HANDLERS
from services.settings import Settings
from tests.infra import postgres
from tests.runtimes.command_handler.consumer_support import running
from tests.waiting import eventually_async

READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def api_settings(bootstrap: str, store_url: str, **overrides: Any) -> Settings:
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": f"test.api.{tag}",
        "consumer_group": f"test-api-{tag}",
        "partitions": 2,
        "event_store_url": store_url,
        "api_host": "127.0.0.1",
        "api_port": free_port(),
        **overrides,
    }
    return Settings(**values)


@dataclass
class Handler:
    consumer: CommandConsumer
    decider: Decider

    @property
    def store(self) -> EventStore:
        return self.decider.store

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[EventStore]:
        """The store, between batches: what the reconciler would write, written here,
        and the handler's cache dropped so it reads it back."""
        async with self.consumer.batch_lock:
            yield self.store
            self.decider.drop_cache()


@contextlib.asynccontextmanager
async def command_handler(settings: Settings, **tuning: Unpack[Tuning]) -> AsyncIterator[Handler]:
    store = await asyncio.to_thread(open_command_store, settings.event_store_url)
    try:
        decider = Decider(store, HANDLERS)
        consumer = CommandConsumer(settings, decider, **tuning)
        async with running(consumer):
            yield Handler(consumer, decider)
    finally:
        await asyncio.to_thread(store.close)


def create_api_key(store_url: str, scope: Scope = Scope.WRITE, name: str | None = None) -> str:
    """A new key in the store (what `pipelines api-keys create` does)."""
    with ApiKeyStore(store_url) as store:
        return store.create(name or f"test-{uuid.uuid4().hex[:10]}", scope).secret


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def api_server(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The `api` role serving until the block ends; a client for its base URL that sends
    a write key with every request."""
    key = await asyncio.to_thread(create_api_key, settings.event_store_url)
    stop = asyncio.Event()
    beats: list[float] = []
    role = asyncio.create_task(
        run_api(settings, stop, lambda: beats.append(asyncio.get_running_loop().time()))
    )
    base = f"http://{settings.api_host}:{settings.api_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=bearer(key)) as client:
            await _until_ready(client, role)
            assert beats, "the api role never beat its heartbeat"
            yield client
    finally:
        stop.set()
        await asyncio.wait_for(role, 30)


async def _until_ready(client: httpx.AsyncClient, role: asyncio.Task[None]) -> None:
    async def answers() -> bool:
        if role.done():
            role.result()  # raises why it stopped
            raise AssertionError("the api role stopped before serving")
        try:
            return (await client.get("/openapi.json")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually_async(answers, "the api to answer", READY_TIMEOUT_S)


@contextlib.asynccontextmanager
async def read_model_roles(settings: Settings) -> AsyncIterator[None]:
    """The relay and projector roles, keeping the read models, until the block ends."""
    stop = asyncio.Event()
    roles = asyncio.create_task(run_roles(settings, ["relay", "projector"], stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(roles, 30)


@contextlib.asynccontextmanager
async def api_stack(
    bootstrap: str,
    tmp: Path,
    *,
    handler: bool = True,
    handler_tuning: Tuning | None = None,
    read_models: bool = False,
    **overrides: Any,
) -> AsyncIterator[tuple[Settings, httpx.AsyncClient, Handler | None]]:
    settings = api_settings(bootstrap, f"sqlite:///{tmp / 'events.db'}", **overrides)
    await ensure_topics(settings)
    async with contextlib.AsyncExitStack() as stack:
        running_handler = (
            await stack.enter_async_context(command_handler(settings, **(handler_tuning or {})))
            if handler
            else None
        )
        client = await stack.enter_async_context(api_server(settings))
        if read_models:
            await stack.enter_async_context(read_model_roles(settings))
        yield settings, client, running_handler


def module_client(name: str, **options: Any) -> Any:
    """A test module's `client` fixture: one `api_stack` (with `options`) for the whole
    module, its HTTP client. Usage: `client = module_client("esper", read_models=True)`."""

    @pytest.fixture(scope="module")
    async def client(
        kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
    ) -> AsyncIterator[httpx.AsyncClient]:
        async with api_stack(kafka_bootstrap, tmp_path_factory.mktemp(name), **options) as (
            _,
            the_client,
            __,
        ):
            yield the_client

    return client


@contextlib.asynccontextmanager
async def command_bus(settings: Settings) -> AsyncIterator[CommandBus]:
    """A command bus of the test's own, sending as the API does, started and stopped."""
    bus = CommandBus(settings, source=API_SOURCE, timeout_s=settings.api_result_timeout_s)
    await bus.start(results=True)
    try:
        yield bus
    finally:
        await bus.stop()


def module_store_url(request: pytest.FixtureRequest, tmp: Path) -> str:
    """For a module-scoped fixture parametrized "sqlite" / "postgres" (the latter marked
    `postgres`): an event-store URL of its own (a fresh schema on PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp / 'events.db'}"
    database: str = request.getfixturevalue("postgres_database_url")
    return postgres.with_search_path(database, postgres.create_schema(database))


STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextlib.asynccontextmanager
async def api_only(
    bootstrap: str, store_url: str, **overrides: Any
) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    """The `api` role alone (no command handler: writes would time out) on `store_url`;
    API keys checked against the database on every request unless overridden."""
    settings = api_settings(bootstrap, store_url, **{"api_key_cache_ttl_s": 0, **overrides})
    await ensure_topics(settings)
    async with api_server(settings) as client:
        yield settings, client


async def one_by_one(
    settings: Settings, names: list[str], stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    """The roles, each started once the one before has beaten its heartbeat: two roles
    opening a fresh PostgreSQL event store at once can fail on the library's concurrent
    `CREATE OR REPLACE FUNCTION` ("tuple concurrently updated")."""
    tasks: list[asyncio.Task[None]] = []
    for name in names:
        beat = asyncio.Event()
        task = asyncio.create_task(ROLES[name](settings, stop, beat.set), name=f"role-{name}")
        tasks.append(task)
        beaten = asyncio.create_task(beat.wait())
        await asyncio.wait({task, beaten}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        beaten.cancel()
        if task.done():
            task.result()  # raises why it stopped
        assert beat.is_set(), f"role {name} never beat"
    return tasks


@contextlib.asynccontextmanager
async def projected_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """For a module on SQLite or PostgreSQL (`module_store_url`): an in-process command
    handler, the `api` role, and the relay and projector roles (`one_by_one`), until the
    block ends; the API's client."""
    await ensure_topics(settings)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(command_handler(settings))
        client = await stack.enter_async_context(api_server(settings))
        stop = asyncio.Event()
        roles = await one_by_one(settings, ["relay", "projector"], stop)
        try:
            yield client
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*roles), 30)
