"""A route handler's batch against a database message store on the ledger's database,
without a broker (a fake producer): the batch is stored and counted in one commit once its
outputs are acknowledged, and a batch whose publishing fails leaves nothing stored or
counted, so its redelivery starts from scratch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from contracts.config_document import Inbound, RouteSpec
from contracts.route_messages import RouteMessage, encode_route_message, output_message_id
from services.adapters.kafka.engine import Batch
from services.adapters.message_store import DatabaseMessageStore
from services.runtimes.orchestrator.execution_info import ExecutionInfo
from services.runtimes.orchestrator.ledger import Ledger, RouteCounts
from services.runtimes.orchestrator.route_worker import RouteHandler
from services.runtimes.routes.adapters import load_adapter_registry
from services.settings import Settings

INBOUND, OUTBOUND = "t.in", "t.out"


class FakeProducer:
    """Acknowledges every record at once, or fails every delivery (`failing`)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []
        self.failing = False

    async def send(self, topic: str, value: bytes | None = None, **_: Any) -> asyncio.Future[None]:
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.failing:
            delivery.set_exception(ConnectionError("broker gone"))
        else:
            self.sent.append((topic, value))
            delivery.set_result(None)
        return delivery


@dataclass
class Setup:
    handler: RouteHandler
    ledger: Ledger
    storage: DatabaseMessageStore
    producer: FakeProducer
    execution: UUID


@pytest.fixture
def setup(sqlite_url: str) -> Iterator[Setup]:
    ledger, storage = Ledger(sqlite_url), DatabaseMessageStore(sqlite_url)
    config_id, execution = uuid4(), uuid4()
    info = ExecutionInfo(
        execution_id=execution,
        config_id=config_id,
        status="running",
        skip_init_message=True,
        init_route="a",
    )

    async def lookup(execution_id: UUID) -> ExecutionInfo | None:
        return info if execution_id == execution else None

    async def nothing(_: UUID) -> None:
        return None

    async def no_topics(_: Any) -> None:
        return None

    producer = FakeProducer()
    handler = RouteHandler(
        Settings(kafka_bootstrap_servers="127.0.0.1:1", topic_prefix="test"),
        config_id,
        "a",
        RouteSpec(
            name="a",
            inbound=Inbound(topic=INBOUND),
            adapters=[{"type": "pass_through"}],  # type: ignore[list-item]
            outbound=[OUTBOUND],
        ),
        {OUTBOUND: ["b"]},
        load_adapter_registry()[1],
        ledger,
        storage,
        lookup,
        nothing,
        nothing,
        producer,  # type: ignore[arg-type]
        ensure_topics=no_topics,
    )
    yield Setup(handler, ledger, storage, producer, execution)
    ledger.close()
    storage.close()


def _batch(execution: UUID, count: int) -> tuple[Batch, list[RouteMessage]]:
    messages = [
        RouteMessage(id=uuid4(), execution_id=execution, route="z", payload={"n": n})
        for n in range(count)
    ]
    tp = TopicPartition(INBOUND, 0)
    records = []
    for offset, message in enumerate(messages):
        record = encode_route_message(message)
        records.append(
            ConsumerRecord(
                INBOUND, 0, offset, 0, 0, record.key, record.value, None, 0, 0, record.headers
            )
        )
    return Batch({tp: records}), messages


async def test_a_batch_is_stored_and_counted_in_the_ledgers_commit(setup: Setup) -> None:
    assert setup.handler._joint is setup.storage
    batch, messages = _batch(setup.execution, 3)
    (await setup.handler.handle(batch))()

    assert len(setup.producer.sent) == 3
    stored_in = [s.message.id for s in setup.storage.consumed(setup.execution, "a")]
    stored_out = [s.message.id for s in setup.storage.produced(setup.execution, "a")]
    assert stored_in == [m.id for m in messages]
    assert stored_out == [output_message_id(m.id, "a", OUTBOUND, 0) for m in messages]
    # Inputs nobody upstream expected (no such route here); outputs expected by b.
    assert setup.ledger.counts(setup.execution) == {
        "a": RouteCounts(0, 3, 0),
        "b": RouteCounts(3, 0, 0),
    }

    # Redelivered: skipped as handled, nothing stored or counted twice.
    (await setup.handler.handle(batch))()
    assert len(setup.storage.consumed(setup.execution, "a")) == 3
    assert setup.ledger.counts(setup.execution)["a"] == RouteCounts(0, 3, 0)


async def test_a_batch_whose_outputs_fail_leaves_nothing_behind(setup: Setup) -> None:
    batch, _ = _batch(setup.execution, 2)
    setup.producer.failing = True
    with pytest.raises(ConnectionError):
        await setup.handler.handle(batch)
    assert setup.storage.consumed(setup.execution, "a") == []
    assert setup.ledger.counts(setup.execution) == {}

    setup.producer.failing = False
    (await setup.handler.handle(batch))()
    assert len(setup.storage.consumed(setup.execution, "a")) == 2
    assert setup.ledger.counts(setup.execution)["a"] == RouteCounts(0, 2, 0)
