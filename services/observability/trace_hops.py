"""The spans of each hop a command's effects travel, and how each hop finds its parent.

    HTTP request (services.entrypoints.http.observed)  ── traceparent header of the command
      └ command <type>     the command handler: one span per command of a batch
          └ publish <event> the relay: one per event, parent found in trace_links
              ├ project <event>   the projector, parent from the event record's traceparent
              └ route <route>     a route worker, parent from the init message's traceparent
                  └ route <next>  ... each output carries its route span's traceparent

Roles work in batches, so a hop's spans are made for a batch at once, each starting when
the batch was handed over and ending when it committed; the route spans also carry the
message's execution and correlation ids (route messages of one execution share them, so
a trace search by correlation id finds every hop). Every function here returns None, and
does nothing else, while tracing is off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from contracts.envelope import CE_CORRELATIONID, CE_ID, CE_TYPE, HeaderMap, KafkaRecord
from contracts.route_messages import CE_EXECUTIONID
from services.adapters.kafka.batch import Record
from services.observability import tracing
from services.observability.batch_items import Outcome, Work
from services.observability.metrics import command_type_label
from services.observability.trace_links import TraceLinks
from services.observability.tracing import TRACEPARENT


def _messaging(record: Record, message_id: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.destination.name": record.topic,
        "messaging.kafka.destination.partition": record.partition,
        "messaging.kafka.message.offset": record.offset,
    }
    if message_id is not None:
        attributes["messaging.message.id"] = message_id
    return attributes


def stamp(record: KafkaRecord, span: Span) -> None:
    """`record` goes out as a child of `span` (its `traceparent` header)."""
    parent = tracing.traceparent_of(span)
    if parent is not None:
        record.headers.append((TRACEPARENT, parent.encode()))


# --- the command handler -------------------------------------------------------------------


@dataclass
class CommandBatch:
    """One batch's command spans by command id."""

    links: TraceLinks
    spans: dict[str, Span]

    def before_save(self, outcomes: Sequence[Outcome]) -> None:
        """The decider's hook: link the events about to be saved to their command's span
        (runs in the decider's thread, before the batch's transaction)."""
        found: dict[str, str] = {}
        for outcome in outcomes:
            span = self.spans.get(outcome.command_id)
            event_ids: Iterable[str] = getattr(outcome.result, "event_ids", ())
            parent = None if span is None else tracing.traceparent_of(span)
            if parent is not None:
                found.update((event_id, parent) for event_id in event_ids)
        self.links.save(found)

    def end(self, outcomes: Sequence[Outcome]) -> None:
        """The batch committed: every span ends, with what its command got."""
        for outcome in outcomes:
            span = self.spans.pop(outcome.command_id, None)
            if span is None:
                continue
            result = outcome.result
            span.set_attribute("pipelines.outcome", result.outcome)
            for name in ("error_code", "aggregate_id", "aggregate_version"):
                value = getattr(result, name, None)
                if value is not None:
                    span.set_attribute(f"pipelines.{name}", value)
            span.end()
        for span in self.spans.values():  # dead-lettered without an id to answer
            span.set_status(Status(StatusCode.ERROR, "dead-lettered"))
            span.end()
        self.spans.clear()


