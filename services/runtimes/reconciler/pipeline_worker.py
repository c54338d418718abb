"""One route of a running pipeline: its inbound topic through its adapters to its
outbound topics, continuously (docs/reconciler.md).

Unlike the orchestrator's route workers (services/runtimes/orchestrator/route_worker.py) nothing
here is scoped by execution: a pipeline's messages come from outside and carry no
execution headers. A record's value is its JSON payload; each payload the adapters
return goes to every outbound topic with the input's key. The adapters see the
deployment id as `execution_id` and an id derived from the record's position as the
message id.

Offsets: one consumer group per (pipeline, deployment, route) —
`{consumer_group}.pipeline.{pipeline_id}.{deployment_id}.{route}` — whose partitions are
assigned, not joined (no rebalance: one reconciler runs a deployment), never
auto-committed. On start every partition's position is resolved (the group's committed
offset, else the pipeline's checkpoint (services/runtimes/reconciler/checkpoints.py), else the
topic's end: a new deployment reads what is published from its provisioning on) and
committed, so a worker started again for the same deployment (after
a reconciler restart) goes on where its predecessor committed. A batch's offsets are
committed only after its outputs were acknowledged.

Pausing stops fetching after the batch in flight: `await pause()` returns once nothing
more will be processed, and a batch fetched meanwhile is put back (its partitions seek to
its first offsets). A message an adapter still fails after the route's retries fails the
worker (`PipelineRouteFailed`, nothing of its batch committed): the reconciler stops the
pipeline with that error. Broker errors are retried with a doubling backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.config_document import RouteSpec
from services.adapters.kafka.clients import make_consumer
from services.adapters.kafka.engine import Record
from services.adapters.kafka.retry import Retry, rewind
from services.runtimes.routes.adapters import AdapterContext, AdapterFailure, AdapterRuntime
from services.settings import Settings

log = logging.getLogger(__name__)

EnsureTopics = Callable[[Sequence[str]], Awaitable[None]]

_MESSAGE_NAMESPACE: Final = uuid5(NAMESPACE_URL, "urn:pipeline-service:pipeline-message")
POLL_TIMEOUT_MS: Final = 200
INITIAL_BACKOFF_S: Final = 0.2
MAX_BACKOFF_S: Final = 5.0


def pipeline_group_id(
    settings: Settings, pipeline_id: UUID, deployment_id: UUID, route_id: str
) -> str:
    return f"{settings.consumer_group}.pipeline.{pipeline_id}.{deployment_id}.{route_id}"


class PipelineRouteFailed(Exception):
    """The route cannot go on; `error` is the pipeline's deployment error (ErrorResponse)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


def route_failed(route_id: str, message: str, details: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "message": f"Route '{route_id}' failed: {message}",
        "error_code": "RouteFailed",
        "details": {"route": route_id, **details},
    }


@dataclass
class PipelineWorkerStats:
    """Counters for health checks and tests (only ever increase)."""

    batches: int = 0
    consumed: int = 0
    produced: int = 0
    retries: int = 0


