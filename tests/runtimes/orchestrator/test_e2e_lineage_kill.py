"""An orchestrator process (`pipelines serve --role orchestrator`) SIGKILLed in the middle
of an execution, the execution then interrupted (as `pipelines dev` does after restarting
its empty broker) and resumed by a lineage replay: the child is fed exactly what the
parent's route ledger had not finished, repeats nothing the parent finished, and every
order reaches the done topic, in the parent or in the child.

The rest of the service (api, handler, relay and its replay publisher, projector) runs in
the test's process on the same SQLite event store; the orchestrators after the killed one
run in the test's process too."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.adapters.message_store import open_message_store
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.role import Orchestrator
from tests.runtimes.orchestrator.e2e_support import (
    EXECUTIONS,
    Stack,
    killed_midway,
    module_stack,
    slow_enrich_document,
    topics_of,
)
from tests.runtimes.orchestrator.worker_support import PARTITIONS
from tests.runtimes.role_processes import role_processes
from tests.waiting import WAIT_S

pytestmark = pytest.mark.broker

MESSAGES = 6
KILL_AFTER = 2  # enrich has consumed this many when the process is killed
ENRICH_DELAY_S = 0.5
ROUTES = ("validate", "enrich", "notify")  # each hands every order on, one for one
ORDERS = [f"L-{n}" for n in range(MESSAGES)]

stack = module_stack("e2e-lineage-kill", orchestrators=0)


async def test_an_execution_killed_then_interrupted_is_resumed_by_lineage(
    stack: Stack, tmp_path: Path
) -> None:
    document = slow_enrich_document(ENRICH_DELAY_S)
    topics = topics_of(document)
    with role_processes("orchestrator", tmp_path / "orchestrator.log") as processes:
        # Validate must have taken every order in: an init message it never received is
        # in no ledger row, so no lineage replay could know of it.
        parent_id = await killed_midway(
            stack,
            processes,
            document,
            ORDERS,
            "Lineage",
            lambda parent: (
                stack.consumed(parent, "validate") == MESSAGES
                and stack.consumed(parent, "enrich") >= KILL_AFTER
            ),
            "validate to consume every message and enrich some",
        )

    await _interrupt(stack, parent_id)
    # No orchestrator runs now, and every later one skips the finished parent's messages
    # (redelivered, as the killed process never committed them): its ledger is final.
    unfinished = _unfinished(stack, parent_id)
    pending = Counter(route for route, _ in unfinished)
    assert pending["validate"] == 0 and pending["enrich"] > 0, pending
    with closing(open_message_store(stack.settings)) as storage:
        order_of = {
            stored.message.id: stored.message.payload["order_id"]
            for route in ROUTES
            for stored in (*storage.produced(parent_id, route), *storage.consumed(parent_id, route))
        }

    await stack.add_orchestrator()  # the gate admits the replay once one beats
    plan = await _lineage(stack, parent_id, dry_run=True)
    assert plan["routes"] == dict(pending)
    child = await _lineage(stack, parent_id)
    assert child["parent_execution_id"] == str(parent_id)
    assert child["replay_source"] == "lineage"
    child_id = UUID(child["id"])
    await stack.until_status(child_id, "completed")
    assert (await stack.execution(parent_id))["status"] == "interrupted"

    # A route gets what the parent left it plus what the route before it hands on.
    handed = 0
    counts = stack.stage_counts(child_id)
    for route in ROUTES:
        handed += pending[route]
        assert counts[route][1:] == (handed, handed, 0), (route, counts)
    assert counts["validate"][1] == 0  # what it finished is not repeated

    bootstrap = stack.settings.kafka_bootstrap_servers
    assert bootstrap is not None
    by_parent = await _read_all(bootstrap, topics["done"], parent_id)
    by_child = await _read_all(bootstrap, topics["done"], child_id)
    # The child outputs exactly the orders of the unfinished messages (an order twice if
    # enrich published it just before the kill and notify had not consumed it either).
    assert sorted(o["order_id"] for o in by_child) == sorted(order_of[m] for _, m in unfinished)
    assert {o["order_id"] for o in by_parent + by_child} == set(ORDERS)


async def _interrupt(stack: Stack, execution_id: UUID) -> None:
    """An orchestrator told that the broker restarted after the execution was created
    interrupts it; it is then stopped gracefully, so any batch of the execution it had in
    flight finishes and commits before the ledger is read."""
    restarted = stack.settings.model_copy(
        update={"orchestrator_interrupt_before": datetime.now(UTC)}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(Orchestrator(restarted).run(stop))
    try:
        await stack.until_status(execution_id, "interrupted")
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def _lineage(stack: Stack, parent_id: UUID, **body: Any) -> dict[str, Any]:
    response = await stack.client.post(
        f"{EXECUTIONS}/{parent_id}/replay", json={"replay_source": "lineage", **body}
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _unfinished(stack: Stack, execution_id: UUID) -> list[tuple[str, UUID]]:
    with closing(Ledger(stack.settings.event_store_url)) as ledger:
        return ledger.unfinished(execution_id)


async def _read_all(bootstrap: str, topic: str, execution_id: UUID) -> list[Any]:
    """Every payload keyed by the execution on `topic`, up to its end now (a finished
    execution's outputs were all acknowledged before it finished)."""
    key = str(execution_id).encode()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Any] = []
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"could not read {topic} up to {ends}")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend(orjson.loads(r.value) for r in records if r.key == key)
        return found
    finally:
        await consumer.stop()
