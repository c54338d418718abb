"""`GET /api/v1/executions/{id}/events` end to end (the whole service in one process: the
api role over real HTTP, the command handler, relay, projector and an orchestrator, on
the real broker and SQLite), and `pipelines executions watch` against it.

examples/orders.yaml runs to completion while its stream is read: the stream has every
stored event of the execution in version order, each once, then `end`; a resume after
`Last-Event-ID: N` has exactly the later ones; a stream of a running execution ends at
its `timeout` and one opened before a cancel sees it; each bad request has its error.
"""

from __future__ import annotations

import asyncio
import io
import sys
import uuid
from pathlib import Path
from uuid import UUID

import fastapi.routing
import pytest
from rich.console import Console

from services.adapters.eventstore import open_event_store
from services.entrypoints.cli.executions import awatch_execution
from tests.entrypoints.http.stream_support import Streamed, read_stream, tailing
from tests.runtimes.orchestrator.e2e_support import Stack, module_stack, orders_document

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[3]

stack = module_stack("watch")


def events_path(execution_id: UUID | str) -> str:
    return f"/api/v1/executions/{execution_id}/events"


@pytest.fixture(scope="module")
async def config_id(stack: Stack) -> UUID:
    return await stack.create_config(orders_document())


@pytest.fixture(scope="module")
async def first_stream(stack: Stack, config_id: UUID) -> tuple[UUID, Streamed]:
    """An orders execution and its stream, opened as soon as `POST .../run` answered (so
    stored events first, live ones after) and read until the server ended it."""
    execution_id = await stack.started(config_id)
    return execution_id, await read_stream(stack.client, events_path(execution_id))


@pytest.fixture(scope="module")
def completed(first_stream: tuple[UUID, Streamed]) -> UUID:
    return first_stream[0]


def stored_versions(stack: Stack, execution_id: UUID) -> list[int]:
    with open_event_store(stack.settings.event_store_url) as store:
        return [e.originator_version for e in store.recorder.select_events(execution_id)]


async def test_the_stream_of_the_example_ends_at_completed_with_every_event_in_order(
    stack: Stack, first_stream: tuple[UUID, Streamed]
) -> None:
    completed, streamed = first_stream

    assert streamed.status == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.headers["cache-control"] == "no-cache"
    versions = [int(i) for i in streamed.ids if i is not None]
    assert versions == list(range(1, len(versions) + 1))
    assert versions == stored_versions(stack, completed)  # all of them, nothing more
    assert streamed.names[0] == "created"
    assert streamed.names[-2:] == ["status", "end"]
    assert set(streamed.names) <= {
        "created", "status", "stage_started", "stage_progressed", "stage_finished", "end"
    }  # fmt: skip
    last, end = streamed.events[-2], streamed.events[-1]
    assert last.data["execution"]["status"] == "completed"
    assert last.data["execution"]["id"] == str(completed)
    assert last.data["run_status"] == "success"
    assert {s["stage"]: s["messages_out"] for s in last.data["stages"]} == {
        "validate": 1, "enrich": 1, "notify": 1
    }  # fmt: skip
    assert end.data == {"reason": "finished", "status": "completed", "version": versions[-1]}
    finished = [e for e in streamed.events if e.name == "stage_finished"]
    assert {e.data["stage"]["stage"] for e in finished} == {"validate", "enrich", "notify"}
    assert all(e.data["stage"]["status"] == "success" for e in finished)
    # The execution as GET answers it, once the read model caught up with the stream.
    shown = await stack.until_status(completed, "completed")
    assert last.data["execution"] == shown


async def test_on_the_wire_an_event_is_its_id_name_and_one_line_of_json(
    stack: Stack, completed: UUID
) -> None:
    response = await stack.client.get(events_path(completed))
    blocks = [block.split("\n") for block in response.text.strip("\n").split("\n\n")]
    first, end = blocks[0], blocks[-1]
    assert first[0] == "event: created"
    assert first[1].startswith('data: {"version":1,"event_type":"Created",')
    assert first[2] == "id: 1"
    assert len(first) == 3
    # No id on `end`: a client resuming keeps the last event's.
    assert [line.split(":")[0] for line in end] == ["event", "data"]


async def test_a_resume_after_last_event_id_has_exactly_the_later_events(
    stack: Stack, completed: UUID
) -> None:
    whole = await read_stream(stack.client, events_path(completed))
    assert len(whole.ids) >= 4

    header = await read_stream(stack.client, events_path(completed), headers={"Last-Event-ID": "2"})
    query = await read_stream(stack.client, events_path(completed), {"last_event_id": 2})
    at_end = await read_stream(
        stack.client, events_path(completed), headers={"Last-Event-ID": whole.ids[-1] or ""}
    )

    assert header.events == whole.events[2:]
    assert query.events == whole.events[2:]
    assert [(e.name, e.data) for e in at_end.events] == [("end", whole.events[-1].data)]


async def test_a_stream_opened_before_a_cancel_ends_with_it_and_timeout_ends_one(
    stack: Stack, config_id: UUID
) -> None:
    execution_id = await stack.started(config_id, skip_init_message=True)
    timed_out = await read_stream(stack.client, events_path(execution_id), {"timeout": 1})
    assert timed_out.names[-1] == "end"
    assert timed_out.events[-1].data["reason"] == "timeout"
    assert timed_out.events[-1].data["status"] == "running"

    async with tailing(stack.client, events_path(execution_id)) as tail:
        await tail.until(lambda e: e.name == "created", "the stored creation")
        cancel = await stack.client.post(f"/api/v1/executions/{execution_id}/cancel")
        assert cancel.status_code == 200, cancel.text
        await tail.until_ended()
    statuses = [e.data["execution"]["status"] for e in tail.events if e.name == "status"]
    assert statuses[-1] == "cancelled"
    assert tail.events[-1].data == {
        "reason": "finished",
        "status": "cancelled",
        "version": int(tail.events[-2].id or 0),
    }


