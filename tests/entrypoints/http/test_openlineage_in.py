"""OpenLineage in, over real HTTP: the official client (openlineage-python's
OpenLineageClient on its HttpTransport, with our API key as its bearer) posts RunEvents to
`POST /api/v1/lineage` of the `api` role, in front of the real broker, an in-process
command handler and the relay and projector roles; the runs are read back through seed
002's `GET /api/v1/jobs/runs/{id}`. On SQLite and on PostgreSQL (one stack each, shared by
the module's tests).

Covered: a new run created and completed with its job, facets and nominal times; Marquez's
mapping of every eventType; an event older than the run's last change moving nothing; a
late end clamped; a final status staying final (201, ignored); a re-posted event being
the same command; and every bad body a 400 (413 for an oversized one) in Marquez's
`{code, message}` that leaves no run behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import nominal_time_run
from openlineage.client.serde import Serde
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from services.adapters.kafka.clients import ensure_topics
from services.entrypoints.http.openlineage import OUTCOME_HEADER, PATH, REASON_HEADER
from services.entrypoints.http.pipelines import VERSION_HEADER
from tests.entrypoints.http.support import (
    STORES,
    api_server,
    api_settings,
    command_handler,
    module_store_url,
    read_model_roles,
)

pytestmark = pytest.mark.broker

RUNS = "/api/v1/jobs/runs"
ESPER = "/pipelines/v0/pipelines"
PRODUCER = "https://example.com/lineage-tests"


@dataclass
class Stack:
    client: httpx.AsyncClient  # our API, with a write key
    transport: HttpTransport  # the OpenLineage client's, to our API with the same key
    lineage: OpenLineageClient


@pytest.fixture(scope="module", params=STORES)
async def stack(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("openlineage-in")
    settings = api_settings(kafka_bootstrap, module_store_url(request, tmp))
    await ensure_topics(settings)
    async with contextlib.AsyncExitStack() as running:
        await running.enter_async_context(command_handler(settings))
        client = await running.enter_async_context(api_server(settings))
        await running.enter_async_context(read_model_roles(settings))
        key = client.headers["Authorization"].removeprefix("Bearer ")
        config = HttpConfig(url=str(client.base_url), auth=ApiKeyTokenProvider({"api_key": key}))
        transport = HttpTransport(config)
        yield Stack(client, transport, OpenLineageClient(transport=transport))
        transport.close()


def at(seconds: float = 0) -> str:
    moment = datetime(2020, 3, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


def event(
    run_id: str,
    kind: RunState | None,
    when: str,
    *,
    facets: dict[str, Any] | None = None,
    job: str = "daily-orders",
) -> RunEvent:
    return RunEvent(
        eventType=kind,
        eventTime=when,
        producer=PRODUCER,
        run=Run(runId=run_id, facets=facets or {}),
        job=Job(namespace="airflow", name=job),
    )


async def emit(stack: Stack, *events: RunEvent) -> None:
    """Through the client, as a producer sends (its transport is synchronous)."""
    for one in events:
        await asyncio.to_thread(stack.lineage.emit, one)


async def post(stack: Stack, one: RunEvent) -> Any:
    """Through the client's transport, which answers its (requests) response."""
    response = await asyncio.to_thread(stack.transport.emit, one)
    assert response.status_code == 201, response.text
    assert response.content == b""  # Marquez answers an empty 201
    return response


