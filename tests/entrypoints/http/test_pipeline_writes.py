"""Seeds 000/001 writes over real HTTP: the `api` role on a free port, the real broker,
an in-process command handler on SQLite. Bodies and status codes are the seeds' and
those of Feldera's documented lifecycle (docs/pipeline-lifecycle.md §2-§4)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from contracts.config_commands import CreateConfig
from contracts.results import CommandAccepted
from services.settings import Settings
from tests.entrypoints.http.support import Handler, api_stack, command_bus
from tests.expected_bodies import STOPPING_BODY
from tests.service_layer.decider_support import (
    begin_stopping,
    config_document,
    provision,
    stored_event_count,
    stored_pipeline,
)

Stack = tuple[Settings, httpx.AsyncClient, Handler]


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with api_stack(kafka_bootstrap, tmp_path_factory.mktemp("api")) as (s, client, h):
        assert h is not None
        yield s, client, h


@pytest.fixture
def client(stack: Stack) -> httpx.AsyncClient:
    return stack[1]


@pytest.fixture
def handler(stack: Stack) -> Handler:
    return stack[2]


def unique(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def version_of(handler: Handler, name: str) -> int:
    version: int = stored_pipeline(handler.store, name).version
    return version


async def create(client: httpx.AsyncClient, name: str, **body: object) -> httpx.Response:
    response = await client.post("/v0/pipelines", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return response


# --- create and start ------------------------------------------------------------------


async def test_create_answers_201_with_the_pipeline_and_its_version(
    client: httpx.AsyncClient, handler: Handler
) -> None:
    name = unique()
    response = await create(client, name, description="orders")
    body = response.json()
    pipeline = stored_pipeline(handler.store, name)
    assert body["id"] == str(pipeline.id)
    assert (body["name"], body["description"]) == (name, "orders")
    assert (body["deployment_status"], body["deployment_desired_status"]) == ("Stopped", "Stopped")
    assert response.headers["X-Pipelines-Version"] == str(pipeline.version)

    again = await client.post("/v0/pipelines", json={"name": name})
    assert again.status_code == 409
    assert again.json()["error_code"] == "DuplicateName"
    assert set(again.json()) == {"message", "error_code", "details"}


async def test_start_answers_202_pipeline_is_starting_with_the_new_version(
    client: httpx.AsyncClient, handler: Handler
) -> None:
    name = unique()
    created = await create(client, name)
    response = await client.post(f"/v0/pipelines/{name}/start")
    assert response.status_code == 202
    assert response.json() == "Pipeline is starting"
    version = int(response.headers["X-Pipelines-Version"])
    assert version == version_of(handler, name)
    assert version > int(created.headers["X-Pipelines-Version"])
    pipeline = stored_pipeline(handler.store, name)
    assert str(pipeline.resources_desired_status) == "Provisioned"


async def test_start_passes_its_query_parameters_on(
    client: httpx.AsyncClient, handler: Handler
) -> None:
    name = unique()
    await create(client, name)
    response = await client.post(
        f"/v0/pipelines/{name}/start",
        params={"initial": "paused", "bootstrap_policy": "allow", "dismiss_error": "False"},
    )
    assert response.status_code == 202, response.text
    pipeline = stored_pipeline(handler.store, name)
    assert (str(pipeline.deployment_initial), str(pipeline.bootstrap_policy)) == (
        "paused",
        "allow",
    )
    # Feldera's check 8: the initial status is fixed until the pipeline is stopped.
    changed = await client.post(f"/v0/pipelines/{name}/start", params={"initial": "running"})
    assert changed.status_code == 400
    assert changed.json()["error_code"] == "InitialImmutableUnlessStopped"


async def test_start_of_an_unknown_pipeline_is_404_in_feldera_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v0/pipelines/non-existent-pipeline/start")
    assert response.status_code == 404
    assert response.json() == {
        "message": "Unknown pipeline name 'non-existent-pipeline'",
        "error_code": "UnknownPipelineName",
        "details": {"pipeline_name": "non-existent-pipeline"},
    }


async def test_start_while_stopping_is_the_seed_illegal_pipeline_action(
    stack: Stack, client: httpx.AsyncClient, handler: Handler
) -> None:
    settings = stack[0]
    config = CreateConfig(name="c", document=config_document())
    async with command_bus(settings) as bus:
        assert isinstance(await bus.send(config), CommandAccepted)
    name = unique()
    await create(client, name, config_id=str(config.config_id))
    assert (await client.post(f"/v0/pipelines/{name}/start")).status_code == 202
    async with handler.paused() as store:  # the reconciler's part of a start
        provision(store, name, datetime.now(UTC))
    forced = await client.post(f"/v0/pipelines/{name}/stop", params={"force": "true"})
    assert forced.status_code == 202
    assert forced.json() == "Pipeline is forcefully stopping"
    async with handler.paused() as store:
        begin_stopping(store, name, datetime.now(UTC))
        stopping_version = version_of(handler, name)

    response = await client.post(f"/v0/pipelines/{name}/start")
    assert response.status_code == 400
    assert response.json() == STOPPING_BODY
    assert version_of(handler, name) == stopping_version


# --- query parameters: the family's own errors, never FastAPI's 422 ----------------------


async def test_an_unknown_initial_is_405_unsupported_pipeline_action(
    client: httpx.AsyncClient,
) -> None:
    # Checked before the pipeline is looked up (Feldera's order): no command is sent.
    response = await client.post("/v0/pipelines/no-such-pipeline/start?initial=foo")
    assert response.status_code == 405
    assert response.json() == {
        "message": "Unsupported pipeline action '/start?initial=foo': "
        "unknown initial runtime desired status: foo",
        "error_code": "UnsupportedPipelineAction",
        "details": {
            "action": "/start?initial=foo",
            "reason": "unknown initial runtime desired status: foo",
        },
    }


@pytest.mark.parametrize(
    ("path", "parameter", "value", "expected"),
    [
        ("/start", "dismiss_error", "maybe", "true or false"),
        ("/start", "bootstrap_policy", "sometimes", "one of allow, reject, await_approval"),
        ("/stop", "force", "1", "true or false"),
    ],
)
async def test_a_bad_query_parameter_is_a_400_in_feldera_shape(
    client: httpx.AsyncClient,
    handler: Handler,
    path: str,
    parameter: str,
    value: str,
    expected: str,
) -> None:
    name = unique()
    await create(client, name)
    before = version_of(handler, name)
    response = await client.post(f"/v0/pipelines/{name}{path}", params={parameter: value})
    assert response.status_code == 400
    assert response.json() == {
        "message": f"Invalid value '{value}' for query parameter '{parameter}': "
        f"expected {expected}",
        "error_code": "InvalidQueryParameter",
        "details": {"parameter": parameter, "value": value, "expected": expected},
    }
    assert version_of(handler, name) == before


async def test_a_bad_body_or_route_is_answered_in_feldera_shape(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.post("/v0/pipelines", json={"description": "no name"})
    assert missing.status_code == 400
    body = missing.json()
    assert body["error_code"] == "InvalidRequest"
    assert body["details"]["errors"][0]["loc"] == ["body", "name"]
    extra = await client.post("/v0/pipelines", json={"name": unique(), "program_kode": "x"})
    assert extra.status_code == 400
    assert extra.json()["details"]["errors"][0]["loc"] == ["body", "program_kode"]
    unknown = await client.post("/v0/pipelines/p/launch")
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Not Found", "error_code": "NotFound", "details": None}


# --- the other actions -----------------------------------------------------------------


async def test_every_action_reaches_its_command(
    client: httpx.AsyncClient, handler: Handler
) -> None:
    name = unique()
    await create(client, name)
    base = f"/v0/pipelines/{name}"

    # Forwarded actions on a stopped pipeline: 503 PipelineInteractionNotDeployed (§2.3).
    for action in ("pause", "resume", "approve", "checkpoint"):
        response = await client.post(f"{base}/{action}")
        assert response.status_code == 503, action
        assert response.json()["error_code"] == "PipelineInteractionNotDeployed", action
        assert response.headers["Retry-After"] == "5", action

    dismissed = await client.post(f"{base}/dismiss_error")
    assert (dismissed.status_code, dismissed.json()) == (
        200,
        "Pipeline deployment error has been dismissed",
    )
    cleared = await client.post(f"{base}/clear")
    assert (cleared.status_code, cleared.json()) == (202, "Pipeline storage is being cleared")
    stopped = await client.post(f"{base}/stop", params={"force": "true"})
    assert (stopped.status_code, stopped.json()) == (202, "Pipeline is forcefully stopping")

    pipeline_id = stored_pipeline(handler.store, name).id
    deleted = await client.delete(base)
    assert deleted.status_code == 200
    assert deleted.content == b""
    assert (
        int(deleted.headers["X-Pipelines-Version"])
        == handler.store.repository.get(pipeline_id).version
    )
    gone = await client.post(f"{base}/start")
    assert gone.status_code == 404
    assert gone.json()["error_code"] == "UnknownPipelineName"


# --- idempotency ---------------------------------------------------------------------------


async def test_a_repeated_idempotency_key_gets_the_same_answer_and_one_effect(
    client: httpx.AsyncClient, handler: Handler
) -> None:
    name = unique()
    key = str(uuid.uuid4())
    # A second create of the same name would be 409 DuplicateName: the same key is the
    # same command, answered again, not applied again.
    first = await client.post(
        "/v0/pipelines", json={"name": name}, headers={"Idempotency-Key": key}
    )
    again = await client.post(
        "/v0/pipelines", json={"name": name}, headers={"Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.headers["X-Pipelines-Version"] == again.headers["X-Pipelines-Version"]
    pipeline_id = stored_pipeline(handler.store, name).id
    created_events = stored_event_count(handler.store, pipeline_id)

    start_key = {"Idempotency-Key": str(uuid.uuid4())}
    starts = await asyncio.gather(
        *(client.post(f"/v0/pipelines/{name}/start", headers=start_key) for _ in range(3))
    )
    later = await client.post(f"/v0/pipelines/{name}/start", headers=start_key)
    for response in [*starts, later]:
        assert (response.status_code, response.json()) == (202, "Pipeline is starting")
        assert response.headers["X-Pipelines-Version"] == starts[0].headers["X-Pipelines-Version"]
    assert stored_event_count(handler.store, pipeline_id) == created_events + 1
