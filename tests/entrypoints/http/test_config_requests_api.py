"""Seed 004's config endpoints over real HTTP, FactFlow's way, on SQLite and PostgreSQL: a
create or update sent as FactFlow's JSON request `{name, description, config_yaml}`, the
config it stores run, and `GET /api/v1/configs` paging and filtering by name. The `api`
role, the real broker, an in-process command handler, and the relay and projector roles
keeping the read models (as test_configs_api.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from services.entrypoints.http.configs import CONFIG_FIELDS, UNPARSEABLE, ConfigListResponse
from services.entrypoints.http.executions import MAX_LIMIT
from services.entrypoints.http.pipelines import VERSION_HEADER
from tests.entrypoints.http.support import (
    STORES,
    api_settings,
    module_store_url,
    projected_api,
)
from tests.entrypoints.http.test_configs_api import (
    CONFIGS,
    JSON_DOC,
    NORMALIZED,
    UNKNOWN_ADAPTER_YAML,
    YAML_DOC,
    assert_error,
    assert_fastapi_422,
    codes,
    created,
    read,
)

LIST_FIELDS = tuple(ConfigListResponse.model_fields)
# Two routes, so a run's stage runs show the document it was given.
TWO_ROUTES_YAML = """\
version: "1.0"
routes:
  fetch:
    name: Fetch
    inbound: {topic: requests.fetch.in}
    outbound: [requests.parse.in]
    adapters: [{type: pass_through}]
  parse:
    name: Parse
    inbound: {topic: requests.parse.in}
    adapters: [{type: pass_through}]
init_message: {route: fetch, payload: {url: "https://a"}}
"""


@pytest.fixture(scope="module", params=STORES)
async def client(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(
        kafka_bootstrap, module_store_url(request, tmp_path_factory.mktemp("config_requests"))
    )
    async with projected_api(settings) as the_client:
        yield the_client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def send(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    config_id: str | None = None,
    **params: str,
) -> httpx.Response:
    """FactFlow's request: a create, or the update of `config_id`."""
    content = orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    if config_id is None:
        return await client.post(CONFIGS, content=content, params=params, headers=headers)
    return await client.put(
        f"{CONFIGS}/{config_id}", content=content, params=params, headers=headers
    )


async def sent(client: httpx.AsyncClient, body: dict[str, Any], **params: str) -> dict[str, Any]:
    response = await send(client, body, **params)
    assert response.status_code == 201, response.text
    config: dict[str, Any] = response.json()
    assert tuple(config) == CONFIG_FIELDS
    assert response.headers["Location"] == f"{CONFIGS}/{config['id']}"
    # Read back, so the list tests find it in the read model.
    assert await read(client, config["id"], response.headers[VERSION_HEADER]) == config
    return config


async def listed(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(CONFIGS, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert tuple(body) == LIST_FIELDS
    return body


# --- FactFlow's request ------------------------------------------------------------------------


async def test_factflow_s_request_creates_a_config_that_a_run_uses(
    client: httpx.AsyncClient,
) -> None:
    name = unique("factflow")
    request = {"name": name, "description": "two routes", "config_yaml": TWO_ROUTES_YAML}
    config = await sent(client, request)
    assert (config["name"], config["description"], config["version"]) == (name, "two routes", 1)
    assert list(config["document"]["routes"]) == ["fetch", "parse"]
    assert config["validation_report"]["is_valid"] is True

    run = await client.post(f"{CONFIGS}/{config['id']}/run")
    assert run.status_code == 200, run.text
    execution = run.json()
    assert execution["config_id"] == config["id"]
    stages = await client.get(
        f"/api/v1/executions/{execution['id']}/stages",
        headers={"X-Min-Version": run.headers[VERSION_HEADER]},
    )
    assert stages.status_code == 200, stages.text
    assert [stage["stage"] for stage in stages.json()] == ["fetch", "parse"]


async def test_config_yaml_may_be_json_text_and_the_description_is_optional(
    client: httpx.AsyncClient,
) -> None:
    config = await sent(client, {"name": "json-text", "config_yaml": JSON_DOC})
    assert config["document"] == NORMALIZED
    assert config["description"] is None


async def test_the_name_may_come_as_the_query_parameter(client: httpx.AsyncClient) -> None:
    config = await sent(client, {"config_yaml": YAML_DOC}, name="from-query")
    assert config["name"] == "from-query"
    # The same name twice is no conflict.
    again = await sent(client, {"name": "both", "config_yaml": YAML_DOC}, name="both")
    assert again["name"] == "both"


async def test_the_document_as_the_body_still_has_no_description(
    client: httpx.AsyncClient,
) -> None:
    config = await created(client, body=JSON_DOC, content_type="application/json")
    assert config["description"] is None
    assert config["document"] == NORMALIZED


async def test_a_request_without_a_name_is_fastapis_422(client: httpx.AsyncClient) -> None:
    response = await send(client, {"description": "nameless", "config_yaml": YAML_DOC})
    assert_fastapi_422(response, ["body", "name"])
    assert "name" in response.json()["detail"][0]["msg"]


async def test_two_different_names_are_fastapis_422(client: httpx.AsyncClient) -> None:
    response = await send(client, {"name": "body", "config_yaml": YAML_DOC}, name="query")
    assert_fastapi_422(response, ["query", "name"])
    assert "body" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "x", "config_yaml": {"version": "1.0"}}, ["body", "config_yaml"]),
        ({"name": "x", "config_yaml": None}, ["body", "config_yaml"]),
        ({"name": "", "config_yaml": YAML_DOC}, ["body", "name"]),
        ({"name": "x", "description": 7, "config_yaml": YAML_DOC}, ["body", "description"]),
        ({"name": "x", "tags": ["a"], "config_yaml": YAML_DOC}, ["body", "tags"]),
    ],
)
async def test_a_request_that_does_not_fit_is_fastapis_422(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str]
) -> None:
    assert_fastapi_422(await send(client, body), loc)