async def read(stack: Stack, run_id: str, version: str | None = None) -> Any:
    headers = {} if version is None else {"X-Min-Version": version}
    response = await stack.client.get(f"{RUNS}/{run_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_new_run_is_created_and_completed_with_its_job_and_facets(stack: Stack) -> None:
    run_id = str(uuid.uuid4())
    nominal = nominal_time_run.NominalTimeRunFacet(
        nominalStartTime="2020-03-01T00:00:00Z", nominalEndTime="2020-03-02T00:00:00Z"
    )
    await emit(
        stack,
        event(run_id, RunState.START, at(0), facets={"nominalTime": nominal}),
        event(run_id, RunState.COMPLETE, at(90)),
    )
    version = (await post(stack, event(run_id, RunState.OTHER, at(95)))).headers[VERSION_HEADER]
    run = await read(stack, run_id, version)
    assert run["id"] == run_id
    assert run["state"] == "COMPLETED"
    assert (run["createdAt"], run["startedAt"], run["endedAt"]) == (at(0), at(0), at(90))
    assert run["durationMs"] == 90_000
    assert run["args"] == {"jobNamespace": "airflow", "jobName": "daily-orders"}
    assert run["facets"]["nominalTime"]["nominalStartTime"] == "2020-03-01T00:00:00Z"
    assert run["nominalStartTime"] == "2020-03-01T00:00:00Z"
    assert run["nominalEndTime"] == "2020-03-02T00:00:00Z"


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        (RunState.START, "RUNNING"),
        (RunState.RUNNING, "RUNNING"),
        (RunState.OTHER, "RUNNING"),
        (None, "RUNNING"),
        (RunState.COMPLETE, "COMPLETED"),
        (RunState.FAIL, "FAILED"),
        (RunState.ABORT, "ABORTED"),
    ],
)
async def test_each_event_type_marks_a_new_run_as_marquez_does(
    stack: Stack, kind: RunState | None, state: str
) -> None:
    run_id = str(uuid.uuid4())
    answered = await post(stack, event(run_id, kind, at()))
    assert answered.headers[OUTCOME_HEADER] == "created"
    assert (await read(stack, run_id, answered.headers[VERSION_HEADER]))["state"] == state


async def test_a_final_state_is_final_and_later_events_are_taken_unchanged(stack: Stack) -> None:
    run_id = str(uuid.uuid4())
    await post(stack, event(run_id, RunState.START, at(0)))
    failed = await post(stack, event(run_id, RunState.FAIL, at(10)))
    assert failed.headers[OUTCOME_HEADER] == "moved"
    for kind in (RunState.COMPLETE, RunState.OTHER, RunState.START, RunState.ABORT):
        later = await post(stack, event(run_id, kind, at(20)))
        assert later.headers[OUTCOME_HEADER] == "ignored"
        assert later.headers[REASON_HEADER] == "RunAlreadyTerminal"
        assert later.headers[VERSION_HEADER] == failed.headers[VERSION_HEADER]
    again = await post(stack, event(run_id, RunState.FAIL, at(30)))
    assert again.headers[OUTCOME_HEADER] == "unchanged"
    run = await read(stack, run_id, failed.headers[VERSION_HEADER])
    assert (run["state"], run["endedAt"]) == ("FAILED", at(10))


async def test_an_event_older_than_the_last_change_does_not_move_the_run_back(
    stack: Stack,
) -> None:
    # A run of ours (seed 003) left waiting now: an older RUNNING is stale, a newer one
    # resumes it, and a late COMPLETE still ends it, at no time before its last change.
    name = f"ol-{uuid.uuid4().hex[:8]}"
    assert (await stack.client.post("/v0/pipelines", json={"name": name})).status_code == 201
    created = await stack.client.post(f"{ESPER}/{name}/runs", json={})
    assert created.status_code == 200, created.text
    run_id = created.json()["content"]["id"]
    waiting = await stack.client.put(f"{ESPER}/{name}/runs/{run_id}", json={"status": "waiting"})
    assert waiting.status_code == 200, waiting.text
    now = datetime.now(UTC)

    stale = await post(stack, event(run_id, RunState.RUNNING, at()))
    assert stale.headers[OUTCOME_HEADER] == "ignored"
    assert stale.headers[REASON_HEADER] == "StaleRunTransition"
    assert stale.headers[VERSION_HEADER] == waiting.headers[VERSION_HEADER]
    later = (now + timedelta(minutes=1)).isoformat()
    resumed = await post(stack, event(run_id, RunState.RUNNING, later))
    assert resumed.headers[OUTCOME_HEADER] == "moved"
    late = await post(stack, event(run_id, RunState.COMPLETE, at()))
    assert late.headers[OUTCOME_HEADER] == "moved"

    run = await read(stack, run_id, late.headers[VERSION_HEADER])
    assert run["state"] == "COMPLETED"
    assert datetime.fromisoformat(run["endedAt"]) == now + timedelta(minutes=1)
    assert run["args"] == {}  # our own run keeps what it had


