"""Route messages seen from outside, on the route workers' chain (a -> b -> c, the real
broker; tests.runtimes.orchestrator.chain_support): the in/out/failed and retry counters,
one trace across the hops (each output carries its route span as the next one's parent)
and a dead-letter's log line as JSON with the message's execution and correlation ids."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from uuid import UUID

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.observability import logs, tracing
from services.observability.metrics import REGISTRY
from services.observability.trace_hops import stamp
from tests.runtimes.orchestrator.chain_support import Chain, module_chain
from tests.runtimes.orchestrator.worker_support import init_record
from tests.waiting import eventually

pytestmark = pytest.mark.broker

chain = module_chain()


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracing.install(provider)
    try:
        yield exported
    finally:
        tracing.install(None)
        provider.shutdown()


def counted(chain: Chain, name: str, route: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(
        name, {"config": str(chain.config_id), "route": route, **labels}
    )
    return value or 0.0


def route_spans(exporter: InMemorySpanExporter, execution: UUID) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if span.attributes is not None
        and span.attributes.get("pipelines.execution_id") == str(execution)
    ]


async def test_a_message_through_the_routes_is_counted_and_one_trace(
    exporter: InMemorySpanExporter, chain: Chain
) -> None:
    names = ("pipelines_route_messages_in_total", "pipelines_route_messages_out_total")
    before = {
        (name, route): counted(
            chain, name, route, **({"fate": "processed"} if "in" in name else {})
        )
        for name in names
        for route in "abc"
    }
    execution = chain.executions.add()
    # The relay's span, as the relay stamps an execution's init message.
    with tracing.tracer().start_as_current_span("publish Started") as published:
        record = init_record(execution, {"n": 5})
        stamp(record, published)
    await chain.send(record)
    await eventually(lambda: chain.outcomes.drained[execution] > 0, "the execution to drain")

    def grew(name: str, route: str) -> float:
        labels = {"fate": "processed"} if name == names[0] else {}
        return counted(chain, name, route, **labels) - before[(name, route)]

    def counts() -> tuple[list[float], list[float]]:
        return [grew(names[0], r) for r in "abc"], [grew(names[1], r) for r in "abc"]

    # A route counts its batch after handing the batch on, so the last count may land
    # just after the execution drained: wait for it, then check nothing more came.
    expected = ([1, 1, 2], [1, 2, 2])  # in (b fans out), out
    await eventually(lambda: counts() == expected, "every route's batch counted")
    await asyncio.sleep(0.2)
    assert counts() == expected

    await eventually(lambda: len(route_spans(exporter, execution)) == 4, "four route spans")
    spans = {span.context.span_id: span for span in route_spans(exporter, execution)}
    [a] = [s for s in spans.values() if s.name == "route a"]
    [b] = [s for s in spans.values() if s.name == "route b"]
    cs = [s for s in spans.values() if s.name == "route c"]
    assert a.parent is not None and a.parent.span_id == published.get_span_context().span_id
    assert b.parent is not None and b.parent.span_id == a.context.span_id
    assert len(cs) == 2 and all(c.parent and c.parent.span_id == b.context.span_id for c in cs)
    assert {s.context.trace_id for s in spans.values()} == {published.get_span_context().trace_id}
    for span in spans.values():
        assert span.kind is SpanKind.CONSUMER
        assert span.attributes is not None
        assert span.attributes["pipelines.correlation_id"] == f"corr-{execution}"
        assert span.attributes["pipelines.fate"] == "processed"


async def test_a_failing_adapter_counts_retries_and_logs_its_ids(
    exporter: InMemorySpanExporter, chain: Chain
) -> None:
    failed_before = counted(chain, "pipelines_route_messages_in_total", "a", fate="failed")
    retries_before = counted(chain, "pipelines_route_adapter_retries_total", "a")
    lines = io.StringIO()
    json_lines = logs.handler("json", lines)
    worker_log = logging.getLogger("services.runtimes.orchestrator.route_worker")
    worker_log.addHandler(json_lines)
    try:
        execution = await chain.start({"n": 1, "explode": True})
        await eventually(lambda: chain.outcomes.failed[execution] > 0, "the execution to fail")
        await eventually(lambda: "dead-lettered" in lines.getvalue(), "the dead letter's log")
    finally:
        worker_log.removeHandler(json_lines)

    assert counted(chain, "pipelines_route_messages_in_total", "a", fate="failed") == (
        failed_before + 1
    )
    assert counted(chain, "pipelines_route_adapter_retries_total", "a") == retries_before + 2
    [line] = [
        json.loads(text)
        for text in lines.getvalue().splitlines()
        if str(execution) in text and "dead-lettered" in text
    ]
    assert line["level"] == "WARNING"
    assert line["logger"] == "services.runtimes.orchestrator.route_worker"
    assert line["execution_id"] == str(execution)
    assert line["correlation_id"] == f"corr-{execution}"
    assert "boom" in line["message"]
    [span] = route_spans(exporter, execution)
    assert span.parent is None  # its init message came without a traceparent
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["pipelines.fate"] == "failed"
