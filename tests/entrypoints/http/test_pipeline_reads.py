"""Seeds 000/001 reads over real HTTP: the `api` role on a free port, the real broker, an
in-process command handler, and the relay and projector roles keeping the read models —
so every read here went command -> event store -> events topic -> read model -> HTTP."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from services.entrypoints.http.pipeline_reads import STATUS_FIELDS
from services.entrypoints.http.pipelines import VERSION_HEADER
from services.entrypoints.http.read_your_writes import MIN_VERSION_WAIT_S
from tests.entrypoints.http.support import module_client

client = module_client("reads", read_models=True)


def unique(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def written_version(response: httpx.Response) -> int:
    assert response.status_code in (201, 202), response.text
    return int(response.headers[VERSION_HEADER])


async def create(client: httpx.AsyncClient, name: str, **body: object) -> int:
    return written_version(await client.post("/v0/pipelines", json={"name": name, **body}))


async def read_after(
    client: httpx.AsyncClient, name: str, version: int, **params: str
) -> httpx.Response:
    response = await client.get(
        f"/v0/pipelines/{name}", params=params, headers={"X-Min-Version": str(version)}
    )
    assert response.status_code == 200, response.text
    return response


async def test_a_start_is_visible_at_once_with_x_min_version(client: httpx.AsyncClient) -> None:
    name = unique()
    created = await create(client, name, description="reads")
    started = written_version(await client.post(f"/v0/pipelines/{name}/start"))
    assert started > created

    response = await read_after(client, name, started)
    assert response.headers["Cache-Control"] == "no-cache"
    row = response.json()
    assert row["name"] == name
    assert row["description"] == "reads"
    assert row["deployment_desired_status"] == "Running"
    assert row["deployment_status"] == "Stopped"  # no runner has acted yet
    assert row["deployment_initial"] == "running"
    assert row["refresh_version"] == started


async def test_list_is_an_array_of_the_same_objects(client: httpx.AsyncClient) -> None:
    names = sorted(unique("list") for _ in range(3))
    rows = {}
    for name in names:
        rows[name] = (await read_after(client, name, await create(client, name))).json()

    response = await client.get("/v0/pipelines")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    listed = response.json()
    assert isinstance(listed, list)
    by_name = {row["name"]: row for row in listed}
    for name in names:
        assert by_name[name] == rows[name]
    assert [row["name"] for row in listed] == sorted(by_name)

    statuses = (await client.get("/v0/pipelines", params={"selector": "status"})).json()
    assert {row["name"] for row in statuses} == set(by_name)
    assert all(set(row) == set(STATUS_FIELDS) for row in statuses)


async def test_selector_status_is_the_status_subset(client: httpx.AsyncClient) -> None:
    name = unique()
    version = await create(client, name)
    everything = (await read_after(client, name, version, selector="all")).json()
    default = (await read_after(client, name, version)).json()
    status = (await read_after(client, name, version, selector="status")).json()

    assert default == everything
    assert set(status) == set(STATUS_FIELDS)
    assert set(status) < set(everything)
    assert "config_id" in everything and "config_id" not in status
    assert status == {field: everything[field] for field in STATUS_FIELDS}


@pytest.mark.parametrize("path", ["/v0/pipelines", "/v0/pipelines/{name}"])
async def test_an_unknown_selector_is_feldera_400(client: httpx.AsyncClient, path: str) -> None:
    name = unique()
    await create(client, name)
    response = await client.get(path.format(name=name), params={"selector": "everything"})
    assert response.status_code == 400
    assert response.json() == {
        "message": "Invalid value 'everything' for query parameter 'selector': "
        "expected one of all, status",
        "error_code": "InvalidQueryParameter",
        "details": {
            "parameter": "selector",
            "value": "everything",
            "expected": "one of all, status",
        },
    }


async def test_an_unknown_name_is_404_with_the_seed_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/v0/pipelines/non-existent-pipeline")
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.json() == {
        "message": "Unknown pipeline name 'non-existent-pipeline'",
        "error_code": "UnknownPipelineName",
        "details": {"pipeline_name": "non-existent-pipeline"},
    }


async def test_a_version_never_reached_is_503_after_the_wait(client: httpx.AsyncClient) -> None:
    name = unique()
    version = await create(client, name)
    await read_after(client, name, version)

    began = time.monotonic()
    response = await client.get(
        f"/v0/pipelines/{name}", headers={"X-Min-Version": str(version + 1000)}
    )
    waited = time.monotonic() - began
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Cache-Control"] == "no-cache"
    body = response.json()
    assert body["error_code"] == "ReadModelBehind"
    assert body["details"] == {
        "pipeline_name": name,
        "min_version": version + 1000,
        "timeout_s": MIN_VERSION_WAIT_S,
    }
    assert set(body) == {"message", "error_code", "details"}
    assert MIN_VERSION_WAIT_S - 0.5 <= waited < MIN_VERSION_WAIT_S + 5


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
async def test_a_bad_x_min_version_is_400(client: httpx.AsyncClient, value: str) -> None:
    response = await client.get("/v0/pipelines/anything", headers={"X-Min-Version": value})
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "InvalidHeader"
    assert body["details"] == {"header": "X-Min-Version", "value": value}
