"""Executions end to end, in one process: configs created and run over real HTTP, the
command handler (with its orchestrator gate), relay, projector and an orchestrator role
on the real broker and SQLite. examples/orders.yaml (validate -> enrich -> notify), with
topics unique to each test, runs to `completed` with every route's stage counted;
skip_init_message, overrides, duplicate tags, invalid configs, cancel and a route that
dead-letters each end as seed 004 says. The completion runs on PostgreSQL too, in a stack of
its own."""

from __future__ import annotations

import uuid
from contextlib import closing
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
import yaml

from contracts.route_messages import RouteMessage, encode_route_message
from domain.config import Config
from services.adapters.kafka.clients import make_producer
from services.adapters.message_store import MessageStore, open_message_store
from services.adapters.stores import open_command_store
from services.runtimes.orchestrator.route_batch import Fate
from services.runtimes.routes.adapters import ENTRY_POINT_GROUP, load_adapter_registry
from tests.runtimes.orchestrator.e2e_support import (
    EXAMPLE,
    Stack,
    e2e_stack,
    module_stack,
    orders_document,
    stack_settings,
    topics_of,
)
from tests.runtimes.orchestrator.worker_support import headers_of, read_keyed
from tests.waiting import eventually

pytestmark = pytest.mark.broker

SLOW_S = 3.0  # a delay long enough to cancel an execution while a route is in it


stack = module_stack("e2e")


@pytest.fixture(scope="module")
async def orders(stack: Stack) -> tuple[UUID, dict[str, str]]:
    """One orders config shared by the tests that only run it (its workers join once)."""
    document = orders_document()
    return await stack.create_config(document), topics_of(document)


def _stored(stack: Stack) -> closing[MessageStore]:
    return closing(open_message_store(stack.settings))


async def _outputs(stack: Stack, topic: str, execution_id: UUID, count: int = 1) -> list[Any]:
    bootstrap = stack.settings.kafka_bootstrap_servers
    assert bootstrap is not None
    return await read_keyed(bootstrap, topic, str(execution_id).encode(), count)


async def runs_to_completed_with_every_stage_counted(
    stack: Stack, config_id: UUID, topics: dict[str, str]
) -> None:
    response = await stack.run(config_id)
    assert response.status_code == 200, response.text
    started = response.json()
    assert started["config_id"] == str(config_id)
    assert started["status"] == "running"
    assert response.headers["X-Pipelines-Version"] == "1"
    execution_id = UUID(started["id"])

    done = await stack.until_status(execution_id, "completed")
    assert done["completed_at"] is not None

    assert stack.stage_counts(execution_id) == {
        "validate": ("success", 1, 1, 0),
        "enrich": ("success", 1, 1, 0),
        "notify": ("success", 1, 1, 0),
    }
    (record,) = await _outputs(stack, topics["done"], execution_id)
    assert orjson.loads(record.value) == {
        "order_id": "A-1",
        "amount": 42,
        "summary": "order A-1 for ACME",
    }
    assert headers_of(record)["ce_route"] == "notify"
    assert headers_of(record)["ce_stage"] == "2"
    with _stored(stack) as storage:
        assert storage.routes(execution_id) == ["enrich", "notify", "validate"]
        for route in ("validate", "enrich", "notify"):
            assert len(storage.consumed(execution_id, route)) == 1
            assert len(storage.produced(execution_id, route)) == 1


async def test_the_example_runs_to_completed_with_every_stage_counted(
    stack: Stack, orders: tuple[UUID, dict[str, str]]
) -> None:
    await runs_to_completed_with_every_stage_counted(stack, *orders)


@pytest.mark.postgres
async def test_the_example_runs_to_completed_on_postgresql(
    kafka_bootstrap: str, broker_kind: str, postgres_url: str, tmp_path: Path
) -> None:
    """The same run with every role on PostgreSQL (event store, read models, ledger,
    heartbeats): the production database, end to end."""
    settings = stack_settings(kafka_bootstrap, broker_kind, tmp_path, store_url=postgres_url)
    async with e2e_stack(settings) as stack:
        document = orders_document()
        config_id = await stack.create_config(document)
        await runs_to_completed_with_every_stage_counted(stack, config_id, topics_of(document))


