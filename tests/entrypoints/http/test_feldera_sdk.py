"""Feldera's own Python SDK (PyPI `feldera`) driving our pipeline API end to end, through
its own methods (FelderaClient, PipelineBuilder, Pipeline), against the whole service
run in this process by `run_roles` (api over real HTTP, command handler, relay,
projector, reconciler) on the session's broker: SQLite for the module's stack, and one
create/start/stop on PostgreSQL. The SDK is synchronous (`requests`): its calls run in
threads while the service runs in the test's loop. docs/pipeline-lifecycle.md, "Feldera's
SDK", says what each of its calls means here.

The error cases are sent as plain HTTP (the SDK retries a 503 for seconds before it
gives up, and says less than the body does)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Final, TypeVar

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from feldera import PipelineBuilder
from feldera.enums import (
    BootstrapPolicy as SdkBootstrapPolicy,
)
from feldera.enums import (
    CheckpointStatus,
    DeploymentDesiredStatus,
    DeploymentResourcesDesiredStatus,
    DeploymentResourcesStatus,
    DeploymentRuntimeDesiredStatus,
    DeploymentRuntimeStatus,
    PipelineStatus,
    ProgramStatus,
)
from feldera.enums import StorageStatus as SdkStorageStatus
from feldera.pipeline import Pipeline
from feldera.rest.errors import FelderaAPIError
from feldera.rest.feldera_client import FelderaClient
from feldera.rest.feldera_config import FelderaEdition
from feldera.rest.retry import RetryConfig
from feldera.runtime_config import RuntimeConfig

from contracts import statuses as ours
from services.adapters.kafka.clients import ensure_topics, make_producer
from services.adapters.kafka.embedded_broker import embedded_tuning
from services.entrypoints.roles import run_roles
from services.settings import Settings
from tests.entrypoints.http.support import api_settings, bearer, create_api_key
from tests.infra import postgres
from tests.infra.kafka import BrokerKind
from tests.runtimes.reconciler.support import Outbound, new_tag, route_document
from tests.waiting import eventually_async

T = TypeVar("T")

ROLES: Final = ["handler", "relay", "projector", "reconciler", "api"]
# The SDK's retries of a 503 honour Retry-After (5 s) up to max_backoff.
RETRIES: Final = RetryConfig(max_retries=3, initial_backoff=0.2, max_backoff=1.0)
WAIT_S: Final = 45.0  # what an SDK wait may take before the test fails (ends a hang only)


@dataclass
class Service:
    settings: Settings
    key: str
    url: str
    client: FelderaClient
    http: httpx.AsyncClient
    producer: AIOKafkaProducer

    async def sdk(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking SDK call, off the loop the service runs in (nearly every getter of
        the SDK's Pipeline reads the pipeline again)."""
        return await asyncio.to_thread(functools.partial(call, *args, **kwargs))

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await self.producer.send_and_wait(topic, orjson.dumps(payload), key=b"k")


