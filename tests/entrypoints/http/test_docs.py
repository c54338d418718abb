"""The documentation the API serves, over real HTTP: /openapi.json lists every path of the
seed documents with their methods and parameters, each operation with a summary, a
described tag and its errors in its family's shape; /docs, /redoc, /asyncapi.json and
/asyncapi answer without an API key and load their scripts and styles from the API itself."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import httpx
import orjson
import pytest
from pydantic import BaseModel

from contracts.errors import ErrorBody
from services.entrypoints import asyncapi
from services.entrypoints.http.error_docs import EsperError, MarquezError
from services.entrypoints.http.errors import render_esper, render_feldera, render_marquez
from services.settings import Settings
from tests.entrypoints.http.support import api_stack

START_QUERY = {"initial", "bootstrap_policy", "dismiss_error"}
ONE_RUN = "/pipelines/v0/pipelines/{pipeline_id}/runs/{pipeline_run_id}"

# (seed, method, path as the seed writes it, the query parameters the seed documents)
SEED_OPERATIONS: list[Any] = [
    ("000", "POST", "/v0/pipelines/{pipeline_name}/start", START_QUERY),
    ("001", "POST", "/v0/pipelines/{pipeline_name}/stop", {"force"}),
    ("002", "POST", "/api/v1/jobs/runs/{id}/start", {"at"}),
    ("003", "GET", "/v0/runs", {"status", "pipeline_name", "ordering"}),
    ("003", "GET", "/pipelines/v0/pipelines/{pipeline_id}/runs", {"status", "ordering"}),
    ("003", "POST", "/pipelines/v0/pipelines/{pipeline_id}/runs", set()),
    ("003", "GET", ONE_RUN, set()),
    ("003", "PUT", ONE_RUN, set()),
    ("003", "DELETE", ONE_RUN, set()),
    ("004", "POST", "/api/v1/configs/{config_id}/run", {"skip_init_message", "tag"}),
]

# The rest of each family: the seeds' siblings.
FAMILY_OPERATIONS: list[tuple[str, str]] = [
    ("POST", "/v0/pipelines"),
    ("GET", "/v0/pipelines"),
    ("GET", "/v0/pipelines/{pipeline_name}"),
    ("DELETE", "/v0/pipelines/{pipeline_name}"),
    *(
        ("POST", f"/v0/pipelines/{{pipeline_name}}/{action}")
        for action in ("pause", "resume", "checkpoint", "approve", "dismiss_error", "clear")
    ),
    *(("POST", f"/api/v1/jobs/runs/{{id}}/{verb}") for verb in ("complete", "fail", "abort")),
    ("GET", "/api/v1/jobs/runs/{id}"),
    ("GET", "/pipelines/v0/runs"),
    ("POST", "/api/v1/configs"),
    ("GET", "/api/v1/configs"),
    ("GET", "/api/v1/configs/{config_id}"),
    ("POST", "/api/v1/configs/validate"),
    ("GET", "/api/v1/executions/{id}"),
    ("GET", "/api/v1/executions"),
    ("POST", "/api/v1/executions"),
    ("POST", "/api/v1/executions/{id}/cancel"),
    ("POST", "/api/v1/executions/{id}/replay"),
    ("GET", "/api/v1/executions/{id}/replays"),
    ("GET", "/api/v1/executions/{id}/lineage"),
    ("GET", "/api/v1/executions/{id}/events"),
    ("GET", "/api/v1/executions/{id}/stages"),
    ("GET", "/pipelines/v0/runs/{run_id}/stageruns"),
    ("GET", "/pipelines/v0/runs/{run_id}/stageruns/{stage_run_id}"),
]

# Path prefix -> the family's error model (its component schema in the document).
FAMILY_ERRORS: dict[str, type[BaseModel]] = {
    "/v0/pipelines": ErrorBody,
    "/api/v1/jobs": MarquezError,
    "/pipelines/v0": EsperError,
    "/v0/runs": EsperError,
}


def template(path: str) -> str:
    """A path with its parameter names blanked: `/runs/{id}` and `/runs/{run_id}` match."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def family_model(path: str) -> type[BaseModel] | None:
    for prefix, model in FAMILY_ERRORS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return model
    return None


