"""The process's Prometheus metrics that the roles count as their batches commit.

One registry per process (`REGISTRY`): `pipelines dev` runs every role in one process, so
one scrape (the API's `GET /metrics` or the metrics port) shows them all. What is read
at scrape time instead (consumer counters and lag, relay backlog, executions by status)
is in services.observability.collectors; docs/operations.md lists every metric.

The write path decides thousands of commands a second, so nothing here is counted per
record where a batch can count: a batch adds its totals, and the label children it adds
to are looked up once and kept (`_Children`; `labels()` takes a lock every call).
Counted at commit: a batch that fails and comes again is counted once, when it commits.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)

from contracts.commands import COMMANDS
from contracts.envelope import CE_TYPE, DLQ_ERROR_CODE, KafkaRecord
from services.observability.batch_items import Outcome, Work

REGISTRY: Final = CollectorRegistry(auto_describe=True)
for _default in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_default)  # process_*, python_* (CPU, memory, open files, GC)

# A label value anyone can choose (a command type on the wire) is kept only when it is one
# of ours: a client sending random types must not grow the registry without bound.
UNKNOWN: Final = "unknown"
_KNOWN_TYPES: Final = frozenset(COMMANDS)

RECORD_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
BATCH_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DELAY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


# Every metric of ours is in REGISTRY, never in prometheus_client's global one.
def _counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    return Counter(name, documentation, labels, registry=REGISTRY)


def _histogram(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    *,
    buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
) -> Histogram:
    return Histogram(name, documentation, labels, buckets=buckets, registry=REGISTRY)


COMMANDS_TOTAL: Final = _counter(
    "pipelines_commands",
    "Commands answered by the command handler (result published, batch committed), "
    "repeats included, by command type and outcome (accepted, rejected).",
    ("type", "outcome"),
)
COMMANDS_REPEATED: Final = _counter(
    "pipelines_commands_repeated",
    "Commands answered with their stored result (a command id seen before).",
    ("type",),
)
COMMANDS_DEAD_LETTERED: Final = _counter(
    "pipelines_commands_dead_lettered",
    "Command messages sent to the commands DLQ, by command type and error code.",
    ("type", "error_code"),
)
BATCH_RECORDS: Final = _histogram(
    "pipelines_batch_records",
    "Records per committed batch, by role (the relay: notifications per pass).",
    ("role",),
    buckets=RECORD_BUCKETS,
)
BATCH_SECONDS: Final = _histogram(
    "pipelines_batch_duration_seconds",
    "From a batch handed to its role to its offsets committed (the relay: its position "
    "saved), by role.",
    ("role",),
    buckets=BATCH_BUCKETS,
)
RELAY_PUBLISHED: Final = _counter(
    "pipelines_relay_published_notifications",
    "Notifications the relay published and moved its position past.",
)
PROJECTION_EVENTS: Final = _counter(
    "pipelines_projection_events",
    "Events the projector committed, by what it did with them (applied, healed, skipped, "
    "ignored, unknown, undecodable).",
    ("result",),
)
PROJECTION_DELAY: Final = _histogram(
    "pipelines_projection_delay_seconds",
    "From an event's time (its decision) to its read-model commit: the newest event of "
    "each projector batch that applied something.",
    buckets=DELAY_BUCKETS,
)
ROUTE_IN: Final = _counter(
    "pipelines_route_messages_in",
    "Inbound route messages committed, by config, route and fate (processed, failed, "
    "malformed, unknown, duplicate, finished, foreign).",
    ("config", "route", "fate"),
)
ROUTE_OUT: Final = _counter(
    "pipelines_route_messages_out",
    "Route messages a route published (outputs), by config and route.",
    ("config", "route"),
)
ROUTE_RETRIES: Final = _counter(
    "pipelines_route_adapter_retries",
    "Adapter attempts after a failed one, by config and route.",
    ("config", "route"),
)
HTTP_REQUESTS: Final = _counter(
    "pipelines_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ("method", "route", "status"),
)
HTTP_SECONDS: Final = _histogram(
    "pipelines_http_request_duration_seconds",
    "HTTP requests from arrival to the last byte of the answer, by method and route.",
    ("method", "route"),
)


class _Children:
    """A metric's children by label values, each looked up once."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metric.labels(*labels)
        return child


