"""The whole service for end-to-end tests of pipeline deployments: the `api` role over real
HTTP, the command handler, the relay and the projector, and a reconciler, on the session's
broker and one SQLite event store per stack.

The reconciler is the real role's object, swept by `Driver` as `Reconciler.run` sweeps it
(every `reconciler_sweep_ms`), except that a test may hold it between two sweeps to look at
a transient status (Stopping) before the next sweep moves the pipeline on.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.adapters.kafka.clients import make_consumer, make_producer
from services.entrypoints.roles import run_roles
from services.runtimes.reconciler.checkpoints import Checkpoints, Head
from services.runtimes.reconciler.role import Reconciler
from services.settings import Settings
from tests.entrypoints.http.support import api_stack
from tests.waiting import eventually, eventually_async

YAML = {"Content-Type": "application/yaml"}


class Driver:
    """Sweeps `reconciler` every sweep interval until stopped; `held()` pauses it."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self._hold = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        while not self._stop.is_set():
            async with self._hold:
                await self.reconciler.sweep()
            await self.reconciler.pause(self._stop)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        async with self._hold:
            yield

    async def sweep(self) -> None:
        """One sweep now (while held)."""
        await self.reconciler.sweep()

    async def sweeps(self, count: int) -> None:
        """Wait until `count` more sweeps have run."""
        target = self.reconciler.sweeps + count
        await eventually(lambda: self.reconciler.sweeps >= target, f"{count} sweeps")


