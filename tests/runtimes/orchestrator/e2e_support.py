"""The whole service for end-to-end tests of executions: the `api` role over real HTTP, the
command handler as its role builds it (orchestrator gate, run timeout), the relay, the
projector and orchestrator role instances, on the session's broker and one event store
per stack (SQLite by default, or the `store_url` given).

Route workers use short group sessions on the embedded broker (the
`orchestrator_session_timeout_ms` setting; see tests/runtimes/orchestrator/worker_support.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml

from contracts.route_messages import RouteMessage, encode_route_message
from projections.store import ReadStore
from services.adapters.kafka.clients import ensure_topics, make_producer
from services.adapters.message_store import open_message_store
from services.adapters.stores import open_command_store
from services.entrypoints.roles import handler_decider, run_roles
from services.runtimes.command_handler import CommandConsumer
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.liveness import open_gate
from services.runtimes.orchestrator.role import Orchestrator
from services.runtimes.orchestrator.route_batch import Fate
from services.runtimes.orchestrator.route_worker import RouteHandler
from services.runtimes.routes.adapters import AdapterRuntime
from services.settings import Settings
from tests.entrypoints.http.support import api_server, api_settings
from tests.runtimes.command_handler.consumer_support import running
from tests.runtimes.role_processes import RoleProcesses
from tests.waiting import eventually, eventually_async

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "orders.yaml"
CONFIGS = "/api/v1/configs"
EXECUTIONS = "/api/v1/executions"


def stack_settings(
    bootstrap: str, broker_kind: str, tmp: Path, store_url: str | None = None, **overrides: Any
) -> Settings:
    """The stack's settings: its event store on `store_url` (default: SQLite in `tmp`)."""
    session = {"orchestrator_session_timeout_ms": 2000} if broker_kind == "embedded" else {}
    return api_settings(
        bootstrap,
        store_url or f"sqlite:///{tmp / 'events.db'}",
        execution_storage_dir=str(tmp / "executions"),
        orchestrator_sweep_ms=100,
        **{**session, **overrides},
    )


def orders_document(**route_changes: dict[str, Any]) -> str:
    """examples/orders.yaml with topics unique to the caller (the session shares one
    broker) and `route_changes` merged into its routes."""
    tag = uuid.uuid4().hex[:8]
    text = EXAMPLE.read_text().replace("example.orders.", f"test.e2e.{tag}.orders.")
    document: dict[str, Any] = yaml.safe_load(text)
    for route, changes in route_changes.items():
        document["routes"][route].update(changes)
    return yaml.safe_dump(document, sort_keys=False)


def topics_of(document: str) -> dict[str, str]:
    """Route id -> its inbound topic; `done` -> the last route's outbound topic."""
    routes = yaml.safe_load(document)["routes"]
    found = {route: spec["inbound"]["topic"] for route, spec in routes.items()}
    found["done"] = routes["notify"]["outbound"][0]
    found["dead_letters"] = routes["validate"]["error_handling"]["dead_letter_topic"]
    return found


