"""The reconciler's bookkeeping of pipeline deployments: the route workers of each one,
started from the pipeline's checkpoint, paused, resumed, checkpointed and stopped as
the decision says (services.runtimes.reconciler.decide.Workers), and what the decision
is taken on (`Deployment.seen`).

A deployment's workers run the pipeline's latest config; a config that cannot run here
(missing, or not valid against this reconciler's adapters) leaves the deployment with
an error instead of workers, decided on like a worker's failure. A worker becoming ready
or ending publishes nothing: it wakes the sweep itself (`wake_up`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaProducer

from domain.config import Config
from domain.pipeline import Pipeline
from services.adapters.kafka.clients import topic_creator
from services.runtimes.orchestrator.store_lookups import EventStoreReader
from services.runtimes.reconciler.checkpoints import Checkpoints, Head
from services.runtimes.reconciler.decide import Seen, Workers
from services.runtimes.reconciler.pipeline_worker import (
    PipelineRouteFailed,
    PipelineRouteWorker,
    route_failed,
)
from services.runtimes.reconciler.route_stats import RouteCounts, RouteStats
from services.runtimes.routes.adapters import AdapterRuntime
from services.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Deployment:
    """The route workers of one pipeline deployment (or why they could not start)."""

    pipeline_id: UUID
    deployment_id: UUID
    workers: list[PipelineRouteWorker] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    stopping: bool = False
    # What a checkpoint of this deployment is taken at (set once its workers are made).
    config_id: UUID | None = None
    config_version: int = 0
    # The config differs from the one the checkpoint it starts from was taken at: the
    # approval diff (decide.Seen.bootstrap).
    bootstrap: dict[str, Any] | None = None
    checkpointed: int = 0  # the highest `/checkpoint` sequence number recorded
    # Wakes the sweep once every worker is ready (nothing is published then).
    watch: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return (
            not self.stopping
            and all(w.ready.is_set() for w in self.workers)
            and self.failure() is None
        )

    def seen(self) -> Seen:
        """What the decision is taken on."""
        return Seen(
            ready=self.ready,
            failure=self.failure(),
            bootstrap=self.bootstrap,
            checkpointed=self.checkpointed,
        )

    def failure(self) -> dict[str, Any] | None:
        """The first worker's error: its failure, a crash, or a stop nobody asked for."""
        if self.error is not None:
            return self.error
        for worker, task in zip(self.workers, self.tasks, strict=True):
            if not task.done() or self.stopping:
                continue
            error = None if task.cancelled() else task.exception()
            if isinstance(error, PipelineRouteFailed):
                return error.error
            what = "it stopped" if error is None else f"{type(error).__name__}: {error}"
            return route_failed(worker.route_id, what, {})
        return None

    async def consume(self, consuming: bool) -> None:
        for worker in self.workers:
            if consuming:
                worker.resume()
            else:
                await worker.pause()

    def counts(self) -> list[RouteCounts]:
        """What each route has done so far (services.runtimes.reconciler.route_stats)."""
        return [
            RouteCounts(
                route=worker.route_id,
                inbound=worker.route.inbound.topic,
                outbound=list(worker.route.outbound),
                consumed=worker.stats.consumed,
                consumed_bytes=worker.stats.consumed_bytes,
                produced=worker.stats.payloads,
                produced_bytes=worker.stats.payload_bytes,
                batches=worker.stats.batches,
                retries=worker.stats.retries,
                consuming=worker.consuming,
                last_error=worker.stats.last_error,
            )
            for worker in self.workers
        ]

    async def stop(self) -> None:
        # Kept: a failure is decided on (begin_stopping with it) until the step is handled.
        self.error = self.failure()
        self.stopping = True
        if self.watch is not None:
            self.watch.cancel()
        for worker in self.workers:
            worker.request_stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Deployments:
    """The deployments by pipeline id (`running`)."""

    def __init__(
        self,
        settings: Settings,
        adapters: AdapterRuntime,
        reader: EventStoreReader,
        checkpoints: Checkpoints,
        producer: AIOKafkaProducer,
        wake_up: Callable[[UUID], None],
        route_stats: RouteStats | None = None,
    ) -> None:
        self.settings = settings
        self.adapters = adapters
        self.running: dict[UUID, Deployment] = {}
        self._registry = adapters.registry()
        self._reader = reader
        self._checkpoints = checkpoints
        self._route_stats = route_stats
        # What was last written of each pipeline's counts (its deployment and routes).
        self._written: dict[UUID, tuple[UUID, list[RouteCounts]]] = {}
        self._producer = producer
        self._wake_up = wake_up
        self._ensure_topics = topic_creator(settings)

    async def seen(self, pipeline: Pipeline) -> Seen:
        """What the reconciler sees of the pipeline's current deployment; the workers of a
        deployment the pipeline has left are stopped."""
        deployment = self.running.get(pipeline.id)
        if deployment is not None and deployment.deployment_id != pipeline.deployment_id:
            await self.release(pipeline.id)
            deployment = None
        return Seen() if deployment is None else deployment.seen()

    async def apply(self, pipeline: Pipeline, workers: Workers) -> None:
        """Carry out what the decision says of the pipeline's workers."""
        match workers:
            case Workers.KEEP:
                return
            case Workers.STOP:
                deployment = self.running.get(pipeline.id)
                if deployment is not None and not deployment.stopping:
                    await deployment.stop()
            case Workers.RELEASE:
                await self.release(pipeline.id)
            case Workers.CLEAR:
                await self.forget(pipeline.id)
            case Workers.RUN:
                await self._run(pipeline)
            case Workers.CONSUME | Workers.HOLD:
                deployment = await self._run(pipeline)
                await deployment.consume(workers is Workers.CONSUME)
            case Workers.SUSPEND:
                deployment = await self._run(pipeline)
                await deployment.consume(False)
                await self._checkpoint(pipeline, deployment)
            case Workers.CHECKPOINT:
                deployment = await self._run(pipeline)
                consuming = any(w.consuming for w in deployment.workers)
                await deployment.consume(False)  # the batch in flight finishes and commits
                try:
                    await self._checkpoint(pipeline, deployment)
                finally:
                    if consuming:
                        await deployment.consume(True)

    async def release(self, pipeline_id: UUID) -> None:
        """Stop the pipeline's workers, if any, and forget its deployment."""
        deployment = self.running.pop(pipeline_id, None)
        if deployment is not None:
            await deployment.stop()
            log.info(
                "Stopped the route workers of pipeline %s (deployment %s)",
                pipeline_id,
                deployment.deployment_id,
            )

    async def forget(self, pipeline_id: UUID) -> None:
        """`release`, and delete the pipeline's checkpoint (its storage is cleared, or the
        pipeline is gone: a re-created one of the same name has a new id anyway)."""
        await self.release(pipeline_id)
        await asyncio.to_thread(self._checkpoints.forget, pipeline_id)
        if self._route_stats is not None:
            await asyncio.to_thread(self._route_stats.forget, pipeline_id)
        self._written.pop(pipeline_id, None)

    async def write_counts(self) -> None:
        """Write down the counts of every deployment whose counts changed since they were
        last written (the API's `/stats` reads them)."""
        if self._route_stats is None:
            return
        for pipeline_id, deployment in list(self.running.items()):
            counts = (deployment.deployment_id, deployment.counts())
            if self._written.get(pipeline_id) == counts:
                continue
            await asyncio.to_thread(self._route_stats.record, pipeline_id, *counts)
            self._written[pipeline_id] = counts

    async def stop(self) -> None:
        """Stop every worker (their batches finish and commit)."""
        await asyncio.gather(*(d.stop() for d in self.running.values()))
        self.running.clear()

    async def _checkpoint(self, pipeline: Pipeline, deployment: Deployment) -> None:
        """Record the (not consuming) workers' committed offsets as the checkpoint, taken at
        the deployment's config and answering every `/checkpoint` asked for so far."""
        assert deployment.config_id is not None
        offsets = {w.route_id: await w.offsets() for w in deployment.workers}
        number = pipeline.checkpoint_sequence_number
        head = Head(deployment.config_id, deployment.config_version, number)
        await asyncio.to_thread(self._checkpoints.record, pipeline.id, offsets, head)
        deployment.checkpointed = number
        log.info("Pipeline %s: checkpoint %s at %s", pipeline.name, offsets, head)

    async def _run(self, pipeline: Pipeline) -> Deployment:
        running = self.running.get(pipeline.id)
        # A deployment stopped without a failure runs again: the step it was stopped for
        # was refused (overtaken by a user action) and the pipeline is to run after all.
        if running is not None and (not running.stopping or running.error is not None):
            return running
        assert pipeline.deployment_id is not None  # Provisioning or Provisioned
        deployment = Deployment(pipeline.id, pipeline.deployment_id)
        self.running[pipeline.id] = deployment
        try:
            deployment.workers = await self._workers_of(pipeline, deployment)
        except _Unrunnable as why:
            log.error("Pipeline %s cannot run: %s", pipeline.name, why.error["message"])
            deployment.error = why.error
            return deployment
        deployment.tasks = [
            asyncio.create_task(worker.run(), name=f"pipeline-{pipeline.name}-{worker.route_id}")
            for worker in deployment.workers
        ]
        for task in deployment.tasks:
            task.add_done_callback(lambda _: self._wake_up(pipeline.id))
        deployment.watch = asyncio.create_task(self._wake_when_ready(deployment))
        log.info(
            "Started the route workers of pipeline %s (deployment %s): %s",
            pipeline.name,
            pipeline.deployment_id,
            [w.route_id for w in deployment.workers],
        )
        return deployment

    async def _workers_of(
        self, pipeline: Pipeline, deployment: Deployment
    ) -> list[PipelineRouteWorker]:
        """The deployment's route workers (not started), from the checkpoint; also notes
        on `deployment` the config they run and whether it changed since the checkpoint."""
        if pipeline.config_id is None:
            raise _Unrunnable(_config_error("the pipeline has no config", None))
        config = await asyncio.to_thread(self._reader.latest_config, pipeline.config_id)
        if config is None:
            raise _Unrunnable(
                _config_error("its config is not in the event store", pipeline.config_id)
            )
        report = config.validate(self._registry)
        if not report.is_valid:
            errors = "; ".join(f"{issue.code} {issue.message}" for issue in report.issues)
            raise _Unrunnable(
                _config_error(f"its config does not validate here: {errors}", config.id)
            )
        checkpoint = await asyncio.to_thread(self._checkpoints.of, pipeline.id)
        head = await asyncio.to_thread(self._checkpoints.head, pipeline.id)
        deployment.config_id, deployment.config_version = config.id, config.config_version
        deployment.checkpointed = 0 if head is None else head.sequence_number
        deployment.bootstrap = _approval_diff(head, config)
        try:
            return [
                PipelineRouteWorker(
                    self.settings,
                    pipeline.id,
                    deployment.deployment_id,
                    route_id,
                    route,
                    self.adapters,
                    self._producer,
                    self._ensure_topics,
                    start_offsets=checkpoint.get(route_id),
                )
                for route_id, route in config.parsed.routes.items()
            ]
        except ValueError as error:
            raise _Unrunnable(_config_error(str(error), config.id)) from error

    async def _wake_when_ready(self, deployment: Deployment) -> None:
        await asyncio.gather(*(w.ready.wait() for w in deployment.workers))
        self._wake_up(deployment.pipeline_id)


class _Unrunnable(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


def _config_error(why: str, config_id: UUID | None) -> dict[str, Any]:
    return {
        "message": f"The pipeline's routes cannot run: {why}",
        "error_code": "PipelineConfigUnrunnable",
        "details": {"config_id": None if config_id is None else str(config_id)},
    }


def _approval_diff(head: Head | None, config: Config) -> dict[str, Any] | None:
    """What changed between the checkpoint's config and `config` (None: nothing, or no
    checkpoint to bootstrap from)."""
    if head is None or (head.config_id, head.config_version) == (config.id, config.config_version):
        return None
    return {
        "checkpoint": {"config_id": str(head.config_id), "config_version": head.config_version},
        "current": {"config_id": str(config.id), "config_version": config.config_version},
    }


__all__ = ["Deployment", "Deployments"]
