"""OpenLineage out, end to end: the whole service (e2e_support: api, handler, relay with its
lineage emitter, projector, orchestrator) on the real broker emits RunEvents to an HTTP
endpoint of the test's own through openlineage-python's HttpTransport, and on PostgreSQL
to a Kafka topic.

Covered: a config execution's START and COMPLETE with the config's topics, job and the
key the sink is given; a failing one's FAIL with its reason; a replay's `parent` facet;
a seed-003 pipeline run named after its pipeline, and one cancelled before it started
(START and ABORT); a sink answering 503 (retried, nothing lost) and 400 (skipped); and a
restarted emitter re-sending the very bytes it sent before its position was saved, then
nothing once it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
import yaml
from openlineage.client.event_v2 import RunEvent

from services.adapters.command_records import recorder_env
from services.adapters.eventstore import open_event_store
from services.runtimes.openlineage.emitter import EMITTER_NAME, LineageEmitter
from services.runtimes.openlineage.run_history import RunHistory
from services.runtimes.openlineage.sinks import TransportSink, dataset_namespace, http_transport
from tests.runtimes.orchestrator.e2e_support import (
    EXECUTIONS,
    Stack,
    e2e_stack,
    orders_document,
    stack_settings,
    topics_of,
)
from tests.runtimes.orchestrator.openlineage_support import LineageEndpoint, lineage_endpoint
from tests.runtimes.orchestrator.worker_support import read_keyed
from tests.waiting import eventually

pytestmark = pytest.mark.broker

KEY = "lineage-sink-key"
MAIN = "/api/v1/lineage"  # where the relay role's emitter posts


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LineageEndpoint]:
    with lineage_endpoint() as running:
        yield running


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str,
    broker_kind: str,
    tmp_path_factory: pytest.TempPathFactory,
    endpoint: LineageEndpoint,
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("openlineage-out")
    settings = stack_settings(
        kafka_bootstrap,
        broker_kind,
        tmp,
        lineage_sink="http",
        lineage_url=endpoint.url,
        lineage_api_key=KEY,
    )
    async with e2e_stack(settings) as running:
        yield running


async def emitted(endpoint: LineageEndpoint, run_id: UUID, count: int) -> list[Any]:
    await eventually(lambda: len(endpoint.events(run_id, MAIN)) >= count, f"{count} events")
    found = endpoint.events(run_id, MAIN)
    assert len(found) == count, found  # and no more than that
    return found


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
async def completed(stack: Stack) -> tuple[str, UUID, dict[str, str]]:
    """(config name, a completed execution of it, its topics)."""
    document = orders_document()
    name = f"orders-{uuid.uuid4().hex[:6]}"
    config_id = await stack.create_config(document, name=name)
    execution_id = await stack.started(config_id)
    await stack.until_status(execution_id, "completed")
    return name, execution_id, topics_of(document)


async def test_a_completed_execution_emits_start_then_complete_with_its_topics(
    stack: Stack, endpoint: LineageEndpoint, completed: tuple[str, UUID, dict[str, str]]
) -> None:
    name, execution_id, topics = completed
    start, complete = await emitted(endpoint, execution_id, 2)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    execution = await stack.execution(execution_id)
    assert instant(start["eventTime"]) == instant(execution["started_at"])
    assert instant(complete["eventTime"]) == instant(execution["completed_at"])
    namespace = dataset_namespace(stack.settings)
    assert namespace == f"kafka://{stack.settings.kafka_bootstrap_servers}"
    for one in (start, complete):
        assert one["run"]["runId"] == str(execution_id)
        assert one["producer"] == "urn:pipeline-service"
        assert (one["job"]["namespace"], one["job"]["name"]) == ("pipelines", name)
        assert one["job"]["facets"]["jobType"]["jobType"] == "CONFIG_EXECUTION"
        assert [(d["namespace"], d["name"]) for d in one["inputs"]] == [
            (namespace, topics["validate"])
        ]
        assert [d["name"] for d in one["outputs"]] == sorted(
            [topics["done"], topics["dead_letters"]]
        )
        assert "parent" not in one["run"].get("facets", {})
    with endpoint.lock:
        assert {r.authorization for r in endpoint.received} == {f"Bearer {KEY}"}


async def test_a_failing_execution_emits_fail_with_its_reason(
    stack: Stack, endpoint: LineageEndpoint
) -> None:
    failing = {"adapters": [{"type": "fail", "config": {"message": "no stock"}}]}
    document = yaml.safe_load(orders_document(enrich=failing))
    dead_letters = document["routes"]["validate"]["error_handling"]["dead_letter_topic"]
    document["routes"]["enrich"]["error_handling"] = {
        "max_retries": 1,
        "retry_delay_seconds": 0.05,
        "dead_letter_topic": dead_letters,
    }
    config_id = await stack.create_config(yaml.safe_dump(document), name="failing-orders")
    execution_id = await stack.started(config_id)
    await stack.until_status(execution_id, "failed")

    start, fail = await emitted(endpoint, execution_id, 2)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert fail["job"]["name"] == "failing-orders"
    error = fail["run"]["facets"]["errorMessage"]
    assert error["message"] and error["programmingLanguage"] == "python"


async def test_a_replay_names_its_parent_and_root(
    stack: Stack, endpoint: LineageEndpoint, completed: tuple[str, UUID, dict[str, str]]
) -> None:
    name, parent_id, _ = completed
    replayed = await stack.client.post(
        f"{EXECUTIONS}/{parent_id}/replay", json={"from_stage": "notify"}
    )
    assert replayed.status_code == 200, replayed.text
    child_id = UUID(replayed.json()["id"])
    await stack.until_status(child_id, "completed")

    for one in await emitted(endpoint, child_id, 2):
        parent = one["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == str(parent_id)
        assert parent["job"] == {"namespace": "pipelines", "name": name, "facets": {}}
        assert parent["root"]["run"]["runId"] == str(parent_id)
        assert parent["root"]["job"]["name"] == name
        assert parent["_schemaURL"].endswith("ParentRunFacet.json#/$defs/ParentRunFacet")


async def test_pipeline_runs_are_named_after_their_pipeline(
    stack: Stack, endpoint: LineageEndpoint, completed: tuple[str, UUID, dict[str, str]]
) -> None:
    _, execution_id, topics = completed
    config_id = (await stack.execution(execution_id))["config_id"]
    name = f"ol-{uuid.uuid4().hex[:8]}"
    created = await stack.client.post("/v0/pipelines", json={"name": name, "config_id": config_id})
    assert created.status_code == 201, created.text
    runs = f"/pipelines/v0/pipelines/{name}/runs"
    finished, cancelled = [
        (await stack.client.post(runs, json={})).json()["content"]["id"] for _ in range(2)
    ]
    for status in ("running", "success"):
        moved = await stack.client.put(f"{runs}/{finished}", json={"status": status})
        assert moved.status_code == 200, moved.text
    assert (await stack.client.put(f"{runs}/{cancelled}", json={"status": "cancelled"})).is_success

    start, complete = await emitted(endpoint, UUID(finished), 2)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["job"]["name"] == name
    assert start["job"]["facets"]["jobType"]["jobType"] == "PIPELINE_RUN"
    assert [d["name"] for d in start["inputs"]] == [topics["validate"]]
    # Cancelled before it started: a START for it still comes first, at the same time.
    start, abort = await emitted(endpoint, UUID(cancelled), 2)
    assert (start["eventType"], abort["eventType"]) == ("START", "ABORT")
    assert start["eventTime"] == abort["eventTime"]


async def test_a_sink_that_is_down_loses_nothing_and_a_refused_event_is_skipped(
    stack: Stack, endpoint: LineageEndpoint
) -> None:
    # The START meets a sink that is down (503) for two emitter rounds of three requests
    # (the transport's two retries), then gets in; the COMPLETE is refused for good (400).
    endpoint.answers.extend([503] * 6 + [201, 400])
    config_id = await stack.create_config(orders_document(), name="down-sink")
    execution_id = await stack.started(config_id)
    await stack.until_status(execution_id, "completed")
    await eventually(lambda: not endpoint.answers, "the queued answers to be given")
    (start,) = await emitted(endpoint, execution_id, 1)
    assert start["eventType"] == "START"
    # The refused COMPLETE was skipped: the next run's events still arrive.
    later = await stack.started(config_id)
    await stack.until_status(later, "completed")
    assert [e["eventType"] for e in await emitted(endpoint, later, 2)] == ["START", "COMPLETE"]


class LosesAcknowledgements:
    """A real sink whose acknowledgements are lost: the event arrives, the emitter is told
    it failed (a crash between the send and the saved position)."""

    def __init__(self, sink: TransportSink) -> None:
        self.sink = sink
        self.sent = 0

    async def emit(self, event: RunEvent) -> None:
        await self.sink.emit(event)
        self.sent += 1
        raise ConnectionError("acknowledgement lost")

    def close(self) -> None:
        self.sink.close()


@contextlib.asynccontextmanager
async def running(emitter: LineageEmitter) -> AsyncIterator[LineageEmitter]:
    stop = asyncio.Event()
    task = asyncio.create_task(emitter.run(stop))
    try:
        yield emitter
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_restarted_emitter_resends_the_identical_event_then_nothing(
    stack: Stack, endpoint: LineageEndpoint, completed: tuple[str, UUID, dict[str, str]]
) -> None:
    settings = stack.settings
    url = settings.event_store_url
    store = await asyncio.to_thread(open_event_store, url, extra_env=recorder_env(url))
    history = RunHistory(store, settings.lineage_namespace, dataset_namespace(settings))
    name = f"restart-{uuid.uuid4().hex[:6]}"  # a position of its own, from 0

    def sink(path: str) -> TransportSink:
        return TransportSink(http_transport(settings.model_copy(update={"lineage_endpoint": path})))

    try:
        lossy = LosesAcknowledgements(sink("first"))
        async with running(LineageEmitter(store, history, lossy, name=name)) as first:
            await eventually(lambda: lossy.sent >= 2, "the first event sent twice")
        assert first.position == store.recorder.get_position(name) == 0
        (sent, *again) = endpoint.bodies("/first")
        assert again and all(body == sent for body in again)  # retried: the same bytes

        main = store.recorder.get_position(EMITTER_NAME)
        async with running(LineageEmitter(store, history, sink("second"), name=name)) as second:
            await eventually(lambda: second.position >= main, "the restarted emitter to catch up")
        resent = endpoint.bodies("/second")
        assert resent[0] == sent  # after the restart: the very event, byte for byte
        assert sent in endpoint.bodies(MAIN)  # and what the relay role's emitter sent

        # Its position is saved: a third start has nothing left to send.
        position = store.recorder.get_position(name)
        assert position == second.position
        third = LineageEmitter(store, history, sink("third"), name=name)
        assert third.position == position
        assert await asyncio.to_thread(third.pending) == []
    finally:
        await asyncio.to_thread(store.close)


@pytest.mark.postgres
async def test_on_postgresql_to_a_kafka_topic(
    kafka_bootstrap: str, broker_kind: str, postgres_url: str, tmp_path: Path
) -> None:
    topic = f"test.openlineage.{uuid.uuid4().hex[:8]}"
    settings = stack_settings(
        kafka_bootstrap,
        broker_kind,
        tmp_path,
        store_url=postgres_url,
        lineage_sink="kafka",
        lineage_topic=topic,
        lineage_namespace="pg-pipelines",
    )
    async with e2e_stack(settings) as stack:
        config_id = await stack.create_config(orders_document(), name="pg-orders")
        execution_id = await stack.started(config_id)
        await stack.until_status(execution_id, "completed")
        records = await read_keyed(kafka_bootstrap, topic, b"run:pg-pipelines/pg-orders", 2)
    events = [orjson.loads(r.value) for r in records]
    assert [(e["eventType"], e["run"]["runId"]) for e in events] == [
        ("START", str(execution_id)),
        ("COMPLETE", str(execution_id)),
    ]
    assert all(e["job"] == events[0]["job"] for e in events)