@contextlib.asynccontextmanager
async def service(bootstrap: str, store_url: str, broker: BrokerKind) -> AsyncIterator[Service]:
    settings = api_settings(bootstrap, store_url, reconciler_sweep_ms=100)
    if broker == "embedded":
        settings = settings.model_copy(update=embedded_tuning(settings))
    await ensure_topics(settings)
    key = await asyncio.to_thread(create_api_key, store_url)
    url = f"http://{settings.api_host}:{settings.api_port}"
    stop = asyncio.Event()
    roles = asyncio.create_task(run_roles(settings, ROLES, stop))
    producer = make_producer(settings)
    try:
        async with httpx.AsyncClient(base_url=url, headers=bearer(key), timeout=60) as http:

            async def answers() -> bool:
                if roles.done():
                    roles.result()
                    raise AssertionError("the service stopped before serving")
                try:
                    return (await http.get("/v0/config")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually_async(answers, "the api to answer")
            client = await asyncio.to_thread(
                FelderaClient, url, api_key=key, timeout=20, retry_config=RETRIES
            )
            await producer.start()
            yield Service(settings, key, url, client, http, producer)
    finally:
        await producer.stop()
        stop.set()
        await asyncio.wait_for(roles, 30)


@pytest.fixture(scope="module")
async def svc(kafka_bootstrap: str, broker_kind: BrokerKind, tmp_path_factory: Any) -> Any:
    url = f"sqlite:///{tmp_path_factory.mktemp('feldera') / 'events.db'}"
    async with service(kafka_bootstrap, url, broker_kind) as found:
        yield found


def unique() -> str:
    return f"sdk-{uuid.uuid4().hex[:8]}"


async def built(svc: Service, document: str, name: str | None = None, **options: Any) -> Pipeline:
    """PipelineBuilder(...).create(): the SDK posts the pipeline and waits for its program."""
    builder = PipelineBuilder(svc.client, name or unique(), sql=document, **options)
    return await svc.sdk(builder.create)


async def status_of(svc: Service, p: Pipeline) -> PipelineStatus:
    return await svc.sdk(p.status)


# --- connecting -----------------------------------------------------------------------------


async def test_the_client_connects_and_reads_our_configuration(svc: Service) -> None:
    config = await svc.sdk(svc.client.get_config)
    assert config.edition is FelderaEdition.OPEN_SOURCE
    assert config.version == version("pipeline-service")
    assert (config.license_validity, config.update_info) == (None, None)
    # Without its API key the SDK cannot even be made: /v0/config is authenticated.
    with pytest.raises(FelderaAPIError) as caught:
        await asyncio.to_thread(FelderaClient, svc.url, retry_config=RETRIES)
    assert caught.value.status_code == 401


def test_every_status_we_answer_parses_in_the_sdk() -> None:
    for value in ours.CombinedStatus:
        assert PipelineStatus.from_str(value).name.lower() == value.lower()
    for value in ours.CombinedDesiredStatus:
        DeploymentDesiredStatus.from_str(value)
    for value in ours.ResourcesStatus:
        DeploymentResourcesStatus.from_str(value)
    for value in ours.ResourcesDesiredStatus:
        DeploymentResourcesDesiredStatus.from_str(value)
    for value in ours.RuntimeStatus:
        DeploymentRuntimeStatus.from_str(value)
    for value in ours.RuntimeDesiredStatus:
        DeploymentRuntimeDesiredStatus.from_str(value)
    for value in ours.StorageStatus:
        SdkStorageStatus.from_str(value)
    for value in ours.ProgramStatus:
        assert ProgramStatus.from_value(value).name == value
    for value in ours.BootstrapPolicy:
        assert SdkBootstrapPolicy.from_str(value).value == value


# --- creating -------------------------------------------------------------------------------


async def test_create_waits_for_the_program_and_reads_everything_back(svc: Service) -> None:
    document = route_document(new_tag())
    runtime = RuntimeConfig(workers=3)
    p = await built(svc, document, description="echo", tags=["team:data"], runtime_config=runtime)
    assert (await svc.sdk(p.program_status)) == ProgramStatus.Success
    assert await svc.sdk(p.program_code) == document.strip()
    assert (await svc.sdk(p.runtime_config)).to_dict() == runtime.to_dict()
    assert await svc.sdk(p.description) == "echo"
    assert await svc.sdk(p.tags) == ["team:data"]
    assert await svc.sdk(p.program_version) == 1
    assert (await svc.sdk(p.program_config))["profile"] == "optimized"
    assert await status_of(svc, p) == PipelineStatus.STOPPED
    assert (await svc.sdk(p.storage_status)) == SdkStorageStatus.CLEARED
    assert await svc.sdk(p.errors) == []
    assert (await svc.sdk(p.deployment_desired_status)) == DeploymentDesiredStatus.STOPPED
    assert (await svc.sdk(p.platform_version)) == version("pipeline-service")

    listed = await svc.sdk(Pipeline.all, svc.client)
    assert p.name in {q.name for q in listed}
    again = PipelineBuilder(svc.client, p.name, sql=document)
    with pytest.raises(RuntimeError, match="already exists"):
        await svc.sdk(again.create)


async def test_an_invalid_program_fails_create_with_our_validation_report(svc: Service) -> None:
    name = unique()
    with pytest.raises(RuntimeError, match="failed to compile") as caught:
        await built(svc, "routes: [unclosed", name)
    assert "E001" in str(caught.value)
    p = await svc.sdk(Pipeline.get, name, svc.client)
    assert (await svc.sdk(p.program_status)) == ProgramStatus.SqlError
    report = (await svc.sdk(p.program_error))["sql_compilation"]["validation_report"]
    assert not report["is_valid"] and report["issues"][0]["code"] == "E001"
    assert [list(e) for e in await svc.sdk(p.errors)] == [["sql_compilation"]]
    with pytest.raises(FelderaAPIError) as refused:
        await svc.sdk(p.start, timeout_s=WAIT_S)
    assert refused.value.error_code == "CannotStartWithCompilationError"


async def test_create_or_replace_and_modify_edit_a_stopped_pipeline(svc: Service) -> None:
    name = unique()
    first = await built(svc, route_document(new_tag()), name)
    replaced = route_document(new_tag())
    builder = PipelineBuilder(svc.client, name, sql=replaced, description="v2")
    p = await svc.sdk(builder.create_or_replace)
    assert await svc.sdk(p.id) == await svc.sdk(first.id)
    assert (await svc.sdk(p.description), await svc.sdk(p.program_version)) == ("v2", 2)
    assert await svc.sdk(p.program_code) == replaced.strip()
    await svc.sdk(p.modify, description="v3", tags=["b", "a"])
    assert await svc.sdk(p.description) == "v3"
    assert await svc.sdk(p.tags) == ["a", "b"]  # the SDK sorts them
    assert await svc.sdk(p.program_version) == 2
    # The program lives in the config the pipeline owns: a new version per change.
    # (The configs read model is read as it is: polled until it has the change.)
    config_id = (await svc.http.get(f"/v0/pipelines/{name}")).json()["config_id"]

    async def second_version() -> bool:
        config = await svc.http.get(f"/api/v1/configs/{config_id}")
        return config.status_code == 200 and config.json()["version"] == 2

    await eventually_async(second_version, "the owned config's second version")


# --- the lifecycle --------------------------------------------------------------------------


async def test_the_lifecycle_through_the_sdk(svc: Service) -> None:
    tag = new_tag()
    inbound, outbound = f"test.rec.{tag}.in", f"test.rec.{tag}.out"
    p = await built(svc, route_document(tag))

    await svc.sdk(p.start, timeout_s=WAIT_S)
    assert await status_of(svc, p) == PipelineStatus.RUNNING
    deployment = (await svc.http.get(f"/v0/pipelines/{p.name}")).json()["deployment_id"]
    async with Outbound(svc.settings, outbound) as out:
        await svc.publish(inbound, {"n": 1})
        assert (await out.until(1))["seen"] == "yes"

    async def processed(n: int) -> Any:
        found: Any = None

        async def counted() -> bool:
            nonlocal found
            found = await svc.sdk(p.stats)
            return bool(found.global_metrics.total_processed_records >= n)

        await eventually_async(counted, f"{n} records in the stats")
        return found

    stats = await processed(1)
    metrics = stats.global_metrics
    assert metrics.state == PipelineStatus.RUNNING
    assert str(metrics.incarnation_uuid) == deployment
    assert [i.endpoint_name for i in stats.inputs] == ["echo"]
    assert stats.inputs[0].config == {"stream": inbound}
    assert stats.inputs[0].metrics.total_records == 1
    assert [(o.endpoint_name, o.metrics.transmitted_records) for o in stats.outputs] == [
        (f"echo.{outbound}", 1)
    ]
    assert metrics.total_input_bytes > 0
    await svc.sdk(p.wait_for_idle, idle_interval_s=0.3, poll_interval_s=0.1, timeout_s=WAIT_S)
    assert await svc.sdk(p.is_complete) is None
    with pytest.raises(RuntimeError, match="pipeline_complete is None"):
        await svc.sdk(p.wait_for_completion, timeout_s=WAIT_S)

    await svc.sdk(p.pause, timeout_s=WAIT_S)
    assert await status_of(svc, p) == PipelineStatus.PAUSED
    assert (await svc.sdk(p.stats)).global_metrics.state == PipelineStatus.PAUSED
    await svc.sdk(p.resume, timeout_s=WAIT_S)
    assert await status_of(svc, p) == PipelineStatus.RUNNING

    answer = await svc.sdk(p.checkpoint_response, wait=True, timeout_s=WAIT_S)
    assert answer["checkpoint_sequence_number"] == 1
    incarnation = answer["incarnation_uuid"]
    assert incarnation == deployment
    assert await svc.sdk(p.checkpoint_status, 1, incarnation) == CheckpointStatus.Success
    assert await svc.sdk(p.checkpoint_status, 2, incarnation) == CheckpointStatus.InProgress

    await svc.sdk(p.stop, force=False, timeout_s=WAIT_S)  # suspends: a checkpoint first
    assert await status_of(svc, p) == PipelineStatus.STOPPED
    assert (await svc.sdk(p.storage_status)) == SdkStorageStatus.INUSE
    assert (await svc.sdk(p.deployment_error)) is None

    await svc.sdk(p.start_paused, timeout_s=WAIT_S)
    assert await status_of(svc, p) == PipelineStatus.PAUSED
    await svc.sdk(p.stop, force=True, timeout_s=WAIT_S)
    assert await status_of(svc, p) == PipelineStatus.STOPPED

    await svc.sdk(p.start_standby, timeout_s=WAIT_S)
    assert await status_of(svc, p) == PipelineStatus.STANDBY
    assert await svc.sdk(p.activate, timeout_s=WAIT_S) == PipelineStatus.RUNNING
    await svc.sdk(p.stop, force=True, timeout_s=WAIT_S)

    history = await svc.sdk(p.events)
    assert history[0] == await svc.sdk(p.event, "latest")
    assert history[-1]["event_type"] == "Created"
    seen = [e["deployment_runtime_status"] for e in reversed(history)]
    for status in ("Running", "Paused", "Suspended", "Standby"):
        assert status in seen
    for event in history:
        DeploymentResourcesStatus.from_str(event["deployment_resources_status"])
        SdkStorageStatus.from_str(event["storage_status"])
    detailed = await svc.sdk(p.event, history[1]["event_id"], selector="all")
    assert detailed["event_id"] == history[1]["event_id"] and "deployment_error" in detailed

    await svc.sdk(p.clear_storage, timeout_s=WAIT_S)
    assert await svc.sdk(p.storage_status) == SdkStorageStatus.CLEARED
    await svc.sdk(p.delete)
    assert await status_of(svc, p) == PipelineStatus.NOT_FOUND


# --- the new endpoints' refusals, as plain HTTP ----------------------------------------------


async def _running(svc: Service) -> Pipeline:
    p = await built(svc, route_document(new_tag()))
    await svc.sdk(p.start, timeout_s=WAIT_S)
    return p


def _feldera(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "error_code", "details"} and body["error_code"] == code
    return body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/stats"),
        ("GET", "/checkpoint_status"),
        ("GET", "/events"),
        ("GET", "/events/latest"),
        ("POST", "/activate"),
        ("PATCH", ""),
    ],
)
async def test_an_unknown_pipeline_is_feldera_404(svc: Service, method: str, path: str) -> None:
    json = {} if method == "PATCH" else None
    response = await svc.http.request(method, f"/v0/pipelines/nobody{path}", json=json)
    body = _feldera(response, 404, "UnknownPipelineName")
    assert body["details"] == {"pipeline_name": "nobody"}