async def test_a_reposted_event_is_the_same_command(stack: Stack) -> None:
    run_id = str(uuid.uuid4())
    body = Serde.to_json(event(run_id, RunState.START, at())).encode()
    first = await stack.client.post(PATH, content=body)
    second = await stack.client.post(PATH, content=body)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.headers[OUTCOME_HEADER] == second.headers[OUTCOME_HEADER] == "created"
    assert first.headers[VERSION_HEADER] == second.headers[VERSION_HEADER] == "2"


def _valid(run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(Serde.to_json(event(run_id, RunState.START, at())))
    return body


def _without(path: str) -> Any:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            body = body[part]
        del body[last]

    return change


def _set(path: str, value: Any) -> Any:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            body = body[part]
        body[last] = value

    return change


BAD_BODIES = [
    ("eventTime", _without("eventTime")),
    ("eventTime", _set("eventTime", "yesterday")),
    ("eventTime", _set("eventTime", "2020-03-01")),
    ("eventTime", _set("eventTime", "2020-03-01T12:00:00")),  # no offset: no instant
    ("eventType", _set("eventType", "FINISHED")),
    ("eventType", _set("eventType", ["START"])),
    ("producer", _without("producer")),
    ("run", _without("run")),
    ("run.runId", _without("run.runId")),
    ("run.facets", _set("run.facets", ["nominalTime"])),
    ("run.facets.nominalTime", _set("run.facets", {"nominalTime": {"nominalStartTime": "x"}})),
    ("job", _set("job", "daily")),
    ("job.name", _set("job.name", "")),
    ("job.namespace", _set("job.namespace", 7)),
    ("inputs", _set("inputs", {"namespace": "x"})),
    ("inputs[0].name", _set("inputs", [{"namespace": "kafka://h:9092"}])),
]


@pytest.mark.parametrize(("field", "change"), BAD_BODIES, ids=[f for f, _ in BAD_BODIES])
async def test_a_bad_event_is_marquez_400_naming_the_field_and_creates_no_run(
    stack: Stack, field: str, change: Any
) -> None:
    run_id = str(uuid.uuid4())
    body = _valid(run_id)
    change(body)
    answer = await stack.client.post(PATH, json=body)
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert set(problem) == {"code", "message"} and problem["code"] == 400
    assert field in problem["message"], problem
    assert (await stack.client.get(f"{RUNS}/{run_id}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"{not json", "is not JSON"),
        (b"[]", "must be a JSON object"),
        (b"", "is not JSON"),
    ],
)
async def test_a_body_that_is_no_json_object_is_marquez_400(
    stack: Stack, body: bytes, what: str
) -> None:
    answer = await stack.client.post(PATH, content=body)
    assert answer.status_code == 400, answer.text
    assert what in answer.json()["message"]


async def test_a_bad_run_id_is_400_and_an_id_of_another_kind_409(stack: Stack) -> None:
    body = _valid(str(uuid.uuid4()))
    body["run"]["runId"] = "not-a-uuid"
    answer = await stack.client.post(PATH, json=body)
    assert answer.status_code == 400, answer.text
    assert "run.runId" in answer.json()["message"]

    created = await stack.client.post("/v0/pipelines", json={"name": f"ol-{uuid.uuid4().hex}"})
    pipeline_id = created.json()["id"]
    taken = await stack.client.post(PATH, json=_valid(pipeline_id))
    assert taken.status_code == 409, taken.text
    assert taken.json() == {
        "code": 409,
        "message": f"runId '{pipeline_id}' names a Pipeline, not a run",
    }


async def test_an_oversized_body_is_marquez_413_and_creates_no_run(stack: Stack) -> None:
    run_id = str(uuid.uuid4())
    body = _valid(run_id)
    body["run"]["facets"] = {"big": {"blob": "x" * (1024 * 1024)}}
    answer = await stack.client.post(PATH, json=body)
    assert answer.status_code == 413, answer.text
    assert set(answer.json()) == {"code", "message"}
    assert (await stack.client.get(f"{RUNS}/{run_id}")).status_code == 404


async def test_without_a_key_the_client_is_refused_in_marquez_shape(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.client.base_url) as anonymous:
        answer = await anonymous.post(
            PATH, content=Serde.to_json(event(str(uuid.uuid4()), None, at()))
        )
    assert answer.status_code == 401
    assert answer.json()["code"] == 401
