"""One route of a running pipeline: its inbound topic through its adapters to its
outbound topics, continuously (docs/reconciler.md).

Unlike the orchestrator's route workers (services/runtimes/orchestrator/route_worker.py) nothing
here is scoped by execution: a pipeline's messages come from outside and carry no
execution headers. A record's value is its JSON payload; each payload the adapters
return goes to every outbound topic with the input's key. The adapters see the
deployment id as `execution_id` and an id derived from the record's position as the
message id.

The worker runs on the batch-consumer engine (services.adapters.kafka.engine), which
fetches, commits, rewinds and backs off; the worker adds its batch handler and where to
start. Offsets: one consumer group per (pipeline, deployment, route) —
`{consumer_group}.pipeline.{pipeline_id}.{deployment_id}.{route}` — whose partitions are
assigned, not joined (no rebalance: one reconciler runs a deployment). On start every
partition's position is resolved (the group's committed offset, else the pipeline's
checkpoint (services/runtimes/reconciler/checkpoints.py), else the topic's end: a new
deployment reads what is published from its provisioning on) and committed, so a worker
started again for the same deployment (after a reconciler restart) goes on where its
predecessor committed. A batch's offsets are committed only after its outputs were
acknowledged.

Pausing stops fetching after the batch in flight: `await pause()` returns once nothing
more will be processed, and a batch fetched meanwhile is put back. A message an adapter
still fails after the route's retries fails the worker (`PipelineRouteFailed`, the
engine's `fatal`: nothing of its batch committed): the reconciler stops the pipeline with
that error. Broker errors, at start too, are retried with the engine's backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.config_document import RouteSpec
from services.adapters.kafka.engine import (
    AfterCommit,
    Batch,
    ConsumerEngine,
    EngineStats,
    Membership,
    Record,
)
from services.runtimes.routes.adapters import AdapterContext, AdapterRuntime
from services.runtimes.routes.retries import RetriesExhausted, run_with_retries
from services.runtimes.routes.topics import EnsureTopics, acknowledged, refuse_service_topics
from services.settings import Settings

log = logging.getLogger(__name__)

_MESSAGE_NAMESPACE: Final = uuid5(NAMESPACE_URL, "urn:pipeline-service:pipeline-message")
POLL_TIMEOUT_MS: Final = 200


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
class PipelineWorkerStats(EngineStats):
    """The engine's counters (`batches`, `records`, `retries`, ...) and what the route
    read and produced, counted once a batch is committed; only ever increase."""

    produced: int = 0  # records published, over all outbound topics
    consumed_bytes: int = 0  # the values of the records consumed
    payloads: int = 0  # records published to each outbound topic
    payload_bytes: int = 0  # their bytes (each outbound topic gets them all)

    @property
    def consumed(self) -> int:
        return self.records


class PipelineRouteWorker:
    """Usage: `task = asyncio.create_task(worker.run())`; `ready` is set once its partitions
    are assigned and positioned; `pause()` / `resume()`; `request_stop()` and await the
    task (the batch in flight is finished and committed first)."""

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
        refuse_service_topics(settings, route_id, [route.inbound.topic, *route.outbound])
        self.settings = settings
        self.pipeline_id = pipeline_id
        self.deployment_id = deployment_id
        self.route_id = route_id
        self.route = route
        self.adapters = adapters
        self.producer = producer
        self.group_id = pipeline_group_id(settings, pipeline_id, deployment_id, route_id)
        self.stats = PipelineWorkerStats()
        self.engine = ConsumerEngine(
            settings,
            name=f"pipeline {pipeline_id} route {route_id!r}",
            topics=[route.inbound.topic],
            handle=self._handle,
            group_id=self.group_id,
            membership=Membership.ASSIGNED,
            batch_max=route.inbound.prefetch,
            batch_wait_ms=poll_timeout_ms,
            position=self._position,
            fatal=(PipelineRouteFailed,),
            # No committed offset and no checkpoint: the topic's end.
            consumer_options={"auto_offset_reset": "latest"},
            paused=not consuming,
            stats=self.stats,
        )
        self._ensure_topics = ensure_topics
        self._start_offsets = dict(start_offsets or {})

    @property
    def ready(self) -> asyncio.Event:
        """Set once the partitions are assigned, positioned and their start committed."""
        return self.engine.assigned

    @property
    def consuming(self) -> bool:
        return self.engine.consuming

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `request_stop()`; raises PipelineRouteFailed (or a crash) when it
        cannot."""
        await self._ensure_topics([self.route.inbound.topic, *self.route.outbound])
        await self.engine.run()

    async def pause(self) -> None:
        """Stop consuming; returns once the batch in flight (if any) is done."""
        await self.engine.pause()

    def resume(self) -> None:
        self.engine.resume()

    def request_stop(self) -> None:
        self.engine.request_stop()

    async def offsets(self) -> dict[TopicPartition, int]:
        """The committed offset of every assigned partition: after `pause()`, where the
        route has got to (every batch it processed is committed)."""
        consumer = self.engine.consumer
        if consumer is None or not self.ready.is_set():
            raise RuntimeError(f"route {self.route_id!r} is not running")
        found: dict[TopicPartition, int] = {}
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is not None:
                found[tp] = committed
        return found

    async def _position(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        # The group's committed offset (this deployment ran before), else the pipeline's
        # checkpoint, else the end: resolved and committed now, so a restarted worker goes
        # on from here.
        for tp in tps:
            if tp in self._start_offsets and await consumer.committed(tp) is None:
                consumer.seek(tp, self._start_offsets[tp])
        start = {tp: await consumer.position(tp) for tp in tps}
        await consumer.commit(start)
        log.info("Pipeline %s route %r consuming from %s", self.pipeline_id, self.route_id, start)

    # --- a batch -------------------------------------------------------------------------

    async def _handle(self, batch: Batch) -> AfterCommit:
        outputs = [(record, await self._run_adapters(record)) for record in batch.records]
        published = await self._publish(outputs)
        payloads = sum(len(o) for _, o in outputs)
        read = sum(len(record.value or b"") for record in batch.records)

        def count() -> None:
            self.stats.produced += payloads * len(self.route.outbound)
            self.stats.payloads += payloads
            self.stats.payload_bytes += published
            self.stats.consumed_bytes += read

        return count

    async def _run_adapters(self, record: Record) -> list[dict[str, Any]]:
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
        value = record.value or b"null"
        try:
            payload = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            raise PipelineRouteFailed(
                route_failed(self.route_id, f"a message is not JSON: {error}", _at(record))
            ) from error
        if not isinstance(payload, dict):
            raise PipelineRouteFailed(
                route_failed(self.route_id, "a message is not a JSON object", _at(record))
            )
        try:
            return await run_with_retries(self.adapters, self.route, value, context)
        except RetriesExhausted as exhausted:
            failure = exhausted.failure
            details = {**failure.details(), **_at(record), "attempts": exhausted.attempts}
            raise PipelineRouteFailed(
                route_failed(self.route_id, failure.message, details)
            ) from failure

    async def _publish(self, outputs: Sequence[tuple[Record, list[dict[str, Any]]]]) -> int:
        """Publish every output to every outbound topic; answers the bytes of one copy."""
        deliveries: list[Awaitable[Any]] = []
        size = 0
        for record, payloads in outputs:
            for payload in payloads:
                value = orjson.dumps(payload)
                size += len(value)
                for topic in self.route.outbound:
                    deliveries.append(await self.producer.send(topic, value=value, key=record.key))
        await acknowledged(deliveries)
        return size


def _at(record: Record) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


__all__ = [
    "PipelineRouteFailed",
    "PipelineRouteWorker",
    "PipelineWorkerStats",
    "pipeline_group_id",
    "route_failed",
]