async def test_overrides_reach_the_init_message(
    stack: Stack, orders: tuple[UUID, dict[str, str]]
) -> None:
    config_id, topics = orders
    execution_id = await stack.started(config_id, {"customer": "Globex", "amount": 7})
    await stack.until_status(execution_id, "completed")
    (init,) = await _outputs(stack, topics["validate"], execution_id)
    assert orjson.loads(init.value) == {"order_id": "A-1", "customer": "Globex", "amount": 7}
    (record,) = await _outputs(stack, topics["done"], execution_id)
    assert orjson.loads(record.value)["summary"] == "order A-1 for Globex"


async def test_an_order_the_filter_drops_still_completes(
    stack: Stack, orders: tuple[UUID, dict[str, str]]
) -> None:
    config_id, _ = orders
    execution_id = await stack.started(config_id, {"amount": 0})
    await stack.until_status(execution_id, "completed")
    stages = stack.stages(execution_id)
    assert (stages["validate"]["messages_in"], stages["validate"]["messages_out"]) == (1, 0)
    assert stages["enrich"]["messages_in"] == 0
    assert {s["status"] for s in stages.values()} == {"success"}


async def test_skip_init_message_waits_for_messages_from_outside(
    stack: Stack, orders: tuple[UUID, dict[str, str]]
) -> None:
    config_id, topics = orders
    execution_id = await stack.started(config_id, skip_init_message=True)
    await stack.until_status(execution_id, "running")
    # Several sweeps later it still runs: nothing was published, nothing is expected.
    orchestrator = stack.orchestrators[0]
    sweeps = orchestrator.sweeps
    await eventually(lambda: orchestrator.sweeps >= sweeps + 5, "five sweeps")
    assert (await stack.execution(execution_id))["status"] == "running"
    assert stack.ledger_counts(execution_id) == {}

    # A message from outside enters as the init route does (ce_route `init`).
    message = RouteMessage(
        id=uuid.uuid4(),
        execution_id=execution_id,
        route="init",
        payload={"order_id": "X-9", "customer": "Outside", "amount": 5},
    )
    record = encode_route_message(message)
    producer = make_producer(stack.settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics["validate"], value=record.value, key=record.key, headers=record.headers
        )
    finally:
        await producer.stop()
    await stack.until_status(execution_id, "completed")
    (done,) = await _outputs(stack, topics["done"], execution_id)
    assert orjson.loads(done.value)["summary"] == "order X-9 for Outside"


async def test_a_tag_is_used_once(stack: Stack, orders: tuple[UUID, dict[str, str]]) -> None:
    config_id, _ = orders
    tag = f"nightly-{uuid.uuid4().hex[:6]}"
    first = await stack.run(config_id, tag=tag)
    assert first.status_code == 200, first.text
    assert first.json()["tag"] == tag
    again = await stack.run(config_id, tag=tag)
    assert again.status_code == 409, again.text
    body = again.json()
    assert body["error_code"] == "DuplicateTag"
    assert set(body) >= {"detail", "error_code", "correlation_id", "timestamp"}
    await stack.until_status(UUID(first.json()["id"]), "completed")


async def test_bad_requests_get_their_errors(
    stack: Stack, orders: tuple[UUID, dict[str, str]]
) -> None:
    config_id, _ = orders
    unknown = await stack.run(uuid.uuid4())
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "UnknownConfig"
    not_uuid = await stack.client.post("/api/v1/configs/not-a-uuid/run")
    assert not_uuid.status_code == 422
    assert "detail" in not_uuid.json()
    not_object = await stack.run(config_id, [1, 2])
    assert not_object.status_code == 422
    empty_tag = await stack.run(config_id, tag="")
    assert empty_tag.status_code == 422
    cancel_unknown = await stack.client.post(f"/api/v1/executions/{uuid.uuid4()}/cancel")
    assert cancel_unknown.status_code == 404
    assert cancel_unknown.json()["error_code"] == "UnknownExecution"
    cancel_not_uuid = await stack.client.post("/api/v1/executions/nope/cancel")
    assert cancel_not_uuid.status_code == 422


