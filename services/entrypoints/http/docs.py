"""The API's documentation: the OpenAPI document's metadata (title, version, a tag per
seed family) and the AsyncAPI document of the Kafka interface, at `/asyncapi.json` and
rendered at `/asyncapi`.

`/asyncapi.json` and `/asyncapi` are plain routes, like FastAPI's own `/docs` and
`/openapi.json`: app-wide dependencies (authentication) do not apply to them, and they are
not operations of the OpenAPI document. The AsyncAPI document is the committed
docs/asyncapi.json for the topics this process is configured with.

The pages work offline: `/docs` (Swagger UI), `/redoc` (ReDoc) and `/asyncapi`
(AsyncAPI's React component, the version faststream's page names) load their scripts,
stylesheets and favicon from `/docs/assets/`, `/redoc/assets/` and `/asyncapi/assets/`,
vendored with the console's static files (services/entrypoints/http/ui/static/vendor,
the large ones stored gzipped), never from a CDN. `/docs` and `/redoc` replace FastAPI's
own pages (turned off in app.py), which load from jsDelivr and Google Fonts.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import re
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from faststream.specification import get_asyncapi_html

from contracts.topics import Topics
from services.adapters.api_keys import Scope
from services.entrypoints import asyncapi
from services.entrypoints.http.api_keys import PATHS as API_KEY_PATHS
from services.entrypoints.http.auth import needed_scope
from services.entrypoints.http.error_docs import DESCRIPTIONS, FAMILY_MODELS
from services.entrypoints.http.errors import FASTAPI_VALIDATION_FAMILIES, family_of
from services.entrypoints.http.ui.rendering import STATIC
from services.settings import Settings

TITLE: Final = "pipeline-service"
DESCRIPTION: Final = """\
HTTP API of the pipeline control plane. Each family of paths keeps the parameters, status
codes and JSON shapes of the product it mirrors:

- `/v0/pipelines`: Feldera (seeds 000, 001); errors `{message, error_code, details}`
- `/api/v1/jobs/runs`: Marquez (seed 002); errors `{code, message}`
- `/pipelines/v0`, `/v0/runs`: Esper (seed 003); errors
  `{code, message, content: {error_code, details}}`
- `/api/v1/configs`, `/api/v1/executions`: FactFlow (seed 004); errors
  `{detail, error_code, correlation_id, timestamp}`

A request the Feldera, Marquez and Esper paths cannot parse is answered in the family's
shape with 400; FactFlow's answers FastAPI's 422, as seed 004 documents.

Writes become Kafka commands. An `Idempotency-Key` header is the command id: a request
repeated with the same key gets the same answer and changes nothing twice. A write
answers with the resulting aggregate version in `X-Pipelines-Version`; a read sent with
`X-Min-Version` waits (up to 5 s) until its read model has applied that version. A 503
carries `Retry-After`.

Every operation needs `Authorization: Bearer <api key>` (see *api keys*); `/health` and
the documentation do not.

