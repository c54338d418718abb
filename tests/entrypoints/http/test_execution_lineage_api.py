"""A replay's family over real HTTP, on SQLite and PostgreSQL: `GET
/api/v1/executions/{id}/replays` (FactFlow's page of an execution's children) and `GET
/api/v1/executions/{id}/lineage` (its root, parent and children), with `root_execution_id`
in every ExecutionResponse. The `api` role, the real broker, an in-process command
handler and the relay and projector roles; the replays are ReplayExecution commands
(manual, so no message store is needed) through a command bus of the test's own.

The family: root <- first <- grandchild, root <- second, root <- gone (deleted), and a
pipeline's run beside them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from contracts.command_base import Command
from contracts.config_commands import RunConfig
from contracts.replay_commands import ReplayExecution
from contracts.results import CommandAccepted
from contracts.run_commands import CreateRun, DeleteRun
from contracts.statuses import ReplaySource
from services.adapters.kafka.command_bus import CommandBus
from services.entrypoints.http.executions import EXECUTION_FIELDS, MAX_LIMIT, LineageResponse
from services.entrypoints.http.factflow import ExecutionListResponse
from tests.entrypoints.http.support import (
    STORES,
    api_settings,
    command_bus,
    module_store_url,
    projected_api,
)
from tests.entrypoints.http.test_executions_api import (
    assert_error,
    assert_fastapi_422,
)

EXECUTIONS = "/api/v1/executions"


def config_yaml() -> str:
    # A topic of its own: the relay publishes the replayed messages to it.
    topic = f"test.lineage.{uuid.uuid4().hex[:8]}.fetch.in"
    return f"""\
version: "1.0"
routes:
  fetch:
    name: Fetch
    inbound: {{topic: {topic}}}
    adapters: [{{type: pass_through}}]
init_message: {{route: fetch, payload: {{url: "https://a"}}}}
"""


@dataclass
class Family:
    client: httpx.AsyncClient
    bus: CommandBus
    ids: dict[str, str] = field(default_factory=dict)
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipeline_run: str = ""

    async def send(self, command: Command) -> CommandAccepted:
        result = await self.bus.send(command)
        assert isinstance(result, CommandAccepted), result
        return result

    async def seen(self, result: CommandAccepted, path: str) -> None:
        """Once the read model holds the result's version of it."""
        response = await self.client.get(
            f"{path}/{result.aggregate_id}",
            headers={"X-Min-Version": str(result.aggregate_version)},
        )
        assert response.status_code == 200, response.text

    async def made(self, name: str, command: Command) -> None:
        result = await self.send(command)
        assert result.aggregate_id is not None
        await self.seen(result, EXECUTIONS)
        self.ids[name], self.replies[name] = result.aggregate_id, result.reply

    async def replay(self, name: str, parent: str) -> None:
        await self.made(
            name,
            ReplayExecution(
                parent=parent,
                replay_source=ReplaySource.MANUAL,
                to_route="fetch",
                messages=[{"name": name}],
            ),
        )

    def of(self, *names: str) -> list[str]:
        return [self.ids[name] for name in names]


@pytest.fixture(scope="module", params=STORES)
async def family(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Family]:
    store_url = module_store_url(request, tmp_path_factory.mktemp("lineage"))
    settings = api_settings(kafka_bootstrap, store_url)
    async with projected_api(settings) as client, command_bus(settings) as bus:
        yield await made(Family(client, bus))


async def made(f: Family) -> Family:
    created = await f.client.post(
        "/api/v1/configs", params={"name": "lineage"}, content=config_yaml()
    )
    assert created.status_code == 201, created.text
    config_id = uuid.UUID(created.json()["id"])
    await f.made("root", RunConfig(config_id=config_id, tag=f"root-{uuid.uuid4().hex[:8]}"))
    await f.replay("first", f.ids["root"])
    await f.replay("second", f.ids["root"])
    await f.replay("grandchild", f.ids["first"])
    await f.replay("gone", f.ids["root"])
    deleted = await f.send(DeleteRun(run_id=uuid.UUID(f.ids["gone"])))
    gone = await f.client.get(
        f"{EXECUTIONS}/{f.ids['gone']}", headers={"X-Min-Version": str(deleted.aggregate_version)}
    )
    assert gone.status_code == 404, gone.text
    name = f"p-{uuid.uuid4().hex[:8]}"
    pipeline = await f.client.post("/v0/pipelines", json={"name": name})
    assert pipeline.status_code == 201, pipeline.text
    run = await f.send(CreateRun(pipeline_id=name))
    await f.seen(run, "/api/v1/jobs/runs")
    assert run.aggregate_id is not None
    f.pipeline_run = run.aggregate_id
    return f


