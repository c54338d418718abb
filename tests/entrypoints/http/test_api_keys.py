"""`/v0/api-keys` (and Feldera's `/v0/api_keys`) over real HTTP, on SQLite and
PostgreSQL: a key is shown once, lists never show it, the database holds its hash only,
names are unique among live keys, a revoked key stops working; every bad input is a
Feldera error."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from projections.db import Database
from tests.entrypoints.http.support import STORES, api_only, bearer, module_store_url

DESCRIPTION_FIELDS = {"id", "name", "scope", "prefix", "created_at"}


@dataclass
class Stack:
    client: httpx.AsyncClient  # sends a write key
    anonymous: httpx.AsyncClient
    store_url: str


@pytest.fixture(scope="module", params=STORES)
async def stack(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    store_url = module_store_url(request, tmp_path_factory.mktemp("keys"))
    async with (
        api_only(kafka_bootstrap, store_url) as (_, client),
        httpx.AsyncClient(base_url=client.base_url, timeout=60) as anonymous,
    ):
        yield Stack(client, anonymous, store_url)


def new_name() -> str:
    return f"k-{uuid.uuid4().hex[:10]}"


async def create(stack: Stack, name: str, **fields: Any) -> dict[str, Any]:
    response = await stack.client.post("/v0/api-keys", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_feldera_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "error_code", "details"}
    assert body["error_code"] == code, body
    return body


# --- create: shown once ------------------------------------------------------------------------


async def test_create_answers_the_key_once_and_it_works(stack: Stack) -> None:
    name = new_name()
    response = await stack.client.post("/v0/api-keys", json={"name": name, "scope": "write"})

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "name", "scope", "api_key"}
    assert (body["name"], body["scope"]) == (name, "write")
    assert body["api_key"].startswith("pls_") and len(body["api_key"]) > 40
    assert response.headers["Cache-Control"] == "no-store"
    used = await stack.anonymous.post(
        "/v0/api_keys", json={"name": new_name()}, headers=bearer(body["api_key"])
    )
    assert used.status_code == 201, used.text


async def test_the_default_scope_is_read(stack: Stack) -> None:
    body = await create(stack, new_name())
    key = bearer(body["api_key"])

    assert body["scope"] == "read"
    assert (await stack.anonymous.get("/v0/pipelines", headers=key)).status_code == 200
    assert (await stack.anonymous.post("/v0/pipelines", json={}, headers=key)).status_code == 403


async def test_lists_never_show_a_key(stack: Stack) -> None:
    name = new_name()
    created = await create(stack, name)
    secret = created["api_key"]

    listed = await stack.client.get("/v0/api-keys")
    one = await stack.client.get(f"/v0/api-keys/{name}")

    assert listed.status_code == 200 and one.status_code == 200
    assert secret not in listed.text and secret not in one.text
    assert all(set(entry) == DESCRIPTION_FIELDS for entry in listed.json())
    mine = [entry for entry in listed.json() if entry["name"] == name]
    assert mine == one.json()  # Feldera answers one key as a list of one
    assert mine[0]["id"] == created["id"] and mine[0]["scope"] == "read"
    assert secret.startswith(mine[0]["prefix"]) and len(mine[0]["prefix"]) == 10
    names = [entry["name"] for entry in listed.json()]
    assert names == sorted(names)
    assert listed.headers["Cache-Control"] == "no-cache"


async def test_the_database_holds_only_the_hash(stack: Stack) -> None:
    name = new_name()
    secret = (await create(stack, name))["api_key"]

    db = Database(stack.store_url)
    try:
        rows = db.query("SELECT * FROM api_keys WHERE name = ?", (name,))
    finally:
        db.close()

    assert len(rows) == 1
    assert hashlib.sha256(secret.encode()).hexdigest() in rows[0]
    assert not any(isinstance(value, str) and secret in value for value in rows[0])


async def test_a_live_name_is_taken(stack: Stack) -> None:
    name = new_name()
    await create(stack, name)

    again = await stack.client.post("/v0/api_keys/", json={"name": name, "scope": "write"})

    body = assert_feldera_error(again, 409, "DuplicateName")
    assert body["details"] == {"name": name}


# --- revoke ------------------------------------------------------------------------------------


async def test_revoke_stops_the_key_and_frees_the_name(stack: Stack) -> None:
    name = new_name()
    secret = (await create(stack, name))["api_key"]
    assert (await stack.anonymous.get("/v0/runs", headers=bearer(secret))).status_code == 200

    revoked = await stack.client.delete(f"/v0/api-keys/{name}")

    assert (revoked.status_code, revoked.content) == (200, b"")
    refused = await stack.anonymous.get("/v0/runs", headers=bearer(secret))
    assert refused.status_code == 401
    assert_feldera_error(await stack.client.get(f"/v0/api-keys/{name}"), 404, "UnknownApiKey")
    assert name not in [entry["name"] for entry in (await stack.client.get("/v0/api-keys")).json()]
    assert_feldera_error(await stack.client.delete(f"/v0/api_keys/{name}/"), 404, "UnknownApiKey")
    renewed = await create(stack, name)
    assert renewed["api_key"] != secret


async def test_unknown_names_are_404(stack: Stack) -> None:
    for response in (
        await stack.client.get("/v0/api-keys/nobody"),
        await stack.client.delete("/v0/api_keys/nobody"),
    ):
        body = assert_feldera_error(response, 404, "UnknownApiKey")
        assert body == {
            "message": "Unknown API key 'nobody'",
            "error_code": "UnknownApiKey",
            "details": {"name": "nobody"},
        }


# --- both spellings, with and without a trailing slash -----------------------------------------


@pytest.mark.parametrize("prefix", ["/v0/api-keys", "/v0/api_keys"])
@pytest.mark.parametrize("slash", ["", "/"])
async def test_every_spelling_serves_without_redirect(
    stack: Stack, prefix: str, slash: str
) -> None:
    name = new_name()
    created = await stack.client.post(f"{prefix}{slash}", json={"name": name})
    listed = await stack.client.get(f"{prefix}{slash}")
    one = await stack.client.get(f"{prefix}/{name}{slash}")
    revoked = await stack.client.delete(f"{prefix}/{name}{slash}")

    statuses = [r.status_code for r in (created, listed, one, revoked)]
    assert statuses == [201, 200, 200, 200]


# --- bad input ---------------------------------------------------------------------------------

BAD_BODIES: dict[str, tuple[Any, str]] = {
    "empty name": ({"name": ""}, "EmptyName"),
    "long name": ({"name": "n" * 101}, "TooLongName"),
    "name with a space": ({"name": "my key"}, "NameDoesNotMatchPattern"),
    "name with a slash": ({"name": "a/b"}, "NameDoesNotMatchPattern"),
    "unknown scope": ({"name": "s", "scope": "admin"}, "InvalidRequest"),
    "no name": ({"scope": "read"}, "InvalidRequest"),
    "name not text": ({"name": 7}, "InvalidRequest"),
    "unknown field": ({"name": "s", "role": "write"}, "InvalidRequest"),
    "not an object": (["s"], "InvalidRequest"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
async def test_bad_bodies_are_400_in_feldera_shape(stack: Stack, case: str) -> None:
    body, code = BAD_BODIES[case]
    response = await stack.client.post("/v0/api-keys", json=body)
    assert_feldera_error(response, 400, code)


async def test_a_body_that_is_not_json_is_400(stack: Stack) -> None:
    response = await stack.client.post(
        "/v0/api-keys", content=b"{name", headers={"Content-Type": "application/json"}
    )
    assert_feldera_error(response, 400, "InvalidRequest")


async def test_the_name_limit_is_inclusive(stack: Stack) -> None:
    name = "n" + uuid.uuid4().hex[:8] + "x" * 91
    assert len(name) == 100
    assert (await create(stack, name))["name"] == name
