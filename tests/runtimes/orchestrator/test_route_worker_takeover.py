"""A route worker that dies between publishing its outputs and recording its input consumed:
another instance of the route takes over its partitions, produces the same outputs again
with the same ids, and the ledger counts every message once (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from uuid import UUID

import pytest

from contracts.config_document import AdapterStep, Inbound, RouteSpec
from contracts.envelope import CE_ID
from contracts.route_messages import init_message_id, output_message_id
from services.adapters.kafka.clients import make_producer
from services.adapters.message_store import FileMessageStore
from services.runtimes.orchestrator.ledger import Ledger, RouteCounts
from services.runtimes.orchestrator.route_batch import Fate
from services.runtimes.orchestrator.route_worker import RouteWorker
from services.runtimes.routes.adapters import load_adapter_registry
from tests.infra.kafka import BrokerKind
from tests.runtimes.orchestrator.worker_support import (
    Executions,
    Outcomes,
    group_options,
    headers_of,
    init_record,
    read_keyed,
    running,
    settings_for,
    wait_assigned,
)
from tests.waiting import eventually

pytestmark = pytest.mark.broker


class DiesBeforeConsuming(Ledger):
    """The real ledger, except that settling a batch (outputs produced, inputs consumed)
    fails: the process "dies" after its outputs were published, acknowledged and stored,
    before the ledger knew."""

    def settle_many(
        self,
        produced: Iterable[tuple[UUID, str, UUID]],
        consumed: Iterable[tuple[UUID, str, UUID]],
        failed: Iterable[tuple[UUID, str, UUID]] = (),
    ) -> None:
        raise RuntimeError("the process died before recording the consumption")


async def test_a_second_instance_takes_over_and_counts_once(
    kafka_bootstrap: str, broker_kind: BrokerKind, store_url: str, tmp_path: Path
) -> None:
    settings = settings_for(kafka_bootstrap, store_url)
    x_topic, y_topic = f"{settings.topic_prefix}.x", f"{settings.topic_prefix}.y"
    routes = {
        "x": RouteSpec(
            name="X",
            inbound=Inbound(topic=x_topic),
            adapters=[AdapterStep(type="map", config={"fields": {"n": "{payload.n}"}})],
            outbound=[y_topic],
        ),
        "y": RouteSpec(name="Y", inbound=Inbound(topic=y_topic), outbound=[]),
    }
    consumers_of = {x_topic: ["x"], y_topic: ["y"]}
    _, runtime = load_adapter_registry([])
    executions = Executions(UUID(int=0), init_route="x")
    outcomes = Outcomes()
    ledger, dying_ledger = Ledger(store_url), DiesBeforeConsuming(store_url)
    storage = FileMessageStore(tmp_path / "executions")
    producer = make_producer(settings)
    await producer.start()

    def worker(route_id: str, with_ledger: Ledger) -> RouteWorker:
        return RouteWorker(
            settings,
            executions.config_id,
            route_id,
            routes[route_id],
            consumers_of,
            runtime,
            with_ledger,
            storage,
            executions.lookup,
            outcomes.on_drained,
            outcomes.on_failed,
            producer,
            initial_backoff_s=0.05,
            consumer_options=group_options(broker_kind),
        )

    try:
        async with running(worker("y", ledger)):
            doomed = worker("x", dying_ledger)
            doomed_task = asyncio.create_task(doomed.run())
            await wait_assigned([doomed], [doomed_task])
            execution = executions.add()
            record = init_record(execution, {"n": 1})
            await (
                await producer.send(
                    x_topic, value=record.value, key=record.key, headers=record.headers
                )
            )
            await eventually(lambda: doomed.stats.retries >= 1, "x to publish and then fail")
            await doomed.stop()  # leaves the group without committing
            await doomed_task

            successor = worker("x", ledger)
            async with running(successor):
                # Only the successor can record x's input consumed: the doomed one never did.
                await eventually(lambda: outcomes.drained[execution] > 0, "the execution to drain")
        assert doomed.stats.fates[Fate.PROCESSED] == 0
        assert successor.stats.fates[Fate.PROCESSED] == 1

        output_id = output_message_id(init_message_id(execution), "x", y_topic, 0)
        copies = await read_keyed(kafka_bootstrap, y_topic, str(execution).encode(), 2)
        assert {headers_of(copy)[CE_ID] for copy in copies} == {str(output_id)}
        assert ledger.counts(execution) == {"x": RouteCounts(1, 1, 0), "y": RouteCounts(1, 1, 0)}
        assert ledger.drained(execution) and outcomes.failed[execution] == 0
        assert [s.message.id for s in storage.produced(execution, "x")] == [output_id]
        assert [s.message.id for s in storage.consumed(execution, "y")] == [output_id]
    finally:
        await producer.stop()
        ledger.close()
        dying_ledger.close()
