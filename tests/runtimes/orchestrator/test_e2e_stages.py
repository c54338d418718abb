"""Stage runs over real HTTP after real executions ran (the whole service, as in
test_e2e_runs): Esper's `/pipelines/v0/runs/{run_id}/stageruns[/{stage_run_id}]` (seed 003)
and FactFlow's `/api/v1/executions/{id}/stages` (seed 004), with their filters, paging and
errors. The execution here fails in `enrich` (it dead-letters), so its three stage runs
end in three different statuses: success, failure and cancelled."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml

from tests.runtimes.orchestrator.e2e_support import (
    Stack,
    module_stack,
    orders_document,
    status_and_counts,
    topics_of,
)

pytestmark = pytest.mark.broker

RUNS = "/pipelines/v0/runs"
ROUTES = ["validate", "enrich", "notify"]
ESPER_ERROR_KEYS = {"code", "message", "content"}
FACTFLOW_ERROR_KEYS = {"detail", "error_code", "correlation_id", "timestamp"}


stack = module_stack("e2e-stages")


@pytest.fixture(scope="module")
async def failed(stack: Stack) -> UUID:
    """An execution of orders whose `enrich` dead-letters, run until it failed."""
    document = yaml.safe_load(orders_document())
    document["routes"]["enrich"].update(
        adapters=[{"type": "fail", "config": {"message": "no stock"}}],
        error_handling={
            "max_retries": 0,
            "dead_letter_topic": topics_of(yaml.safe_dump(document))["dead_letters"],
        },
    )
    config_id = await stack.create_config(
        yaml.safe_dump(document, sort_keys=False), name="failing-orders"
    )
    execution_id = await stack.started(config_id)
    await stack.until_status(execution_id, "failed")
    return execution_id


def stage_runs_url(run_id: object) -> str:
    return f"{RUNS}/{run_id}/stageruns"


async def content(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["code"], set(body)) == (200, {"code", "message", "content"})
    return body["content"]


def esper_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ESPER_ERROR_KEYS
    assert body["code"] == status
    assert body["content"]["error_code"] == code
    return body


# --- seed 003 (Esper) ----------------------------------------------------------------------


async def test_the_runs_stage_runs_are_listed_in_route_order(stack: Stack, failed: UUID) -> None:
    page = await content(stack.client, f"{stage_runs_url(failed)}/")
    assert (page["count"], page["previous"], page["next"]) == (3, None, None)
    results = page["results"]
    assert [s["stage"] for s in results] == ROUTES
    assert [s["id"] for s in results] == [str(uuid.uuid5(failed, route)) for route in ROUTES]
    assert {s["pipeline_run_id"] for s in results} == {str(failed)}
    assert [status_and_counts(s) for s in results] == [
        ("success", 1, 1, 0),
        ("failure", 1, 0, 1),
        ("cancelled", 0, 0, 0),
    ]
    for stage in results:  # every stage run ended with the execution's final reports
        assert stage["started_at"] is not None, stage
        assert stage["ended_at"] >= stage["started_at"], stage
    # Without the trailing slash: the same answer, no redirect.
    assert await content(stack.client, stage_runs_url(failed)) == page


@pytest.mark.parametrize(
    ("status", "stages"),
    [("FAILURE", ["enrich"]), ("Success", ["validate"]), ("cancelled", ["notify"]),
     ("running", [])],
)  # fmt: skip
async def test_stage_runs_filter_by_status_in_any_case(
    stack: Stack, failed: UUID, status: str, stages: list[str]
) -> None:
    page = await content(stack.client, stage_runs_url(failed), status=status)
    assert [s["stage"] for s in page["results"]] == stages
    assert page["count"] == len(stages)


async def test_stage_runs_page_by_limit_and_offset(stack: Stack, failed: UUID) -> None:
    url = stage_runs_url(failed)
    first = await content(stack.client, url, limit=2)
    assert [s["stage"] for s in first["results"]] == ["validate", "enrich"]
    assert (first["count"], first["previous"]) == (3, None)
    following = httpx.URL(first["next"])
    assert (following.path, dict(following.params)) == (url, {"limit": "2", "offset": "2"})

    second = await content(stack.client, following.path, **dict(following.params))
    assert [s["stage"] for s in second["results"]] == ["notify"]
    assert second["next"] is None
    back = httpx.URL(second["previous"])
    assert (back.path, dict(back.params)) == (url, {"limit": "2"})

    past = await content(stack.client, url, offset=5)
    assert (past["count"], past["results"], past["next"]) == (3, [], None)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"status": "finished"}, "status"), ({"limit": "0"}, "limit"),
     ({"limit": "many"}, "limit"), ({"offset": "-1"}, "offset")],
)  # fmt: skip
async def test_stage_runs_refuse_a_bad_query_with_400(
    stack: Stack, failed: UUID, params: dict[str, str], parameter: str
) -> None:
    response = await stack.client.get(stage_runs_url(failed), params=params)
    body = esper_error(response, 400, "InvalidQueryParameter")
    assert body["content"]["details"]["parameter"] == parameter


async def test_one_stage_run_by_its_id_or_its_route(stack: Stack, failed: UUID) -> None:
    listed = (await content(stack.client, stage_runs_url(failed)))["results"]
    enrich = listed[1]
    by_id = await content(stack.client, f"{stage_runs_url(failed)}/{enrich['id']}/")
    assert by_id == enrich
    by_route = await content(stack.client, f"{stage_runs_url(failed)}/enrich")
    assert by_route == enrich
    upper = str(enrich["id"]).upper()
    assert await content(stack.client, f"{stage_runs_url(failed)}/{upper}") == enrich


async def test_unknown_runs_and_stage_runs_are_404(stack: Stack, failed: UUID) -> None:
    nobody = uuid.uuid4()
    for url in (stage_runs_url(nobody), f"{stage_runs_url(nobody)}/validate/"):
        body = esper_error(await stack.client.get(url), 404, "UnknownRun")
        assert body["content"]["details"] == {"run_id": str(nobody)}
    esper_error(await stack.client.get(stage_runs_url("not-a-uuid")), 404, "UnknownRun")
    # Another run's stage run is not this one's.
    foreign = uuid.uuid5(nobody, "validate")
    for stage in ("publish", str(foreign)):
        response = await stack.client.get(f"{stage_runs_url(failed)}/{stage}")
        body = esper_error(response, 404, "UnknownStageRun")
        assert body["content"]["details"] == {"run_id": str(failed), "stage_run_id": stage}


async def pipeline_run(stack: Stack) -> tuple[str, dict[str, str]]:
    """A new run of a new pipeline without a config; the header that reads it back."""
    name = f"stages-{uuid.uuid4().hex[:8]}"
    created = await stack.client.post("/v0/pipelines", json={"name": name})
    assert created.status_code == 201, created.text
    run = await stack.client.post(f"/pipelines/v0/pipelines/{name}/runs", json={})
    assert run.status_code == 200, run.text
    return run.json()["content"]["id"], {"X-Min-Version": run.headers["X-Pipelines-Version"]}


async def test_a_pipeline_run_without_a_config_has_no_stage_runs(stack: Stack) -> None:
    run_id, read_back = await pipeline_run(stack)
    response = await stack.client.get(stage_runs_url(run_id), headers=read_back)
    assert response.status_code == 200, response.text
    page = response.json()["content"]
    assert (page["count"], page["results"], page["next"]) == (0, [], None)


async def test_a_bad_min_version_header_is_400(stack: Stack, failed: UUID) -> None:
    for url in (stage_runs_url(failed), f"{stage_runs_url(failed)}/validate"):
        response = await stack.client.get(url, headers={"X-Min-Version": "latest"})
        body = esper_error(response, 400, "InvalidHeader")
        assert body["content"]["details"] == {"header": "X-Min-Version", "value": "latest"}


async def test_a_version_the_read_model_never_reaches_is_503(stack: Stack, failed: UUID) -> None:
    response = await stack.client.get(stage_runs_url(failed), headers={"X-Min-Version": "999"})
    esper_error(response, 503, "ReadModelBehind")
    assert response.headers["Retry-After"] == "5"


# --- seed 004 (FactFlow) -------------------------------------------------------------------


async def test_an_executions_stages_are_the_same_stage_runs(stack: Stack, failed: UUID) -> None:
    response = await stack.client.get(f"/api/v1/executions/{failed}/stages")
    assert response.status_code == 200, response.text
    listed = (await content(stack.client, stage_runs_url(failed)))["results"]
    assert response.json() == listed


async def test_stages_of_an_unknown_execution_are_404_and_a_bad_id_422(stack: Stack) -> None:
    nobody = uuid.uuid4()
    unknown = await stack.client.get(f"/api/v1/executions/{nobody}/stages")
    assert unknown.status_code == 404, unknown.text
    assert set(unknown.json()) >= FACTFLOW_ERROR_KEYS
    assert unknown.json()["error_code"] == "UnknownExecution"
    not_uuid = await stack.client.get("/api/v1/executions/not-a-uuid/stages")
    assert not_uuid.status_code == 422, not_uuid.text
    assert not_uuid.json()["detail"][0]["loc"] == ["path", "execution_id"]


async def test_stages_refuse_a_bad_min_version_header_with_422(stack: Stack, failed: UUID) -> None:
    response = await stack.client.get(
        f"/api/v1/executions/{failed}/stages", headers={"X-Min-Version": "-1"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["header", "X-Min-Version"]


async def test_a_pipeline_runs_id_is_no_execution(stack: Stack) -> None:
    run_id, read_back = await pipeline_run(stack)
    response = await stack.client.get(f"/api/v1/executions/{run_id}/stages", headers=read_back)
    assert response.status_code == 404, response.text
    assert response.json()["error_code"] == "UnknownExecution"
