"""Shared pieces of the route-worker tests: a dict-backed execution lookup (the role's real
one reads the read model), callbacks that count, running workers, and reading topics back
without a consumer group."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts.envelope import KafkaRecord
from contracts.route_messages import RouteMessage, encode_route_message, init_message_id
from services.runtimes.orchestrator.execution_info import ExecutionInfo
from services.runtimes.orchestrator.route_worker import RouteWorker
from services.settings import Settings
from tests.waiting import WAIT_S

PARTITIONS = 2
JOIN_TIMEOUT_S = 60.0


def group_options(broker_kind: str) -> dict[str, Any]:
    """Consumer options that make group joins fast where that is allowed.

    The embedded broker (Tansu) holds a join for about a session timeout (measured: ~5 s
    at aiokafka's 10 s default, ~1 s at 2 s) and only notices a member that left when its
    session expires. Apache Kafka refuses sessions below `group.min.session.timeout.ms`
    (6 s by default), so the defaults stay there."""
    if broker_kind != "embedded":
        return {}
    return {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300}


def settings_for(bootstrap: str, store_url: str) -> Settings:
    """Topics and groups unique to the caller: the session shares one broker."""
    tag = uuid.uuid4().hex[:10]
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"test.orch.{tag}",
        consumer_group=f"test-orch-{tag}",
        partitions=PARTITIONS,
        event_store_url=store_url,
    )


class Executions:
    """The execution lookup a worker is given, backed by a dict the test edits.

    `hide(e, n)`: the first `n` asks about `e` answer None (a read model lagging behind);
    `cancel_after(e, n)`: from the (n+1)th ask on, `e` is cancelled."""

    def __init__(self, config_id: UUID, *, init_route: str = "a") -> None:
        self.config_id = config_id
        self.init_route = init_route
        self.infos: dict[UUID, ExecutionInfo] = {}
        self.asks: Counter[UUID] = Counter()
        self._hidden: dict[UUID, int] = {}
        self._cancel_after: dict[UUID, int] = {}

    def add(self, *, status: str = "running", config_id: UUID | None = None) -> UUID:
        execution_id = uuid.uuid4()
        self.infos[execution_id] = ExecutionInfo(
            execution_id=execution_id,
            config_id=config_id or self.config_id,
            status=status,
            skip_init_message=False,
            init_route=self.init_route,
        )
        return execution_id

    def hide(self, execution_id: UUID, asks: int) -> None:
        self._hidden[execution_id] = asks

    def cancel_after(self, execution_id: UUID, asks: int) -> None:
        self._cancel_after[execution_id] = asks

    async def lookup(self, execution_id: UUID) -> ExecutionInfo | None:
        self.asks[execution_id] += 1
        asked = self.asks[execution_id]
        if asked <= self._hidden.get(execution_id, 0):
            return None
        info = self.infos.get(execution_id)
        if info is not None and asked > self._cancel_after.get(execution_id, asked):
            return replace(info, status="cancelled")
        return info


class Outcomes:
    """`on_drained` / `on_failed` that count what they were told."""

    def __init__(self) -> None:
        self.drained: Counter[UUID] = Counter()
        self.failed: Counter[UUID] = Counter()

    async def on_drained(self, execution_id: UUID) -> None:
        self.drained[execution_id] += 1

    async def on_failed(self, execution_id: UUID) -> None:
        self.failed[execution_id] += 1


@contextlib.asynccontextmanager
async def running(*workers: RouteWorker) -> AsyncIterator[list[asyncio.Task[None]]]:
    """The workers' loops as tasks, each joined to its group; stopped gracefully on exit."""
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        await wait_assigned(workers, tasks)
        yield tasks
    finally:
        await asyncio.gather(*(worker.stop() for worker in workers))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


async def wait_assigned(
    workers: Sequence[RouteWorker], tasks: Sequence[asyncio.Task[None]]
) -> None:
    joined: asyncio.Future[Any] = asyncio.gather(*(w.assigned.wait() for w in workers))
    waits: set[asyncio.Future[Any]] = {*tasks, joined}
    done, _ = await asyncio.wait(waits, timeout=JOIN_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        if task in done:
            task.result()  # raises what stopped it
    if joined not in done:
        joined.cancel()
        raise TimeoutError("a route worker was never assigned partitions")


def init_record(execution_id: UUID, payload: dict[str, Any]) -> KafkaRecord:
    return encode_route_message(
        RouteMessage(
            id=init_message_id(execution_id),
            execution_id=execution_id,
            route="init",
            payload=payload,
            correlation_id=f"corr-{execution_id}",
        )
    )


async def read_keyed(
    bootstrap: str, topic: str, key: bytes, expected: int, timeout_s: float = WAIT_S
) -> list[ConsumerRecord[bytes, bytes]]:
    """The first `expected` records with `key`, read from the start of every partition
    (no consumer group, so no join wait)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        found: list[ConsumerRecord[bytes, bytes]] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < expected:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"read {len(found)} of {expected} records keyed {key!r}")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend(r for r in records if r.key == key)
        return found
    finally:
        await consumer.stop()


def headers_of(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}
