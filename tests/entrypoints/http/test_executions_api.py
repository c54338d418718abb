"""Seed 004's execution reads over real HTTP, on SQLite and PostgreSQL: the `api` role,
the real broker, an in-process command handler, and the relay and projector roles keeping
the read models. Configs are created over HTTP; their executions by RunConfig through a
command bus of the test's own (the run endpoint is another router), and moved to each
seed-004 status with UpdateRunStatus. A pipeline run beside them must not show."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from contracts.command_base import Command
from contracts.config_commands import RunConfig
from contracts.results import CommandAccepted
from contracts.run_commands import CreateRun, UpdateRunStatus
from contracts.statuses import ReplaySource
from services.adapters.kafka.command_bus import CommandBus
from services.entrypoints.http.executions import EXECUTION_FIELDS, MAX_LIMIT
from services.entrypoints.http.factflow import (
    ErrorResponse,
    ExecutionListResponse,
    ExecutionResponse,
)
from tests.entrypoints.http.support import (
    STORES,
    api_settings,
    command_bus,
    module_store_url,
    projected_api,
)

EXECUTIONS = "/api/v1/executions"
YAML_DOC = """\
version: "1.0"
routes:
  fetch:
    name: Fetch
    inbound: {topic: fetch.in}
    adapters: [{type: pass_through}]