@dataclass
class Served:
    settings: Settings
    client: httpx.AsyncClient  # sends an API key
    anonymous: httpx.AsyncClient  # sends none
    openapi: dict[str, Any]

    def operation(self, method: str, path: str) -> dict[str, Any]:
        by_template = {template(p): ops for p, ops in self.openapi["paths"].items()}
        operations = by_template.get(template(path))
        assert operations is not None, f"{path} is not in /openapi.json"
        assert method.lower() in operations, f"{method} {path} is not in /openapi.json"
        found: dict[str, Any] = operations[method.lower()]
        return found

    def operations(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (method.upper(), path, operation)
            for path, operations in self.openapi["paths"].items()
            for method, operation in operations.items()
        ]


@pytest.fixture(scope="module")
async def served(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    tmp = tmp_path_factory.mktemp("docs")
    async with (
        api_stack(kafka_bootstrap, tmp) as (settings, client, _),
        httpx.AsyncClient(base_url=client.base_url, timeout=60) as anonymous,
    ):
        answer = await anonymous.get("/openapi.json")
        assert answer.status_code == 200, answer.text
        yield Served(settings, client, anonymous, answer.json())


# --- the OpenAPI document -----------------------------------------------------------------


def test_openapi_names_the_service_and_its_version(served: Served) -> None:
    info = served.openapi["info"]
    assert info["title"] == "pipeline-service"
    assert info["version"] == version("pipeline-service")
    assert "/asyncapi" in info["description"]


@pytest.mark.parametrize(("seed", "method", "path", "query"), SEED_OPERATIONS)
def test_openapi_lists_every_seed_operation(
    served: Served, seed: str, method: str, path: str, query: set[str]
) -> None:
    operation = served.operation(method, path)
    documented = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"}
    assert query <= documented, f"seed {seed}: {method} {path} lacks {query - documented}"


@pytest.mark.parametrize(("method", "path"), FAMILY_OPERATIONS)
def test_openapi_lists_every_operation_of_the_seed_families(
    served: Served, method: str, path: str
) -> None:
    served.operation(method, path)


def test_every_operation_has_a_summary_and_a_described_tag(served: Served) -> None:
    described = {tag["name"] for tag in served.openapi["tags"] if tag.get("description")}
    for method, path, operation in served.operations():
        assert operation.get("summary"), f"{method} {path} has no summary"
        assert operation.get("tags"), f"{method} {path} has no tag"
        assert set(operation["tags"]) <= described, f"{method} {path}: undescribed tag"


def test_family_operations_declare_their_errors_in_the_family_shape(served: Served) -> None:
    checked = 0
    for method, path, operation in served.operations():
        model = family_model(path)
        if model is None:
            continue
        checked += 1
        responses = operation["responses"]
        errors = {status: r for status, r in responses.items() if int(status) >= 400}
        assert errors, f"{method} {path} declares no error"
        # A request these paths cannot parse is the family's 400, never FastAPI's 422.
        assert "422" not in responses, f"{method} {path} documents a 422 it never answers"
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{model.__name__}"}, (
                f"{method} {path} {status}"
            )
        if "503" in errors:
            assert "Retry-After" in errors["503"]["headers"], f"{method} {path}"
    assert checked >= 24  # every operation of the three families, not a vacuous loop


def test_factflow_operations_keep_fastapis_422(served: Served) -> None:
    # Seed 004 documents FastAPI's 422 HTTPValidationError: it stays in the document.
    for method, path in (
        ("GET", "/api/v1/configs/{}"),
        ("GET", "/api/v1/executions/{}"),
        ("GET", "/api/v1/executions/{}/stages"),
    ):
        response = served.operation(method, path)["responses"]["422"]
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/HTTPValidationError"}


def test_feldera_actions_document_the_success_status_feldera_answers(served: Served) -> None:
    accepted = ("start", "stop", "pause", "resume", "approve", "clear")
    for action in accepted:
        assert "202" in served.operation("POST", f"/v0/pipelines/{{}}/{action}")["responses"]
    for action in ("checkpoint", "dismiss_error"):
        assert "200" in served.operation("POST", f"/v0/pipelines/{{}}/{action}")["responses"]


# --- the declared error models are what the API answers ------------------------------------


def assert_is(model: type[BaseModel], body: Any) -> None:
    """`body` is exactly `model`: it validates, and has no field the model lacks."""
    model.model_validate(body)
    assert set(body) == set(model.model_fields), (model.__name__, body)