async def test_config_yaml_that_is_no_document_is_400_unparseable(
    client: httpx.AsyncClient,
) -> None:
    response = await send(client, {"name": "x", "config_yaml": "version: [unclosed\n"})
    error = assert_error(response, 400, UNPARSEABLE)
    assert error["detail"].startswith("The config document cannot be parsed: ")


async def test_config_yaml_that_does_not_validate_is_400_with_its_report(
    client: httpx.AsyncClient,
) -> None:
    response = await send(client, {"name": "x", "config_yaml": UNKNOWN_ADAPTER_YAML})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "ConfigValidationFailed"
    assert codes(body)[0] == "E103"


async def test_an_update_as_factflow_s_request_keeps_what_it_leaves_out(
    client: httpx.AsyncClient,
) -> None:
    first = await sent(client, {"name": "kept", "description": "first", "config_yaml": YAML_DOC})
    changed = YAML_DOC.replace("https://a", "https://b")
    response = await send(client, {"config_yaml": changed}, config_id=first["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["description"], body["version"]) == ("kept", "first", 2)
    assert body["document"]["init_message"]["payload"] == {"url": "https://b"}

    renamed = await send(
        client,
        {"name": "renamed", "description": "second", "config_yaml": changed},
        config_id=first["id"],
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["description"]) == ("renamed", "second")
    # The document as the body: the description stays too.
    plain = await client.put(f"{CONFIGS}/{first['id']}", content=YAML_DOC)
    assert plain.status_code == 200, plain.text
    assert (plain.json()["description"], plain.json()["version"]) == ("second", 4)
    assert await read(client, first["id"], plain.headers[VERSION_HEADER]) == plain.json()


async def test_an_update_request_names_the_config_once(client: httpx.AsyncClient) -> None:
    first = await sent(client, {"name": "once", "config_yaml": YAML_DOC})
    response = await send(
        client, {"name": "a", "config_yaml": YAML_DOC}, config_id=first["id"], name="b"
    )
    assert_fastapi_422(response, ["query", "name"])
    assert_fastapi_422(
        await send(client, {"config_yaml": 1}, config_id=first["id"]), ["body", "config_yaml"]
    )


# --- the list ------------------------------------------------------------------------------------


async def test_the_list_is_newest_first_and_pages(client: httpx.AsyncClient) -> None:
    name = unique("paged")
    ids = [(await sent(client, {"name": name, "config_yaml": YAML_DOC}))["id"] for _ in range(3)]
    newest_first = ids[::-1]

    whole = await listed(client, name=name)
    assert (whole["total"], whole["limit"], whole["offset"], whole["has_more"]) == (
        3, 100, 0, False
    )  # fmt: skip
    assert [c["id"] for c in whole["configs"]] == newest_first
    assert all(tuple(c) == CONFIG_FIELDS for c in whole["configs"])
    shown = await read(client, ids[0], "1")
    assert whole["configs"][-1] == shown

    first = await listed(client, name=name, limit=2)
    assert (first["total"], first["has_more"], [c["id"] for c in first["configs"]]) == (
        3, True, newest_first[:2]
    )  # fmt: skip
    rest = await listed(client, name=name, limit=2, offset=2)
    assert (rest["total"], rest["has_more"], [c["id"] for c in rest["configs"]]) == (
        3, False, newest_first[2:]
    )  # fmt: skip
    past = await listed(client, name=name, offset=5)
    assert (past["total"], past["has_more"], past["configs"]) == (3, False, [])

    # Unfiltered, the newest configs of all come first.
    everything = await listed(client, limit=3)
    assert everything["total"] >= 3 and everything["has_more"] is (everything["total"] > 3)
    assert [c["id"] for c in everything["configs"]] == newest_first


async def test_the_name_filter_is_exact(client: httpx.AsyncClient) -> None:
    name = unique("Exact")
    config = await sent(client, {"name": name, "config_yaml": YAML_DOC})
    await sent(client, {"name": f"{name}-longer", "config_yaml": YAML_DOC})
    found = await listed(client, name=name)
    assert (found["total"], [c["id"] for c in found["configs"]]) == (1, [config["id"]])
    for other in (name.lower(), name[:-1], f"{name} "):
        assert (await listed(client, name=other))["total"] == 0


async def test_a_renamed_config_is_listed_under_its_new_name(client: httpx.AsyncClient) -> None:
    before, after = unique("before"), unique("after")
    config = await sent(client, {"name": before, "config_yaml": YAML_DOC})
    response = await send(client, {"name": after, "config_yaml": YAML_DOC}, config_id=config["id"])
    assert response.status_code == 200, response.text
    await read(client, config["id"], response.headers[VERSION_HEADER])
    assert (await listed(client, name=before))["total"] == 0
    assert [c["id"] for c in (await listed(client, name=after))["configs"]] == [config["id"]]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": MAX_LIMIT + 1}, ["query", "limit"]),
        ({"limit": "ten"}, ["query", "limit"]),
        ({"offset": -1}, ["query", "offset"]),
        ({"name": ""}, ["query", "name"]),
    ],
)
async def test_a_bad_list_parameter_is_fastapis_422(
    client: httpx.AsyncClient, params: dict[str, Any], loc: list[str]
) -> None:
    assert_fastapi_422(await client.get(CONFIGS, params=params), loc)


async def test_the_largest_page_is_allowed(client: httpx.AsyncClient) -> None:
    assert (await listed(client, limit=MAX_LIMIT))["limit"] == MAX_LIMIT
