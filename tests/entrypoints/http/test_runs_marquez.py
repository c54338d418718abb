"""Seed 002 over real HTTP: the `api` role on a free port, the real broker, an in-process
command handler, and the relay and projector roles keeping the read models. Runs are
created by sending CreateRun through a command bus of the test's own (seed 003's
POST is another router)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from contracts.results import CommandAccepted
from contracts.run_commands import CreateRun
from services.adapters.kafka.command_bus import CommandBus
from services.entrypoints.http.pipelines import VERSION_HEADER
from services.entrypoints.http.runs_marquez import RUN_FIELDS
from tests.entrypoints.http.support import api_stack, command_bus

RUNS = "/api/v1/jobs/runs"


@dataclass
class Stack:
    client: httpx.AsyncClient
    bus: CommandBus


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("marquez")
    async with (
        api_stack(kafka_bootstrap, tmp, read_models=True) as (settings, client, _),
        command_bus(settings) as bus,
    ):
        yield Stack(client, bus)


@pytest.fixture
def client(stack: Stack) -> httpx.AsyncClient:
    return stack.client


async def new_run(stack: Stack, args: dict[str, Any] | None = None) -> str:
    name = f"m-{uuid.uuid4().hex[:8]}"
    created = await stack.client.post("/v0/pipelines", json={"name": name})
    assert created.status_code == 201, created.text
    result = await stack.bus.send(CreateRun(pipeline_id=name, args=args or {}))
    assert isinstance(result, CommandAccepted), result
    assert result.aggregate_id is not None
    return result.aggregate_id


async def post(client: httpx.AsyncClient, run_id: str, verb: str, at: str | None = None) -> Any:
    params = {} if at is None else {"at": at}
    response = await client.post(f"{RUNS}/{run_id}/{verb}", params=params)
    assert response.status_code == 200, response.text
    assert list(response.json()) == list(RUN_FIELDS)
    return response


async def read(client: httpx.AsyncClient, run_id: str, version: str) -> Any:
    response = await client.get(f"{RUNS}/{run_id}", headers={"X-Min-Version": version})
    assert response.status_code == 200, response.text
    return response.json()


def ms_between(start: str, end: str) -> int:
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return int(delta.total_seconds() * 1000)


async def test_start_then_complete_with_at_gives_the_duration(stack: Stack) -> None:
    run_id = await new_run(stack, {"email": "me@example.com", "retries": "1"})
    client = stack.client

    started = await post(client, run_id, "start", "2026-01-02T03:04:05.250Z")
    body = started.json()
    assert body["id"] == run_id
    assert body["state"] == "RUNNING"
    assert body["startedAt"] == "2026-01-02T03:04:05.250000Z"
    assert body["endedAt"] is None and body["durationMs"] is None

    done = await post(client, run_id, "complete", "2026-01-02T04:04:06+01:00")
    assert done.json()["state"] == "COMPLETED"
    assert done.json()["endedAt"] == "2026-01-02T03:04:06Z"
    assert done.json()["durationMs"] == 750

    run = await read(client, run_id, done.headers[VERSION_HEADER])
    assert run == done.json()  # the read model says what the command answered
    assert run["state"] == "COMPLETED"
    assert run["durationMs"] == ms_between(run["startedAt"], run["endedAt"]) == 750
    assert run["args"] == {"email": "me@example.com", "retries": "1"}
    assert run["facets"] == {}
    assert run["nominalStartTime"] is None and run["nominalEndTime"] is None


async def test_a_new_run_reads_new(stack: Stack) -> None:
    run_id = await new_run(stack)
    response = await stack.client.get(f"{RUNS}/{run_id}", headers={"X-Min-Version": "1"})
    assert response.status_code == 200, response.text
    run = response.json()
    assert list(run) == list(RUN_FIELDS)
    assert run["state"] == "NEW"
    assert run["startedAt"] is None and run["durationMs"] is None
    assert run["createdAt"] == run["updatedAt"]


@pytest.mark.parametrize(("verb", "state"), [("fail", "FAILED"), ("abort", "ABORTED")])
async def test_fail_and_abort_end_a_running_run(stack: Stack, verb: str, state: str) -> None:
    run_id = await new_run(stack)
    await post(stack.client, run_id, "start")
    ended = await post(stack.client, run_id, verb)
    assert ended.json()["state"] == state
    run = await read(stack.client, run_id, ended.headers[VERSION_HEADER])
    assert run["state"] == state
    assert run["endedAt"] is not None
    assert run["durationMs"] == ms_between(run["startedAt"], run["endedAt"])


async def test_a_new_run_may_complete_straight_away(stack: Stack) -> None:
    # Marquez's own FlowIntegrationTest marks a NEW run COMPLETED.
    run_id = await new_run(stack)
    done = await post(stack.client, run_id, "complete")
    assert done.json()["state"] == "COMPLETED"


async def test_a_finished_run_refuses_another_end_with_409(stack: Stack) -> None:
    run_id = await new_run(stack)
    done = await post(stack.client, run_id, "complete")
    for verb in ("fail", "abort", "start"):
        refused = await stack.client.post(f"{RUNS}/{run_id}/{verb}")
        assert refused.status_code == 409, refused.text
        body = refused.json()
        assert list(body) == ["code", "message"]
        assert body["code"] == 409
        assert run_id in body["message"]
    # The same end again changes nothing and answers the run as it is.
    again = await post(stack.client, run_id, "complete")
    assert again.json() == done.json()
    assert again.headers[VERSION_HEADER] == done.headers[VERSION_HEADER]


@pytest.mark.parametrize("verb", ["start", "complete", "fail", "abort"])
async def test_an_unknown_run_is_marquez_404(client: httpx.AsyncClient, verb: str) -> None:
    run_id = str(uuid.uuid4())
    response = await client.post(f"{RUNS}/{run_id}/{verb}")
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": f"Run '{run_id}' not found."}


async def test_reading_an_unknown_run_is_marquez_404(client: httpx.AsyncClient) -> None:
    run_id = str(uuid.uuid4())
    response = await client.get(f"{RUNS}/{run_id}")
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": f"Run '{run_id}' not found."}


@pytest.mark.parametrize("path", ["/not-a-uuid", "/not-a-uuid/start", "/123/complete"])
async def test_a_non_uuid_id_is_404(client: httpx.AsyncClient, path: str) -> None:
    method = client.get if path.count("/") == 1 else client.post
    response = await method(f"{RUNS}{path}")
    assert response.status_code == 404
    raw = path.split("/")[1]
    assert response.json() == {"code": 404, "message": f"Run '{raw}' not found."}


@pytest.mark.parametrize("at", ["yesterday", "2026-13-01T00:00:00Z", "2026-01-02T03:04:05", ""])
async def test_a_bad_at_is_400_and_nothing_is_sent(stack: Stack, at: str) -> None:
    run_id = await new_run(stack)
    response = await stack.client.post(f"{RUNS}/{run_id}/start", params={"at": at})
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["code", "message"]
    assert body["code"] == 400
    assert "'at'" in body["message"]
    assert VERSION_HEADER not in response.headers
    run = await read(stack.client, run_id, "1")
    assert run["state"] == "NEW"


async def test_a_bad_min_version_header_is_400_in_marquez_shape(stack: Stack) -> None:
    run_id = await new_run(stack)
    response = await stack.client.get(f"{RUNS}/{run_id}", headers={"X-Min-Version": "soon"})
    assert response.status_code == 400
    assert response.json()["code"] == 400


async def test_a_version_not_reached_is_503_with_retry_after(stack: Stack) -> None:
    run_id = await new_run(stack)
    response = await stack.client.get(f"{RUNS}/{run_id}", headers={"X-Min-Version": "99"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["code"] == 503


async def test_an_unknown_route_in_the_family_keeps_marquez_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(f"{RUNS}/{uuid.uuid4()}/explode")
    assert response.status_code in (404, 405)
    assert set(response.json()) == {"code", "message"}