@dataclass
class Stack:
    settings: Settings
    client: httpx.AsyncClient
    orchestrators: list[Orchestrator] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stops: list[asyncio.Event] = field(default_factory=list)

    async def add_orchestrator(self, adapters: AdapterRuntime | None = None) -> Orchestrator:
        orchestrator = Orchestrator(self.settings, adapters=adapters)
        stop = asyncio.Event()
        task = asyncio.create_task(orchestrator.run(stop))
        self.orchestrators.append(orchestrator)
        self.tasks.append(task)
        self.stops.append(stop)
        await eventually(lambda: orchestrator.sweeps > 0 or task.done(), "a first sweep")
        if task.done():
            task.result()
        return orchestrator

    async def stop_orchestrator(self, orchestrator: Orchestrator) -> None:
        index = self.orchestrators.index(orchestrator)
        self.stops[index].set()
        await asyncio.wait_for(self.tasks[index], 60)
        del self.orchestrators[index], self.tasks[index], self.stops[index]

    async def create_config(self, document: str, name: str = "orders") -> UUID:
        response = await self.client.post(
            CONFIGS, params={"name": name}, content=document, headers=YAML
        )
        assert response.status_code == 201, response.text
        return UUID(response.json()["id"])

    async def run(self, config_id: UUID, overrides: Any = None, **params: Any) -> httpx.Response:
        return await self.client.post(
            f"{CONFIGS}/{config_id}/run",
            params={k: _param(v) for k, v in params.items()},
            json=overrides,
        )

    async def started(self, config_id: UUID, overrides: Any = None, **params: Any) -> UUID:
        response = await self.run(config_id, overrides, **params)
        assert response.status_code == 200, response.text
        return UUID(response.json()["id"])

    async def execution(self, execution_id: UUID) -> dict[str, Any]:
        response = await self.client.get(f"{EXECUTIONS}/{execution_id}")
        assert response.status_code in (200, 404), response.text
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 else {"status": None}

    async def until_status(self, execution_id: UUID, status: str) -> dict[str, Any]:
        """Poll GET /api/v1/executions/{id} until it shows `status` (a condition: the
        timeout only ends a hang)."""
        found: dict[str, Any] = {}

        async def check() -> bool:
            nonlocal found
            found = await self.execution(execution_id)
            return found["status"] == status

        await eventually_async(check, f"execution {execution_id} {status}")
        return found

    def stages(self, execution_id: UUID) -> dict[str, dict[str, Any]]:
        """The execution's stage runs in the read model, by route."""
        with ReadStore(self.settings.event_store_url) as store:
            return {s["route"]: s for s in store.get_stage_runs(str(execution_id))}

    def stage_counts(self, execution_id: UUID) -> dict[str, tuple[str, int, int, int]]:
        """Each stage run's status and message counts (in, out, failed), by route."""
        return {route: status_and_counts(s) for route, s in self.stages(execution_id).items()}

    def ledger_counts(self, execution_id: UUID) -> dict[str, tuple[int, int, int]]:
        ledger = Ledger(self.settings.event_store_url)
        try:
            return {r: tuple(c) for r, c in ledger.counts(execution_id).items()}  # type: ignore[misc]
        finally:
            ledger.close()

    def consumed(self, execution_id: UUID, route: str) -> int:
        """How many messages the route's ledger shows in (0 before it has a row)."""
        return self.ledger_counts(execution_id).get(route, (0, 0, 0))[1]

    def fates(
        self, config_id: UUID, route: str, orchestrators: list[Orchestrator] | None = None
    ) -> dict[Fate, int]:
        """What the running workers of the config's `route` did (in every orchestrator of
        the stack, or in those given)."""
        total: dict[Fate, int] = {}
        for orchestrator in self.orchestrators if orchestrators is None else orchestrators:
            for worker in workers_of(orchestrator, config_id, route):
                for fate, count in worker.stats.fates.items():
                    total[fate] = total.get(fate, 0) + count
        return total


def status_and_counts(stage: dict[str, Any]) -> tuple[str, int, int, int]:
    """A stage run's status and its messages in, out and failed."""
    return (stage["status"], stage["messages_in"], stage["messages_out"], stage["messages_failed"])


def workers_of(orchestrator: Orchestrator, config_id: UUID, route: str) -> list[RouteHandler]:
    return [
        worker
        for (config, _), group in orchestrator.workers.items()
        if config == config_id
        for worker in group.workers
        if worker.route_id == route
    ]


YAML = {"Content-Type": "application/yaml"}