class CommandSpans:
    """The command handler's tracing; opens the trace links (the event store's database at
    `url`) when it first traces a batch."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._links: TraceLinks | None = None

    def begin(self, records: Sequence[Record]) -> CommandBatch | None:
        """A span per command, child of the `traceparent` it arrived with (a root span for
        a command that came without one)."""
        if not tracing.enabled():
            return None
        if self._links is None:
            self._links = TraceLinks(self.url)
        tracer, started = tracing.tracer(), time.time_ns()
        spans: dict[str, Span] = {}
        for record in records:
            found = HeaderMap.of(record.headers or ())
            # The decoder's own fallback id for a message without ce_id.
            command_id = found.get(CE_ID) or f"{record.topic}:{record.partition}:{record.offset}"
            if command_id in spans:
                continue  # the same command twice in one batch: one decision, one span
            attributes = _messaging(record, command_id)
            if (correlation_id := found.get(CE_CORRELATIONID)) is not None:
                attributes["pipelines.correlation_id"] = correlation_id
            spans[command_id] = tracer.start_span(
                f"command {command_type_label(found.get(CE_TYPE))}",
                context=tracing.parent_of(found.get(TRACEPARENT)),
                kind=SpanKind.CONSUMER,
                start_time=started,
                attributes=attributes,
            )
        return CommandBatch(self._links, spans)

    def close(self) -> None:
        links, self._links = self._links, None
        if links is not None:
            links.close()


# --- the relay -------------------------------------------------------------------------------

Planned = Sequence[tuple[int, Sequence[tuple[str, KafkaRecord]]]]
"""The relay's pass: (notification id, its records: the event's first, then derived ones)."""


@dataclass
class RelayBatch:
    spans: dict[int, tuple[str, Span]] = field(default_factory=dict)


class RelaySpans:
    """The relay's tracing: a `publish <event type>` span per event whose command was
    traced, child of the command's span (trace_links); the event's record and the
    messages derived from it carry the span as their parent."""

    def __init__(self, links: TraceLinks | None) -> None:
        self.links = links

    async def begin(self, planned: Planned) -> RelayBatch | None:
        links = self.links
        if links is None or not tracing.enabled():
            return None
        events = {n: records[0][1] for n, records in planned if records}
        ids = [record.header(CE_ID) for record in events.values()]
        parents = await asyncio.to_thread(links.find, [i for i in ids if i is not None])
        tracer, started, batch = tracing.tracer(), time.time_ns(), RelayBatch()
        for notification_id, records in planned:
            if not records:
                continue
            event = records[0][1]
            event_id = event.header(CE_ID) or ""
            parent = tracing.parent_of(parents.get(event_id))
            if parent is None:
                continue  # its command was not traced
            span = tracer.start_span(
                f"publish {event.header(CE_TYPE)}",
                context=parent,
                kind=SpanKind.PRODUCER,
                start_time=started,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": records[0][0],
                    "messaging.message.id": event_id,
                    "pipelines.notification_id": notification_id,
                },
            )
            for _, record in records:
                stamp(record, span)
            batch.spans[notification_id] = (event_id, span)
        return batch

    async def end(self, batch: RelayBatch | None, position: int) -> None:
        """The pass is over: spans up to `position` were published (their links go), the
        rest were not (they end as errors; the next pass traces them again)."""
        if batch is None or self.links is None:
            return
        published: list[str] = []
        for notification_id, (event_id, span) in batch.spans.items():
            if notification_id <= position:
                published.append(event_id)
            else:
                span.set_status(Status(StatusCode.ERROR, "not acknowledged"))
            span.end()
        if published:
            await asyncio.to_thread(self.links.forget, published)


# --- consumers of what the relay and the routes publish --------------------------------------


@dataclass
class RecordSpans:
    """Spans by record position, started when the batch was handed over."""

    spans: dict[tuple[str, int, int], Span]

    def of(self, record: Record) -> Span | None:
        return self.spans.get((record.topic, record.partition, record.offset))

    def end(self) -> None:
        for span in self.spans.values():
            span.end()
        self.spans = {}


# A consumer span's name, parent (None: a root) and attributes; None: no span.
Opened = tuple[str, Context | None, dict[str, Any]] | None


def _record_spans(
    records: Sequence[Record], opened: Callable[[Record, HeaderMap], Opened]
) -> RecordSpans | None:
    """A consumer span per record that `opened` (given its headers) opens, all started
    now, when the batch was handed over."""
    if not tracing.enabled():
        return None
    tracer, started = tracing.tracer(), time.time_ns()
    spans: dict[tuple[str, int, int], Span] = {}
    for record in records:
        found = opened(record, HeaderMap.of(record.headers or ()))
        if found is None:
            continue
        name, parent, attributes = found
        spans[(record.topic, record.partition, record.offset)] = tracer.start_span(
            name,
            context=parent,
            kind=SpanKind.CONSUMER,
            start_time=started,
            attributes=attributes,
        )
    return RecordSpans(spans)


def projection_spans(records: Sequence[Record]) -> RecordSpans | None:
    """A `project <event type>` span per event record that came with a traceparent."""

    def opened(record: Record, found: HeaderMap) -> Opened:
        parent = tracing.parent_of(found.get(TRACEPARENT))
        if parent is None:
            return None
        return f"project {found.get(CE_TYPE)}", parent, _messaging(record, found.get(CE_ID))

    return _record_spans(records, opened)


def route_spans(records: Sequence[Record], config_id: object, route_id: str) -> RecordSpans | None:
    """A `route <route>` span per inbound record: a child of the traceparent it came with,
    else a root; with its execution and correlation ids."""

    def opened(record: Record, found: HeaderMap) -> Opened:
        attributes = _messaging(record, found.get(CE_ID))
        attributes["pipelines.config_id"] = str(config_id)
        attributes["pipelines.route"] = route_id
        for header, name in (
            (CE_EXECUTIONID, "pipelines.execution_id"),
            (CE_CORRELATIONID, "pipelines.correlation_id"),
        ):
            if (value := found.get(header)) is not None:
                attributes[name] = value
        return f"route {route_id}", tracing.parent_of(found.get(TRACEPARENT)), attributes

    return _record_spans(records, opened)


def end_route_spans(spans: RecordSpans | None, works: Sequence[Work]) -> None:
    """The route batch committed: each span ends with its message's fate (an error for
    a dead-lettered one)."""
    if spans is None:
        return
    for work in works:
        span = spans.of(work.record)
        if span is None:
            continue
        if work.fate is not None:
            span.set_attribute("pipelines.fate", work.fate.value)
        if work.error is not None:
            span.set_status(Status(StatusCode.ERROR, work.error))
    spans.end()


__all__ = [
    "CommandBatch",
    "CommandSpans",
    "RecordSpans",
    "RelayBatch",
    "RelaySpans",
    "end_route_spans",
    "projection_spans",
    "route_spans",
    "stamp",
]
