"""Route workers on the real broker (tests.runtimes.orchestrator.chain_support): the path
that gives a record each of its fates, and a worker the route's topics refuse. The tests
share the module's chain and run in file order: the last checks that between them they
took every path."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import orjson
import pytest

from contracts.config_document import Inbound, RouteSpec
from contracts.envelope import CE_CORRELATIONID, CE_ID, KafkaRecord
from contracts.route_messages import (
    CE_EXECUTIONID,
    decode_route_message,
    init_message_id,
    output_message_id,
)
from services.adapters.message_store import FileMessageStore
from services.runtimes.orchestrator.ledger import RouteCounts
from services.runtimes.orchestrator.route_batch import Fate
from services.runtimes.orchestrator.route_worker import RouteWorker
from tests.runtimes.orchestrator.chain_support import Chain, module_chain
from tests.runtimes.orchestrator.worker_support import headers_of, init_record, read_keyed
from tests.waiting import eventually

pytestmark = pytest.mark.broker

chain = module_chain()


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


async def test_another_configs_executions_are_left_alone(chain: Chain) -> None:
    foreign_before = chain.fates("a").get(Fate.FOREIGN, 0)
    execution = await chain.start({"n": 8}, config_id=uuid4())
    await eventually(lambda: chain.fates("a").get(Fate.FOREIGN, 0) > foreign_before, "a skip")
    assert chain.ledger.counts(execution) == {}
    assert chain.storage.routes(execution) == []


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
            FileMessageStore(tmp_path),
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
