"""Metrics read at scrape time, so the roles pay nothing for them between scrapes.

- `CONSUMERS`: the counters every consumer engine keeps anyway (EngineStats: batches,
  records, retries, rebalances) and its lag, for the engines a role tracks (`track`).
  An engine that is gone adds its last counts to a retired total, so the counters of a
  process only ever increase.
- Lag is the partition's high watermark minus the consumer's position, summed by topic:
  records on the broker not yet handed to the role. Both come from the consumer's own
  state, never from a ListOffsets request: the high watermark is the one the broker sent
  with its last fetch response for the partition. On the embedded broker (Tansu) that
  value is right while its ListOffsets(latest) answer is not (the last batch's base offset
  + 1; docs/architecture.md) — measured, pinned by tests/observability/test_metrics.py.
  A partition not fetched yet has no high watermark and shows no lag.
- `SCRAPED`: gauges computed by a query when scraped (the relay's backlog, executions by
  status from the read model), registered while the role that owns them runs.

Collection runs in the scraping thread (the metrics port's server thread, or a worker
thread of the API's `/metrics`), never on an event loop: the queries use connections of
their own, and the consumer's state is only read.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from projections.db import Database
from services.adapters.kafka.engine import ConsumerEngine, EngineStats
from services.observability.metrics import REGISTRY

log = logging.getLogger(__name__)

_COUNTERS: Final = {
    "batches": "Batches a consumer handled and committed.",
    "records": "Records in the batches a consumer committed.",
    "retries": "Failures a consumer retried: batches rewound, fetches and starts that failed.",
    "rebalances": "Partition assignments a consumer received.",
}


@dataclass
class _Totals:
    batches: int = 0
    records: int = 0
    retries: int = 0
    rebalances: int = 0

    def add(self, stats: EngineStats | _Totals) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(stats, field.name))


def consumer_lag(engine: ConsumerEngine) -> dict[str, int]:
    """Topic -> records not yet handed over, over the partitions that were fetched."""
    consumer = engine.consumer
    if consumer is None:
        return {}
    try:
        # aiokafka keeps both per partition; `highwater()` reads the same state, but the
        # position has only a coroutine getter (it waits for a position to be known).
        subscription = consumer._subscription.subscription
        assignment = None if subscription is None else subscription.assignment
        if assignment is None:
            return {}
        lag: dict[str, int] = {}
        for tp in assignment.tps:
            state = assignment.state_value(tp)
            if state is None or state.highwater is None or not state.has_valid_position:
                continue
            lag[tp.topic] = lag.get(tp.topic, 0) + max(state.highwater - state.position, 0)
        return lag
    except AttributeError:  # an aiokafka that keeps them elsewhere: no lag rather than none
        log.warning("Consumer lag unavailable: aiokafka's partition state moved")
        return {}


class ConsumerCollector(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: weakref.WeakSet[ConsumerEngine] = weakref.WeakSet()
        self._retired: dict[str, _Totals] = {}

    def track(self, engine: ConsumerEngine) -> None:
        """Show `engine`'s counters and lag (labelled by its name) while it exists."""
        with self._lock:
            self._live.add(engine)
        weakref.finalize(engine, self._retire, engine.name, engine.stats)

    def _retire(self, name: str, stats: EngineStats) -> None:
        with self._lock:
            self._retired.setdefault(name, _Totals()).add(stats)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            live = list(self._live)
            totals = {name: _Totals(**vars(t)) for name, t in self._retired.items()}
        lags: dict[tuple[str, str], int] = {}
        for engine in live:
            totals.setdefault(engine.name, _Totals()).add(engine.stats)
            for topic, lag in consumer_lag(engine).items():
                key = (engine.name, topic)
                lags[key] = lags.get(key, 0) + lag
        for name, documentation in _COUNTERS.items():
            family = CounterMetricFamily(
                f"pipelines_consumer_{name}", documentation, labels=["consumer"]
            )
            for consumer, total in sorted(totals.items()):
                family.add_metric([consumer], getattr(total, name))
            yield family
        lag_family = GaugeMetricFamily(
            "pipelines_consumer_lag_records",
            "Records on the broker a consumer has not handed to its role yet (high "
            "watermark of its last fetch minus position), by consumer and topic.",
            labels=["consumer", "topic"],
        )
        for (consumer, topic), lag in sorted(lags.items()):
            lag_family.add_metric([consumer, topic], lag)
        yield lag_family

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families vary with what is tracked: nothing fixed to check