The Kafka interface (commands, results, lifecycle events) is described by the AsyncAPI
document at [`/asyncapi`](/asyncapi) ([JSON](/asyncapi.json)).
"""

TAGS: Final[list[dict[str, Any]]] = [
    {
        "name": "pipelines",
        "description": "Seeds 000/001, Feldera's pipeline endpoints: create, list, read and "
        "delete pipelines; start, stop, pause, resume, checkpoint, approve, dismiss_error and "
        "clear. An action answers 202 with Feldera's message as soon as it is recorded; poll "
        "`GET /v0/pipelines/{pipeline_name}` for the state it leads to.",
    },
    {
        "name": "runs (Marquez)",
        "description": "Seed 002, Marquez's (deprecated) run API: mark a run started, "
        "completed, failed or aborted (`?at=` the instant it happened) and read it. Runs "
        "are the executions created through seed 003 or seed 004.",
    },
    {
        "name": "pipeline runs (Esper)",
        "description": "Seed 003, Esper's pipeline runs: every run of the enterprise, one "
        "pipeline's runs (by the pipeline's id or name), and create, read, update the "
        "status of, or delete one run. Answers are the `{code, message, content}` envelope; "
        "lists page with `limit`/`offset`. Paths work with and without a trailing slash.",
    },
    {
        "name": "configs (FactFlow)",
        "description": "Seed 004, FactFlow's pipeline configurations: create and update a "
        "config (its YAML or JSON document, validated: an invalid one is 400 with the "
        "report), read one, and validate a document without storing it.",
    },
    {
        "name": "executions (FactFlow)",
        "description": "Seed 004, FactFlow's executions: the runs of a config, one by id "
        "or listed.",
    },
    {
        "name": "api keys",
        "description": "The keys `Authorization: Bearer <key>` takes: create one (its secret "
        "is shown once), list and revoke them.",
    },
]

router = APIRouter()

ASSETS: Final = "/asyncapi/assets"
SWAGGER_ASSETS: Final = "/docs/assets"
REDOC_ASSETS: Final = "/redoc/assets"
VENDOR: Final = STATIC / "vendor"
VENDORED: Final = VENDOR / "asyncapi"
_BUNDLE: Final = "index.js"
_STYLES: Final = "default.min.css"
_SWAGGER_JS: Final = "swagger-ui-bundle.js"
_SWAGGER_CSS: Final = "swagger-ui.css"
_FAVICON: Final = "favicon-32x32.png"
_REDOC_JS: Final = "redoc.standalone.js"
# faststream's page links favicons on asyncapi.com: left out, nothing loads from elsewhere.
_REMOTE_ICONS: Final = re.compile(r'\s*<link rel="icon"[^>]*https?://[^>]*>')
_CACHED: Final = "public, max-age=86400"


@functools.cache
def _asyncapi(prefix: str) -> tuple[bytes, str]:
    """(JSON, HTML) of the AsyncAPI document for a topic prefix: generated once."""
    document = asyncapi.specification(Topics(prefix=prefix))
    # No "try it": no FastStream app stands behind this page to publish test messages.
    page = get_asyncapi_html(
        document,
        try_it_out_path=None,
        asyncapi_js_url=f"{ASSETS}/{_BUNDLE}",
        asyncapi_css_url=f"{ASSETS}/{_STYLES}",
    )
    return asyncapi.render_json(document), _REMOTE_ICONS.sub("", page)


@functools.cache
def _read(file: Path, compressed: bool) -> bytes:
    """A vendored file; one stored as FILE.gz unpacked unless the client takes gzip."""
    stored = file.read_bytes()
    return stored if compressed or file.suffix != ".gz" else gzip.decompress(stored)


def _asset(file: Path, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    """The route answering one vendored file; a gzipped one is sent as stored to a client
    that takes gzip (every browser), so it is never compressed per request."""
    packed = file.suffix == ".gz"

    async def answer(request: Request) -> Response:
        gzipped = packed and "gzip" in request.headers.get("accept-encoding", "")
        body = await asyncio.to_thread(_read, file, gzipped)
        headers = {"Cache-Control": _CACHED}
        if packed:
            headers["Vary"] = "Accept-Encoding"
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=media_type, headers=headers)

    return answer


# URL path -> (file under VENDOR, media type)
_ASSETS: Final[dict[str, tuple[str, str]]] = {
    f"{ASSETS}/{_BUNDLE}": (f"asyncapi/{_BUNDLE}.gz", "text/javascript"),
    f"{ASSETS}/{_STYLES}": (f"asyncapi/{_STYLES}", "text/css"),
    f"{SWAGGER_ASSETS}/{_SWAGGER_JS}": (f"swagger-ui/{_SWAGGER_JS}.gz", "text/javascript"),
    f"{SWAGGER_ASSETS}/{_SWAGGER_CSS}": (f"swagger-ui/{_SWAGGER_CSS}.gz", "text/css"),
    f"{SWAGGER_ASSETS}/{_FAVICON}": (f"swagger-ui/{_FAVICON}", "image/png"),
    f"{REDOC_ASSETS}/{_REDOC_JS}": (f"redoc/{_REDOC_JS}.gz", "text/javascript"),
}


async def _rendered(request: Request) -> tuple[bytes, str]:
    settings: Settings = request.app.state.settings
    return await asyncio.to_thread(_asyncapi, settings.topic_prefix)


async def asyncapi_json(request: Request) -> Response:
    """The AsyncAPI 3.0 document of the Kafka interface."""
    document, _ = await _rendered(request)
    return Response(document, media_type="application/json")


async def asyncapi_page(request: Request) -> Response:
    """The AsyncAPI document, rendered (AsyncAPI's React component, served from ASSETS)."""
    _, page = await _rendered(request)
    return HTMLResponse(page)


def _root(request: Request) -> str:
    # Behind a proxy's root_path, as FastAPI's own pages do.
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


async def swagger_page(request: Request) -> HTMLResponse:
    """FastAPI's Swagger UI page, its files served from SWAGGER_ASSETS."""
    app: FastAPI = request.app
    root = _root(request)
    redirect = app.swagger_ui_oauth2_redirect_url
    assert app.openapi_url is not None  # install_docs serves the pages only with it
    return get_swagger_ui_html(
        openapi_url=root + app.openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root}{SWAGGER_ASSETS}/{_SWAGGER_JS}",
        swagger_css_url=f"{root}{SWAGGER_ASSETS}/{_SWAGGER_CSS}",
        swagger_favicon_url=f"{root}{SWAGGER_ASSETS}/{_FAVICON}",
        oauth2_redirect_url=None if redirect is None else root + redirect,
        init_oauth=app.swagger_ui_init_oauth,
        # Swagger UI's validator badge is an image from validator.swagger.io: none.
        swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
    )