async def test_program_and_body_refusals(svc: Service) -> None:
    document = route_document(new_tag())
    both = {"name": unique(), "program_code": document, "config_id": str(uuid.uuid4())}
    _feldera(await svc.http.post("/v0/pipelines", json=both), 400, "ProgramCodeWithConfigId")
    unknown = {"name": unique(), "surprise": 1}
    _feldera(await svc.http.post("/v0/pipelines", json=unknown), 400, "InvalidRequest")


async def test_a_running_pipeline_refuses_program_edits_but_takes_metadata(svc: Service) -> None:
    p = await _running(svc)
    path = f"/v0/pipelines/{p.name}"
    patch = {"program_code": route_document(new_tag())}
    _feldera(await svc.http.patch(path, json=patch), 400, "UpdateRestrictedToStopped")
    put = {"name": p.name, "program_code": patch["program_code"]}
    _feldera(await svc.http.put(path, json=put), 400, "UpdateRestrictedToStopped")
    edited = await svc.http.patch(path, json={"description": "live", "tags": ["x"]})
    assert edited.status_code == 200, edited.text
    assert edited.json()["description"] == "live"

    checkpoint = f"{path}/checkpoint_status"
    other = str(uuid.uuid4())
    body = _feldera(
        await svc.http.get(checkpoint, params={"incarnation_uuid": other}),
        400,
        "IncarnationUuidMismatch",
    )
    assert body["details"]["requested"] == other
    bad = await svc.http.get(checkpoint, params={"incarnation_uuid": "nope"})
    _feldera(bad, 400, "InvalidQueryParameter")
    standby = await svc.http.post(f"{path}/activate", params={"initial": "standby"})
    _feldera(standby, 400, "InvalidActivateStatus")
    _feldera(
        await svc.http.post(f"{path}/activate", params={"initial": "later"}),
        400,
        "InvalidQueryParameter",
    )
    _feldera(await svc.http.get(f"{path}/events/not-a-uuid"), 400, "InvalidUuidParam")
    missing = await svc.http.get(f"{path}/events/{uuid.uuid4()}")
    _feldera(missing, 404, "UnknownPipelineMonitorEvent")
    _feldera(
        await svc.http.get(f"{path}/events", params={"selector": "x"}), 400, "InvalidQueryParameter"
    )
    await svc.sdk(p.stop, force=True, timeout_s=WAIT_S)

    # Stopped: nothing to ask for statistics (Feldera's 503, with Retry-After).
    stats = await svc.http.get(f"{path}/stats")
    _feldera(stats, 503, "PipelineInteractionNotDeployed")
    assert stats.headers["Retry-After"] == "5"
    _feldera(await svc.http.post(f"{path}/activate"), 503, "PipelineInteractionNotDeployed")


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.mark.postgres
async def test_create_start_and_stop_on_postgresql(
    kafka_bootstrap: str, broker_kind: BrokerKind, postgres_database_url: str
) -> None:
    url = postgres.with_search_path(
        postgres_database_url, postgres.create_schema(postgres_database_url)
    )
    async with service(kafka_bootstrap, url, broker_kind) as pg:
        p = await built(pg, route_document(new_tag()))
        assert (await pg.sdk(p.program_status)) == ProgramStatus.Success
        await pg.sdk(p.start, timeout_s=WAIT_S)
        assert await status_of(pg, p) == PipelineStatus.RUNNING
        assert (await pg.sdk(p.stats)).global_metrics.state == PipelineStatus.RUNNING
        await pg.sdk(p.stop, force=False, timeout_s=WAIT_S)
        assert await status_of(pg, p) == PipelineStatus.STOPPED
        await pg.sdk(p.delete, clear_storage=True)
        assert await status_of(pg, p) == PipelineStatus.NOT_FOUND


__all__ = ["Service", "service"]
