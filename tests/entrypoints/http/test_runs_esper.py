"""Seed 003 over real HTTP: the `api` role on a free port, the real broker, an in-process
command handler, and the relay and projector roles keeping the read models. Each test
works on pipelines of its own, so the enterprise list is filtered by pipeline name."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.entrypoints.http.pipelines import VERSION_HEADER
from services.entrypoints.http.runs_esper import (
    ENTERPRISE_ORDERINGS,
    PIPELINE_ORDERINGS,
    RUN_FIELDS,
)
from tests.entrypoints.http.support import module_client

BASE = "/pipelines/v0"
# Fixed, so every pytest-xdist worker collects the same test ids; no run has it.
UNKNOWN_RUN = "0190f5a2-7c3e-7000-8000-000000000000"


client = module_client("esper", read_models=True)


async def new_pipeline(client: httpx.AsyncClient) -> tuple[str, str]:
    """(name, id) of a fresh pipeline."""
    name = f"e-{uuid.uuid4().hex[:8]}"
    created = await client.post("/v0/pipelines", json={"name": name})
    assert created.status_code == 201, created.text
    # the pipeline is in the read model before its runs are asked for
    seen = await client.get(f"/v0/pipelines/{name}", headers={"X-Min-Version": "1"})
    assert seen.status_code == 200, seen.text
    return name, created.json()["id"]


async def create_run(client: httpx.AsyncClient, pipeline: str, slash: str = "") -> Any:
    response = await client.post(f"{BASE}/pipelines/{pipeline}/runs{slash}", json={})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 200 and isinstance(body["message"], str)
    assert list(body["content"]) == list(RUN_FIELDS)
    return body["content"] | {"version": response.headers[VERSION_HEADER]}


async def read_run(client: httpx.AsyncClient, pipeline: str, run_id: str, version: str) -> Any:
    response = await client.get(
        f"{BASE}/pipelines/{pipeline}/runs/{run_id}", headers={"X-Min-Version": version}
    )
    assert response.status_code == 200, response.text
    assert response.json()["code"] == 200
    return response.json()["content"]


async def put_status(client: httpx.AsyncClient, pipeline: str, run_id: str, status: str) -> Any:
    response = await client.put(
        f"{BASE}/pipelines/{pipeline}/runs/{run_id}", json={"status": status}
    )
    assert response.status_code == 200, response.text
    return response.json()["content"] | {"version": response.headers[VERSION_HEADER]}


async def listing(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 200
    assert list(body["content"]) == ["count", "previous", "next", "results"]
    return body["content"]


async def test_post_creates_numbered_runs_readable_by_name_and_id(
    client: httpx.AsyncClient,
) -> None:
    name, pipeline_id = await new_pipeline(client)
    first = await create_run(client, name)
    second = await create_run(client, pipeline_id, "/")
    assert (first["run_number"], second["run_number"]) == (1, 2)
    assert first["pipeline_id"] == second["pipeline_id"] == pipeline_id
    assert first["pipeline_name"] == name
    assert first["status"] == "pending" and first["status_meta"] == {}
    for pipeline in (name, pipeline_id):
        read = await read_run(client, pipeline, first["id"], first["version"])
        assert read == {k: v for k, v in first.items() if k != "version"}


async def test_pipeline_list_filters_by_status_in_any_case(client: httpx.AsyncClient) -> None:
    name, _ = await new_pipeline(client)
    runs = [await create_run(client, name) for _ in range(3)]
    running = await put_status(client, name, runs[1]["id"], "RUNNING")
    assert running["status"] == "running"
    await read_run(client, name, runs[1]["id"], running["version"])
    await read_run(client, name, runs[2]["id"], runs[2]["version"])

    everything = await listing(client, f"{BASE}/pipelines/{name}/runs")
    assert everything["count"] == 3
    assert everything["previous"] is None and everything["next"] is None
    for status in ("RUNNING", "Running", "running"):
        only = await listing(client, f"{BASE}/pipelines/{name}/runs/", status=status)
        assert only["count"] == 1
        assert [r["id"] for r in only["results"]] == [runs[1]["id"]]
    pending = await listing(client, f"{BASE}/pipelines/{name}/runs", status="PENDING")
    assert {r["id"] for r in pending["results"]} == {runs[0]["id"], runs[2]["id"]}


@pytest.mark.parametrize("path", ["/v0/runs", "/v0/runs/", f"{BASE}/runs", f"{BASE}/runs/"])
async def test_enterprise_list_filters_by_pipeline_name(
    client: httpx.AsyncClient, path: str
) -> None:
    mine, _ = await new_pipeline(client)
    other, _ = await new_pipeline(client)
    run = await create_run(client, mine)
    theirs = await create_run(client, other)
    await read_run(client, mine, run["id"], run["version"])
    await read_run(client, other, theirs["id"], theirs["version"])
    page = await listing(client, path, pipeline_name=mine)
    assert page["count"] == 1
    assert page["results"][0]["id"] == run["id"]
    assert page["results"][0]["pipeline_name"] == mine
    whole = await listing(client, path, limit=1000)
    assert {run["id"], theirs["id"]} <= {r["id"] for r in whole["results"]}


def expected_order(runs: list[dict[str, Any]], ordering: str) -> list[str]:
    """What `ordering` should give: missing values last ascending, first descending;
    ties by id."""
    key = ordering.removeprefix("-")
    field = "pipeline_name" if key == "pipeline__name" else key
    descending = ordering.startswith("-")
    present = [r for r in runs if r[field] is not None]
    missing = sorted((r for r in runs if r[field] is None), key=lambda r: r["id"])
    # sorted() keeps equal keys in their (id) order even with reverse=True
    ordered = sorted(
        sorted(present, key=lambda r: r["id"]), key=lambda r: r[field], reverse=descending
    )
    return [r["id"] for r in (missing + ordered if descending else ordered + missing)]


@pytest.fixture(scope="module")
async def ordered_runs(client: httpx.AsyncClient) -> dict[str, Any]:
    """Two pipelines, five runs in distinct states: started and ended or not."""
    first, _ = await new_pipeline(client)
    second, _ = await new_pipeline(client)
    runs = [await create_run(client, first) for _ in range(3)]
    runs += [await create_run(client, second) for _ in range(2)]
    pipelines = [first] * 3 + [second] * 2
    moves = [[], ["running"], ["running", "success"], ["cancelled"], ["queued"]]
    for run, pipeline, steps in zip(runs, pipelines, moves, strict=True):
        version = run["version"]
        for step in steps:
            version = (await put_status(client, pipeline, run["id"], step))["version"]
        await read_run(client, pipeline, run["id"], version)
    return {"names": (first, second), "ids": {r["id"] for r in runs}}


@pytest.mark.parametrize("ordering", ENTERPRISE_ORDERINGS)
async def test_every_ordering_of_the_enterprise_list(
    client: httpx.AsyncClient, ordered_runs: dict[str, Any], ordering: str
) -> None:
    page = await listing(client, "/v0/runs", ordering=ordering, limit=1000)
    mine = [r for r in page["results"] if r["id"] in ordered_runs["ids"]]
    assert len(mine) == 5
    assert [r["id"] for r in mine] == expected_order(mine, ordering)
    key = ordering.removeprefix("-")
    field = "pipeline_name" if key == "pipeline__name" else key
    values = [r[field] for r in mine if r[field] is not None]
    assert values == sorted(values, reverse=ordering.startswith("-"))


@pytest.mark.parametrize("ordering", PIPELINE_ORDERINGS)
async def test_every_ordering_of_a_pipelines_list(
    client: httpx.AsyncClient, ordered_runs: dict[str, Any], ordering: str
) -> None:
    name = ordered_runs["names"][0]
    page = await listing(client, f"{BASE}/pipelines/{name}/runs", ordering=ordering)
    assert page["count"] == 3
    assert [r["id"] for r in page["results"]] == expected_order(page["results"], ordering)


async def test_run_number_orders_both_ways(
    client: httpx.AsyncClient, ordered_runs: dict[str, Any]
) -> None:
    name = ordered_runs["names"][0]
    path = f"{BASE}/pipelines/{name}/runs"
    up = await listing(client, path, ordering="run_number")
    down = await listing(client, path, ordering="-run_number")
    assert [r["run_number"] for r in up["results"]] == [1, 2, 3]
    assert [r["run_number"] for r in down["results"]] == [3, 2, 1]


async def test_pagination_links_walk_the_list(client: httpx.AsyncClient) -> None:
    name, _ = await new_pipeline(client)
    runs = [await create_run(client, name) for _ in range(5)]
    await read_run(client, name, runs[-1]["id"], runs[-1]["version"])
    path = f"{BASE}/pipelines/{name}/runs/"
    first = await listing(client, path, ordering="run_number", limit=2)
    assert first["count"] == 5 and first["previous"] is None
    assert [r["run_number"] for r in first["results"]] == [1, 2]

    seen, page = [1, 2], first
    while page["next"] is not None:
        url = urlsplit(page["next"])
        assert url.path == path
        assert parse_qs(url.query)["ordering"] == ["run_number"]
        response = await client.get(page["next"])
        assert response.status_code == 200, response.text
        page = response.json()["content"]
        assert page["previous"] is not None
        seen += [r["run_number"] for r in page["results"]]
    assert seen == [1, 2, 3, 4, 5]
    # the last page (offset 4) leads back to offset 2, then to the first page (no offset)
    back = await client.get(page["previous"])
    assert [r["run_number"] for r in back.json()["content"]["results"]] == [3, 4]
    start = back.json()["content"]["previous"]
    assert "offset" not in parse_qs(urlsplit(start).query)
    again = await client.get(start)
    assert again.json()["content"] == first


async def test_put_moves_a_run_and_refuses_an_illegal_move(client: httpx.AsyncClient) -> None:
    name, _ = await new_pipeline(client)
    run = await create_run(client, name)
    done = await put_status(client, name, run["id"], "Success")
    assert done["status"] == "success" and done["ended_at"] is not None
    refused = await client.put(
        f"{BASE}/pipelines/{name}/runs/{run['id']}/", json={"status": "RUNNING"}
    )
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == 409
    assert body["content"]["error_code"] == "RunAlreadyTerminal"
    assert run["id"] in body["message"]
    # a live run may not go back either: running -> queued is not in the table
    other = await create_run(client, name)
    await put_status(client, name, other["id"], "running")
    back = await client.put(
        f"{BASE}/pipelines/{name}/runs/{other['id']}", json={"status": "queued"}
    )
    assert back.status_code == 409, back.text
    assert back.json()["content"]["error_code"] == "IllegalRunTransition"
    read = await read_run(client, name, run["id"], done["version"])
    assert read["status"] == "success"


@pytest.mark.parametrize("body", [{"status": "finished"}, {"status": 3}, {}])
async def test_put_with_a_bad_status_is_400(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    name, _ = await new_pipeline(client)
    run = await create_run(client, name)
    response = await client.put(f"{BASE}/pipelines/{name}/runs/{run['id']}", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 400
    assert set(response.json()["content"]) == {"error_code", "details"}
    assert VERSION_HEADER not in response.headers


async def test_delete_answers_the_run_and_removes_it(client: httpx.AsyncClient) -> None:
    name, _ = await new_pipeline(client)
    run = await create_run(client, name)
    kept = await create_run(client, name)
    response = await client.delete(f"{BASE}/pipelines/{name}/runs/{run['id']}/")
    assert response.status_code == 200, response.text
    deleted = response.json()["content"]
    assert deleted["id"] == run["id"] and deleted["run_number"] == 1
    version = response.headers[VERSION_HEADER]
    await read_run(client, name, kept["id"], kept["version"])
    gone = await client.get(
        f"{BASE}/pipelines/{name}/runs/{run['id']}", headers={"X-Min-Version": version}
    )
    assert gone.status_code == 404
    assert gone.json()["content"]["error_code"] == "UnknownRun"
    page = await listing(client, f"{BASE}/pipelines/{name}/runs")
    assert [r["id"] for r in page["results"]] == [kept["id"]]
    again = await client.delete(f"{BASE}/pipelines/{name}/runs/{run['id']}")
    assert again.status_code == 404


async def test_a_run_of_another_pipeline_is_404(client: httpx.AsyncClient) -> None:
    mine, _ = await new_pipeline(client)
    other, _ = await new_pipeline(client)
    run = await create_run(client, mine)
    await read_run(client, mine, run["id"], run["version"])
    path = f"{BASE}/pipelines/{other}/runs/{run['id']}"
    assert (await client.get(path)).status_code == 404
    put = await client.put(path, json={"status": "queued"})
    assert put.status_code == 404
    assert put.json()["content"]["error_code"] == "UnknownRun"
    assert (await client.delete(path)).status_code == 404


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("POST", ""), ("GET", "/" + UNKNOWN_RUN), ("PUT", "/x"), ("DELETE", "/x")],
)
async def test_an_unknown_pipeline_is_404(
    client: httpx.AsyncClient, method: str, suffix: str
) -> None:
    json = {"status": "queued"} if method == "PUT" else {} if method == "POST" else None
    response = await client.request(
        method, f"{BASE}/pipelines/nope-{uuid.uuid4().hex[:6]}/runs{suffix}", json=json
    )
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["code"] == 404
    assert body["content"]["error_code"] in {"UnknownPipelineName", "UnknownRun"}
    if suffix == "":
        assert body["content"]["error_code"] == "UnknownPipelineName"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v0/runs", {"ordering": "name"}),
        (f"{BASE}/runs/", {"ordering": "-created"}),
        ("/v0/runs", {"status": "done"}),
        ("/v0/runs", {"limit": "0"}),
        ("/v0/runs", {"offset": "-1"}),
        ("/v0/runs", {"offset": str(2**63)}),  # past what the database takes
        (f"{BASE}/runs/{UNKNOWN_RUN}/stageruns", {"offset": str(2**63)}),
    ],
)
async def test_bad_query_parameters_are_400(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await client.get(path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400
    assert body["content"]["error_code"] == "InvalidQueryParameter"
    assert body["content"]["details"]["parameter"] == next(iter(params))


async def test_pipeline__name_ordering_is_only_for_the_enterprise_list(
    client: httpx.AsyncClient,
) -> None:
    name, _ = await new_pipeline(client)
    response = await client.get(
        f"{BASE}/pipelines/{name}/runs", params={"ordering": "pipeline__name"}
    )
    assert response.status_code == 400


async def test_trailing_slashes_are_not_redirected(client: httpx.AsyncClient) -> None:
    name, _ = await new_pipeline(client)
    run = await create_run(client, name, "/")
    for path in (
        "/v0/runs/",
        f"{BASE}/runs/",
        f"{BASE}/pipelines/{name}/runs/",
        f"{BASE}/pipelines/{name}/runs/{run['id']}/",
    ):
        response = await client.get(path, headers={"X-Min-Version": run["version"]})
        assert response.status_code == 200, (path, response.text)
