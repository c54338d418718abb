"""Stream tokens over real HTTP (the api role, the command handler, relay and projector on
the real broker and SQLite): what `POST /v0/stream-tokens` answers, for write and read
keys; a token opens the stream endpoints as `?access_token=` and nothing else; expired,
forged and revoked-key tokens are refused; a stream opened with a key that is then
revoked ends at its next check; the OpenAPI document shows both schemes on the streams."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.adapters.api_keys import Scope
from services.entrypoints.http import stream_hub
from services.settings import Settings
from tests.entrypoints.http.stream_support import read_stream, tailing
from tests.entrypoints.http.support import (
    api_server,
    api_stack,
    bearer,
    create_api_key,
    free_port,
)

pytestmark = pytest.mark.broker

TOKENS = "/v0/stream-tokens"
WATCH = "/v0/watch/pipelines"


@dataclass
class Served:
    settings: Settings
    client: httpx.AsyncClient  # sends a write key
    anonymous: httpx.AsyncClient  # sends nothing of its own

    def key(self, scope: Scope = Scope.READ, name: str | None = None) -> str:
        return create_api_key(self.settings.event_store_url, scope, name)

    async def token(self, key: str | None = None, **params: Any) -> dict[str, Any]:
        headers = {} if key is None else bearer(key)
        response = await self.client.post(TOKENS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def pipeline(self) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        created = await self.client.post("/v0/pipelines", json={"name": name})
        assert created.status_code == 201, created.text
        return name


@pytest.fixture(scope="module")
async def served(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    tmp = tmp_path_factory.mktemp("tokens")
    async with (
        api_stack(kafka_bootstrap, tmp, read_models=True, api_key_cache_ttl_s=0) as (
            settings,
            client,
            _,
        ),
        httpx.AsyncClient(base_url=client.base_url, timeout=60) as anonymous,
    ):
        yield Served(settings, client, anonymous)


@pytest.fixture
def quick_recheck() -> Iterator[None]:
    kept = stream_hub.RECHECK_S
    stream_hub.RECHECK_S = 0.2
    try:
        yield
    finally:
        stream_hub.RECHECK_S = kept


def reason(response: httpx.Response) -> str:
    return str(response.json()["details"]["reason"])


async def test_a_write_key_and_a_read_key_each_get_a_read_only_token(served: Served) -> None:
    name = f"reader-{uuid.uuid4().hex[:6]}"
    read_key = served.key(Scope.READ, name)
    response = await served.anonymous.post(TOKENS, headers=bearer(read_key))

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"token", "parameter", "expires_at", "ttl_s", "api_key", "scope"}
    assert body["token"].startswith("pst_")
    assert (body["parameter"], body["ttl_s"], body["api_key"], body["scope"]) == (
        "access_token",
        60,
        name,
        "read",
    )
    assert datetime.fromisoformat(body["expires_at"]).tzinfo is not None
    from_write = await served.token(ttl_s=300)
    assert (from_write["scope"], from_write["ttl_s"]) == ("read", 300)
    # The read key's other writes stay refused.
    write = await served.anonymous.post(
        "/v0/pipelines", json={"name": "x"}, headers=bearer(read_key)
    )
    assert write.status_code == 403


async def test_a_token_opens_the_streams_without_a_header(served: Served) -> None:
    name = await served.pipeline()
    token = (await served.token())["token"]
    params = {"access_token": token, "timeout": 1}

    one = await read_stream(served.anonymous, f"{WATCH}/{name}", params)
    every = await read_stream(served.anonymous, WATCH, params)
    execution = await read_stream(
        served.anonymous, f"/api/v1/executions/{uuid.uuid4()}/events", params
    )

    assert one.status == 200 and one.events[0].data["name"] == name
    assert every.status == 200 and every.names[-1] == "end"
    assert execution.status == 404  # authenticated, then no such execution
    assert execution.error["error_code"] == "UnknownExecution"


async def test_a_token_is_refused_by_every_other_endpoint(served: Served) -> None:
    token = (await served.token())["token"]
    for method, path in (
        ("GET", "/v0/pipelines"),
        ("GET", f"/api/v1/executions/{uuid.uuid4()}"),
        ("POST", TOKENS),  # a token never makes another
        ("POST", "/v0/pipelines"),
    ):
        response = await served.anonymous.request(method, path, params={"access_token": token})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error_code"] == "AuthenticationFailed"
    plain = await served.anonymous.get("/v0/pipelines", params={"access_token": token})
    assert reason(plain) == "stream_token_not_accepted"
    assert plain.headers["WWW-Authenticate"] == "Bearer"
    # Nor does a token stand in for a key in the header.
    as_bearer = await served.anonymous.get(WATCH, params={"timeout": 1}, headers=bearer(token))
    assert as_bearer.status_code == 401
    assert reason(as_bearer) == "invalid_api_key"


async def test_expired_forged_and_garbage_tokens_are_refused(served: Served) -> None:
    short = await served.token(ttl_s=1)
    good = await served.token()
    body, _, signature = good["token"].partition(".")
    forged = f"{body}.{'A' * len(signature)}"
    other_claims = f"{short['token'].partition('.')[0]}.{signature}"
    expires = datetime.fromisoformat(short["expires_at"]).timestamp()
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.1)  # past its expiry

    for token in (short["token"], forged, other_claims, "pst_", "pst_x.y", "nonsense"):
        response = await served.anonymous.get(WATCH, params={"access_token": token, "timeout": 1})
        assert response.status_code == 401, token
        assert reason(response) == "invalid_stream_token"
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_a_revoked_keys_tokens_stop_and_its_open_stream_ends(
    served: Served, quick_recheck: None
) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    key = served.key(Scope.READ, name)
    token = (await served.token(key))["token"]
    pipeline = await served.pipeline()
    async with (
        tailing(served.anonymous, f"{WATCH}/{pipeline}", {"access_token": token}) as with_token,
        tailing(served.anonymous, WATCH, headers=bearer(key)) as with_key,
    ):
        await with_token.until(lambda e: e.data["event_type"] == "Created", "the history")
        revoked = await served.client.delete(f"/v0/api-keys/{name}")
        assert revoked.status_code == 200, revoked.text
        await with_token.until_ended()
        await with_key.until_ended()
    # Cut, not ended: no `end` event (a client reconnects, and is refused).
    assert "end" not in [e.name for e in with_token.events + with_key.events]
    again = await served.anonymous.get(f"{WATCH}/{pipeline}", params={"access_token": token})
    assert again.status_code == 401
    assert reason(again) == "invalid_stream_token"


async def test_a_bad_ttl_is_feldera_400(served: Served) -> None:
    for ttl in (0, 301, "long"):
        response = await served.client.post(TOKENS, params={"ttl_s": ttl})
        assert response.status_code == 400, ttl
        assert response.json()["error_code"] == "InvalidRequest"


async def test_the_document_shows_both_schemes_on_the_streams_only(served: Served) -> None:
    document = (await served.anonymous.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["StreamToken"] == {
        "type": "apiKey",
        "in": "query",
        "name": "access_token",
        "description": schemes["StreamToken"]["description"],
    }
    both = [{"ApiKey": []}, {"StreamToken": []}]
    for path in (WATCH, f"{WATCH}/{{pipeline_name}}", "/api/v1/executions/{execution_id}/events"):
        operation = document["paths"][path]["get"]
        assert operation["security"] == both, path
        assert "text/event-stream" in operation["responses"]["200"]["content"], path
    assert document["paths"]["/v0/pipelines"]["get"]["security"] == [{"ApiKey": []}]
    assert document["paths"][TOKENS]["post"]["security"] == [{"ApiKey": []}]


async def test_api_processes_sharing_a_secret_honour_each_others_tokens(
    served: Served,
) -> None:
    """Behind a load balancer the token request and the stream may reach different API
    processes: with `PIPELINES_API_STREAM_TOKEN_SECRET` set on both, either one's token
    opens the other's streams; without it (a random secret each) it does not."""
    name = await served.pipeline()

    def process(secret: str | None) -> Settings:
        return served.settings.model_copy(
            update={
                "api_port": free_port(),
                "api_stream_token_secret": None if secret is None else SecretStr(secret),
            }
        )

    async with (
        api_server(process("shared-secret")) as first,
        api_server(process("shared-secret")) as second,
        api_server(process(None)) as other,
    ):
        issued = await first.post(TOKENS)
        assert issued.status_code == 200, issued.text
        params = {"access_token": issued.json()["token"], "timeout": 1}
        async with httpx.AsyncClient(base_url=second.base_url, timeout=60) as anonymous:
            shared = await read_stream(anonymous, f"{WATCH}/{name}", params)
        async with httpx.AsyncClient(base_url=other.base_url, timeout=60) as anonymous:
            refused = await anonymous.get(f"{WATCH}/{name}", params=params)
    assert shared.status == 200 and shared.events[0].data["name"] == name
    assert refused.status_code == 401, refused.text
