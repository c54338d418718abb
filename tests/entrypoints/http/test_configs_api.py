"""Seed 004's config endpoints over real HTTP: the `api` role on a free port, the real
broker, an in-process command handler, and the relay and projector roles keeping the read
models. Configs are created in YAML and JSON, refused with their report, validated
in-process; every error answers in its documented shape."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
import yaml

from domain.validation import validate_config
from services.entrypoints.http import configs
from services.entrypoints.http.configs import CONFIG_FIELDS, UNPARSEABLE
from services.entrypoints.http.factflow import ErrorResponse, ValidationFailedResponse
from services.entrypoints.http.pipelines import VERSION_HEADER
from services.service_layer.decider import Decider
from tests.entrypoints.http.support import api_only, module_client

CONFIGS = "/api/v1/configs"
VALIDATE = f"{CONFIGS}/validate"
# Small, so the 413 tests need small bodies (a command message holds the document).
MAX_MESSAGE_BYTES = 64 * 1024

YAML_DOC = """\
version: "1.0"
routes:
  fetch:
    name: Fetch
    inbound: {topic: fetch.in}
    adapters:
      - type: map
        config: {fields: {u: "{payload.url}"}}
init_message: {route: fetch, payload: {url: "https://a"}}
"""
JSON_DOC = orjson.dumps(yaml.safe_load(YAML_DOC)).decode()
# The document as the handler stores it: defaults filled in.
report_and_doc = validate_config(YAML_DOC, configs.ADAPTERS)
NORMALIZED = report_and_doc[1].model_dump(mode="json") if report_and_doc[1] else None
# No dead-letter topic: valid, with one warning.
WARNINGS = ["W502"]
UNKNOWN_ADAPTER_YAML = YAML_DOC.replace("type: map", "type: no_such_adapter")

ERROR_FIELDS = set(ErrorResponse.model_fields)
REPORT_400_FIELDS = set(ValidationFailedResponse.model_fields)


client = module_client("configs", read_models=True, max_message_bytes=MAX_MESSAGE_BYTES)


def headers_for(content_type: str | None, **extra: str) -> dict[str, str]:
    return ({} if content_type is None else {"Content-Type": content_type}) | extra


async def create(
    client: httpx.AsyncClient,
    body: str | bytes = YAML_DOC,
    content_type: str | None = "application/yaml",
    name: str | None = "crawler",
    **headers: str,
) -> httpx.Response:
    params = {} if name is None else {"name": name}
    return await client.post(
        CONFIGS, content=body, params=params, headers=headers_for(content_type, **headers)
    )


async def created(client: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
    response = await create(client, **kwargs)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body | {"x_version": response.headers[VERSION_HEADER]}


async def read(client: httpx.AsyncClient, config_id: str, version: str) -> Any:
    response = await client.get(f"{CONFIGS}/{config_id}", headers={"X-Min-Version": version})
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_FIELDS
    assert body["error_code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["correlation_id"] == response.headers["X-Correlation-ID"]
    datetime.fromisoformat(body["timestamp"])
    return body


def assert_fastapi_422(response: httpx.Response, loc: list[str]) -> None:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert [entry["loc"] for entry in detail] == [loc]
    assert {"loc", "msg", "type"} <= set(detail[0])


def codes(report: dict[str, Any]) -> list[str]:
    return [issue["code"] for issue in report["issues"]]


# --- create ----------------------------------------------------------------------------------


async def test_a_yaml_document_creates_a_config_that_reads_back_the_same(
    client: httpx.AsyncClient,
) -> None:
    response = await create(client, name="crawler")
    assert response.status_code == 201, response.text
    body = response.json()
    assert tuple(body) == CONFIG_FIELDS
    assert response.headers["Location"] == f"{CONFIGS}/{body['id']}"
    assert uuid.UUID(body["id"])
    assert (body["name"], body["version"]) == ("crawler", 1)
    assert body["document"] == NORMALIZED
    assert body["document"]["routes"]["fetch"]["inbound"]["concurrency"] == 1  # a default
    assert body["created_at"] == body["updated_at"]
    report = body["validation_report"]
    assert (report["is_valid"], report["error_count"], codes(report)) == (True, 0, WARNINGS)

    assert await read(client, body["id"], response.headers[VERSION_HEADER]) == body


@pytest.mark.parametrize(
    ("content_type", "document"),
    [
        ("application/json", JSON_DOC),
        (None, JSON_DOC),
        ("application/x-yaml", YAML_DOC),
        ("text/yaml; charset=utf-8", YAML_DOC),
        (None, YAML_DOC),
    ],
)
async def test_json_and_yaml_in_every_media_type_give_the_same_config(
    client: httpx.AsyncClient, content_type: str | None, document: str
) -> None:
    body = await created(client, body=document, content_type=content_type)
    assert body["document"] == NORMALIZED
    assert codes(body["validation_report"]) == WARNINGS


async def test_an_invalid_document_is_400_with_its_report_beside_the_error_fields(
    client: httpx.AsyncClient,
) -> None:
    given = "trace-" + uuid.uuid4().hex
    response = await create(client, body=UNKNOWN_ADAPTER_YAML, **{"X-Correlation-ID": given})
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == REPORT_400_FIELDS
    assert (body["error_code"], body["detail"]) == (
        "ConfigValidationFailed",
        "Config validation failed",
    )
    assert body["correlation_id"] == given == response.headers["X-Correlation-ID"]
    datetime.fromisoformat(body["timestamp"])
    assert (body["is_valid"], body["error_count"]) == (False, 1)
    assert codes(body) == ["E103", *WARNINGS]
    assert body["issues"][0]["path"] == "routes.fetch.adapters[0].type"

    # The validate endpoint answers the very report the handler refused it with.
    validated = await client.post(VALIDATE, content=UNKNOWN_ADAPTER_YAML)
    report = {key: body[key] for key in ("is_valid", "issues", "error_count", "warning_count")}
    assert validated.json() == report


async def test_a_document_that_is_no_mapping_is_a_validation_failure(
    client: httpx.AsyncClient,
) -> None:
    response = await create(client, body="- a\n- b\n")
    assert response.status_code == 400, response.text
    assert codes(response.json()) == ["E002"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/yaml", "version: [unclosed\n"),
        (None, '{"version": "1.0",'),
        ("application/json", YAML_DOC),  # declared JSON, is YAML
        ("application/yaml", b"\xff\xfeversion: 1"),  # not UTF-8
    ],
)
async def test_a_body_that_is_no_document_is_400_unparseable(
    client: httpx.AsyncClient, content_type: str | None, body: str | bytes
) -> None:
    response = await create(client, body=body, content_type=content_type)
    error = assert_error(response, 400, UNPARSEABLE)
    assert error["detail"].startswith("The config document cannot be parsed: ")


async def test_a_missing_or_empty_name_is_fastapis_422(client: httpx.AsyncClient) -> None:
    assert_fastapi_422(await create(client, name=None), ["query", "name"])
    assert_fastapi_422(await create(client, name=""), ["query", "name"])


async def test_a_blank_name_is_refused_by_the_domain(client: httpx.AsyncClient) -> None:
    assert_error(await create(client, name="   "), 400, "InvalidConfigName")


@pytest.mark.parametrize("path", [CONFIGS, VALIDATE])
async def test_another_media_type_is_415(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(
        path, params={"name": "x"}, content=YAML_DOC, headers={"Content-Type": "text/plain"}
    )
    error = assert_error(response, 415, "UnsupportedMediaType")
    assert "application/yaml" in error["detail"]


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"#" * min(8192, total - sent)
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize("path", [CONFIGS, VALIDATE])
async def test_a_body_past_one_command_message_is_413(client: httpx.AsyncClient, path: str) -> None:
    too_big = b"#" * (MAX_MESSAGE_BYTES + 1)
    declared = await client.post(path, params={"name": "x"}, content=too_big)
    assert_error(declared, 413, "PayloadTooLarge")
    # No Content-Length (chunked): refused while it is read.
    streamed = await client.post(path, params={"name": "x"}, content=_chunks(MAX_MESSAGE_BYTES + 1))
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413, "PayloadTooLarge")


async def test_a_body_whose_command_would_pass_the_limit_is_413(
    client: httpx.AsyncClient,
) -> None:
    # Under the limit as a body, over it inside the command (each `"` is escaped there).
    body = YAML_DOC + "# " + '"' * (MAX_MESSAGE_BYTES * 3 // 4) + "\n"
    assert len(body.encode()) < MAX_MESSAGE_BYTES
    error = assert_error(await create(client, body=body), 413, "PayloadTooLarge")
    assert "bytes)" in error["detail"]
    # The document itself is fine: only its size is refused.
    assert (await client.post(VALIDATE, content=body)).json()["is_valid"] is True


async def test_a_repeated_idempotency_key_is_the_same_config(client: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    first = await created(client, **{"Idempotency-Key": key})
    again = await created(client, **{"Idempotency-Key": key})
    assert again == first


# --- update ----------------------------------------------------------------------------------


async def test_an_update_is_a_new_version_that_reads_back(client: httpx.AsyncClient) -> None:
    first = await created(client, name="before")
    changed = YAML_DOC.replace("https://a", "https://b")
    response = await client.put(
        f"{CONFIGS}/{first['id']}",
        params={"name": "after"},
        content=changed,
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert tuple(body) == CONFIG_FIELDS
    assert "Location" not in response.headers
    assert (body["id"], body["name"], body["version"]) == (first["id"], "after", 2)
    assert body["document"]["init_message"]["payload"] == {"url": "https://b"}
    assert body["created_at"] == first["created_at"]
    assert body["updated_at"] >= first["updated_at"]
    assert int(response.headers[VERSION_HEADER]) > int(first["x_version"])
    assert await read(client, first["id"], response.headers[VERSION_HEADER]) == body

    # Without a name the name stays.
    kept = await client.put(f"{CONFIGS}/{first['id']}", content=JSON_DOC)
    assert kept.status_code == 200, kept.text
    assert (kept.json()["name"], kept.json()["version"]) == ("after", 3)


async def test_an_invalid_update_is_400_with_its_report(client: httpx.AsyncClient) -> None:
    first = await created(client)
    response = await client.put(f"{CONFIGS}/{first['id']}", content=UNKNOWN_ADAPTER_YAML)
    assert response.status_code == 400, response.text
    assert set(response.json()) == REPORT_400_FIELDS
    assert codes(response.json())[0] == "E103"
    assert (await read(client, first["id"], first["x_version"]))["version"] == 1


async def test_updating_an_unknown_config_is_404(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{CONFIGS}/{uuid.uuid4()}", content=YAML_DOC)
    error = assert_error(response, 404, "UnknownConfig")
    uuid.UUID(error["correlation_id"])  # none was given: one was made


# --- read ------------------------------------------------------------------------------------


async def test_an_unknown_config_is_404(client: httpx.AsyncClient) -> None:
    config_id = uuid.uuid4()
    error = assert_error(await client.get(f"{CONFIGS}/{config_id}"), 404, "UnknownConfig")
    assert str(config_id) in error["detail"]


async def test_a_version_never_reached_is_503_after_the_wait(
    client: httpx.AsyncClient, fast_min_version_wait: None
) -> None:
    first = await created(client)
    response = await client.get(
        f"{CONFIGS}/{first['id']}", headers={"X-Min-Version": str(int(first["x_version"]) + 99)}
    )
    assert_error(response, 503, "ReadModelBehind")
    assert response.headers["Retry-After"] == "5"


async def test_non_uuid_ids_and_bad_headers_are_fastapis_422(client: httpx.AsyncClient) -> None:
    assert_fastapi_422(await client.get(f"{CONFIGS}/not-a-uuid"), ["path", "config_id"])
    assert_fastapi_422(
        await client.put(f"{CONFIGS}/not-a-uuid", content=YAML_DOC), ["path", "config_id"]
    )
    response = await client.get(f"{CONFIGS}/{uuid.uuid4()}", headers={"X-Min-Version": "two"})
    assert_fastapi_422(response, ["header", "X-Min-Version"])


async def test_an_unsupported_method_is_405_error_response(client: httpx.AsyncClient) -> None:
    assert_error(await client.patch(f"{CONFIGS}/{uuid.uuid4()}"), 405, "MethodNotAllowed")


async def test_a_correlation_id_that_is_no_plain_token_is_replaced(
    client: httpx.AsyncClient,
) -> None:
    for given in ("x" * 129, "has space"):
        response = await client.get(
            f"{CONFIGS}/{uuid.uuid4()}", headers={"X-Correlation-ID": given}
        )
        error = assert_error(response, 404, "UnknownConfig")
        uuid.UUID(error["correlation_id"])


# --- validate --------------------------------------------------------------------------------


async def test_validate_answers_200_for_a_valid_document(client: httpx.AsyncClient) -> None:
    response = await client.post(
        VALIDATE, content=JSON_DOC, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert set(report) == {"is_valid", "issues", "error_count", "warning_count"}
    assert (report["is_valid"], report["warning_count"], codes(report)) == (True, 1, WARNINGS)
    assert set(report["issues"][0]) == {"severity", "code", "path", "message", "suggestion"}


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/yaml", UNKNOWN_ADAPTER_YAML, ["E103", *WARNINGS]),
        ("application/yaml", "version: [unclosed\n", ["E001"]),
        (None, '{"version": "1.0",', ["E001"]),
        ("application/json", YAML_DOC, ["E001"]),
        ("application/yaml", b"\xff\xfe", ["E001"]),
        (None, "", ["E002"]),
    ],
)
async def test_validate_answers_200_with_the_report_of_a_bad_document(
    client: httpx.AsyncClient, content_type: str | None, body: str | bytes, expected: list[str]
) -> None:
    response = await client.post(VALIDATE, content=body, headers=headers_for(content_type))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["is_valid"] is False
    assert codes(report) == expected
    assert report["error_count"] == sum(code.startswith("E") for code in expected)


async def test_validate_needs_no_command_handler(kafka_bootstrap: str, sqlite_url: str) -> None:
    # The api role alone: a command would time out (503) after 1 s, validate does not.
    async with api_only(kafka_bootstrap, sqlite_url, api_result_timeout_s=1.0) as (_, alone):
        response = await alone.post(VALIDATE, content=YAML_DOC)
        assert response.status_code == 200, response.text
        assert response.json()["is_valid"] is True


def test_validate_uses_the_command_handlers_adapter_registry() -> None:
    assert inspect.signature(Decider).parameters["adapters"].default is configs.ADAPTERS