async def test_a_config_that_no_longer_validates_is_refused_with_its_report(
    stack: Stack,
) -> None:
    # Stored while a plug-in was installed; the handler's adapters no longer have it.
    plugin = EntryPoint(
        "repeat", "tests.runtimes.orchestrator.plugin_adapters:Repeat", ENTRY_POINT_GROUP
    )
    registry, _ = load_adapter_registry([plugin], strict=True)
    document = yaml.safe_load(orders_document())
    document["routes"]["notify"]["adapters"] = [{"type": "repeat", "config": {"times": 2}}]
    config = Config.create("with-plugin", document, datetime.now(UTC), registry=registry)
    store = open_command_store(stack.settings.event_store_url)
    try:
        store.save(config)
    finally:
        store.close()
    response = await stack.run(config.id)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "ConfigValidationFailed"
    assert body["is_valid"] is False
    assert [issue["code"] for issue in body["issues"] if issue["severity"] == "error"] == ["E103"]
    assert set(body) >= {"detail", "correlation_id", "timestamp", "issues"}


async def test_cancel_mid_run_skips_the_later_messages(stack: Stack) -> None:
    slow = {"adapters": [{"type": "delay", "config": {"seconds": SLOW_S}}]}
    document = orders_document(enrich=slow)
    config_id = await stack.create_config(document, name="slow-orders")
    execution_id = await stack.started(config_id)
    # `validate` handled the init message, so `enrich` has its message (or soon will).
    await eventually(
        lambda: stack.ledger_counts(execution_id).get("validate", (0, 0, 0))[1] == 1,
        "validate to consume the init message",
    )
    response = await stack.client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"

    # `enrich` skips it: in its delay (outputs dropped) or before (never run).
    await eventually(
        lambda: stack.fates(config_id, "enrich").get(Fate.FINISHED, 0) == 1, "enrich skips"
    )
    assert "notify" not in stack.ledger_counts(execution_id)
    with _stored(stack) as storage:
        assert storage.consumed(execution_id, "notify") == []
    await stack.until_status(execution_id, "cancelled")  # the read model catches up
    again = await stack.client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"


async def test_a_route_that_dead_letters_fails_the_execution(stack: Stack) -> None:
    failing = {
        "adapters": [{"type": "fail", "config": {"message": "no stock"}}],
        "error_handling": {
            "max_retries": 1,
            "retry_delay_seconds": 0.05,
            "dead_letter_topic": "replaced below",
        },
    }
    document = orders_document(enrich=failing)
    topics = topics_of(document)
    parsed = yaml.safe_load(document)
    parsed["routes"]["enrich"]["error_handling"]["dead_letter_topic"] = topics["dead_letters"]
    config_id = await stack.create_config(yaml.safe_dump(parsed), name="failing-orders")
    execution_id = await stack.started(config_id)

    failed = await stack.until_status(execution_id, "failed")
    assert failed["completed_at"] is not None
    assert stack.stage_counts(execution_id) == {
        "validate": ("success", 1, 1, 0),
        "enrich": ("failure", 1, 0, 1),
        "notify": ("cancelled", 0, 0, 0),
    }
    (dead,) = await _outputs(stack, topics["dead_letters"], execution_id)
    headers = headers_of(dead)
    assert headers["dlq_error_code"] == "AdapterFailed"
    assert headers["dlq_route"] == "enrich"
    assert "no stock" in headers["dlq_error_message"]
    # Once the execution finished, a completed one cannot be cancelled.
    refused = await stack.client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert refused.status_code == 409
    assert refused.json()["error_code"] == "RunAlreadyTerminal"


async def test_the_example_is_accepted_as_json_too(stack: Stack) -> None:
    examples = EXAMPLE.parent
    from_yaml = await stack.client.post(
        "/api/v1/configs",
        params={"name": "orders-yaml"},
        content=(examples / "orders.yaml").read_bytes(),
        headers={"Content-Type": "application/yaml"},
    )
    from_json = await stack.client.post(
        "/api/v1/configs",
        params={"name": "orders-json"},
        content=(examples / "orders.json").read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    assert (from_yaml.status_code, from_json.status_code) == (201, 201), from_json.text
    assert from_json.json()["document"] == from_yaml.json()["document"]
    assert from_json.json()["validation_report"]["is_valid"] is True
