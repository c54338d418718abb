"""The pipeline streams end to end (`/v0/watch/pipelines[/{name}]`): HTTP in front, the
command handler, relay and projector behind, a real reconciler deploying the pipeline on
the session's broker. A client waiting for `Running` after a start watches instead of
polling; a resume has exactly the later events; a deletion ends the stream; the
all-pipelines stream sees what changes after it opened; bad requests are Feldera's
errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.entrypoints.http.stream_support import Event, read_stream, tailing
from tests.runtimes.reconciler.support import Stack, module_stack, new_tag, route_document

pytestmark = pytest.mark.broker

WATCH = "/v0/watch/pipelines"

stack = module_stack("watch-pipelines")


def feldera(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"message", "error_code", "details"}
    assert body["error_code"] == code, body


def status_of(event: Event) -> str:
    return str(event.data["deployment_status"])


async def test_a_stream_sees_provisioning_then_running_after_a_start(stack: Stack) -> None:
    name, _, _ = await stack.echo_pipeline()
    async with tailing(stack.client, f"{WATCH}/{name}") as tail:
        created = await tail.until(lambda e: e.data["event_type"] == "Created", "its creation")
        started = await stack.action(name, "start")
        assert started.status_code == 202, started.text
        await tail.until(lambda e: status_of(e) == "Running", "Running")

    pipeline_id = created.data["id"]
    assert [e.id for e in tail.events] == [
        f"{pipeline_id}:{n}" for n in range(1, len(tail.events) + 1)
    ]
    assert {e.name for e in tail.events} == {"status"}
    assert all(e.data["name"] == name for e in tail.events)
    statuses = [status_of(e) for e in tail.events]
    assert statuses[0] == "Stopped"
    assert statuses.index("Provisioning") < statuses.index("Running")
    running = tail.events[-1].data
    assert running["deployment_desired_status"] == "Running"
    assert running["deployment_error"] is None
    assert {"version", "refresh_version", "deployment_id"} <= set(running)
    await stack.act(name, "stop", "Stopped", force="true")


async def test_a_resume_after_last_event_id_has_exactly_the_later_events(stack: Stack) -> None:
    name = await stack.create_pipeline(route_document(new_tag()))
    for action in ("start", "stop"):
        await stack.act(name, action, "Running" if action == "start" else "Stopped", force="true")
    path = f"{WATCH}/{name}"
    whole = await read_stream(stack.client, path, {"timeout": 1})
    assert whole.names[-1] == "end" and whole.events[-1].data == {"reason": "timeout"}
    history = whole.events[:-1]
    assert len(history) >= 4

    resumed = await read_stream(
        stack.client, path, {"timeout": 1}, headers={"Last-Event-ID": history[1].id or ""}
    )
    by_query = await read_stream(stack.client, path, {"timeout": 1, "last_event_id": history[1].id})
    elsewhere = await read_stream(
        stack.client, path, {"timeout": 1}, headers={"Last-Event-ID": f"{uuid.uuid4()}:3"}
    )

    assert resumed.events[:-1] == history[2:]
    assert by_query.events[:-1] == history[2:]
    assert elsewhere.events[:-1] == history  # another pipeline's id: from the beginning


async def test_a_deletion_ends_the_stream(stack: Stack) -> None:
    name = await stack.create_pipeline(route_document(new_tag()))
    async with tailing(stack.client, f"{WATCH}/{name}") as tail:
        await tail.until(lambda e: e.data["event_type"] == "Created", "its creation")
        deleted = await stack.client.delete(f"/v0/pipelines/{name}")
        assert deleted.status_code == 200, deleted.text
        await tail.until_ended()
    assert tail.events[-2].name == "deleted"
    assert tail.events[-2].data["event_type"] == "Deleted"
    assert (tail.events[-1].name, tail.events[-1].data) == ("end", {"reason": "deleted"})
    gone = await read_stream(stack.client, f"{WATCH}/{name}")
    assert gone.status == 404
    feldera(gone.error, "UnknownPipelineName")


async def test_the_all_pipelines_stream_sees_what_changes_after_it_opened(stack: Stack) -> None:
    async with tailing(stack.client, WATCH, headers={"Last-Event-ID": "ignored"}) as tail:
        name = await stack.create_pipeline(route_document(new_tag()))
        created = await tail.until(lambda e: e.data["name"] == name, "the new pipeline")
        started = await stack.action(name, "start")
        assert started.status_code == 202, started.text
        await tail.until(lambda e: e.data["name"] == name and status_of(e) == "Running", "Running")
    the_id = created.data["id"]
    mine = [e for e in tail.events if e.data["id"] == the_id]
    assert [e.id for e in mine] == [f"{the_id}:{n}" for n in range(1, len(mine) + 1)]
    types = [e.data["event_type"] for e in mine]
    assert types[0] == "Created"
    asked = mine[types.index("StartRequested")].data
    assert (asked["deployment_status"], asked["deployment_desired_status"]) == (
        "Stopped",
        "Running",
    )
    await stack.act(name, "stop", "Stopped", force="true")


async def test_bad_requests_are_feldera_errors(stack: Stack) -> None:
    name = await stack.create_pipeline(route_document(new_tag()))
    path = f"{WATCH}/{name}"
    unknown = await read_stream(stack.client, f"{WATCH}/no-such-pipeline")
    assert unknown.status == 404
    feldera(unknown.error, "UnknownPipelineName")
    for bad in ("5", "x:1", f"{uuid.uuid4()}:-1", f"{uuid.uuid4()}:one"):
        refused = await read_stream(stack.client, path, headers={"Last-Event-ID": bad})
        assert refused.status == 400, bad
        feldera(refused.error, "InvalidLastEventId")
    first = await read_stream(stack.client, path, {"timeout": 1})
    pipeline_id = first.events[0].data["id"]
    ahead = await read_stream(stack.client, path, headers={"Last-Event-ID": f"{pipeline_id}:99"})
    assert ahead.status == 400
    feldera(ahead.error, "LastEventIdAhead")
    for timeout in (0, 3601, "soon"):
        for where in (path, WATCH):
            refused = await read_stream(stack.client, where, {"timeout": timeout})
            assert refused.status == 400, (where, timeout)
            feldera(refused.error, "InvalidRequest")
