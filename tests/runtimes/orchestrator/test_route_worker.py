"""Route workers on the real broker with the ledger and storage on SQLite.

One three-route config runs for the whole module (route workers a -> b -> c, each its own
consumer group, joined once): every test starts its own executions on it.

    a: fail when payload.explode is true; map {n, label, from}    (max_retries 2)
    b: repeat (a plug-in: two copies, `copy` 0 and 1)              (concurrency 2)
    c: filter payload.n >= 0; delay 0.01 s                          -> sink
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
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
from contracts.envelope import CE_CORRELATIONID, CE_ID, KafkaRecord
from contracts.route_messages import (
    CE_EXECUTIONID,
    decode_route_message,
    init_message_id,
    output_message_id,
)
from services.adapters.kafka.clients import make_producer
from services.runtimes.orchestrator.ledger import Ledger, RouteCounts
from services.runtimes.orchestrator.route_batch import Fate
from services.runtimes.orchestrator.route_worker import RouteWorker
from services.runtimes.orchestrator.storage import MessageStorage
from services.runtimes.routes.adapters import ENTRY_POINT_GROUP, load_adapter_registry
from services.settings import Settings
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
)
from tests.waiting import eventually

pytestmark = pytest.mark.broker

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
    storage: MessageStorage
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


@pytest.fixture(scope="module")
async def chain(
    kafka_bootstrap: str, broker_kind: BrokerKind, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Chain]:
    tmp = tmp_path_factory.mktemp("route-worker")
    settings = settings_for(kafka_bootstrap, f"sqlite:///{tmp / 'events.db'}")
    topics = {
        name: f"{settings.topic_prefix}.{name.lower()}" for name in ("A", "B", "C", "SINK", "DLQ")
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
    storage = MessageStorage(tmp / "executions")
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


async def test_a_three_route_chain_drains_and_says_so_once(chain: Chain) -> None:
    execution = await chain.start({"n": 5, "extra": "dropped by the map"})
    await eventually(lambda: chain.outcomes.drained[execution] > 0, "the execution to drain")

    assert chain.ledger.counts(execution) == {
        "a": RouteCounts(1, 1, 0),
        "b": RouteCounts(1, 1, 0),
        "c": RouteCounts(2, 2, 0),  # b fanned out
    }
    assert chain.outcomes.drained[execution] == 1
    assert chain.outcomes.failed[execution] == 0

    # What reached the sink: c's outputs, scoped to the execution by their headers.
    sink = await read_keyed(chain.bootstrap, chain.topics["SINK"], str(execution).encode(), 2)
    messages = sorted(
        (decode_route_message(r.value, r.headers) for r in sink), key=lambda m: m.payload["copy"]
    )
    a_out = output_message_id(init_message_id(execution), "a", chain.topics["B"], 0)
    c_inputs = [output_message_id(a_out, "b", chain.topics["C"], n) for n in (0, 1)]
    assert [m.id for m in messages] == [
        output_message_id(c_inputs[n], "c", chain.topics["SINK"], 0) for n in (0, 1)
    ]
    for n, message in enumerate(messages):
        assert message.execution_id == execution
        assert message.route == "c"
        assert message.stage == 2  # c has two adapter steps
        assert message.correlation_id == f"corr-{execution}"
        assert message.payload == {"n": 5, "label": "n=5", "from": "init", "copy": n, "by": "b"}

    # Storage: what each route consumed and produced.
    [a_in] = chain.storage.consumed(execution, "a")
    assert a_in.message.id == init_message_id(execution)
    assert a_in.message.payload == {"n": 5, "extra": "dropped by the map"}
    [a_produced] = chain.storage.produced(execution, "a")
    assert (a_produced.message.id, a_produced.topic) == (a_out, chain.topics["B"])
    assert {s.message.id for s in chain.storage.consumed(execution, "c")} == set(c_inputs)
    assert {s.message.id for s in chain.storage.produced(execution, "c")} == {
        m.id for m in messages
    }
    assert chain.storage.routes(execution) == ["a", "b", "c"]


async def test_a_filtered_out_message_still_drains_the_execution(chain: Chain) -> None:
    execution = await chain.start({"n": -1})
    await eventually(lambda: chain.outcomes.drained[execution] > 0, "the execution to drain")
    assert chain.ledger.counts(execution)["c"] == RouteCounts(2, 2, 0)
    assert chain.storage.produced(execution, "c") == []


async def test_a_failing_adapter_retries_then_dead_letters(chain: Chain) -> None:
    retries_before = chain.workers["a"].stats.adapter_retries
    execution = await chain.start({"n": 1, "explode": True})
    await eventually(lambda: chain.outcomes.failed[execution] > 0, "the execution to fail")

    assert chain.workers["a"].stats.adapter_retries - retries_before == 2
    assert chain.ledger.counts(execution) == {"a": RouteCounts(1, 0, 1)}
    assert chain.ledger.failed_any(execution) and not chain.ledger.drained(execution)
    assert chain.outcomes.drained[execution] == 0
    [stored] = chain.storage.consumed(execution, "a")
    assert stored.error == "boom"
    assert chain.storage.produced(execution, "a") == []

    [dead] = await read_keyed(chain.bootstrap, chain.topics["DLQ"], str(execution).encode(), 1)
    original = init_record(execution, {"n": 1, "explode": True})
    assert dead.value == original.value
    headers = headers_of(dead)
    assert headers[CE_ID] == str(init_message_id(execution))
    assert headers[CE_EXECUTIONID] == str(execution)
    assert headers[CE_CORRELATIONID] == f"corr-{execution}"
    assert headers["dlq_error_code"] == "AdapterFailed"
    assert headers["dlq_error_message"] == "boom"
    assert orjson.loads(headers["dlq_error_details"]) == {
        "adapter": "fail",
        "step": 0,
        "attempts": 3,
    }
    assert headers["dlq_route"] == "a"
    assert headers["dlq_original_topic"] == chain.topics["A"]


async def test_malformed_input_is_dead_lettered(chain: Chain) -> None:
    # Readable ids of a running execution, but the value is not JSON: the execution fails,
    # or it would wait for this message forever.
    execution = chain.executions.add()
    good = init_record(execution, {"n": 1})
    await chain.send(KafkaRecord(key=good.key, value=b"{not json", headers=good.headers))
    # No headers at all: nothing to scope it to; dead-lettered all the same.
    junk_key = f"junk-{uuid4()}".encode()
    await chain.send(KafkaRecord(key=junk_key, value=b"\x00\x01", headers=[]))

    [bad_json] = await read_keyed(chain.bootstrap, chain.topics["DLQ"], good.key, 1)
    assert bad_json.value == b"{not json"
    assert headers_of(bad_json)["dlq_error_code"] == "MalformedMessage"
    assert headers_of(bad_json)["dlq_error_message"].startswith("Message value is not JSON")
    assert orjson.loads(headers_of(bad_json)["dlq_error_details"]) == {"reason": "not_json"}
    await eventually(lambda: chain.outcomes.failed[execution] > 0, "the execution to fail")
    assert chain.ledger.counts(execution) == {"a": RouteCounts(0, 0, 1)}

    [junk] = await read_keyed(chain.bootstrap, chain.topics["DLQ"], junk_key, 1)
    assert junk.value == b"\x00\x01"
    headers = headers_of(junk)
    assert headers["dlq_error_code"] == "MalformedMessage"
    assert headers["dlq_error_message"] == "Route message has no ce_id header"
    assert headers["dlq_route"] == "a"


async def test_a_duplicate_message_is_counted_once(chain: Chain) -> None:
    duplicates_before = chain.fates("a").get(Fate.DUPLICATE, 0)
    execution = chain.executions.add()
    record = init_record(execution, {"n": 2})
    await chain.send(record)
    await chain.send(record)
    await eventually(lambda: chain.outcomes.drained[execution] > 0, "the execution to drain")
    await eventually(
        lambda: chain.fates("a").get(Fate.DUPLICATE, 0) > duplicates_before,
        "a to skip the copy",
    )
    assert chain.ledger.counts(execution) == {
        "a": RouteCounts(1, 1, 0),
        "b": RouteCounts(1, 1, 0),
        "c": RouteCounts(2, 2, 0),
    }
    assert len(chain.storage.consumed(execution, "a")) == 1
    assert len(chain.storage.produced(execution, "c")) == 2


async def test_a_cancelled_executions_messages_are_skipped(chain: Chain) -> None:
    finished_before = chain.fates("a").get(Fate.FINISHED, 0)
    execution = await chain.start({"n": 3}, status="cancelled")
    await eventually(
        lambda: chain.fates("a").get(Fate.FINISHED, 0) > finished_before, "a to skip it"
    )
    assert chain.ledger.counts(execution) == {}
    assert chain.storage.routes(execution) == []
    assert (chain.outcomes.drained[execution], chain.outcomes.failed[execution]) == (0, 0)


async def test_cancelled_while_in_the_adapters_its_outputs_are_not_published(
    chain: Chain,
) -> None:
    finished_before = chain.fates("a").get(Fate.FINISHED, 0)
    # Running when a takes the message, cancelled when its adapters are done.
    quiet = chain.executions.add()
    chain.executions.cancel_after(quiet, 1)
    # Running when a takes it, failing, cancelled before the retry: no dead letter.
    failing = chain.executions.add()
    chain.executions.cancel_after(failing, 1)
    await chain.send(init_record(quiet, {"n": 4}))
    await chain.send(init_record(failing, {"n": 4, "explode": True}))
    await eventually(
        lambda: chain.fates("a").get(Fate.FINISHED, 0) >= finished_before + 2, "a to skip both"
    )
    for execution in (quiet, failing):
        assert chain.ledger.counts(execution) == {}
        assert chain.storage.routes(execution) == []
        assert (chain.outcomes.drained[execution], chain.outcomes.failed[execution]) == (0, 0)


async def test_an_execution_the_lookup_learns_late_is_processed(chain: Chain) -> None:
    execution = chain.executions.add()
    chain.executions.hide(execution, 1)  # the read model lags the init message
    await chain.send(init_record(execution, {"n": 6}))
    await eventually(lambda: chain.outcomes.drained[execution] > 0, "the execution to drain")
    assert chain.executions.asks[execution] >= 2


async def test_messages_of_an_execution_that_never_becomes_known_are_dead_lettered(
    chain: Chain,
) -> None:
    execution = uuid4()  # not in the lookup
    await chain.send(init_record(execution, {"n": 7}))
    [dead] = await read_keyed(chain.bootstrap, chain.topics["DLQ"], str(execution).encode(), 1)
    headers = headers_of(dead)
    assert headers["dlq_error_code"] == "UnknownExecution"
    assert orjson.loads(headers["dlq_error_details"]) == {"execution_id": str(execution)}
    assert chain.ledger.counts(execution) == {}


async def test_another_configs_executions_are_left_alone(chain: Chain) -> None:
    foreign_before = chain.fates("a").get(Fate.FOREIGN, 0)
    execution = await chain.start({"n": 8}, config_id=uuid4())
    await eventually(lambda: chain.fates("a").get(Fate.FOREIGN, 0) > foreign_before, "a skip")
    assert chain.ledger.counts(execution) == {}
    assert chain.storage.routes(execution) == []


async def test_many_executions_at_once_each_drain(chain: Chain) -> None:
    executions = [await chain.start({"n": n}) for n in range(20)]
    await eventually(lambda: all(chain.outcomes.drained[e] > 0 for e in executions), "all to drain")
    for execution in executions:
        assert chain.ledger.counts(execution)["c"] == RouteCounts(2, 2, 0)
        assert chain.outcomes.failed[execution] == 0


async def test_a_worker_for_a_service_topic_is_refused(chain: Chain, tmp_path: Path) -> None:
    route = RouteSpec(name="x", inbound=Inbound(topic=chain.settings.topics.commands))
    with pytest.raises(ValueError, match="uses the service's own topics"):
        RouteWorker(
            chain.settings,
            chain.config_id,
            "x",
            route,
            {},
            chain.workers["a"].adapters,
            chain.ledger,
            MessageStorage(tmp_path),
            chain.executions.lookup,
            chain.outcomes.on_drained,
            chain.outcomes.on_failed,
            chain.producer,
        )


def test_every_fate_was_reached(chain: Chain) -> None:
    # Runs last in this module: the tests above between them took every path.
    reached = {fate for worker in chain.workers.values() for fate in worker.stats.fates}
    assert reached == set(Fate)
    assert all(worker.stats.retries == 0 for worker in chain.workers.values())