async def swagger_oauth2_redirect(_: Request) -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


async def redoc_page(request: Request) -> HTMLResponse:
    """FastAPI's ReDoc page, its script served from REDOC_ASSETS (and no Google Fonts)."""
    app: FastAPI = request.app
    root = _root(request)
    assert app.openapi_url is not None
    return get_redoc_html(
        openapi_url=root + app.openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{REDOC_ASSETS}/{_REDOC_JS}",
        redoc_favicon_url=f"{root}{SWAGGER_ASSETS}/{_FAVICON}",
        with_google_fonts=False,
    )


# Plain routes (not API routes): `include_router` copies them without the app's
# dependencies, so the documentation stays readable without an API key.
router.add_route("/asyncapi.json", asyncapi_json, methods=["GET"], include_in_schema=False)
router.add_route("/asyncapi", asyncapi_page, methods=["GET"], include_in_schema=False)
for _path, (_file, _media_type) in _ASSETS.items():
    router.add_route(
        _path, _asset(VENDOR / _file, _media_type), methods=["GET"], include_in_schema=False
    )


# --- the OpenAPI document --------------------------------------------------------------------


def answers_validation_with_400(path: str) -> bool:
    """errors.py's rule: a request that fails validation on a family's path is that
    family's 400, unless the family keeps FastAPI's 422 (seed 004)."""
    render = family_of(path)
    return render is not None and render not in FASTAPI_VALIDATION_FAMILIES


def drop_unanswered_422(schema: dict[str, Any]) -> None:
    """FastAPI documents a 422 for every operation with parameters; drop it where the
    answer is the family's 400 instead."""
    for path, operations in schema.get("paths", {}).items():
        if not answers_validation_with_400(path):
            continue
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)


def _refusal(status: int, model_name: str) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[status],
        "headers": {
            "WWW-Authenticate": {
                "description": "The Bearer challenge (RFC 6750)",
                "schema": {"type": "string"},
            }
        },
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model_name}"}}},
    }


def document_refusals(schema: dict[str, Any]) -> None:
    """Authentication is app-wide (auth.py), so no route declares what it answers: every
    operation of a family may be 401, and 403 where the request needs a write key (a
    write, or any key management), each in the family's shape."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path, operations in schema.get("paths", {}).items():
        render = family_of(path)
        model = None if render is None else FAMILY_MODELS.get(render)
        if model is None:
            continue
        if model.__name__ not in components:
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(found.pop("$defs", {}))
            components[model.__name__] = found
        manages_keys = path.startswith(API_KEY_PATHS)
        for method, operation in operations.items():
            refusals = [401]
            if manages_keys or needed_scope(method) is Scope.WRITE:
                refusals.append(403)
            responses = operation.setdefault("responses", {})
            for status in refusals:
                responses.setdefault(str(status), _refusal(status, model.__name__))


def install_docs(app: FastAPI) -> None:
    """Title, version (the package's), description and tags of the OpenAPI document, its
    responses made true to the family error handling, the AsyncAPI routes, and the
    vendored Swagger UI and ReDoc pages at `/docs` and `/redoc`."""
    app.title = TITLE
    app.version = version("pipeline-service")
    app.description = DESCRIPTION
    app.openapi_tags = TAGS
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = generate()  # FastAPI's, cached on the app after the first call
        if fresh:
            drop_unanswered_422(schema)
            document_refusals(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    app.include_router(router)
    # FastAPI's own /docs and /redoc load from CDNs; app.py turns them off for these.
    if app.openapi_url is not None:
        app.router.add_route("/docs", swagger_page, methods=["GET"], include_in_schema=False)
        if app.swagger_ui_oauth2_redirect_url is not None:
            app.router.add_route(
                app.swagger_ui_oauth2_redirect_url,
                swagger_oauth2_redirect,
                methods=["GET"],
                include_in_schema=False,
            )
        app.router.add_route("/redoc", redoc_page, methods=["GET"], include_in_schema=False)


__all__ = [
    "ASSETS",
    "DESCRIPTION",
    "REDOC_ASSETS",
    "SWAGGER_ASSETS",
    "TAGS",
    "TITLE",
    "answers_validation_with_400",
    "document_refusals",
    "drop_unanswered_422",
    "install_docs",
    "router",
]
