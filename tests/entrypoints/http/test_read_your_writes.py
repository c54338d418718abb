"""The one read-your-writes wait, over real HTTP in every API family: a read sent with
`X-Min-Version` for an id the event store has never seen is not found at once, in the
family's shape, however long the wait would be; an id that was written still waits (the
families' own tests: 503 ReadModelBehind once the wait is over).

"At once" without a clock: the wait is set to an hour and each request may take 30 s at
most, so an answer at all proves the read did not wait."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from domain.name_index import name_index_id
from services.adapters.eventstore import open_event_store
from services.entrypoints.http import read_your_writes
from services.entrypoints.http.read_your_writes import EventHistory
from services.settings import Settings
from tests.entrypoints.http.support import api_stack

REQUEST_TIMEOUT_S = 30.0
Stack = tuple[Settings, httpx.AsyncClient]


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("read-your-writes")
    async with api_stack(kafka_bootstrap, tmp, read_models=True) as (settings, client, _):
        yield settings, client


@pytest.fixture
def client(stack: Stack) -> httpx.AsyncClient:
    return stack[1]


@pytest.fixture
def endless_min_version_wait() -> Iterator[None]:
    kept = read_your_writes.MIN_VERSION_WAIT_S
    read_your_writes.MIN_VERSION_WAIT_S = 3600.0
    try:
        yield
    finally:
        read_your_writes.MIN_VERSION_WAIT_S = kept


async def pipeline(client: httpx.AsyncClient) -> str:
    name = f"ryw-{uuid.uuid4().hex[:8]}"
    created = await client.post("/v0/pipelines", json={"name": name})
    assert created.status_code == 201, created.text
    # In the read model before the runs under it are asked for.
    version = created.headers["X-Pipelines-Version"]
    seen = await client.get(f"/v0/pipelines/{name}", headers={"X-Min-Version": version})
    assert seen.status_code == 200, seen.text
    return name


async def read(client: httpx.AsyncClient, path: str) -> Any:
    response = await client.get(path, headers={"X-Min-Version": "1"}, timeout=REQUEST_TIMEOUT_S)
    assert response.status_code == 404, response.text
    return response.json()


async def test_a_pipeline_name_never_held_is_404_at_once(
    client: httpx.AsyncClient, endless_min_version_wait: None
) -> None:
    name = f"never-{uuid.uuid4().hex[:8]}"
    assert await read(client, f"/v0/pipelines/{name}") == {
        "message": f"Unknown pipeline name '{name}'",
        "error_code": "UnknownPipelineName",
        "details": {"pipeline_name": name},
    }


async def test_factflow_ids_never_written_are_404_at_once(
    client: httpx.AsyncClient, endless_min_version_wait: None
) -> None:
    config, execution = uuid.uuid4(), uuid.uuid4()
    found = await read(client, f"/api/v1/configs/{config}")
    assert (found["error_code"], found["detail"]) == ("UnknownConfig", f"Config {config} not found")
    for path in (f"/api/v1/executions/{execution}", f"/api/v1/executions/{execution}/stages"):
        found = await read(client, path)
        assert found["error_code"] == "UnknownExecution"
        assert str(execution) in found["detail"]


async def test_a_run_never_created_is_404_at_once_in_marquez_and_esper_shapes(
    client: httpx.AsyncClient, endless_min_version_wait: None
) -> None:
    run = uuid.uuid4()
    message = f"Run '{run}' not found."
    assert await read(client, f"/api/v1/jobs/runs/{run}") == {"code": 404, "message": message}
    name = await pipeline(client)
    for path in (
        f"/pipelines/v0/pipelines/{name}/runs/{run}",
        f"/pipelines/v0/runs/{run}/stageruns",
        f"/pipelines/v0/runs/{run}/stageruns/{uuid.uuid4()}",
    ):
        assert await read(client, path) == {
            "code": 404,
            "message": message,
            "content": {"error_code": "UnknownRun", "details": {"run_id": str(run)}},
        }, path


async def test_a_run_never_created_of_an_unknown_pipeline_names_the_pipeline(
    client: httpx.AsyncClient, endless_min_version_wait: None
) -> None:
    found = await read(client, f"/pipelines/v0/pipelines/no-such-pipeline/runs/{uuid.uuid4()}")
    assert found["content"]["error_code"] == "UnknownPipelineName"


async def test_the_event_history_knows_what_was_written(stack: Stack) -> None:
    settings, client = stack
    name = await pipeline(client)
    with open_event_store(settings.event_store_url) as store:
        history = EventHistory(store)
        assert history.seen(name_index_id(name))
        assert not history.seen(name_index_id(f"{name}-never"))
        assert not history.seen(uuid.uuid4())