async def test_an_idle_stream_carries_keep_alive_comments(
    stack: Stack, config_id: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FastAPI writes one after 15 s without an event; shortened here (its own test hook).
    monkeypatch.setattr(fastapi.routing, "_PING_INTERVAL", 0.2)
    execution_id = await stack.started(config_id, skip_init_message=True)
    response = await stack.client.get(events_path(execution_id), params={"timeout": 2})
    assert response.status_code == 200
    assert ": ping" in response.text.split("\n")
    cancel = await stack.client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert cancel.status_code == 200, cancel.text


async def test_unknown_ids_and_bad_parameters_are_answered_before_any_stream(
    stack: Stack, completed: UUID
) -> None:
    unknown = await read_stream(stack.client, events_path(uuid.uuid4()))
    assert unknown.status == 404
    assert unknown.error["error_code"] == "UnknownExecution"
    assert set(unknown.error) == {"detail", "error_code", "correlation_id", "timestamp"}

    not_an_id = await read_stream(stack.client, events_path("nope"))
    bad_header = await read_stream(
        stack.client, events_path(completed), headers={"Last-Event-ID": "x"}
    )
    negative = await read_stream(stack.client, events_path(completed), {"last_event_id": -1})
    too_short = await read_stream(stack.client, events_path(completed), {"timeout": 0})
    too_long = await read_stream(stack.client, events_path(completed), {"timeout": 3601})
    for refused, where in (
        (not_an_id, ["path", "execution_id"]),
        (bad_header, ["header", "Last-Event-ID"]),
        (negative, ["query", "last_event_id"]),
        (too_short, ["query", "timeout"]),
        (too_long, ["query", "timeout"]),
    ):
        assert refused.status == 422, refused
        assert refused.error["detail"][0]["loc"] == where

    ahead = await read_stream(
        stack.client, events_path(completed), headers={"Last-Event-ID": "1000"}
    )
    assert ahead.status == 400
    assert ahead.error["error_code"] == "LastEventIdAhead"


async def test_a_pipeline_runs_id_is_not_an_execution_here(stack: Stack) -> None:
    # Seed 004 streams config executions only, as its reads answer them.
    name = f"p-{uuid.uuid4().hex[:8]}"
    created = await stack.client.post("/v0/pipelines", json={"name": name})
    assert created.status_code == 201, created.text
    seen = await stack.client.get(f"/v0/pipelines/{name}", headers={"X-Min-Version": "1"})
    assert seen.status_code == 200, seen.text
    run = await stack.client.post(f"/pipelines/v0/pipelines/{name}/runs", json={})
    assert run.status_code == 200, run.text
    run_id = run.json()["content"]["id"]

    answered = await read_stream(stack.client, events_path(run_id))

    assert answered.status == 404
    assert answered.error["error_code"] == "UnknownExecution"


# --- the CLI ----------------------------------------------------------------------------------


def key_of(stack: Stack) -> str:
    return stack.client.headers["Authorization"].removeprefix("Bearer ")


def api_url(stack: Stack) -> str:
    return str(stack.client.base_url).rstrip("/")


async def test_the_cli_watch_exits_0_on_a_completed_execution(
    stack: Stack, config_id: UUID
) -> None:
    execution_id = await stack.started(config_id)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.entrypoints.cli", "executions", "watch",
        str(execution_id), "--api-url", api_url(stack),
        cwd=REPO,
        env={"PIPELINES_API_KEY": key_of(stack), "PATH": "/usr/bin:/bin", "COLUMNS": "120"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)

    assert process.returncode == 0, err.decode()
    shown = out.decode()
    assert f"execution {execution_id} completed" in shown
    for stage in ("validate", "enrich", "notify"):
        assert stage in shown


async def test_the_watch_exits_1_when_cancelled_and_3_when_its_timeout_passes(
    stack: Stack, config_id: UUID
) -> None:
    execution_id = await stack.started(config_id, skip_init_message=True)
    shown = io.StringIO()
    console = Console(file=shown, width=120)

    gave_up = await awatch_execution(
        api_url(stack),
        key_of(stack),
        str(execution_id),
        timeout_s=1,
        console=console,
        errors=console,
    )
    assert gave_up == 3
    assert "gave up watching" in shown.getvalue()

    watching = asyncio.create_task(
        awatch_execution(
            api_url(stack), key_of(stack), str(execution_id), console=console, errors=console
        )
    )
    cancel = await stack.client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert cancel.status_code == 200, cancel.text
    assert await asyncio.wait_for(watching, 60) == 1
    assert f"execution {execution_id} cancelled" in shown.getvalue()


async def test_the_watch_exits_2_for_an_unknown_execution_or_an_unreachable_api(
    stack: Stack,
) -> None:
    shown = io.StringIO()
    console = Console(file=shown, width=120)
    unknown = await awatch_execution(
        api_url(stack), key_of(stack), str(uuid.uuid4()), console=console, errors=console
    )
    bad_key = await awatch_execution(
        api_url(stack), "pls_" + "A" * 43, str(uuid.uuid4()), console=console, errors=console
    )
    nobody = await awatch_execution(
        "http://127.0.0.1:1", key_of(stack), str(uuid.uuid4()), console=console, errors=console
    )
    assert (unknown, bad_key, nobody) == (2, 2, 2)
    text = shown.getvalue()
    assert "HTTP 404" in text and "HTTP 401" in text and "cannot reach the API" in text