init_message: {route: fetch, payload: {url: "https://a"}}
"""
# canonical status each execution is moved to -> the seed-004 status it shows
SHOWN = {
    None: "running",
    "success": "completed",
    "failure": "failed",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
}


@dataclass
class World:
    client: httpx.AsyncClient
    bus: CommandBus
    config_a: str = ""
    config_b: str = ""
    # name -> (id, RunConfig's reply, status shown); in creation order
    executions: dict[str, tuple[str, dict[str, Any], str]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pipeline_run: str = ""

    async def send(self, command: Command) -> CommandAccepted:
        result = await self.bus.send(command)
        assert isinstance(result, CommandAccepted), result
        return result

    async def config(self) -> str:
        response = await self.client.post("/api/v1/configs", params={"name": "c"}, content=YAML_DOC)
        assert response.status_code == 201, response.text
        config_id: str = response.json()["id"]
        return config_id

    async def run(self, name: str, config_id: str, status: str | None, **extra: Any) -> None:
        tag = f"{name}-{uuid.uuid4().hex[:8]}"
        result = await self.send(RunConfig(config_id=uuid.UUID(config_id), tag=tag, **extra))
        assert result.aggregate_id is not None and result.aggregate_version is not None
        version = result.aggregate_version
        if status is not None:
            moved = await self.send(
                UpdateRunStatus(run_id=uuid.UUID(result.aggregate_id), status=status)
            )
            assert moved.aggregate_version is not None
            version = moved.aggregate_version
        # in the read model before any test reads it
        seen = await self.client.get(
            f"{EXECUTIONS}/{result.aggregate_id}", headers={"X-Min-Version": str(version)}
        )
        assert seen.status_code == 200, seen.text
        self.executions[name] = (result.aggregate_id, result.reply, SHOWN[status])
        self.tags[name] = tag

    def id_of(self, name: str) -> str:
        return self.executions[name][0]

    def newest_first(self, *names: str) -> list[str]:
        return [self.id_of(name) for name in reversed(self.executions) if name in names]


@pytest.fixture(scope="module", params=STORES)
async def world(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    store_url = module_store_url(request, tmp_path_factory.mktemp("executions"))
    settings = api_settings(kafka_bootstrap, store_url)
    async with projected_api(settings) as client, command_bus(settings) as bus:
        yield await populated(World(client, bus))


async def populated(world: World) -> World:
    world.config_a = await world.config()
    world.config_b = await world.config()
    await world.run("a1", world.config_a, None)
    await world.run("a2", world.config_a, "success")
    await world.run("a3", world.config_a, "failure")
    await world.run("b1", world.config_b, "cancelled")
    await world.run(
        "b2",
        world.config_b,
        "interrupted",
        parent_execution_id=uuid.UUID(world.id_of("a1")),
        replay_source=ReplaySource.STORAGE,
    )
    # A pipeline's run (seed 003) in the same read model.
    name = f"p-{uuid.uuid4().hex[:8]}"
    created = await world.client.post("/v0/pipelines", json={"name": name})
    assert created.status_code == 201, created.text
    run = await world.send(CreateRun(pipeline_id=name))
    assert run.aggregate_id is not None
    seen = await world.client.get(
        f"/api/v1/jobs/runs/{run.aggregate_id}", headers={"X-Min-Version": "1"}
    )
    assert seen.status_code == 200, seen.text
    world.pipeline_run = run.aggregate_id
    return world


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == set(ErrorResponse.model_fields)
    assert body["error_code"] == code
    assert body["correlation_id"] == response.headers["X-Correlation-ID"]
    return body


def assert_fastapi_422(response: httpx.Response, loc: list[str]) -> None:
    assert response.status_code == 422, response.text
    assert [entry["loc"] for entry in response.json()["detail"]] == [loc]


async def listing(world: World, **params: Any) -> dict[str, Any]:
    response = await world.client.get(EXECUTIONS, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == list(ExecutionListResponse.model_fields)
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [execution["id"] for execution in body["executions"]]


# --- one execution -----------------------------------------------------------------------------


def test_the_response_fields_are_the_seeds() -> None:
    assert list(EXECUTION_FIELDS) == list(ExecutionResponse.model_fields)


async def test_an_execution_reads_as_the_run_answered_it(world: World) -> None:
    execution_id, reply, _ = world.executions["a1"]
    response = await world.client.get(f"{EXECUTIONS}/{execution_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == list(EXECUTION_FIELDS)
    assert body == reply
    assert (body["config_id"], body["status"], body["tag"]) == (
        world.config_a,
        "running",
        world.tags["a1"],
    )
    assert body["started_at"] is not None and body["completed_at"] is None
    assert body["parent_execution_id"] is None and body["replay_source"] is None


@pytest.mark.parametrize("name", ["a2", "a3", "b1", "b2"])
async def test_every_seed_004_status_shows(world: World, name: str) -> None:
    execution_id, _, shown = world.executions[name]
    body = (await world.client.get(f"{EXECUTIONS}/{execution_id}")).json()
    assert body["status"] == shown
    assert body["completed_at"] is not None
    assert body["completed_at"] >= body["started_at"]


async def test_a_replay_shows_its_parent_and_source(world: World) -> None:
    body = (await world.client.get(f"{EXECUTIONS}/{world.id_of('b2')}")).json()
    assert (body["parent_execution_id"], body["replay_source"]) == (world.id_of("a1"), "storage")
    assert body["config_id"] == world.config_b


async def test_unknown_ids_and_pipeline_runs_are_404(world: World) -> None:
    for missing in (str(uuid.uuid4()), world.pipeline_run):
        error = assert_error(
            await world.client.get(f"{EXECUTIONS}/{missing}"), 404, "UnknownExecution"
        )
        assert missing in error["detail"]


async def test_a_version_never_reached_is_503_after_the_wait(
    world: World, fast_min_version_wait: None
) -> None:
    response = await world.client.get(
        f"{EXECUTIONS}/{world.id_of('a1')}", headers={"X-Min-Version": "1000"}
    )
    assert_error(response, 503, "ReadModelBehind")
    assert response.headers["Retry-After"] == "5"


async def test_a_non_uuid_id_or_a_bad_header_is_fastapis_422(world: World) -> None:
    assert_fastapi_422(await world.client.get(f"{EXECUTIONS}/nope"), ["path", "execution_id"])
    for bad in ("two", "-1"):
        response = await world.client.get(
            f"{EXECUTIONS}/{world.id_of('a1')}", headers={"X-Min-Version": bad}
        )
        assert_fastapi_422(response, ["header", "X-Min-Version"])


# --- the list ---------------------------------------------------------------------------------


async def test_the_list_holds_config_executions_only_newest_first(world: World) -> None:
    body = await listing(world)
    assert ids(body) == world.newest_first("a1", "a2", "a3", "b1", "b2")
    assert (body["total"], body["limit"], body["offset"], body["has_more"]) == (5, 100, 0, False)
    assert world.pipeline_run not in ids(body)
    first = body["executions"][0]
    assert list(first) == list(EXECUTION_FIELDS)
    assert first == (await world.client.get(f"{EXECUTIONS}/{first['id']}")).json()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"config": "a"}, ["a1", "a2", "a3"]),
        ({"config": "b"}, ["b1", "b2"]),
        ({"status": "running"}, ["a1"]),
        ({"status": "completed"}, ["a2"]),
        ({"status": "failed"}, ["a3"]),
        ({"status": "cancelled"}, ["b1"]),
        ({"status": "interrupted"}, ["b2"]),
        ({"tag": "a2"}, ["a2"]),
        ({"config": "b", "status": "interrupted"}, ["b2"]),
        ({"config": "a", "status": "cancelled"}, []),
        ({"config": "b", "tag": "a1"}, []),
    ],
)
async def test_the_list_filters(world: World, filters: dict[str, str], expected: list[str]) -> None:
    params: dict[str, str] = {}
    if "config" in filters:
        params["config_id"] = world.config_a if filters["config"] == "a" else world.config_b
    if "status" in filters:
        params["status"] = filters["status"]
    if "tag" in filters:
        params["tag"] = world.tags[filters["tag"]]
    body = await listing(world, **params)
    assert ids(body) == world.newest_first(*expected)
    assert body["total"] == len(expected)


async def test_an_unknown_config_lists_nothing(world: World) -> None:
    body = await listing(world, config_id=str(uuid.uuid4()))
    assert (body["total"], body["executions"], body["has_more"]) == (0, [], False)


async def test_the_list_pages_by_limit_and_offset(world: World) -> None:
    everything = ids(await listing(world))
    pages = [await listing(world, limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [ids(page) for page in pages] == [everything[0:2], everything[2:4], everything[4:]]
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert {page["total"] for page in pages} == {5}
    assert (pages[1]["limit"], pages[1]["offset"]) == (2, 2)
    past = await listing(world, offset=10)
    assert (past["total"], past["executions"], past["has_more"]) == (5, [], False)


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"status": "success"}, ["query", "status"]),  # seed 003's word, not seed 004's
        ({"status": "RUNNING"}, ["query", "status"]),
        ({"config_id": "nope"}, ["query", "config_id"]),
        ({"limit": "0"}, ["query", "limit"]),
        ({"limit": str(MAX_LIMIT + 1)}, ["query", "limit"]),
        ({"offset": "-1"}, ["query", "offset"]),
        ({"offset": str(2**63)}, ["query", "offset"]),  # past what the database takes
    ],
)
async def test_a_bad_filter_is_fastapis_422(
    world: World, params: dict[str, str], loc: list[str]
) -> None:
    assert_fastapi_422(await world.client.get(EXECUTIONS, params=params), loc)