def _param(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


def module_stack(name: str, *, orchestrators: int = 1, **overrides: Any) -> Any:
    """A test module's `stack` fixture: one `e2e_stack` for the whole module, its settings
    `stack_settings(...)` with `overrides`. Usage: `stack = module_stack("e2e")`."""

    @pytest.fixture(scope="module")
    async def stack(
        kafka_bootstrap: str, broker_kind: str, tmp_path_factory: pytest.TempPathFactory
    ) -> AsyncIterator[Stack]:
        tmp = tmp_path_factory.mktemp(name)
        settings = stack_settings(kafka_bootstrap, broker_kind, tmp, **overrides)
        async with e2e_stack(settings, orchestrators=orchestrators) as running:
            yield running

    return stack


@contextlib.asynccontextmanager
async def e2e_stack(settings: Settings, *, orchestrators: int = 1) -> AsyncIterator[Stack]:
    await ensure_topics(settings)
    store = await asyncio.to_thread(open_command_store, settings.event_store_url)
    gate = await asyncio.to_thread(open_gate, settings)
    stored = await asyncio.to_thread(open_message_store, settings)
    ledger = await asyncio.to_thread(Ledger, settings.event_store_url)
    stop = asyncio.Event()
    roles = asyncio.create_task(run_roles(settings, ["relay", "projector"], stop))
    stack: Stack | None = None
    try:
        consumer = CommandConsumer(settings, handler_decider(settings, store, gate, stored, ledger))
        async with running(consumer), api_server(settings) as client:
            stack = Stack(settings, client)
            try:
                for _ in range(orchestrators):
                    await stack.add_orchestrator()
                yield stack
            finally:
                for orchestrator in list(stack.orchestrators):
                    await stack.stop_orchestrator(orchestrator)
    finally:
        stop.set()
        await asyncio.wait_for(roles, 30)
        await asyncio.to_thread(gate.close)
        await asyncio.to_thread(stored.close)
        await asyncio.to_thread(ledger.close)
        await asyncio.to_thread(store.close)


async def run_when_admitted(
    stack: Stack, config_id: UUID, processes: RoleProcesses, process: subprocess.Popen[bytes]
) -> UUID:
    """Run the config (skip_init_message) as soon as the gate admits it: 503 until the
    orchestrator process has beaten its heartbeat."""
    response: httpx.Response | None = None

    async def admitted() -> bool:
        nonlocal response
        assert process.poll() is None, processes.output()  # it died before its first beat
        response = await stack.run(config_id, skip_init_message=True)
        assert response.status_code in (200, 503), response.text
        return response.status_code == 200

    await eventually_async(admitted, "the orchestrator process to beat its heartbeat", every_s=0.2)
    assert response is not None
    return UUID(response.json()["id"])


def slow_enrich_document(delay_s: float) -> str:
    """The orders document with enrich taking one message a batch, each `delay_s` slow: a
    process killed while it runs is killed between two batches or inside one, never after
    all of them."""
    parsed = yaml.safe_load(orders_document())
    enrich = parsed["routes"]["enrich"]
    enrich["inbound"].update(concurrency=1, prefetch=1)
    enrich["adapters"].append({"type": "delay", "config": {"seconds": delay_s}})
    return yaml.safe_dump(parsed, sort_keys=False)


async def killed_midway(
    stack: Stack,
    processes: RoleProcesses,
    document: str,
    orders: list[str],
    customer: str,
    far_enough: Callable[[UUID], bool],
    what: str,
) -> UUID:
    """Run `document` (slow_enrich_document) in a spawned orchestrator process, send it
    `orders`, and SIGKILL the process once `far_enough(execution id)` holds while enrich
    has not consumed them all; the execution's id."""
    config_id = await stack.create_config(document)
    first = processes.spawn(stack.settings)
    # The gate admits it once the process has beaten its heartbeat.
    execution_id = await run_when_admitted(stack, config_id, processes, first)
    await publish_orders(stack, topics_of(document)["validate"], execution_id, orders, customer)
    await eventually(lambda: first.poll() is not None or far_enough(execution_id), what)
    assert first.poll() is None, processes.output()
    assert stack.consumed(execution_id, "enrich") < len(orders)
    processes.kill(first)
    return execution_id


async def publish_orders(
    stack: Stack, topic: str, execution_id: UUID, order_ids: list[str], customer: str
) -> None:
    """Orders sent into the execution from outside (ce_route `init`), all together."""
    producer = make_producer(stack.settings)
    await producer.start()
    try:
        sent = []
        for n, order_id in enumerate(order_ids):
            message = RouteMessage(
                id=uuid.uuid4(),
                execution_id=execution_id,
                route="init",
                payload={"order_id": order_id, "customer": customer, "amount": n + 1},
            )
            record = encode_route_message(message)
            headers = record.headers
            sent.append(await producer.send(topic, record.value, record.key, headers=headers))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
