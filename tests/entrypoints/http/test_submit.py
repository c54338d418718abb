"""The one HTTP submit path, over real HTTP: a command larger than one command message is
413 before anything is sent, one holding a value its message cannot carry is 400, and an
`Idempotency-Key` reused for another kind of request is 409 in the family's shape
instead of the other command's answer; the request the key was first used for still
gets its own answer."""

from __future__ import annotations

import uuid

import httpx

from tests.entrypoints.http.support import module_client

MAX_MESSAGE_BYTES = 2048


client = module_client("submit", max_message_bytes=MAX_MESSAGE_BYTES)


def unique() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


async def test_a_command_larger_than_a_message_is_413_and_not_sent(
    client: httpx.AsyncClient,
) -> None:
    name = unique()
    large = await client.post(
        "/v0/pipelines", json={"name": name, "description": "x" * MAX_MESSAGE_BYTES}
    )
    assert large.status_code == 413, large.text
    body = large.json()
    assert body["error_code"] == "PayloadTooLarge"
    assert body["details"]["max_bytes"] == MAX_MESSAGE_BYTES
    assert body["details"]["size"] > MAX_MESSAGE_BYTES
    assert "X-Pipelines-Version" not in large.headers
    # Nothing was created under the name.
    assert (await client.post("/v0/pipelines", json={"name": name})).status_code == 201


async def test_a_value_no_command_message_can_carry_is_400_and_not_sent(
    client: httpx.AsyncClient,
) -> None:
    # An integer past 64 bits is JSON to the client, but not to the message encoder.
    response = await client.post(f"/api/v1/configs/{uuid.uuid4()}/run", json={"n": 2**64})
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"detail", "error_code", "correlation_id", "timestamp"}
    assert body["error_code"] == "UnencodableRequest"
    assert "X-Pipelines-Version" not in response.headers


async def test_a_key_reused_for_another_request_is_409_in_the_familys_shape(
    client: httpx.AsyncClient,
) -> None:
    key = str(uuid.uuid4())
    name = unique()
    created = await client.post(
        "/v0/pipelines", json={"name": name}, headers={"Idempotency-Key": key}
    )
    assert created.status_code == 201, created.text

    stop = await client.post(f"/v0/pipelines/{name}/stop", headers={"Idempotency-Key": key})
    assert stop.status_code == 409, stop.text
    assert stop.json()["error_code"] == "IdempotencyKeyReused"
    assert stop.json()["details"] == {
        "idempotency_key": key,
        "command_type": "StopPipeline",
        "used_by": "CreatePipeline",
    }
    assert "X-Pipelines-Version" not in stop.headers

    marquez = await client.post(
        f"/api/v1/jobs/runs/{uuid.uuid4()}/start", headers={"Idempotency-Key": key}
    )
    assert marquez.status_code == 409, marquez.text
    assert set(marquez.json()) == {"code", "message"}
    assert key in marquez.json()["message"]

    again = await client.post(
        "/v0/pipelines", json={"name": name}, headers={"Idempotency-Key": key}
    )
    assert (again.status_code, again.json()) == (201, created.json())
    assert again.headers["X-Pipelines-Version"] == created.headers["X-Pipelines-Version"]
