"""The route workers' chain on the real broker, with the ledger and storage on SQLite: one
three-route config (route workers a -> b -> c, each its own consumer group, joined once)
that runs for a whole test module; every test starts its own executions on it.

    a: fail when payload.explode is true; map {n, label, from}    (max_retries 2)
    b: repeat (a plug-in: two copies, `copy` 0 and 1)              (concurrency 2)
    c: filter payload.n >= 0; delay 0.01 s                          -> sink
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaProducer

from contracts.config_document import (
    AdapterStep,
    Condition,
    ConditionOperator,
    ErrorHandling,
    Inbound,
    RouteSpec,
)
from contracts.envelope import KafkaRecord
from services.adapters.kafka.clients import make_producer
from services.adapters.message_store import FileMessageStore
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.route_batch import Fate
from services.runtimes.orchestrator.route_worker import RouteWorker
from services.runtimes.routes.adapters import ENTRY_POINT_GROUP, load_adapter_registry
from services.settings import Settings
from tests.infra.kafka import BrokerKind
from tests.runtimes.orchestrator.worker_support import (
    Executions,
    Outcomes,
    group_options,
    init_record,
    running,
    settings_for,
)

UNKNOWN_GRACE_S = 1.0


@dataclass
class Chain:
    settings: Settings
    config_id: UUID
    topics: dict[str, str]
    workers: dict[str, RouteWorker]
    executions: Executions
    outcomes: Outcomes
    ledger: Ledger
    storage: FileMessageStore
    producer: AIOKafkaProducer
    bootstrap: str

    async def send(self, record: KafkaRecord, topic: str = "A") -> None:
        sent = await self.producer.send(
            self.topics[topic], value=record.value, key=record.key, headers=record.headers
        )
        await sent

    async def start(self, payload: dict[str, object], **info: Any) -> UUID:
        execution_id = self.executions.add(**info)
        await self.send(init_record(execution_id, payload))
        return execution_id

    def fates(self, route: str) -> dict[Fate, int]:
        return dict(self.workers[route].stats.fates)


def chain_routes(topics: dict[str, str]) -> dict[str, RouteSpec]:
    return {
        "a": RouteSpec(
            name="Accept",
            inbound=Inbound(topic=topics["A"]),
            adapters=[
                AdapterStep(
                    type="fail",
                    config={"message": "boom"},
                    condition=Condition(
                        field="payload.explode", operator=ConditionOperator.EQUALS, value=True
                    ),
                ),
                AdapterStep(
                    type="map",
                    config={"fields": {"n": "{payload.n}", "label": "n={n}", "from": "{route}"}},
                ),
            ],
            error_handling=ErrorHandling(
                max_retries=2, retry_delay_seconds=0.01, dead_letter_topic=topics["DLQ"]
            ),
            outbound=[topics["B"]],
        ),
        "b": RouteSpec(
            name="Branch",
            inbound=Inbound(topic=topics["B"], concurrency=2),
            adapters=[AdapterStep(type="repeat")],
            outbound=[topics["C"]],
        ),
        "c": RouteSpec(
            name="Close",
            inbound=Inbound(topic=topics["C"]),
            adapters=[
                AdapterStep(
                    type="filter",
                    condition=Condition(field="n", operator=ConditionOperator.GTE, value=0),
                ),
                AdapterStep(type="delay", config={"seconds": 0.01}),
            ],
            outbound=[topics["SINK"]],
        ),
    }


def module_chain() -> Any:
    """A test module's `chain` fixture: one running chain for the whole module.
    Usage: `chain = module_chain()`."""

    @pytest.fixture(scope="module")
    async def chain(
        kafka_bootstrap: str, broker_kind: BrokerKind, tmp_path_factory: pytest.TempPathFactory
    ) -> AsyncIterator[Chain]:
        tmp = tmp_path_factory.mktemp("route-worker")
        settings = settings_for(kafka_bootstrap, f"sqlite:///{tmp / 'events.db'}")
        topics = {
            name: f"{settings.topic_prefix}.{name.lower()}"
            for name in ("A", "B", "C", "SINK", "DLQ")
        }
        routes = chain_routes(topics)
        consumers_of = {route.inbound.topic: [route_id] for route_id, route in routes.items()}
        repeat = EntryPoint(
            "repeat", "tests.runtimes.orchestrator.plugin_adapters:Repeat", ENTRY_POINT_GROUP
        )
        _, runtime = load_adapter_registry([repeat], strict=True)
        config_id = uuid4()
        executions = Executions(config_id)
        outcomes = Outcomes()
        ledger = Ledger(settings.event_store_url)
        storage = FileMessageStore(tmp / "executions")
        producer = make_producer(settings)
        await producer.start()
        workers = {
            route_id: RouteWorker(
                settings,
                config_id,
                route_id,
                route,
                consumers_of,
                runtime,
                ledger,
                storage,
                executions.lookup,
                outcomes.on_drained,
                outcomes.on_failed,
                producer,
                unknown_grace_s=UNKNOWN_GRACE_S,
                consumer_options=group_options(broker_kind),
            )
            for route_id, route in routes.items()
        }
        try:
            async with running(*workers.values()):
                yield Chain(
                    settings,
                    config_id,
                    topics,
                    workers,
                    executions,
                    outcomes,
                    ledger,
                    storage,
                    producer,
                    kafka_bootstrap,
                )
        finally:
            await producer.stop()
            ledger.close()

    return chain
