"""Over real HTTP, on SQLite and PostgreSQL, one stack per store (the `api` role, an
in-process command handler that sees the read models, the relay and projector roles):

- `DELETE /api/v1/configs/{id}`: refused (409 ConfigInUse, naming them) while an
  execution of the config runs or a pipeline names it; then 204, the config gone from
  the list and 404 by id, a retry under the same Idempotency-Key answered 204 again and
  a new DELETE 404, while its execution stays readable.
- who sent a command: the API key's name over HTTP, the `ce_source` over Kafka, on the
  stored result and in the read models (who last changed a pipeline's desired state,
  who started and who ended an execution).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from contracts.pipeline_commands import StartPipeline
from contracts.results import CommandAccepted
from projections.store import ReadStore
from services.adapters.eventstore import EventStore
from services.adapters.kafka.clients import ensure_topics
from services.adapters.kafka.command_bus import CommandBus
from services.adapters.stores import open_command_store
from services.entrypoints.http.submit import VERSION_HEADER
from services.runtimes.command_handler import CommandConsumer
from services.service_layer.decider import Decider
from services.service_layer.handlers import HANDLERS
from tests.entrypoints.http.support import (
    STORES,
    api_server,
    api_settings,
    bearer,
    create_api_key,
    module_store_url,
    read_model_roles,
)
from tests.entrypoints.http.test_configs_api import YAML_DOC
from tests.runtimes.command_handler.consumer_support import running
from tests.waiting import eventually_async

CONFIGS = "/api/v1/configs"
EXECUTIONS = "/api/v1/executions"
PIPELINES = "/v0/pipelines"


@dataclass(frozen=True)
class Stack:
    client: httpx.AsyncClient
    alice: dict[str, str]  # the headers of a write key named "alice"
    default_key: str  # the name of the client's own key
    store: EventStore
    bus: CommandBus  # sends as another service would: ce_source "billing-service"


@pytest.fixture(scope="module", params=STORES)
async def stack(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    url = module_store_url(request, tmp_path_factory.mktemp("config-delete"))
    # Apache Kafka's shortest session by default (the group joins take half as long on
    # the embedded broker), and `pipelines dev`'s fetch wait (each hop takes it there).
    settings = api_settings(
        kafka_bootstrap, url, kafka_session_timeout_ms=6000, kafka_fetch_wait_ms=20
    )
    await ensure_topics(settings)
    async with contextlib.AsyncExitStack() as stack:
        store = await asyncio.to_thread(open_command_store, url)
        stack.push_async_callback(asyncio.to_thread, store.close)
        reads = await asyncio.to_thread(ReadStore, url)
        stack.push_async_callback(asyncio.to_thread, reads.close)
        # The handler role's decider as far as DeleteConfig goes: it sees the read models.
        consumer = CommandConsumer(settings, Decider(store, HANDLERS, usage=reads))
        await stack.enter_async_context(running(consumer))
        client = await stack.enter_async_context(api_server(settings))
        await stack.enter_async_context(read_model_roles(settings))
        alice = await asyncio.to_thread(create_api_key, url, name="alice")
        bus = CommandBus(settings, source="billing-service")
        await bus.start(results=True)
        stack.push_async_callback(bus.stop)
        me = (await client.get("/v0/api-keys")).json()
        (default_key,) = [key["name"] for key in me if key["name"] != "alice"]
        yield Stack(client, bearer(alice), default_key, store, bus)


def version(response: httpx.Response) -> dict[str, str]:
    """The X-Min-Version that reads what `response` wrote."""
    return {"X-Min-Version": response.headers[VERSION_HEADER]}


def stored_result(store: EventStore, command_id: str) -> dict[str, Any]:
    found = store.recorder.select_processed([command_id])  # type: ignore[attr-defined]
    result: dict[str, Any] = orjson.loads(found[command_id])
    return result


async def new_config(client: httpx.AsyncClient) -> str:
    response = await client.post(
        CONFIGS,
        content=YAML_DOC,
        params={"name": "doomed"},
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    config_id: str = response.json()["id"]
    return config_id


async def test_a_config_in_use_is_refused_and_deleted_once_unused(stack: Stack) -> None:
    client = stack.client
    config_id = await new_config(client)
    pipeline = f"uses-{uuid.uuid4().hex[:6]}"
    created = await client.post(PIPELINES, json={"name": pipeline, "config_id": config_id})
    assert created.status_code == 201, created.text
    run = await client.post(f"{CONFIGS}/{config_id}/run")
    assert run.status_code == 200, run.text
    execution_id = run.json()["id"]
    # Once the read models show both (a delete checks them), it is refused, naming them.
    shown = await client.get(f"{EXECUTIONS}/{execution_id}", headers=version(run))
    assert shown.status_code == 200, shown.text
    assert (
        await client.get(f"{PIPELINES}/{pipeline}", headers=version(created))
    ).status_code == 200

    refused = await client.delete(f"{CONFIGS}/{config_id}")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error_code"] == "ConfigInUse"
    assert {"detail", "correlation_id", "timestamp"} <= body.keys()
    assert body["running_executions"] == [{"id": execution_id, "status": "pending"}]
    assert (body["running_executions_total"], body["pipelines"], body["pipelines_total"]) == (
        1,
        [pipeline],
        1,
    )

    # Alice cancels the run; the pipeline goes; then the config can go.
    cancelled = await client.post(f"{EXECUTIONS}/{execution_id}/cancel", headers=stack.alice)
    assert cancelled.status_code == 200, cancelled.text
    gone = await client.delete(f"{PIPELINES}/{pipeline}")
    assert gone.status_code == 200, gone.text
    assert (await client.get(f"{EXECUTIONS}/{execution_id}", headers=version(cancelled))).json()[
        "status"
    ] == "cancelled"

    async def pipeline_gone() -> bool:
        # X-Min-Version cannot name a deleted pipeline (its name is free again): poll.
        return (await client.get(f"{PIPELINES}/{pipeline}")).status_code == 404

    await eventually_async(pipeline_gone, "the read model to drop the pipeline")

    key = {"Idempotency-Key": str(uuid.uuid4())}
    deleted = await client.delete(f"{CONFIGS}/{config_id}", headers=key)
    assert (deleted.status_code, deleted.content) == (204, b""), deleted.text
    after = await client.get(f"{CONFIGS}/{config_id}", headers=version(deleted))
    assert (after.status_code, after.json()["error_code"]) == (404, "UnknownConfig")
    listed = (await client.get(CONFIGS)).json()["configs"]
    assert config_id not in {config["id"] for config in listed}
    # The same request again is the same command: its answer again. A new one is 404.
    again = await client.delete(f"{CONFIGS}/{config_id}", headers=key)
    assert (again.status_code, again.headers[VERSION_HEADER]) == (
        204,
        deleted.headers[VERSION_HEADER],
    )
    second = await client.delete(f"{CONFIGS}/{config_id}")
    assert (second.status_code, second.json()["error_code"]) == (404, "UnknownConfig")
    assert (await client.post(f"{CONFIGS}/{config_id}/run")).status_code == 404

    # Its execution keeps its history, with who started it and who ended it.
    kept = await client.get(f"{EXECUTIONS}/{execution_id}")
    assert kept.status_code == 200, kept.text
    assert kept.json()["config_id"] == config_id
    assert (kept.json()["started_by"], kept.json()["completed_by"]) == (stack.default_key, "alice")


async def test_who_changed_a_pipeline_is_its_key_over_http_and_its_source_over_kafka(
    stack: Stack,
) -> None:
    client = stack.client
    name = f"p-{uuid.uuid4().hex[:6]}"
    assert (await client.post(PIPELINES, json={"name": name})).status_code == 201
    started = await client.post(f"{PIPELINES}/{name}/start")
    assert started.status_code == 202, started.text
    row = (await client.get(f"{PIPELINES}/{name}", headers=version(started))).json()
    assert (row["deployment_desired_status"], row["deployment_desired_status_by"]) == (
        "Running",
        stack.default_key,
    )

    stop_id = str(uuid.uuid4())
    stopped = await client.post(
        f"{PIPELINES}/{name}/stop", headers={**stack.alice, "Idempotency-Key": stop_id}
    )
    assert stopped.status_code == 202, stopped.text
    row = (await client.get(f"{PIPELINES}/{name}", headers=version(stopped))).json()
    assert (row["deployment_desired_status"], row["deployment_desired_status_by"]) == (
        "Stopped",
        "alice",
    )
    assert stored_result(stack.store, stop_id)["sent_by"] == "alice"

    # Another service, over Kafka: its ce_source is who sent it.
    result = await stack.bus.send(StartPipeline(pipeline_name=name))
    assert isinstance(result, CommandAccepted), result
    assert result.sent_by == "billing-service"
    assert stored_result(stack.store, result.command_id)["sent_by"] == "billing-service"
    row = (
        await client.get(
            f"{PIPELINES}/{name}", headers={"X-Min-Version": str(result.aggregate_version)}
        )
    ).json()
    assert (row["deployment_desired_status"], row["deployment_desired_status_by"]) == (
        "Running",
        "billing-service",
    )
