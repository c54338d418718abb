"""The `reconciler` role (docs/reconciler.md): drives every pipeline toward its desired
status, one automaton step at a time, and runs the route workers of the pipelines it
provisions.

Every `reconciler_sweep_ms`, and at once when woken up (a Pipeline event on the events
topic, services.runtimes.reconciler.wake, or a worker ready or ended), it reads the pipelines not
at rest from the read model (plus those it runs workers for and those it was woken up
for), reads each again from the event store (the read model may
lag), decides (services.runtimes.reconciler.decide), carries the decision out on the workers and
sends the step as a `ReconcilePipeline` command on the version it read, with a derived id
(`reconcile_command_id`). It never waits for the step's result: a step the handler has
not applied yet is decided again on the same version by the next sweep — the same
command, answered from the command records — and a step overtaken by a user action is
refused as stale and decided afresh. So a lost message, a crash or a deadline never
strands a pipeline: the next sweep repairs it.

One reconciler runs at a time (the workers' consumers are assigned their partitions, not
balanced in a group): run a standby as a second process started only when the first is
gone (docs/reconciler.md, Running it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from aiokafka import AIOKafkaProducer
from eventsourcing.application import AggregateNotFoundError

from contracts.cloudevents import encode_command
from contracts.reconciler_commands import ReconcilePipeline, reconcile_command_id
from domain.config import Config
from domain.pipeline import Pipeline
from projections.store import ReadStore
from services.adapters.kafka.clients import make_producer, topic_creator
from services.runtimes.orchestrator.store_lookups import EventStoreReader
from services.runtimes.reconciler.checkpoints import Checkpoints, Head
from services.runtimes.reconciler.decide import Next, Seen, Workers, decide
from services.runtimes.reconciler.pipeline_worker import (
    PipelineRouteFailed,
    PipelineRouteWorker,
    route_failed,
)
from services.runtimes.reconciler.wake import WakeUps
from services.runtimes.routes.adapters import AdapterRuntime, load_adapter_registry
from services.settings import Settings

log = logging.getLogger(__name__)

ROLE: Final = "reconciler"
"""The role in step ids: the same for every instance, so two reconcilers deciding the same
step on the same version send one command."""


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

    async def stop(self) -> None:
        # Kept: a failure is decided on (begin_stopping with it) until the step is handled.
        self.error = self.failure()
        self.stopping = True
        if self.watch is not None:
            self.watch.cancel()
        for worker in self.workers:
            worker.request_stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class PipelineReader(EventStoreReader):
    """The event store's pipelines and configs (the orchestrator's reader, plus pipelines)."""

    def pipeline(self, pipeline_id: UUID) -> Pipeline | None:
        try:
            pipeline: Pipeline = self.store.repository.get(pipeline_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(pipeline, Pipeline) or pipeline.deleted:
            return None
        return pipeline

    def latest_config(self, config_id: UUID) -> Config | None:
        try:
            config: Config = self.store.repository.get(config_id)
        except AggregateNotFoundError:
            return None
        return config if isinstance(config, Config) else None


class Reconciler:
    """Usage: `await Reconciler(settings).run(stop, heartbeat)`; `sweep()` is one round."""

    def __init__(self, settings: Settings, *, adapters: AdapterRuntime | None = None) -> None:
        self.settings = settings
        self.sweep_s = settings.reconciler_sweep_ms / 1000
        self.provisioning_timeout_s = settings.reconciler_provisioning_timeout_s
        self.adapters = adapters if adapters is not None else load_adapter_registry()[1]
        self.registry = self.adapters.registry()
        self.deployments: dict[UUID, Deployment] = {}  # by pipeline id
        self.sweeps = 0
        # Wake-ups (services.runtimes.reconciler.wake, and the workers' own changes): the pipelines
        # to tend at once, and the event that ends the wait for the next sweep.
        self.woken: set[UUID] = set()
        self.wake = asyncio.Event()
        self._wake_ups: asyncio.Task[None] | None = None
        self._ensure_topics = topic_creator(settings)
        self._producer: AIOKafkaProducer | None = None
        self._read_store: ReadStore | None = None
        self._reader: PipelineReader | None = None
        self._checkpoints: Checkpoints | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, heartbeat: Callable[[], None] = lambda: None) -> None:
        await self.open()
        try:
            while not stop.is_set():
                heartbeat()
                try:
                    await self.sweep()
                except Exception:
                    log.exception("Reconciler sweep failed; trying again")
                await self.pause(stop)
        finally:
            await self.close()

    async def open(self) -> None:
        url = self.settings.event_store_url
        self._read_store = await asyncio.to_thread(ReadStore, url)
        self._reader = await asyncio.to_thread(PipelineReader, url)
        self._checkpoints = await asyncio.to_thread(Checkpoints, url)
        self._producer = make_producer(self.settings)
        await self._producer.start()
        self._wake_ups = asyncio.create_task(
            WakeUps(self.settings, self.wake_up).run(), name="reconciler-wake-ups"
        )
        log.info("Reconciler started")

    async def close(self) -> None:
        """Stop every worker (their batches finish and commit). The pipelines stay as the
        event store has them: a reconciler started later picks them up again."""
        if self._wake_ups is not None:
            self._wake_ups.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._wake_ups
        await asyncio.gather(*(d.stop() for d in self.deployments.values()))
        self.deployments.clear()
        if self._producer is not None:
            await self._producer.stop()
        for closable in (self._read_store, self._reader, self._checkpoints):
            if closable is not None:
                await asyncio.to_thread(closable.close)
        log.info("Reconciler stopped")

    # --- the sweep -----------------------------------------------------------------------

    def wake_up(self, pipeline_id: UUID) -> None:
        """Something happened to the pipeline: sweep now, and tend it even if the read
        model does not show it as not at rest yet (the projector may lag)."""
        self.woken.add(pipeline_id)
        self.wake.set()

    async def pause(self, stop: asyncio.Event) -> None:
        """Until the next sweep: the sweep interval, or less if woken up or stopped."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        try:
            await asyncio.wait(waits, timeout=self.sweep_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        # A wake-up arriving during the next sweep sets it again: the sweep after that
        # follows at once.
        self.wake.clear()

    async def sweep(self) -> None:
        read_store = self._read_store
        assert read_store is not None, "Reconciler.open() first"
        woken, self.woken = self.woken, set()
        rows = await asyncio.to_thread(read_store.pipelines_not_at_rest)
        ids = list(
            dict.fromkeys([*(UUID(row["id"]) for row in rows), *self.deployments, *sorted(woken)])
        )
        for pipeline_id in ids:
            try:
                await self.tend(pipeline_id)
            except Exception:
                log.exception("Reconciler could not tend pipeline %s", pipeline_id)
        self.sweeps += 1

    async def tend(self, pipeline_id: UUID) -> None:
        """One pipeline's next step, on a fresh read of the event store."""
        reader = self._reader
        assert reader is not None
        pipeline = await asyncio.to_thread(reader.pipeline, pipeline_id)
        if pipeline is None:
            # Deleted (its Deleted event woke this sweep, or it had workers): nothing of it
            # is kept. A re-created pipeline of the same name has a new id anyway.
            await self._stop_workers(pipeline_id)
            assert self._checkpoints is not None
            await asyncio.to_thread(self._checkpoints.forget, pipeline_id)
            return
        deployment = self.deployments.get(pipeline_id)
        if deployment is not None and deployment.deployment_id != pipeline.deployment_id:
            await self._stop_workers(pipeline_id)  # a deployment the pipeline has left
            deployment = None
        seen = (
            Seen()
            if deployment is None
            else Seen(
                ready=deployment.ready,
                failure=deployment.failure(),
                bootstrap=deployment.bootstrap,
                checkpointed=deployment.checkpointed,
            )
        )
        nxt = decide(pipeline, seen, _utcnow(), self.provisioning_timeout_s)
        await self._apply(pipeline, nxt.workers)
        if nxt.step is not None:
            await self._send(pipeline, nxt)

    # --- workers -------------------------------------------------------------------------

    async def _apply(self, pipeline: Pipeline, workers: Workers) -> None:
        match workers:
            case Workers.KEEP:
                return
            case Workers.STOP:
                deployment = self.deployments.get(pipeline.id)
                if deployment is not None and not deployment.stopping:
                    await deployment.stop()
            case Workers.RELEASE:
                await self._stop_workers(pipeline.id)
            case Workers.CLEAR:
                await self._stop_workers(pipeline.id)
                assert self._checkpoints is not None
                await asyncio.to_thread(self._checkpoints.forget, pipeline.id)
            case Workers.RUN:
                await self._run_workers(pipeline)
            case Workers.CONSUME | Workers.HOLD:
                deployment = await self._run_workers(pipeline)
                await deployment.consume(workers is Workers.CONSUME)
            case Workers.SUSPEND:
                deployment = await self._run_workers(pipeline)
                await deployment.consume(False)
                await self._checkpoint(pipeline, deployment)
            case Workers.CHECKPOINT:
                deployment = await self._run_workers(pipeline)
                consuming = any(w.consuming for w in deployment.workers)
                await deployment.consume(False)  # the batch in flight finishes and commits
                try:
                    await self._checkpoint(pipeline, deployment)
                finally:
                    if consuming:
                        await deployment.consume(True)

    async def _checkpoint(self, pipeline: Pipeline, deployment: Deployment) -> None:
        """Record the (not consuming) workers' committed offsets as the checkpoint, taken at
        the deployment's config and answering every `/checkpoint` asked for so far."""
        checkpoints = self._checkpoints
        assert checkpoints is not None and deployment.config_id is not None
        offsets = {w.route_id: await w.offsets() for w in deployment.workers}
        number = pipeline.checkpoint_sequence_number
        head = Head(deployment.config_id, deployment.config_version, number)
        await asyncio.to_thread(checkpoints.record, pipeline.id, offsets, head)
        deployment.checkpointed = number
        log.info("Pipeline %s: checkpoint %s at %s", pipeline.name, offsets, head)

    async def _run_workers(self, pipeline: Pipeline) -> Deployment:
        running = self.deployments.get(pipeline.id)
        # A deployment stopped without a failure runs again: the step it was stopped for
        # was refused (overtaken by a user action) and the pipeline is to run after all.
        if running is not None and (not running.stopping or running.error is not None):
            return running
        assert pipeline.deployment_id is not None  # Provisioning or Provisioned
        deployment = Deployment(pipeline.id, pipeline.deployment_id)
        self.deployments[pipeline.id] = deployment
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
        # A worker's readiness and its end publish nothing: they wake the sweep themselves.
        for task in deployment.tasks:
            task.add_done_callback(lambda _: self.wake_up(pipeline.id))
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
        reader, producer, checkpoints = self._reader, self._producer, self._checkpoints
        assert reader is not None and producer is not None and checkpoints is not None
        if pipeline.config_id is None:
            raise _Unrunnable(_config_error("the pipeline has no config", None))
        config = await asyncio.to_thread(reader.latest_config, pipeline.config_id)
        if config is None:
            raise _Unrunnable(
                _config_error("its config is not in the event store", pipeline.config_id)
            )
        report = config.validate(self.registry)
        if not report.is_valid:
            errors = "; ".join(f"{issue.code} {issue.message}" for issue in report.issues)
            raise _Unrunnable(
                _config_error(f"its config does not validate here: {errors}", config.id)
            )
        checkpoint = await asyncio.to_thread(checkpoints.of, pipeline.id)
        head = await asyncio.to_thread(checkpoints.head, pipeline.id)
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
                    producer,
                    self._ensure_topics,
                    start_offsets=checkpoint.get(route_id),
                )
                for route_id, route in config.parsed.routes.items()
            ]
        except ValueError as error:
            raise _Unrunnable(_config_error(str(error), config.id)) from error

    async def _wake_when_ready(self, deployment: Deployment) -> None:
        await asyncio.gather(*(w.ready.wait() for w in deployment.workers))
        self.wake_up(deployment.pipeline_id)

    async def _stop_workers(self, pipeline_id: UUID) -> None:
        deployment = self.deployments.pop(pipeline_id, None)
        if deployment is not None:
            await deployment.stop()
            log.info(
                "Stopped the route workers of pipeline %s (deployment %s)",
                pipeline_id,
                deployment.deployment_id,
            )

    # --- steps ---------------------------------------------------------------------------

    async def _send(self, pipeline: Pipeline, nxt: Next) -> None:
        assert nxt.step is not None
        command = ReconcilePipeline(
            pipeline_name=pipeline.name,
            pipeline_id=pipeline.id,
            step=nxt.step,
            expected_version=pipeline.version,
            at=_utcnow(),
            **nxt.data,
        )
        command_id = reconcile_command_id(ROLE, pipeline.id, pipeline.version, nxt.step)
        record = encode_command(command, command_id=str(command_id))
        producer = self._producer
        assert producer is not None
        await producer.send_and_wait(
            self.settings.topics.commands,
            value=record.value,
            key=record.key,
            headers=record.headers,
        )
        log.info("Pipeline %s: sent %s at version %s", pipeline.name, nxt.step, pipeline.version)


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


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def run_reconciler(
    settings: Settings, stop: asyncio.Event, heartbeat: Callable[[], None]
) -> None:
    """The `reconciler` role (services.entrypoints.roles)."""
    await Reconciler(settings).run(stop, heartbeat)


__all__ = ["ROLE", "Deployment", "PipelineReader", "Reconciler", "run_reconciler"]