Samples = Callable[[], Mapping[tuple[str, ...], float]]
"""A source of one gauge: label values -> value; called at every scrape."""


@dataclass(frozen=True)
class _Gauge:
    name: str
    documentation: str
    labels: tuple[str, ...]


RELAY_BACKLOG: Final = _Gauge(
    "pipelines_relay_backlog_notifications",
    "Notifications stored but not yet published by the relay: the notification log's "
    "highest id minus the relay's position.",
    ("relay",),
)
EXECUTIONS: Final = _Gauge(
    "pipelines_executions",
    "Executions in the read model (not deleted), by kind (config, pipeline, ...) and "
    "canonical status.",
    ("kind", "status"),
)


class ScrapedCollector(Collector):
    """Gauges whose sources query something when scraped; sources with the same key (the
    same read model opened by two roles of one process) are asked once."""

    def __init__(self, gauges: tuple[_Gauge, ...]) -> None:
        self._gauges = {gauge.name: gauge for gauge in gauges}
        self._lock = threading.Lock()
        self._sources: dict[str, dict[object, tuple[Samples, int]]] = {g: {} for g in self._gauges}

    @contextlib.contextmanager
    def source(self, gauge: _Gauge, key: object, make: Callable[[], Samples]) -> Iterator[None]:
        """While the block runs, `gauge` includes the samples `make()` builds; the first
        user of `key` builds them, the last one closes them (if they have `close`)."""
        with self._lock:
            sources = self._sources[gauge.name]
            if key in sources:
                samples, users = sources[key]
            else:
                samples, users = make(), 0
            sources[key] = (samples, users + 1)
        try:
            yield
        finally:
            with self._lock:
                samples, users = sources[key]
                if users > 1:
                    sources[key] = (samples, users - 1)
                else:
                    del sources[key]
                    close = getattr(samples, "close", None)
                    if close is not None:
                        close()

    def collect(self) -> Iterator[Metric]:
        for name, gauge in self._gauges.items():
            with self._lock:
                sources = [samples for samples, _ in self._sources[name].values()]
            values: dict[tuple[str, ...], float] = {}
            for samples in sources:
                try:
                    found = samples()
                except Exception as error:  # a scrape must not fail for one source
                    log.warning("Metric %s not read this scrape: %s", name, error)
                    continue
                for labels, value in found.items():
                    values[labels] = values.get(labels, 0) + value
            family = GaugeMetricFamily(name, gauge.documentation, labels=list(gauge.labels))
            for labels, value in sorted(values.items()):
                family.add_metric(list(labels), value)
            yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())


CONSUMERS: Final = ConsumerCollector()
SCRAPED: Final = ScrapedCollector((RELAY_BACKLOG, EXECUTIONS))
REGISTRY.register(CONSUMERS)
REGISTRY.register(SCRAPED)


def track(engine: ConsumerEngine) -> None:
    CONSUMERS.track(engine)


def relay_backlog(
    name: str, newest: Callable[[], int | None], position: Callable[[], int]
) -> contextlib.AbstractContextManager[None]:
    """While the block runs: the relay's backlog, from the log's highest id (`newest`)."""

    def samples() -> dict[tuple[str, ...], float]:
        return {(name,): max(int(newest() or 0) - position(), 0)}

    return SCRAPED.source(RELAY_BACKLOG, object(), lambda: samples)


class ExecutionCounts:
    """Executions by kind and status, one GROUP BY on the read model, on a connection of
    its own (the scraping thread's queries never wait behind the projector's)."""

    QUERY: Final = (
        "SELECT owner_kind, status, COUNT(*) FROM read_executions WHERE deleted = 0 "
        "GROUP BY owner_kind, status"
    )

    def __init__(self, url: str) -> None:
        self.db = Database(url)

    def __call__(self) -> dict[tuple[str, ...], float]:
        rows: list[tuple[Any, ...]] = self.db.query(self.QUERY)
        return {(str(kind), str(status)): float(count) for kind, status, count in rows}

    def close(self) -> None:
        self.db.close()


def executions_by_status(url: str) -> contextlib.AbstractContextManager[None]:
    """While the block runs: the read model at `url` counted at every scrape."""
    return SCRAPED.source(EXECUTIONS, url, lambda: ExecutionCounts(url))


__all__ = [
    "CONSUMERS",
    "SCRAPED",
    "ConsumerCollector",
    "ExecutionCounts",
    "ScrapedCollector",
    "consumer_lag",
    "executions_by_status",
    "relay_backlog",
    "track",
]