@pytest.mark.parametrize(
    ("render", "model"),
    [(render_feldera, ErrorBody), (render_marquez, MarquezError), (render_esper, EsperError)],
)
def test_each_family_renderer_answers_its_declared_model(render: Any, model: Any) -> None:
    response = render(404, "UnknownRun", "Run 'r' not found.", {"run_id": "r"})
    assert_is(model, orjson.loads(response.body))


# Fixed, so every pytest-xdist worker collects the same test ids; no run has it.
UNKNOWN_RUN = "0190f5a2-7c3e-7000-8000-000000000000"

ERROR_ANSWERS: list[tuple[str, str, str, int]] = [
    # (method, request path, the operation's path, status)
    ("GET", "/v0/pipelines?selector=everything", "/v0/pipelines", 400),
    ("GET", "/v0/pipelines/no-such-pipeline", "/v0/pipelines/{}", 404),
    ("POST", "/v0/pipelines/any/start?initial=foo", "/v0/pipelines/{}/start", 405),
    ("POST", "/v0/pipelines/any/stop?force=maybe", "/v0/pipelines/{}/stop", 400),
    ("GET", "/api/v1/jobs/runs/not-a-uuid", "/api/v1/jobs/runs/{}", 404),
    (
        "POST",
        f"/api/v1/jobs/runs/{UNKNOWN_RUN}/start?at=yesterday",
        "/api/v1/jobs/runs/{}/start",
        400,
    ),
    ("GET", "/v0/runs?limit=many", "/v0/runs", 400),
    (
        "GET",
        "/pipelines/v0/pipelines/no-such-pipeline/runs",
        "/pipelines/v0/pipelines/{}/runs",
        404,
    ),
    (
        "PUT",
        f"/pipelines/v0/pipelines/any/runs/{UNKNOWN_RUN}",
        "/pipelines/v0/pipelines/{}/runs/{}",
        400,
    ),
    ("GET", "/pipelines/v0/runs/any/stageruns?limit=0", "/pipelines/v0/runs/{}/stageruns", 400),
    ("GET", f"/pipelines/v0/runs/{UNKNOWN_RUN}/stageruns", "/pipelines/v0/runs/{}/stageruns", 404),
    (
        "GET",
        f"/pipelines/v0/runs/{UNKNOWN_RUN}/stageruns/validate",
        "/pipelines/v0/runs/{}/stageruns/{}",
        404,
    ),
]


@pytest.mark.parametrize(("method", "url", "path", "status"), ERROR_ANSWERS)
async def test_error_answers_are_declared_with_their_shape(
    served: Served, method: str, url: str, path: str, status: int
) -> None:
    body = {"status": "no-such-status"} if method == "PUT" else None
    answer = await served.client.request(method, url, json=body)
    assert answer.status_code == status, answer.text
    assert str(status) in served.operation(method, path)["responses"]
    model = family_model(path)
    assert model is not None
    assert_is(model, answer.json())


async def test_rejections_are_declared_with_their_shape(served: Served) -> None:
    """Refusals that come back from the command handler as CommandRejected."""
    name = f"docs-{uuid.uuid4().hex[:8]}"
    runs = f"/pipelines/v0/pipelines/{name}/runs"
    client = served.client
    assert (await client.post("/v0/pipelines", json={"name": name})).status_code == 201
    created = await client.post(runs, json={})
    assert created.status_code == 200, created.text
    run = created.json()["content"]["id"]
    completed = await client.post(f"/api/v1/jobs/runs/{run}/complete")
    assert completed.status_code == 200, completed.text

    answers = [
        (await client.post("/v0/pipelines", json={"name": name}), "POST", "/v0/pipelines"),
        (await client.post("/v0/pipelines/no-such/start"), "POST", "/v0/pipelines/{}/start"),
        (
            await client.post(f"/api/v1/jobs/runs/{run}/start"),
            "POST",
            "/api/v1/jobs/runs/{}/start",
        ),
        (await client.put(f"{runs}/{run}", json={"status": "running"}), "PUT", ONE_RUN),
        (await client.delete(f"{runs}/{uuid.uuid4()}"), "DELETE", ONE_RUN),
    ]
    statuses = [answer.status_code for answer, _, _ in answers]
    assert statuses == [409, 404, 409, 409, 404], [a.text for a, _, _ in answers]
    for answer, method, path in answers:
        assert str(answer.status_code) in served.operation(method, path)["responses"], path
        model = family_model(path)
        assert model is not None
        assert_is(model, answer.json())


