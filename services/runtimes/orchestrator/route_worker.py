"""One route of one config: its batch handler (docs/orchestrator.md, step 4), and that
handler as a Kafka consumer group of its own.

`RouteHandler` is the route's batch logic; the orchestrator runs every route's handler on
its one shared route consumer (services.runtimes.orchestrator.route_consumer). A
`RouteWorker` runs one handler on the batch-consumer engine (services.adapters.kafka.engine)
in a group of its own, `{consumer_group}.route.{config_id}.{route_id}`, `earliest`, batches
of up to `inbound.prefetch * inbound.concurrency` records fetched within `poll_timeout_ms`
(tests and benchmarks/route_bench.py). A batch goes through these steps in this order:

1. decode every record (a malformed one is dead-lettered);
2. look up each execution (`ExecutionLookup`): skip the messages of finished executions
   and of other configs' executions; an unknown one is waited for up to
   `unknown_grace_s` (in case the lookup lags the relay that published the init message),
   then its messages are dead-lettered (`UnknownExecution`), never dropped silently;
3. skip the messages the ledger says this route handled already (and repeats in the batch);
4. run the adapters, messages of different executions concurrently in up to
   `inbound.concurrency` lanes, one execution's messages in order; a failing message is
   retried `max_retries` times `retry_delay_seconds` apart, then dead-lettered
   (`AdapterFailed`); an execution finished meanwhile has its messages skipped;
5. publish outputs and dead letters and await every acknowledgement;
6. store inputs and outputs (services.adapters.message_store, durable on return) — files
   while 5 runs (neither waits for the other), a database store on the ledger's database
   in 7's transaction — never after the ledger, so a crash between the two can only store
   a message twice, never lose it;
7. in the ledger, one transaction: every output expected by each route of the config that
   consumes its topic (and, unless the execution skipped it, its init message expected by
   the init route), the outputs produced, the inputs consumed (or failed) — an output
   consumed downstream before this commits leaves a row nobody expected yet, which
   drains nothing (services.runtimes.orchestrator.ledger);
8. tell `on_failed` about executions with a dead-lettered message and `on_drained` about
   the ones this batch touched whose ledger has drained.

The consumer commits the offsets once the handler returned (and then the handler counts
the batch's fates). If any step fails (database,
broker, a callback) nothing is committed: the consumer rewinds the batch and hands it
over again after its backoff. That is safe: the ledger skips what was consumed, re-produced
outputs carry the same ids, storage keeps the first copy, and the callbacks' decisions are
deduplicated by their command ids. A stop while the batch waits for an unknown execution
puts the batch back (`StopRequested` is a `PutBack`).

`create_topics()` (a worker's `start()`) makes sure the route's topics exist
(`ensure_topics`, by default services.adapters.kafka.clients' `topic_creator`: it creates
only what is missing). A worker's batch may take long (delays, retries): keep it under the
consumer's `max_poll_interval_ms` (5 minutes by default) or the group moves its partitions
on (the shared route consumer keeps polling while its routes work, so it has no such
limit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaProducer

from contracts.config_document import RouteSpec
from contracts.envelope import KafkaRecord
from contracts.route_messages import RouteDeadLetterCode, encode_route_message
from services.adapters.kafka.clients import topic_creator
from services.adapters.kafka.engine import (
    INITIAL_BACKOFF_S,
    MAX_BACKOFF_S,
    AfterCommit,
    Batch,
    ConsumerEngine,
    EngineStats,
    Membership,
    Record,
)
from services.adapters.message_store import DatabaseMessageStore, MessageStore
from services.observability import collectors
from services.observability.logs import log_ids
from services.observability.metrics import RouteCounts
from services.observability.trace_hops import RecordSpans, end_route_spans, route_spans, stamp
from services.runtimes.orchestrator.execution_info import (
    ExecutionCallback,
    ExecutionLookup,
    PatientLookup,
)
from services.runtimes.orchestrator.ledger import Ledger, Write
from services.runtimes.orchestrator.route_batch import (
    DEAD_LETTERED,
    Fate,
    Infos,
    RouteScope,
    Work,
    classify,
    consumed_rows,
    dead_letter,
    decode,
    expected_rows,
    failed_rows,
    lanes,
    outputs_of,
    produced_rows,
    stored_items,
)
from services.runtimes.routes.adapters import AdapterContext, AdapterRuntime
from services.runtimes.routes.retries import RetriesAbandoned, RetriesExhausted, run_with_retries
from services.runtimes.routes.topics import EnsureTopics, acknowledged, refuse_service_topics
from services.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_UNKNOWN_GRACE_S = 30.0
DEFAULT_POLL_TIMEOUT_MS = 200


def route_group_id(
    settings: Settings, config_id: UUID, route_id: str, config_version: int | None = None
) -> str:
    """`{consumer_group}.route.{config_id}.{route_id}`, with `.v{config_version}` before the
    route when the worker runs one version of the config (the orchestrator role's workers)."""
    version = "" if config_version is None else f".v{config_version}"
    return f"{settings.consumer_group}.route.{config_id}{version}.{route_id}"


def dead_letter_topic(settings: Settings, route: RouteSpec) -> str:
    """The route's own dead-letter topic, else the shared `{prefix}.route-dead-letters`."""
    return route.error_handling.dead_letter_topic or f"{settings.topic_prefix}.route-dead-letters"


@dataclass
class RouteWorkerStats(EngineStats):
    """The engine's counters (`batches`, `retries`: batches rewound, fetches and starts that
    failed, ...) and the route's; only ever increase."""

    fates: Counter[Fate] = field(default_factory=Counter)
    produced: int = 0
    adapter_retries: int = 0  # attempts after a failed one


class RouteHandler:
    """One route's batch logic (the steps above), without a consumer: `await
    handler.handle(batch)` runs a batch of the route's inbound records and returns what to
    run once its offsets are committed. The orchestrator's shared route consumer
    (services.runtimes.orchestrator.route_consumer) runs every route's handler; a
    `RouteWorker` is one handler on its own consumer group. Never give a handler two batches
    of the same partitions at once (a consumer gives it one batch per partition at a time).
    `stopping` cuts a wait for an unknown execution short (StopRequested)."""

    def __init__(
        self,
        settings: Settings,
        config_id: UUID,
        route_id: str,
        route_spec: RouteSpec,
        consumers_of: Mapping[str, Sequence[str]],
        adapters: AdapterRuntime,
        ledger: Ledger,
        storage: MessageStore,
        execution_info: ExecutionLookup,
        on_drained: ExecutionCallback,
        on_failed: ExecutionCallback,
        producer: AIOKafkaProducer,
        *,
        ensure_topics: EnsureTopics | None = None,
        unknown_grace_s: float = DEFAULT_UNKNOWN_GRACE_S,
        config_version: int | None = None,
        stopping: asyncio.Event | None = None,
        stats: RouteWorkerStats | None = None,
    ) -> None:
        self.settings = settings
        self.config_id = config_id
        self.route_id = route_id
        self.route = route_spec
        self.config_version = config_version
        self.scope = RouteScope(
            config_id,
            route_id,
            {topic: tuple(routes) for topic, routes in consumers_of.items()},
            config_version,
        )
        self.adapters = adapters
        self.ledger = ledger
        self.storage = storage
        self.execution_info = execution_info
        self.on_drained = on_drained
        self.on_failed = on_failed
        self.producer = producer
        self.dead_letter_topic = dead_letter_topic(settings, route_spec)
        self.inbound_topic = route_spec.inbound.topic
        self.topics = [self.inbound_topic, *route_spec.outbound, self.dead_letter_topic]
        refuse_service_topics(settings, route_id, self.topics)
        self.stats = stats if stats is not None else RouteWorkerStats()
        self._counts = RouteCounts(config_id, route_id)  # the route's metrics
        self._ensure_topics = ensure_topics or topic_creator(settings)
        self._topics_ready = False
        self._lookup = PatientLookup(execution_info, unknown_grace_s, stopping or asyncio.Event())
        # A database message store on the ledger's database stores in its transactions.
        self._joint = (
            storage
            if isinstance(storage, DatabaseMessageStore) and storage.shares(ledger.db)
            else None
        )

    async def create_topics(self) -> None:
        """Create the route's topics (inbound, outbound, dead letters) if need be, once."""
        if not self._topics_ready:
            await self._ensure_topics(self.topics)
            self._topics_ready = True

    # --- the handler ---------------------------------------------------------------------

    async def handle(self, batch: Batch) -> AfterCommit:
        started = time.perf_counter()
        traced = route_spans(batch.records, self.config_id, self.route_id)  # None: tracing off
        works = await self._process(batch.records, traced)
        return lambda: self._count(works, started, traced)

    async def _process(
        self, records: Sequence[Record], traced: RecordSpans | None = None
    ) -> list[Work]:
        works = [decode(record) for record in records]
        infos = await self._lookup.infos(
            wait_for={w.message.execution_id for w in works if w.message is not None},
            # A malformed record's execution is looked up once, never waited for.
            ask_once={w.ids[0] for w in works if w.ids is not None},
        )
        classify(works, infos, self.scope, self._lookup.grace_s)
        await self._skip_handled(works)
        todo = [w for w in works if w.fate is None]
        await asyncio.gather(
            *(self._run_lane(lane) for lane in lanes(todo, self.route.inbound.concurrency))
        )
        await self._skip_finished(works)
        # Stored while the outputs are published, neither waiting for the other: files
        # written and flushed, or a database store's rows made ready (their documents
        # encoded) for the ledger's settling transaction to write.
        published, stored = await asyncio.gather(
            self._publish(works, traced),
            asyncio.to_thread(self._store, works),
            return_exceptions=True,  # both waited for: no store of a rewound batch lingers
        )
        if isinstance(published, BaseException):
            raise published
        if isinstance(stored, BaseException):
            raise stored
        failed, drained = await asyncio.to_thread(self._settle, works, infos, stored)
        await self._tell(failed, drained)
        return works

    # --- the steps of a batch ------------------------------------------------------------

    async def _skip_handled(self, works: Sequence[Work]) -> None:
        candidates = {
            (w.message.execution_id, w.message.id): w
            for w in works
            if w.fate is None and w.message is not None
        }
        handled = await asyncio.to_thread(self.ledger.consumed_among, self.route_id, candidates)
        for key in handled:
            candidates[key].fate = Fate.DUPLICATE

    async def _run_lane(self, lane: Sequence[Work]) -> None:
        for work in lane:
            message = work.message
            assert message is not None
            # What the adapters and the retries log carries the message's ids.
            with log_ids(
                execution_id=message.execution_id,
                message_id=message.id,
                correlation_id=message.correlation_id,
            ):
                await self._run_adapters(work)

    async def _run_adapters(self, work: Work) -> None:
        message = work.message
        assert message is not None

        async def still_running() -> bool:
            # Asked after each retry's delay; the retry counts even if the execution ended.
            self.stats.adapter_retries += 1
            self._counts.retried()
            info = await self.execution_info(message.execution_id)
            return info is not None and not info.finished

        try:
            outputs = await run_with_retries(
                self.adapters,
                self.route,
                work.record.value or b"{}",
                AdapterContext.of(message, self.route_id),
                go_on=still_running,
            )
        except RetriesExhausted as exhausted:
            work.settle(
                Fate.FAILED,
                code=RouteDeadLetterCode.ADAPTER_FAILED,
                error=exhausted.failure.message,
                details={**exhausted.failure.details(), "attempts": exhausted.attempts},
            )
            return
        except RetriesAbandoned:
            work.fate = Fate.FINISHED
            return
        work.fate = Fate.PROCESSED
        work.outputs = outputs_of(
            message, self.route_id, self.route.outbound, outputs, len(self.route.adapters)
        )

    async def _skip_finished(self, works: Sequence[Work]) -> None:
        """An execution cancelled while its messages were in the adapters: their outputs are
        not published (docs/orchestrator.md, Cancel)."""
        processed = {w.execution_id for w in works if w.fate is Fate.PROCESSED}
        for execution_id in processed:
            assert execution_id is not None
            info = await self.execution_info(execution_id)
            if info is None or info.finished:
                for work in works:
                    if work.fate is Fate.PROCESSED and work.execution_id == execution_id:
                        work.fate, work.outputs = Fate.FINISHED, []

    async def _publish(self, works: Sequence[Work], traced: RecordSpans | None = None) -> None:
        # Send everything first (the producer batches), then wait for every delivery.
        deliveries: list[Awaitable[Any]] = []
        for work in works:
            span = None if traced is None else traced.of(work.record)
            for topic, output in work.outputs:
                record = encode_route_message(output)
                if span is not None:
                    stamp(record, span)  # the next route's span continues this one
                deliveries.append(await self._send(topic, record))
            if work.fate in DEAD_LETTERED:
                deliveries.append(
                    await self._send(self.dead_letter_topic, dead_letter(work, self.route_id))
                )
        await acknowledged(deliveries)

    async def _send(self, topic: str, record: KafkaRecord) -> Awaitable[Any]:
        sent: Awaitable[Any] = await self.producer.send(
            topic, value=record.value, key=record.key, headers=record.headers
        )
        return sent

    def _store(self, works: Sequence[Work]) -> list[Write]:
        """The whole batch at once: one segment per execution and direction, flushed
        together (files), or one transaction (a database other than the ledger's); on
        the ledger's database, the statements `_settle` commits with the batch's marks."""
        items = stored_items(works, self.route.inbound.topic)
        if self._joint is not None:
            return self._joint.writes(self.route_id, items)
        self.storage.store(self.route_id, items)
        return []

    def _settle(
        self, works: Sequence[Work], infos: Infos, stored: Sequence[Write]
    ) -> tuple[set[UUID], set[UUID]]:
        """Settle the batch in the ledger, one transaction (with `stored`, the batch's
        messages when they live in the ledger's database: stored and counted in one
        commit); returns the executions with a failed message and the others it touched
        that have drained (one grouped query, after that transaction has committed, in
        the same trip to the thread)."""
        failed = failed_rows(works, infos, self.scope)
        self.ledger.settle_many(
            produced_rows(works),
            consumed_rows(works, self.scope),
            failed,
            expected=expected_rows(works, infos, self.scope),
            also=stored,
        )
        failing = {execution_id for execution_id, _, _ in failed}
        touched = _touched(works, failing)
        return failing, self.ledger.drained_among(touched) if touched else set()

    async def _tell(self, failed: set[UUID], drained: set[UUID]) -> None:
        for execution_id in sorted(failed):
            await self.on_failed(execution_id)
        for execution_id in sorted(drained - failed):
            await self.on_drained(execution_id)

    # --- bookkeeping ---------------------------------------------------------------------

    def _count(
        self, works: Sequence[Work], started: float | None = None, traced: RecordSpans | None = None
    ) -> None:
        if started is not None:
            self._counts.committed(works, started)
        end_route_spans(traced, works)
        for work in works:
            assert work.fate is not None
            self.stats.fates[work.fate] += 1
            self.stats.produced += len(work.outputs)
            if work.fate in DEAD_LETTERED:
                message = work.message
                with log_ids(
                    execution_id=work.execution_id,
                    message_id=None if message is None else message.id,
                    correlation_id=None if message is None else message.correlation_id,
                ):
                    log.warning(
                        "Route %r dead-lettered a message to %s: %s",
                        self.route_id,
                        self.dead_letter_topic,
                        work.error,
                    )


def _touched(works: Sequence[Work], failed: set[UUID]) -> set[UUID]:
    """The executions whose ledger the batch may have drained."""
    return {
        w.execution_id
        for w in works
        if w.fate in (Fate.PROCESSED, Fate.DUPLICATE)
        and w.execution_id is not None
        and w.execution_id not in failed
    }


class RouteWorker(RouteHandler):
    """A route handler on a consumer group of its own (`route_group_id`).

    Usage: `await worker.start()` (optional: `run` starts it), `task =
    asyncio.create_task(worker.run(stop_event))`; `await worker.stop()` finishes and commits
    the batch in flight, then leaves the group."""

    def __init__(
        self,
        settings: Settings,
        config_id: UUID,
        route_id: str,
        route_spec: RouteSpec,
        consumers_of: Mapping[str, Sequence[str]],
        adapters: AdapterRuntime,
        ledger: Ledger,
        storage: MessageStore,
        execution_info: ExecutionLookup,
        on_drained: ExecutionCallback,
        on_failed: ExecutionCallback,
        producer: AIOKafkaProducer,
        *,
        ensure_topics: EnsureTopics | None = None,
        unknown_grace_s: float = DEFAULT_UNKNOWN_GRACE_S,
        poll_timeout_ms: int = DEFAULT_POLL_TIMEOUT_MS,
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        consumer_options: Mapping[str, Any] | None = None,
        config_version: int | None = None,
    ) -> None:
        inbound = route_spec.inbound
        self.group_id = route_group_id(settings, config_id, route_id, config_version)
        stats = RouteWorkerStats()
        self.engine = ConsumerEngine(
            settings,
            name=f"route {route_id!r}",
            topics=[inbound.topic],
            handle=self.handle,
            group_id=self.group_id,
            membership=Membership.GROUP,
            batch_max=inbound.prefetch * inbound.concurrency,
            batch_wait_ms=poll_timeout_ms,
            initial_backoff_s=initial_backoff_s,
            max_backoff_s=max_backoff_s,
            consumer_options=consumer_options,
            stats=stats,
        )
        collectors.track(self.engine)  # its counters and lag, at scrape time
        super().__init__(
            settings,
            config_id,
            route_id,
            route_spec,
            consumers_of,
            adapters,
            ledger,
            storage,
            execution_info,
            on_drained,
            on_failed,
            producer,
            ensure_topics=ensure_topics,
            unknown_grace_s=unknown_grace_s,
            config_version=config_version,
            stopping=self.engine.stopping,
            stats=stats,
        )
        self._finished: asyncio.Event | None = None

    @property
    def assigned(self) -> asyncio.Event:
        """Set once partitions were assigned."""
        return self.engine.assigned

    async def start(self) -> None:
        """Create the route's topics if need be, then join the group."""
        await self.create_topics()
        await self.engine.start()

    async def run(self, stop_event: asyncio.Event | None = None) -> None:
        """Process batches until `stop_event` is set or `stop()` is called."""
        self._finished = asyncio.Event()
        try:
            await self.create_topics()
            await self.engine.run(stop_event)
        finally:
            self._finished.set()

    async def stop(self) -> None:
        """Finish (and commit) the batch in flight, then leave the group."""
        if self._finished is None:
            await self.engine.stop()
            return
        self.engine.request_stop()
        await self._finished.wait()


__all__ = ["RouteHandler", "RouteWorker", "RouteWorkerStats", "dead_letter_topic", "route_group_id"]
