"""The `api` role and the command bus it sends through: without a command handler a 503
with Retry-After when no result comes in time, and the command answered once a handler
runs; a bus that refuses to send when it is not running; a taken port; connections that
answer without Nagle's delay."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from contracts.pipeline_commands import CreatePipeline
from contracts.results import CommandAccepted
from services.adapters.kafka.command_bus import CommandBus, NotPublished
from services.entrypoints.http.server import bind, run_api
from services.entrypoints.http.submit import API_SOURCE
from tests.entrypoints.http.support import api_settings, api_stack, command_handler


async def test_no_result_in_time_is_503_with_retry_after_and_the_command_id(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with api_stack(kafka_bootstrap, tmp_path, handler=False, api_result_timeout_s=1.0) as (
        settings,
        client,
        _,
    ):
        response = await client.post("/v0/pipelines", json={"name": "late"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        body = response.json()
        assert body["error_code"] == "CommandResultTimeout"
        command_id = body["details"]["command_id"]
        assert body["details"] == {
            "command_id": command_id,
            "command_type": "CreatePipeline",
            "timeout_s": 1.0,
        }
        assert f"Idempotency-Key: {command_id}" in body["message"]

        # The command waited on the topic: once a handler runs, retrying with the id the
        # 503 named gets its result (created once, not a DuplicateName).
        async with command_handler(settings):
            retried = await client.post(
                "/v0/pipelines",
                json={"name": "late"},
                headers={"Idempotency-Key": command_id},
                timeout=60,
            )
            for _ in range(30):  # the handler may still be catching up on the first copy
                if retried.status_code != 503:
                    break
                retried = await client.post(
                    "/v0/pipelines", json={"name": "late"}, headers={"Idempotency-Key": command_id}
                )
        assert retried.status_code == 201, retried.text
        assert retried.json()["name"] == "late"


async def test_a_bus_that_is_not_running_refuses_to_send(
    kafka_bootstrap: str, sqlite_url: str
) -> None:
    bus = CommandBus(api_settings(kafka_bootstrap, sqlite_url), source=API_SOURCE)
    with pytest.raises(NotPublished, match="not running"):
        await bus.send(CreatePipeline(name="p"))


async def test_the_bus_fails_to_start_without_the_results_topic(
    kafka_bootstrap: str, sqlite_url: str
) -> None:
    bus = CommandBus(api_settings(kafka_bootstrap, sqlite_url), source=API_SOURCE)
    with pytest.raises(RuntimeError, match="create it first"):
        await bus.start(results=True)


async def test_the_api_role_fails_on_a_taken_port(kafka_bootstrap: str, sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = api_settings(kafka_bootstrap, sqlite_url, api_port=taken.getsockname()[1])
        with pytest.raises(OSError):
            await run_api(settings, asyncio.Event(), lambda: None)


async def test_connections_the_api_accepts_send_without_nagles_delay() -> None:
    # Without TCP_NODELAY every answer, its headers and body written apart, waited ~40 ms
    # for the client's delayed ACK. uvicorn serves the socket through asyncio as this does.
    sock = bind("127.0.0.1", 0)
    host, port = sock.getsockname()[:2]
    nodelay: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = writer.get_extra_info("socket")
        nodelay.set_result(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(host, port)
        try:
            assert await asyncio.wait_for(nodelay, 10) != 0
        finally:
            writer.close()


async def test_send_returns_the_result_the_handler_published(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with api_stack(kafka_bootstrap, tmp_path) as (settings, _, __):
        bus = CommandBus(settings, source=API_SOURCE, timeout_s=settings.api_result_timeout_s)
        await bus.start(results=True)
        try:
            result = await bus.send(CreatePipeline(name="direct"), command_id="cmd-1")
            repeated = await bus.send(CreatePipeline(name="direct"), command_id="cmd-1")
        finally:
            await bus.stop()
    assert isinstance(result, CommandAccepted)
    assert (result.command_id, result.http_status, result.reply["name"]) == ("cmd-1", 201, "direct")
    assert repeated == result