# --- pages and the AsyncAPI document, with no API key ----------------------------------------


async def test_docs_answers_the_swagger_page(served: Served) -> None:
    page = await served.anonymous.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in page.text and "/openapi.json" in page.text
    assert "'validatorUrl': null" in page.text or '"validatorUrl": null' in page.text


async def test_redoc_answers_the_redoc_page(served: Served) -> None:
    page = await served.anonymous.get("/redoc")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<redoc spec-url="/openapi.json">' in page.text


async def test_docs_oauth2_redirect_is_kept(served: Served) -> None:
    page = await served.anonymous.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert "oauth2" in page.text


REFERENCE = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""")

# page -> (asset it references, the media type it must be answered with)
PAGE_ASSETS: dict[str, dict[str, str]] = {
    "/docs": {
        "/docs/assets/swagger-ui-bundle.js": "text/javascript",
        "/docs/assets/swagger-ui.css": "text/css",
        "/docs/assets/favicon-32x32.png": "image/png",
    },
    "/redoc": {
        "/redoc/assets/redoc.standalone.js": "text/javascript",
        "/docs/assets/favicon-32x32.png": "image/png",
    },
    "/asyncapi": {
        "/asyncapi/assets/index.js": "text/javascript",
        "/asyncapi/assets/default.min.css": "text/css",
    },
}


@pytest.mark.parametrize("path", list(PAGE_ASSETS))
async def test_documentation_pages_load_nothing_from_another_host(
    served: Served, path: str
) -> None:
    page = await served.anonymous.get(path)
    assert page.status_code == 200
    references = REFERENCE.findall(page.text)
    assert sorted(set(references)) == sorted(PAGE_ASSETS[path]), references
    assert "//" not in "".join(references)  # no https://, no protocol-relative //host
    assert "fonts.googleapis" not in page.text and "cdn.jsdelivr" not in page.text


@pytest.mark.parametrize(
    ("path", "media_type"),
    sorted({(a, t) for assets in PAGE_ASSETS.values() for a, t in assets.items()}),
)
async def test_each_documentation_asset_answers_with_its_type(
    served: Served, path: str, media_type: str
) -> None:
    # httpx takes gzip and unpacks it: the body is the file a browser would get.
    answer = await served.anonymous.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == media_type
    assert answer.headers["cache-control"].startswith("public")
    if media_type == "image/png":
        assert answer.content.startswith(b"\x89PNG")
    else:
        assert len(answer.content) > 10_000
        assert answer.content.decode()  # text, not the stored gzip
    if path.endswith(".js"):
        assert answer.headers["content-encoding"] == "gzip"


async def test_a_gzipped_asset_is_unpacked_for_a_client_without_gzip(served: Served) -> None:
    answer = await served.anonymous.get(
        "/docs/assets/swagger-ui-bundle.js", headers={"Accept-Encoding": "identity"}
    )
    assert answer.status_code == 200
    assert "content-encoding" not in answer.headers
    assert b"SwaggerUIBundle" in answer.content


def test_the_documentation_pages_are_not_operations(served: Served) -> None:
    assert not any(p.startswith(("/docs", "/redoc", "/asyncapi")) for p in served.openapi["paths"])


async def test_asyncapi_json_is_the_document_for_the_configured_topics(served: Served) -> None:
    answer = await served.anonymous.get("/asyncapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    expected = asyncapi.render_json(asyncapi.specification(served.settings.topics))
    assert answer.content == expected
    addresses = [channel["address"] for channel in answer.json()["channels"].values()]
    assert addresses == list(served.settings.topics.all())


async def test_asyncapi_answers_the_rendered_page(served: Served) -> None:
    page = await served.anonymous.get("/asyncapi")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"<title>{asyncapi.TITLE} AsyncAPI</title>" in page.text
    assert "AsyncApiStandalone.render" in page.text
    assert served.settings.topics.commands in page.text


def test_committed_document_is_the_default_served_one(served: Served) -> None:
    # The served document differs from docs/asyncapi.json only by the topic prefix.
    ours = asyncapi.render_json(asyncapi.specification(served.settings.topics)).decode()
    prefix = served.settings.topic_prefix
    assert ours.replace(f'"{prefix}.', '"pipelines.').encode() == asyncapi.DOCUMENT.read_bytes()
