"""Who runs executions, end to end: with no orchestrator alive RunConfig is 503 (and an
orchestrator that stops gracefully closes the gate again); an orchestrator that lacks an
adapter a config needs interrupts its executions; two orchestrators share the route
workers' partitions and both complete executions, each message processed once.

One stack (api, handler with its gate, relay, projector) for the module; orchestrators
come and go in it, so the tests run in order."""

from __future__ import annotations

import asyncio
import uuid
from uuid import UUID

import httpx
import pytest
from aiokafka.partitioner import murmur2

from contracts.cloudevents import encode_command
from contracts.config_commands import RunConfig
from services.adapters.kafka.clients import make_producer
from services.runtimes.orchestrator.route_batch import Fate
from services.runtimes.routes.adapters import AdapterRuntime, builtin_adapters
from tests.runtimes.orchestrator.e2e_support import (
    Stack,
    module_stack,
    orders_document,
    workers_of,
)
from tests.waiting import eventually, eventually_async

pytestmark = pytest.mark.broker

ROUTES = ("validate", "enrich", "notify")
PARTITIONS = 2
PER_PARTITION = 3


stack = module_stack("e2e-orchestrators", orchestrators=0, partitions=PARTITIONS)


async def _run_until(stack: Stack, config_id: UUID, status: int) -> httpx.Response:
    """Run the config until the answer has `status` (the gate reads the heartbeats at
    most once a second: a change of orchestrators reaches it within that)."""
    found: httpx.Response | None = None

    async def check() -> bool:
        nonlocal found
        found = await stack.run(config_id)
        return found.status_code == status

    await eventually_async(check, f"RunConfig answered {status}")
    assert found is not None
    return found


async def test_no_orchestrator_alive_is_503_with_retry_after(stack: Stack) -> None:
    config_id = await stack.create_config(orders_document())
    response = await stack.run(config_id)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    body = response.json()
    assert body["error_code"] == "OrchestratorUnavailable"
    assert set(body) >= {"detail", "correlation_id", "timestamp"}
    listed = await stack.client.get("/api/v1/executions", params={"config_id": str(config_id)})
    assert listed.json()["total"] == 0  # refused: no execution was created


async def test_an_orchestrator_without_an_adapter_interrupts_and_a_stopped_one_closes_the_gate(
    stack: Stack,
) -> None:
    config_id = await stack.create_config(orders_document())  # `notify` delays
    without_delay = AdapterRuntime(a for a in builtin_adapters() if a.spec.name != "delay")
    orchestrator = await stack.add_orchestrator(adapters=without_delay)

    started = await _run_until(stack, config_id, 200)
    execution_id = UUID(started.json()["id"])
    interrupted = await stack.until_status(execution_id, "interrupted")
    assert interrupted["completed_at"] is not None
    assert orchestrator.workers == {}  # no route of it ever ran

    await stack.stop_orchestrator(orchestrator)  # forgets its heartbeat
    refused = await _run_until(stack, config_id, 503)
    assert refused.json()["error_code"] == "OrchestratorUnavailable"


def _ids_on_each_partition(count: int) -> list[UUID]:
    """Execution ids whose messages (keyed by the id) land on each partition `count`
    times, so both orchestrators get work whichever partitions they hold."""
    chosen: dict[int, list[UUID]] = {p: [] for p in range(PARTITIONS)}
    while any(len(ids) < count for ids in chosen.values()):
        execution_id = uuid.uuid4()
        partition = (murmur2(str(execution_id).encode()) & 0x7FFFFFFF) % PARTITIONS
        if len(chosen[partition]) < count:
            chosen[partition].append(execution_id)
    return [e for ids in chosen.values() for e in ids]


async def test_two_orchestrators_share_the_work(stack: Stack) -> None:
    first, second = await stack.add_orchestrator(), await stack.add_orchestrator()
    config_id = await stack.create_config(orders_document())
    warm_up = UUID((await _run_until(stack, config_id, 200)).json()["id"])
    await stack.until_status(warm_up, "completed")
    # Both run every route, and the group gave each of them a partition of every route's
    # inbound topic (one route consumer each, one group).
    inbound = {route: workers_of(first, config_id, route)[0].inbound_topic for route in ROUTES}
    await eventually(
        lambda: all(
            workers_of(o, config_id, route)
            and any(tp.topic == inbound[route] for tp in o.route_consumer.assignment)
            for o in (first, second)
            for route in ROUTES
        ),
        "both orchestrators assigned partitions of every route",
    )

    execution_ids = _ids_on_each_partition(PER_PARTITION)
    producer = make_producer(stack.settings)
    await producer.start()
    try:
        for execution_id in execution_ids:
            record = encode_command(RunConfig(config_id=config_id, execution_id=execution_id))
            await producer.send_and_wait(
                stack.settings.topics.commands,
                value=record.value,
                key=record.key,
                headers=record.headers,
            )
    finally:
        await producer.stop()
    await asyncio.gather(*(stack.until_status(e, "completed") for e in execution_ids))

    runs = len(execution_ids) + 1
    for route in ROUTES:
        done = {
            o: stack.fates(config_id, route, [o]).get(Fate.PROCESSED, 0) for o in (first, second)
        }
        assert sum(done.values()) == runs, (route, done)  # each message processed once
        assert all(count > 0 for count in done.values()), (route, done)
        for execution_id in execution_ids:
            assert stack.ledger_counts(execution_id)[route] == (1, 1, 0)
