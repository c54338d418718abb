"""OpenTelemetry tracing: off unless `PIPELINES_TRACING` says where spans go.

- `none` (the default): no provider; every hop asks `enabled()` once per batch and does
  nothing more, so the write path pays one attribute read.
- `console`: spans printed to stdout as JSON (the SDK's ConsoleSpanExporter), for a look
  at one process.
- `otlp`: OTLP over HTTP to `PIPELINES_TRACING_OTLP_ENDPOINT` (else the exporter's own
  OTEL_EXPORTER_OTLP_* settings); needs the package opentelemetry-exporter-otlp-proto-http,
  which is not a dependency of the service.

The provider is this module's own, not the global one (`trace.set_tracer_provider` can
be set once per process): tests install a provider with an in-memory exporter
(`install`). Trace context crosses processes in W3C `traceparent` headers, on HTTP
requests and on Kafka records alike (services.observability.trace_hops has the hops).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from contracts.cloudevents import TRACEPARENT

if TYPE_CHECKING:  # the SDK only where spans are recorded: the command bus imports this
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from services.settings import Settings

log = logging.getLogger(__name__)

INSTRUMENTATION: Final = "pipelines"
_PROPAGATOR: Final = TraceContextTextMapPropagator()


class _State:
    provider: TracerProvider | None = None
    tracer: Tracer | None = None
    owned: bool = False  # built from settings here (so shut down here)


_state = _State()


def enabled() -> bool:
    return _state.tracer is not None


def tracer() -> Tracer:
    """The tracer of the installed provider; only call it when `enabled()`."""
    assert _state.tracer is not None, "tracing is off"
    return _state.tracer


def install(provider: TracerProvider | None) -> None:
    """Trace into `provider` from now on (None: tracing off)."""
    _state.provider = provider
    _state.tracer = None if provider is None else provider.get_tracer(INSTRUMENTATION)
    _state.owned = False


def configure(settings: Settings) -> None:
    """The provider `settings.tracing` asks for, once per process (a provider installed
    already — by an earlier call or a test — is kept)."""
    if settings.tracing == "none" or _state.provider is not None:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.tracing_service_name})
    )
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    install(provider)
    _state.owned = True
    log.info("Tracing to %s", settings.tracing)


def shutdown() -> None:
    """Flush and stop a provider `configure` built (a test's own is left to the test)."""
    provider = _state.provider
    if provider is not None and _state.owned:
        provider.shutdown()
        install(None)


def _exporter(settings: Settings) -> SpanExporter:
    if settings.tracing == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter: SpanExporter = OTLPSpanExporter(endpoint=settings.tracing_otlp_endpoint)
    return exporter


# --- W3C trace context ----------------------------------------------------------------------


def parent_of(traceparent: str | None) -> Context | None:
    """The context a `traceparent` value names (None: none, or not a valid one)."""
    if not traceparent:
        return None
    context = _PROPAGATOR.extract({TRACEPARENT: traceparent})
    span = trace.get_current_span(context)
    return context if span.get_span_context().is_valid else None


def traceparent_of(span: Span) -> str | None:
    """The `traceparent` value naming `span` as the parent of what follows it."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT)


def current_traceparent() -> str | None:
    """The `traceparent` of the span current in this context (an HTTP request's), if any
    and if tracing is on: what a command sent from here carries."""
    if _state.tracer is None:
        return None
    span = trace.get_current_span()
    return traceparent_of(span) if span.get_span_context().is_valid else None


__all__ = [
    "TRACEPARENT",
    "configure",
    "current_traceparent",
    "enabled",
    "install",
    "parent_of",
    "shutdown",
    "traceparent_of",
    "tracer",
]