_batch_records = _Children(BATCH_RECORDS)
_batch_seconds = _Children(BATCH_SECONDS)
_commands = _Children(COMMANDS_TOTAL)
_repeated = _Children(COMMANDS_REPEATED)
_dead_lettered = _Children(COMMANDS_DEAD_LETTERED)
_projection = _Children(PROJECTION_EVENTS)
_route_in = _Children(ROUTE_IN)
_route_out = _Children(ROUTE_OUT)
_route_retries = _Children(ROUTE_RETRIES)


def command_type_label(command_type: str | None) -> str:
    return command_type if command_type in _KNOWN_TYPES else UNKNOWN


def _header_text(record: KafkaRecord, name: str) -> str | None:
    """A dead letter's header as text: its original headers are the sender's bytes, which
    need not be UTF-8 (counting must never fail the batch it counts)."""
    for key, value in record.headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def batch(role: str, records: int, started: float) -> None:
    """A batch of `records` committed, handed over at `started` (time.perf_counter())."""
    _batch_records(role).observe(records)
    _batch_seconds(role).observe(time.perf_counter() - started)


# --- the command handler ------------------------------------------------------------------


def commands(
    outcomes: Sequence[Outcome], dead_letters: Sequence[KafkaRecord], records: int, started: float
) -> None:
    """One committed batch of the command handler."""
    # Tallied by raw type first (C-speed counting), labels fixed once per distinct type.
    answered = Tally((o.result.command_type, o.result.outcome) for o in outcomes)
    for (kind, verdict), count in answered.items():
        _commands(command_type_label(kind), verdict).inc(count)
    repeats = Tally(o.result.command_type for o in outcomes if o.repeated)
    for kind, count in repeats.items():
        _repeated(command_type_label(kind)).inc(count)
    for record in dead_letters:  # rare: read back from the DLQ record's headers
        kind = command_type_label(_header_text(record, CE_TYPE))
        _dead_lettered(kind, _header_text(record, DLQ_ERROR_CODE) or UNKNOWN).inc()
    batch("command-handler", records, started)


# --- the relay and the projector ----------------------------------------------------------


def relayed(published: int, read: int, started: float) -> None:
    """One relay pass that read `read` notifications and moved past `published`."""
    if published:
        RELAY_PUBLISHED.inc(published)
    batch("relay", read, started)


class _Applied(Protocol):
    applied: int
    skipped: int
    healed: int
    ignored: int
    unknown: int


def projected(
    applied: _Applied, undecodable: int, newest: datetime | None, records: int, started: float
) -> None:
    """One committed projector batch; `newest` is its newest event's time."""
    for result in ("applied", "healed", "skipped", "ignored", "unknown"):
        count = getattr(applied, result)
        if count:
            _projection(result).inc(count)
    if undecodable:
        _projection("undecodable").inc(undecodable)
    if newest is not None and applied.applied + applied.healed:
        moment = newest if newest.tzinfo is not None else newest.replace(tzinfo=UTC)
        PROJECTION_DELAY.observe(max((datetime.now(UTC) - moment).total_seconds(), 0.0))
    batch("projector", records, started)


def newest_time(times: Iterable[datetime]) -> datetime | None:
    return max(times, default=None)


# --- routes -------------------------------------------------------------------------------


class RouteCounts:
    """One route's counters (its label children kept)."""

    def __init__(self, config_id: object, route_id: str) -> None:
        self.labels = (str(config_id), route_id)
        self._out = _route_out(*self.labels)
        self._retries = _route_retries(*self.labels)

    def retried(self) -> None:
        self._retries.inc()

    def committed(self, works: Sequence[Work], started: float) -> None:
        fates: Tally[str] = Tally()
        produced = 0
        for work in works:
            if work.fate is not None:
                fates[work.fate.value] += 1
            produced += len(work.outputs)
        for fate, count in fates.items():
            _route_in(*self.labels, fate).inc(count)
        if produced:
            self._out.inc(produced)
        batch("route", len(works), started)


__all__ = [
    "REGISTRY",
    "UNKNOWN",
    "RouteCounts",
    "batch",
    "command_type_label",
    "commands",
    "newest_time",
    "projected",
    "relayed",
]