class PipelineRouteWorker:
    """Usage: `task = asyncio.create_task(worker.run())`; `ready` is set once its partitions
    are assigned and positioned; `pause()` / `resume()`; `await worker.stop()`."""

    def __init__(
        self,
        settings: Settings,
        pipeline_id: UUID,
        deployment_id: UUID,
        route_id: str,
        route: RouteSpec,
        adapters: AdapterRuntime,
        producer: AIOKafkaProducer,
        ensure_topics: EnsureTopics,
        *,
        consuming: bool = False,
        poll_timeout_ms: int = POLL_TIMEOUT_MS,
        start_offsets: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        reserved = set(settings.topics.all()) & {route.inbound.topic, *route.outbound}
        if reserved:
            raise ValueError(f"route {route_id!r} uses the service's own topics {sorted(reserved)}")
        self.settings = settings
        self.pipeline_id = pipeline_id
        self.deployment_id = deployment_id
        self.route_id = route_id
        self.route = route
        self.adapters = adapters
        self.producer = producer
        self.group_id = pipeline_group_id(settings, pipeline_id, deployment_id, route_id)
        self.stats = PipelineWorkerStats()
        self.ready = asyncio.Event()
        self._ensure_topics = ensure_topics
        self._poll_timeout_ms = poll_timeout_ms
        self._start_offsets = dict(start_offsets or {})
        self._consuming = consuming
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._batch_lock = asyncio.Lock()
        self._retry = Retry(INITIAL_BACKOFF_S, MAX_BACKOFF_S)
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def consuming(self) -> bool:
        return self._consuming

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `stop()`; raises PipelineRouteFailed (or a crash) when it cannot."""
        try:
            await self._start()
            while not self._stopping.is_set():
                if not self._consuming:
                    await self._wait_for_wake()
                    continue
                await self._step()
        finally:
            consumer, self._consumer = self._consumer, None
            if consumer is not None:
                await consumer.stop()

    async def pause(self) -> None:
        """Stop consuming; returns once the batch in flight (if any) is done."""
        self._consuming = False
        async with self._batch_lock:
            pass

    async def offsets(self) -> dict[TopicPartition, int]:
        """The committed offset of every assigned partition: after `pause()`, where the
        route has got to (every batch it processed is committed)."""
        consumer = self._consumer
        if consumer is None or not self.ready.is_set():
            raise RuntimeError(f"route {self.route_id!r} is not running")
        found: dict[TopicPartition, int] = {}
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is not None:
                found[tp] = committed
        return found

    def resume(self) -> None:
        self._consuming = True
        self._wake.set()

    def request_stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _wait_for_wake(self) -> None:
        await self._wake.wait()
        self._wake.clear()

    async def _start(self) -> None:
        inbound = self.route.inbound.topic
        await self._ensure_topics([inbound, *self.route.outbound])
        consumer = make_consumer(self.settings, group_id=self.group_id, auto_offset_reset="latest")
        self._consumer = consumer
        await consumer.start()
        await consumer.topics()  # loads the metadata partitions_for_topic reads
        partitions = consumer.partitions_for_topic(inbound)
        if not partitions:
            raise RuntimeError(f"topic {inbound!r} has no partitions")
        tps = [TopicPartition(inbound, p) for p in sorted(partitions)]
        consumer.assign(tps)
        # The group's committed offset (this deployment ran before), else the pipeline's
        # checkpoint, else the end: resolved and committed now, so a restarted worker goes
        # on from here.
        for tp in tps:
            if tp in self._start_offsets and await consumer.committed(tp) is None:
                consumer.seek(tp, self._start_offsets[tp])
        start = {tp: await consumer.position(tp) for tp in tps}
        await consumer.commit(start)
        self.ready.set()
        log.info("Pipeline %s route %r consuming from %s", self.pipeline_id, self.route_id, start)

    # --- a batch -------------------------------------------------------------------------

    async def _step(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        inbound = self.route.inbound
        try:
            records = await consumer.getmany(
                timeout_ms=self._poll_timeout_ms, max_records=inbound.prefetch
            )
        except Exception as error:
            await self._failed("Fetching pipeline route messages failed", error)
            return
        if not records:
            return
        first = {tp: rs[0].offset for tp, rs in records.items() if rs}
        following = {tp: rs[-1].offset + 1 for tp, rs in records.items() if rs}
        async with self._batch_lock:
            if not self._consuming or self._stopping.is_set():
                rewind(consumer, first)  # paused while fetching: these come again on resume
                return
            try:
                outputs = [
                    (record, await self._run_adapters(record))
                    for batch in records.values()
                    for record in batch
                ]
                await self._publish(outputs)
                await consumer.commit(following)
            except PipelineRouteFailed:
                rewind(consumer, first)
                raise
            except Exception as error:
                rewind(consumer, first)
                failed: Exception | None = error
            else:
                failed = None
                self._retry.succeeded()
                self.stats.batches += 1
                self.stats.consumed += len(outputs)
                self.stats.produced += sum(len(o) for _, o in outputs) * len(self.route.outbound)
        if failed is not None:
            await self._failed(f"Pipeline route {self.route_id!r} batch failed", failed)

    async def _run_adapters(self, record: Record) -> list[dict[str, Any]]:
        handling = self.route.error_handling
        attempts = handling.max_retries + 1
        context = AdapterContext(
            execution_id=self.deployment_id,
            message_id=uuid5(
                _MESSAGE_NAMESPACE, f"{record.topic}/{record.partition}/{record.offset}"
            ),
            source_route=self.route_id,
            stage=0,
            correlation_id=None,
            route=self.route_id,
        )
        try:
            payload = orjson.loads(record.value or b"null")
        except orjson.JSONDecodeError as error:
            raise PipelineRouteFailed(
                route_failed(self.route_id, f"a message is not JSON: {error}", _at(record))
            ) from error
        if not isinstance(payload, dict):
            raise PipelineRouteFailed(
                route_failed(self.route_id, "a message is not a JSON object", _at(record))
            )
        for attempt in range(1, attempts + 1):
            try:
                # A fresh copy each attempt: a failed attempt may have changed it.
                return await self.adapters.run_steps(
                    self.route.adapters, orjson.loads(orjson.dumps(payload)), context
                )
            except AdapterFailure as failure:
                if attempt == attempts:
                    details = {**failure.details(), **_at(record), "attempts": attempts}
                    raise PipelineRouteFailed(
                        route_failed(self.route_id, failure.message, details)
                    ) from failure
                await asyncio.sleep(handling.retry_delay_seconds)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _publish(self, outputs: Sequence[tuple[Record, list[dict[str, Any]]]]) -> None:
        deliveries: list[Awaitable[Any]] = []
        for record, payloads in outputs:
            for payload in payloads:
                value = orjson.dumps(payload)
                for topic in self.route.outbound:
                    deliveries.append(await self.producer.send(topic, value=value, key=record.key))
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _failed(self, what: str, error: Exception) -> None:
        self._retry.failed(what, error)
        self.stats.retries = self._retry.failures
        await self._retry.wait(self._stopping)


def _at(record: Record) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


__all__ = [
    "PipelineRouteFailed",
    "PipelineRouteWorker",
    "PipelineWorkerStats",
    "pipeline_group_id",
    "route_failed",
]
