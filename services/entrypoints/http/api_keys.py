"""API key management over HTTP, as Feldera's `/v0/api_keys` endpoints answer it.

Served at `/v0/api-keys` (the issue's and Feldera's documentation's spelling) and
`/v0/api_keys` (Feldera's route), each with and without a trailing slash (all
registered: no redirect); OpenAPI shows the first. Every method needs a `write` key.

- `POST {name, scope?}` -> 201 `{id, name, scope, api_key}`: the only time the key is
  shown. `scope` is `read` (the default, as Feldera's) or `write`. 409 `DuplicateName`
  if a live key has the name; 400 `EmptyName` / `TooLongName` / `NameDoesNotMatchPattern`.
- `GET` -> 200 `[{id, name, scope, prefix, created_at}]`, live keys by name, never a key.
- `GET /{name}` -> 200 `[{...}]`: a list holding the one key, as Feldera answers.
- `DELETE /{name}` -> 200 with an empty body (Feldera's): the key is revoked. It stops
  working at once in this process; other API processes may accept it for up to
  `api_key_cache_ttl_s`. An unknown (or already revoked) name is 404 `UnknownApiKey`.

Errors are Feldera's `{message, error_code, details}` (this path family is Feldera's in
services.entrypoints.http.errors, which answers the store's DomainErrors).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.adapters.api_keys import NAME_MAX, ApiKeyStore, Scope
from services.entrypoints.http import error_docs
from services.entrypoints.http.auth import KeyVerifier, require_write
from services.entrypoints.http.error_docs import Responses

log = logging.getLogger(__name__)

PATHS: Final = ("/v0/api-keys", "/v0/api_keys")
NO_CACHE: Final = {"Cache-Control": "no-cache"}
NO_STORE: Final = {"Cache-Control": "no-store"}  # the answer holds a secret

router = APIRouter(tags=["api keys"], dependencies=[Depends(require_write)])


class NewApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Checked by the store (Feldera's own 400s), so only documented here.
    name: str = Field(
        description="Unique name: letters, digits, `_` and `-`",
        examples=["ci"],
        json_schema_extra={"pattern": "^[A-Za-z0-9_-]+$", "maxLength": NAME_MAX},
    )
    scope: Scope = Field(
        default=Scope.READ, description="`read` (GET endpoints) or `write` (everything)"
    )


class NewApiKeyResponse(BaseModel):
    id: str
    name: str
    scope: Scope
    api_key: str = Field(description="The key: shown only in this answer, store it now")


class ApiKeyDescription(BaseModel):
    id: str
    name: str
    scope: Scope
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    created_at: str


def _store(request: Request) -> ApiKeyStore:
    verifier: KeyVerifier = request.app.state.key_verifier
    return verifier.store


async def post_api_key(request: Request, body: NewApiKeyRequest) -> Response:
    created = await asyncio.to_thread(_store(request).create, body.name, body.scope)
    log.info("API key %r (%s) created by %r", body.name, body.scope, request.state.api_key.name)
    answer = NewApiKeyResponse(
        id=created.key.id, name=created.key.name, scope=created.key.scope, api_key=created.secret
    )
    return JSONResponse(answer.model_dump(mode="json"), status_code=201, headers=NO_STORE)


async def list_api_keys(request: Request) -> Response:
    keys = await asyncio.to_thread(_store(request).list_keys)
    return JSONResponse([key.describe() for key in keys], headers=NO_CACHE)


async def get_api_key(request: Request, name: str) -> Response:
    key = await asyncio.to_thread(_store(request).get, name)
    return JSONResponse([key.describe()], headers=NO_CACHE)


async def delete_api_key(request: Request, name: str) -> Response:
    verifier: KeyVerifier = request.app.state.key_verifier
    await asyncio.to_thread(verifier.store.revoke, name)
    verifier.forget(name)
    log.info("API key %r revoked by %r", name, request.state.api_key.name)
    return Response(status_code=200, headers=NO_CACHE)


Endpoint = Callable[..., Awaitable[Response]]
DESCRIPTIONS: Final[Responses] = {200: {"model": list[ApiKeyDescription]}}

# (path under the prefix, method, endpoint, summary, success status, documented answers)
ROUTES: Final[tuple[tuple[str, str, Endpoint, str, int, Responses], ...]] = (
    (
        "",
        "POST",
        post_api_key,
        "Create an API key",
        201,
        {201: {"model": NewApiKeyResponse}, **error_docs.feldera(400, 409)},
    ),
    ("", "GET", list_api_keys, "List API keys", 200, DESCRIPTIONS),
    (
        "/{name}",
        "GET",
        get_api_key,
        "Get an API key",
        200,
        {**DESCRIPTIONS, **error_docs.feldera(404)},
    ),
    (
        "/{name}",
        "DELETE",
        delete_api_key,
        "Revoke an API key",
        200,
        {200: {"description": "Revoked (empty body)"}, **error_docs.feldera(404)},
    ),
)


def _register() -> None:
    for prefix in PATHS:
        for path, method, endpoint, summary, status, responses in ROUTES:
            for variant in (f"{prefix}{path}", f"{prefix}{path}/"):
                router.add_api_route(
                    variant,
                    endpoint,
                    methods=[method],
                    summary=summary,
                    status_code=status,
                    responses=responses,
                    # A revocation's 200 has no body: documented without a JSON one.
                    response_class=Response if method == "DELETE" else JSONResponse,
                    include_in_schema=variant == f"{PATHS[0]}{path}",
                )


_register()

__all__ = ["PATHS", "router"]
