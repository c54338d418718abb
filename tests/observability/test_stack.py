"""One running stack for the module (the api role, an in-process handler, the relay and the
projector roles, SQLite), traced into the SDK's in-memory exporter:

- metrics scraped over real HTTP after a known workload, from the API's open
  `GET /metrics` and from the metrics port of the relay and projector roles
  (`PIPELINES_METRICS_PORT`); counters are read as differences across the workload (one
  registry per process, and the session's other stacks count into it too);
- one trace from an HTTP request down to the read model, each hop's span a child of the
  hop before it.

Lag is checked on an engine of the test's own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.adapters.kafka.embedded_broker import create_topics
from services.adapters.kafka.engine import Batch, ConsumerEngine, Membership, from_beginning
from services.observability import collectors, tracing
from services.observability.trace_links import TraceLinks
from services.settings import Settings
from tests.entrypoints.http.support import api_stack, free_port
from tests.infra.kafka import BrokerKind
from tests.observability.scrape import Scrape, scrape
from tests.waiting import eventually, eventually_async

pytestmark = pytest.mark.broker


@dataclass
class Stack:
    settings: Settings
    client: httpx.AsyncClient  # sends an API key
    anonymous: httpx.AsyncClient  # sends none
    port: httpx.AsyncClient  # the metrics port of the relay and projector roles


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracing.install(provider)  # before the roles start: the relay opens its trace links
    try:
        yield exported
    finally:
        tracing.install(None)
        provider.shutdown()


@pytest.fixture(scope="module")
async def stack(
    exporter: InMemorySpanExporter, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    port = free_port()
    tmp = tmp_path_factory.mktemp("metrics")
    async with api_stack(kafka_bootstrap, tmp, read_models=True, metrics_port=port) as (
        settings,
        client,
        _,
    ):
        base = f"http://{settings.api_host}:{settings.api_port}"
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as anonymous,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as metrics_port,
        ):
            yield Stack(settings, client, anonymous, metrics_port)


def grew(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def test_accepted_and_rejected_commands_are_counted_exactly(stack: Stack) -> None:
    before = await scrape(stack.anonymous)  # no key: /metrics is open
    names = [f"m-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for name in names:
        created = await stack.client.post("/v0/pipelines", json={"name": name})
        assert created.status_code == 201, created.text
    for name in names[:2]:  # the name is taken: rejected by the domain
        again = await stack.client.post("/v0/pipelines", json={"name": name})
        assert again.status_code == 409, again.text
    after = await scrape(stack.anonymous)

    command = {"type": "CreatePipeline"}
    assert grew(after, before, "pipelines_commands_total", **command, outcome="accepted") == 3
    assert grew(after, before, "pipelines_commands_total", **command, outcome="rejected") == 2
    assert grew(after, before, "pipelines_commands_repeated_total", **command) == 0
    # Every command of the five passed through committed handler batches.
    handler = {"role": "command-handler"}
    assert grew(after, before, "pipelines_batch_records_sum", **handler) == 5
    assert grew(after, before, "pipelines_batch_duration_seconds_count", **handler) >= 1
    # Fetched records may exceed them: a rebalance or a resumed fetch hands some over again,
    # and every handler in this process counts under the same label.
    assert grew(after, before, "pipelines_consumer_records_total", consumer="command-handler") >= 5
    requests = {"method": "POST", "route": "/v0/pipelines"}
    assert grew(after, before, "pipelines_http_requests_total", **requests, status="201") == 3
    assert grew(after, before, "pipelines_http_requests_total", **requests, status="409") == 2
    scrapes = {"method": "GET", "route": "/metrics", "status": "200"}
    assert grew(after, before, "pipelines_http_requests_total", **scrapes) == 1  # `before`'s
    assert after.has("process_cpu_seconds_total")


async def test_the_roles_metrics_port_shows_backlog_read_model_and_lag(stack: Stack) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    assert (await stack.client.post("/v0/pipelines", json={"name": name})).status_code == 201
    for _ in range(2):
        run = await stack.client.post(f"/pipelines/v0/pipelines/{name}/runs", json={})
        assert run.status_code == 200, run.text
    commands_topic = stack.settings.topics.commands
    events_topic = stack.settings.topics.events
    seen: list[Scrape] = []

    async def settled() -> bool:
        found = await scrape(stack.port)
        seen.append(found)
        return (
            found.value("pipelines_executions", status="pending") == 2
            and found.has("pipelines_relay_backlog_notifications", relay="relay")
            and found.value("pipelines_relay_backlog_notifications", relay="relay") == 0
            and found.has("pipelines_consumer_lag_records", topic=commands_topic)
            and found.value("pipelines_consumer_lag_records", topic=commands_topic) == 0
            and found.has("pipelines_consumer_lag_records", topic=events_topic)
            and found.value("pipelines_consumer_lag_records", topic=events_topic) == 0
        )

    await eventually_async(settled, "the runs projected and every backlog drained")
    last = seen[-1]
    assert last.value("pipelines_relay_published_notifications_total") > 0
    assert last.value("pipelines_projection_events_total", result="applied") > 0
    assert last.value("pipelines_projection_delay_seconds_count") > 0
    assert last.value("pipelines_batch_records_count", role="relay") > 0
    # The API's /metrics is the same registry (one process here, as in `pipelines dev`).
    assert (await scrape(stack.anonymous)).value("pipelines_executions", status="pending") == 2


def children(spans: list[ReadableSpan], parent: ReadableSpan, prefix: str) -> list[ReadableSpan]:
    span_id = parent.context.span_id
    return [
        s
        for s in spans
        if s.name.startswith(prefix) and s.parent is not None and s.parent.span_id == span_id
    ]


async def test_a_request_is_one_trace_down_to_the_projection(
    exporter: InMemorySpanExporter, stack: Stack
) -> None:
    settings, client = stack.settings, stack.client
    name = f"t-{uuid.uuid4().hex[:8]}"
    created = await client.post("/v0/pipelines", json={"name": name})
    assert created.status_code == 201, created.text
    seen = await client.get(
        f"/v0/pipelines/{name}", headers={"X-Min-Version": created.headers["X-Pipelines-Version"]}
    )
    assert seen.status_code == 200

    def spans() -> list[ReadableSpan]:
        return list(exporter.get_finished_spans())

    def request() -> ReadableSpan | None:
        found = [
            s
            for s in spans()
            if s.name == "POST /v0/pipelines"
            and s.attributes is not None
            and s.attributes.get("http.response.status_code") == 201
        ]
        return found[-1] if found else None

    def projected() -> bool:
        http = request()
        if http is None:
            return False
        everything = spans()
        return any(
            children(everything, publish, "project ")
            for command in children(everything, http, "command ")
            for publish in children(everything, command, "publish ")
        )

    await eventually(projected, "the projection's span under the request's")
    http = request()
    assert http is not None and http.kind is SpanKind.SERVER and http.parent is None
    everything = spans()
    [command] = children(everything, http, "command ")
    assert command.name == "command CreatePipeline"
    assert command.kind is SpanKind.CONSUMER
    assert command.attributes is not None
    assert command.attributes["pipelines.outcome"] == "accepted"
    assert command.attributes["messaging.destination.name"] == settings.topics.commands
    published = children(everything, command, "publish ")
    assert "publish Created" in {s.name for s in published}  # the Pipeline's first event
    projections = [p for s in published for p in children(everything, s, "project ")]
    assert projections and all(p.kind is SpanKind.CONSUMER for p in projections)
    trace_ids = {s.context.trace_id for s in [http, command, *published, *projections]}
    assert trace_ids == {http.context.trace_id}
    # Once published, the relay forgets which span decided the events.
    event_ids = [str(s.attributes["messaging.message.id"]) for s in published if s.attributes]
    with TraceLinks(settings.event_store_url) as links:
        assert links.find(event_ids) == {}


async def test_lag_is_the_high_watermark_minus_the_position(
    kafka_bootstrap: str, broker_kind: BrokerKind, topic_name: Callable[[str], str]
) -> None:
    """Three produced batches of five: on the embedded broker ListOffsets(latest) says 11,
    the fetch responses' high watermark 15 (docs/operations.md)."""
    topic = topic_name("lag")
    await create_topics(kafka_bootstrap, [topic], 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20)
    await producer.start()
    try:
        for _ in range(3):
            sent = [await producer.send(topic, b"%d" % i, partition=0) for i in range(5)]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()

    release = asyncio.Event()
    handed: list[int] = []

    async def handle(batch: Batch) -> None:
        handed.extend(record.offset for record in batch.records)
        await release.wait()

    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    engine = ConsumerEngine(
        settings,
        name=f"lag-test-{uuid.uuid4().hex[:6]}",
        topics=[topic],
        handle=handle,
        group_id=None,
        membership=Membership.ASSIGNED,
        batch_max=1,
        batch_wait_ms=50,
        position=from_beginning,
    )
    collectors.track(engine)
    task = asyncio.create_task(engine.run())
    try:
        await eventually(lambda: handed == [0], "the first record handed over")
        assert collectors.consumer_lag(engine) == {topic: 14}
        release.set()
        await eventually(lambda: len(handed) == 15, "every record handed over")
        await eventually(lambda: collectors.consumer_lag(engine) == {topic: 0}, "lag 0")
        consumer = engine.consumer
        assert consumer is not None
        tp = TopicPartition(topic, 0)
        assert consumer.highwater(tp) == 15
        if broker_kind == "embedded":  # why lag is not read from end offsets
            assert (await consumer.end_offsets([tp]))[tp] == 11
    finally:
        engine.request_stop()
        await task