async def replays(f: Family, execution_id: str, **params: Any) -> dict[str, Any]:
    response = await f.client.get(f"{EXECUTIONS}/{execution_id}/replays", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == list(ExecutionListResponse.model_fields)
    return body


async def lineage(f: Family, execution_id: str, **headers: str) -> dict[str, Any]:
    response = await f.client.get(f"{EXECUTIONS}/{execution_id}/lineage", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == list(LineageResponse.model_fields)
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [execution["id"] for execution in body["executions"]]


# --- root_execution_id in ExecutionResponse ------------------------------------------------------


async def test_every_execution_reads_as_its_command_answered_it(family: Family) -> None:
    for name in ("root", "first", "second", "grandchild"):
        body = (await family.client.get(f"{EXECUTIONS}/{family.ids[name]}")).json()
        assert list(body) == list(EXECUTION_FIELDS)
        assert body == family.replies[name], name


async def test_a_replay_of_a_replay_names_its_parent_and_the_root(family: Family) -> None:
    root, first = family.ids["root"], family.ids["first"]
    shown = {
        name: (body["parent_execution_id"], body["root_execution_id"], body["replay_source"])
        for name in ("root", "first", "grandchild")
        for body in [(await family.client.get(f"{EXECUTIONS}/{family.ids[name]}")).json()]
    }
    assert shown == {
        "root": (None, None, None),
        "first": (root, root, "manual"),
        "grandchild": (first, root, "manual"),
    }


# --- /replays ------------------------------------------------------------------------------------


async def test_replays_are_the_children_newest_first(family: Family) -> None:
    body = await replays(family, family.ids["root"])
    assert ids(body) == family.of("second", "first")  # not the deleted one, nor grandchildren
    assert (body["total"], body["limit"], body["offset"], body["has_more"]) == (2, 100, 0, False)
    for execution in body["executions"]:
        assert list(execution) == list(EXECUTION_FIELDS)
        single = (await family.client.get(f"{EXECUTIONS}/{execution['id']}")).json()
        assert execution == single
    assert ids(await replays(family, family.ids["first"])) == family.of("grandchild")
    leaf = await replays(family, family.ids["grandchild"])
    assert (leaf["total"], leaf["executions"], leaf["has_more"]) == (0, [], False)


async def test_replays_page_by_limit_and_offset(family: Family) -> None:
    root = family.ids["root"]
    pages = [await replays(family, root, limit=1, offset=offset) for offset in (0, 1)]
    assert [ids(page) for page in pages] == [family.of("second"), family.of("first")]
    assert [page["has_more"] for page in pages] == [True, False]
    assert {page["total"] for page in pages} == {2}
    assert (pages[1]["limit"], pages[1]["offset"]) == (1, 1)
    past = await replays(family, root, offset=5)
    assert (past["total"], past["executions"], past["has_more"]) == (2, [], False)


@pytest.mark.parametrize("path", ["replays", "lineage"])
async def test_an_unknown_deleted_or_pipeline_run_id_is_404(family: Family, path: str) -> None:
    for missing in (str(uuid.uuid4()), family.ids["gone"], family.pipeline_run):
        response = await family.client.get(f"{EXECUTIONS}/{missing}/{path}")
        error = assert_error(response, 404, "UnknownExecution")
        assert missing in error["detail"]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": "0"}, ["query", "limit"]),
        ({"limit": str(MAX_LIMIT + 1)}, ["query", "limit"]),
        ({"limit": "many"}, ["query", "limit"]),
        ({"offset": "-1"}, ["query", "offset"]),
        ({"offset": str(2**63)}, ["query", "offset"]),
    ],
)
async def test_a_bad_page_is_fastapis_422(
    family: Family, params: dict[str, str], loc: list[str]
) -> None:
    response = await family.client.get(f"{EXECUTIONS}/{family.ids['root']}/replays", params=params)
    assert_fastapi_422(response, loc)


@pytest.mark.parametrize("path", ["replays", "lineage"])
async def test_a_non_uuid_id_is_fastapis_422(family: Family, path: str) -> None:
    response = await family.client.get(f"{EXECUTIONS}/not-an-id/{path}")
    assert_fastapi_422(response, ["path", "execution_id"])


# --- /lineage ------------------------------------------------------------------------------------


async def test_lineage_names_root_parent_and_children(family: Family) -> None:
    root, first, second, grandchild = family.of("root", "first", "second", "grandchild")
    assert await lineage(family, root) == {
        "execution_id": root,
        "root_execution_id": None,
        "parent_execution_id": None,
        "children": [second, first],
        "children_total": 2,
    }
    assert await lineage(family, first) == {
        "execution_id": first,
        "root_execution_id": root,
        "parent_execution_id": root,
        "children": [grandchild],
        "children_total": 1,
    }
    assert await lineage(family, grandchild) == {
        "execution_id": grandchild,
        "root_execution_id": root,
        "parent_execution_id": first,
        "children": [],
        "children_total": 0,
    }


async def test_lineage_waits_for_x_min_version(family: Family, fast_min_version_wait: None) -> None:
    first = family.ids["first"]
    assert (await lineage(family, first, **{"X-Min-Version": "1"}))["execution_id"] == first
    response = await family.client.get(
        f"{EXECUTIONS}/{first}/lineage", headers={"X-Min-Version": "1000"}
    )
    assert_error(response, 503, "ReadModelBehind")
    bad = await family.client.get(f"{EXECUTIONS}/{first}/lineage", headers={"X-Min-Version": "x"})
    assert_fastapi_422(bad, ["header", "X-Min-Version"])


async def test_the_document_describes_both_reads(family: Family) -> None:
    paths = (await family.client.get("/openapi.json")).json()["paths"]
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, model in (("replays", "ExecutionListResponse"), ("lineage", "LineageResponse")):
        operation = paths[f"{EXECUTIONS}/{{execution_id}}/{path}"]["get"]
        responses = operation["responses"]
        assert responses["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model}"
        }
        assert responses["404"]["content"]["application/json"]["schema"] == error
        assert "422" in responses