@dataclass
class Stack:
    settings: Settings
    client: httpx.AsyncClient
    reconciler: Reconciler
    driver: Driver
    producer: AIOKafkaProducer

    async def create_config(self, document: str) -> str:
        response = await self.client.post(
            "/api/v1/configs",
            params={"name": f"c-{uuid.uuid4().hex[:6]}"},
            content=document,
            headers=YAML,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def update_config(self, config_id: str, document: str) -> int:
        """PUT the config's new document; answers its new config_version."""
        response = await self.client.put(
            f"/api/v1/configs/{config_id}", content=document, headers=YAML
        )
        assert response.status_code == 200, response.text
        return int(response.json()["version"])

    async def create_pipeline(self, document: str) -> str:
        return (await self.create_pipeline_and_config(document))[0]

    async def echo_pipeline(self, **route: Any) -> tuple[str, str, str]:
        """A new pipeline on its own `echo` route (`route_document`, with `route`'s
        changes): (pipeline name, inbound topic, outbound topic)."""
        tag = new_tag()
        name = await self.create_pipeline(route_document(tag, **route))
        return name, f"test.rec.{tag}.in", f"test.rec.{tag}.out"

    async def create_pipeline_and_config(self, document: str) -> tuple[str, str]:
        """A new pipeline on a new config: (pipeline name, config id)."""
        name = f"p-{uuid.uuid4().hex[:8]}"
        config_id = await self.create_config(document)
        response = await self.client.post(
            "/v0/pipelines", json={"name": name, "config_id": config_id}
        )
        assert response.status_code == 201, response.text
        return name, config_id

    async def action(self, name: str, action: str, **params: Any) -> httpx.Response:
        return await self.client.post(f"/v0/pipelines/{name}/{action}", params=params)

    async def pipeline(self, name: str) -> dict[str, Any]:
        response = await self.client.get(f"/v0/pipelines/{name}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def act(self, name: str, action: str, status: str, **params: Any) -> dict[str, Any]:
        """POST the action (answered 202), then wait until the deployment_status is
        `status`; answers the pipeline then."""
        response = await self.action(name, action, **params)
        assert response.status_code == 202, response.text
        return await self.until_status(name, status)

    async def until_status(self, name: str, status: str) -> dict[str, Any]:
        """Poll GET /v0/pipelines/{name} until its deployment_status is `status`."""
        return await self.until(name, lambda p: p["deployment_status"] == status, status)

    async def until_stopped_with_error(self, name: str) -> dict[str, Any]:
        return await self.until(
            name,
            lambda p: p["deployment_status"] == "Stopped" and p["deployment_error"] is not None,
            "stopped with an error",
        )

    async def until(
        self, name: str, check: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """Poll GET /v0/pipelines/{name} until `check` holds for it (the timeout only ends
        a hang)."""
        found: dict[str, Any] = {}

        async def poll() -> bool:
            nonlocal found
            response = await self.client.get(f"/v0/pipelines/{name}")
            if response.status_code == 404:
                return False  # the projector has not caught up with its creation yet
            assert response.status_code == 200, response.text
            found = response.json()
            return check(found)

        await eventually_async(poll, f"pipeline {name}: {what}")
        return found

    def checkpoint(self, pipeline_id: uuid.UUID) -> dict[str, dict[TopicPartition, int]]:
        """The pipeline's recorded checkpoint, per route."""
        checkpoints = Checkpoints(self.settings.event_store_url)
        try:
            return checkpoints.of(pipeline_id)
        finally:
            checkpoints.close()

    def checkpoint_head(self, pipeline_id: uuid.UUID) -> Head | None:
        """What the pipeline's recorded checkpoint was taken at."""
        checkpoints = Checkpoints(self.settings.event_store_url)
        try:
            return checkpoints.head(pipeline_id)
        finally:
            checkpoints.close()

    async def stop_reconciler(self) -> None:
        """As the role stops: the sweeps end, the workers commit and leave."""
        await self.driver.stop()
        await self.reconciler.close()

    async def start_reconciler(self) -> None:
        """A new reconciler process: it knows nothing but the stores and the broker."""
        self.reconciler = Reconciler(self.settings)
        await self.reconciler.open()
        self.driver = Driver(self.reconciler)
        self.driver.start()

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await self.producer.send_and_wait(topic, orjson.dumps(payload), key=b"k")

    async def through(self, inbound: str, out: Outbound, n: int) -> dict[str, Any]:
        """Message `n` published on `inbound`: its output on `out`, once it came out."""
        await self.publish(inbound, {"n": n})
        return await out.until(n)


def new_tag() -> str:
    """What makes a test's topics its own (the session shares one broker)."""
    return uuid.uuid4().hex[:8]


def route_document(tag: str, **route: Any) -> str:
    """One route `echo`: `test.rec.{tag}.in` -> a map adding `seen` -> `test.rec.{tag}.out`;
    `route` replaces parts of the route."""
    spec: dict[str, Any] = {
        "name": "Echo",
        "inbound": {"topic": f"test.rec.{tag}.in"},
        "adapters": [{"type": "map", "config": {"fields": {"n": "{payload[n]}", "seen": "yes"}}}],
        "error_handling": {"max_retries": 0, "retry_delay_seconds": 0},
        "outbound": [f"test.rec.{tag}.out"],
        **route,
    }
    document = {
        "version": "1",
        "routes": {"echo": spec},
        "init_message": {"route": "echo", "payload": {}},
    }
    return yaml.safe_dump(document, sort_keys=False)


class Outbound:
    """Reads a topic from its beginning: every payload that came out of it so far."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer: AIOKafkaConsumer = make_consumer(settings, group_id=None)
        self.topic = topic
        self.seen: list[dict[str, Any]] = []

    async def __aenter__(self) -> Outbound:
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(2)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def read(self) -> list[dict[str, Any]]:
        """Everything up to the topic's current end."""
        tps = [TopicPartition(self.topic, p) for p in range(2)]
        ends = await self.consumer.end_offsets(tps)
        while [tp for tp in tps if await self.consumer.position(tp) < ends[tp]]:
            batches = await self.consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.seen.extend(orjson.loads(r.value) for r in records if r.value)
        return self.seen

    async def until(self, n: int) -> dict[str, Any]:
        """The output for input number `n`, once it came out."""

        async def check() -> bool:
            return any(p.get("n") == n for p in await self.read())

        await eventually_async(check, f"message {n} on {self.topic}")
        return next(p for p in self.seen if p.get("n") == n)


def module_stack(name: str, **options: Any) -> Any:
    """A test module's `stack` fixture: one `reconciler_stack` (with `options`) for the
    whole module. Usage: `stack = module_stack("rec")`."""

    @pytest.fixture(scope="module")
    async def stack(
        kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
    ) -> AsyncIterator[Stack]:
        async with reconciler_stack(
            kafka_bootstrap, tmp_path_factory.mktemp(name), **options
        ) as found:
            yield found

    return stack


@contextlib.asynccontextmanager
async def reconciler_stack(
    bootstrap: str, tmp: Path, *, in_process: bool = True, **overrides: Any
) -> AsyncIterator[Stack]:
    """The stack; `in_process=False` leaves the reconciler to another process (the
    stack's `reconciler` is then never opened nor swept)."""
    async with api_stack(bootstrap, tmp, **{"reconciler_sweep_ms": 100, **overrides}) as (
        settings,
        client,
        _handler,
    ):
        stop = asyncio.Event()
        roles = asyncio.create_task(run_roles(settings, ["relay", "projector"], stop))
        reconciler = Reconciler(settings)
        driver = Driver(reconciler)
        if in_process:
            await reconciler.open()
            driver.start()
        producer = make_producer(settings)
        await producer.start()
        stack: Stack | None = None
        try:
            stack = Stack(settings, client, reconciler, driver, producer)
            yield stack
        finally:
            await producer.stop()
            if stack is not None:
                driver, reconciler = stack.driver, stack.reconciler
            await driver.stop()
            await reconciler.close()
            stop.set()
            await asyncio.wait_for(roles, 30)
