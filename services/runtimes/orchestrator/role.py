"""The `orchestrator` role: runs the route workers of every config with live executions,
and tells the command handler what becomes of those executions (docs/orchestrator.md).

One instance has a unique id (its heartbeat row), one producer (route messages and
commands), the ledger and the message storage, the adapter runtime (built-ins and
entry-point plug-ins) and a reader of the event store. Every
`PIPELINES_ORCHESTRATOR_SWEEP_MS` it sweeps:

1. beat its heartbeat (capacity `PIPELINES_ORCHESTRATOR_CAPACITY`): the RunConfig gate
   counts it alive;
2. read the live config executions from the read model, and for each (config, config
   version) among them make sure a route worker runs for every route of the config at that
   version. Workers are keyed by (config id, config version): an execution runs the
   adapters of the version it was created with, in groups
   `{consumer_group}.route.{config_id}.v{version}.{route}`, and a worker skips the
   executions of other versions reading the same topic. A config version whose last live
   execution finished `PIPELINES_ORCHESTRATOR_WORKER_IDLE_S` ago has its workers stopped.
   A config version that no longer validates against this orchestrator's adapters (a
   plug-in was uninstalled) cannot run: its executions are `interrupt`ed;
3. per live execution, in this order: past its deadline -> `time_out`; pending -> `start`;
   the ledger shows a dead-lettered message -> fail; the ledger has drained -> complete;
   else report each route's progress that moved since the last report.

Route workers also call `on_drained` / `on_failed` as soon as a batch finishes an
execution, so an execution ends without waiting for the sweep; the sweep finishes what a
callback could not (a decision refused as stale, a crash in between). Finishing is the
routes' final reports, then the decision, on the version read from the event store
(services.runtimes.orchestrator.stage_reports). Every command id is derived from its content, so
repeats and two orchestrators deciding the same thing are one command; nothing here waits
for the results (the handler answers; a refused decision is retried by the next sweep on
a fresh read).

A graceful stop stops the workers (each finishes and commits its batch) and deletes the
heartbeat, so the gate stops counting this instance at once; a killed instance stops
counting after `PIPELINES_ORCHESTRATOR_LIVENESS_S`, and its uncommitted messages go to
the group's other members (or to itself on restart): executions resume, never
`interrupted` by a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaProducer

from contracts.cloudevents import encode_command
from contracts.orchestrator_commands import ExecutionDecision
from contracts.validation import Severity
from domain.config import Config
from domain.execution import Execution
from projections.rows import Row
from projections.store import ReadStore
from projections.times import parse
from services.adapters.kafka.clients import make_producer, topic_creator
from services.runtimes.orchestrator.ledger import ExecutionProgress, Ledger, RouteProgress
from services.runtimes.orchestrator.liveness import Heartbeats
from services.runtimes.orchestrator.route_worker import RouteWorker
from services.runtimes.orchestrator.stage_reports import (
    Outgoing,
    decision,
    finishing,
    progress_reports,
)
from services.runtimes.orchestrator.storage import MessageStorage
from services.runtimes.orchestrator.store_lookups import EventStoreReader, ExecutionInfos, info_of
from services.runtimes.routes.adapters import AdapterRuntime, load_adapter_registry
from services.settings import Settings

log = logging.getLogger(__name__)

ConfigKey = tuple[UUID, int]
"""(config id, config version): the workers of one version of one config."""


def new_instance_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}"


def consumer_options(settings: Settings) -> dict[str, Any]:
    """The route workers' group session (`orchestrator_session_timeout_ms`), heartbeating
    often enough for it."""
    session = settings.orchestrator_session_timeout_ms
    return {"session_timeout_ms": session, "heartbeat_interval_ms": max(100, session // 6)}


@dataclass
class ConfigWorkers:
    """The running route workers of one config version."""

    workers: list[RouteWorker]
    tasks: list[asyncio.Task[None]]
    last_live: float  # loop time the sweep last saw a live execution of it

    async def stop(self) -> None:
        await asyncio.gather(*(worker.stop() for worker in self.workers), return_exceptions=True)
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class _Reported:
    """Per live execution: each route's counts last reported."""

    routes: dict[str, RouteProgress] = field(default_factory=dict)


class Orchestrator:
    """Usage: `await Orchestrator(settings).run(stop, heartbeat)`; `sweep()` is one round."""

    def __init__(
        self,
        settings: Settings,
        *,
        instance_id: str | None = None,
        adapters: AdapterRuntime | None = None,
    ) -> None:
        self.settings = settings
        self.instance_id = instance_id or new_instance_id()
        self.sweep_s = settings.orchestrator_sweep_ms / 1000
        self.adapters = adapters if adapters is not None else load_adapter_registry()[1]
        self.registry = self.adapters.registry()
        self.storage = MessageStorage(settings.execution_storage_dir)
        self.workers: dict[ConfigKey, ConfigWorkers] = {}
        self.sweeps = 0
        self._unrunnable: dict[ConfigKey, str] = {}  # config version -> why it cannot run
        self._reported: dict[UUID, _Reported] = {}
        self._locks: dict[UUID, asyncio.Lock] = {}
        self._ensure_topics = topic_creator(settings)
        self._consumer_options = consumer_options(settings)
        # Opened by `open()`.
        self._producer: AIOKafkaProducer | None = None
        self._ledger: Ledger | None = None
        self._heartbeats: Heartbeats | None = None
        self._read_store: ReadStore | None = None
        self._reader: EventStoreReader | None = None
        self._infos: ExecutionInfos | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, heartbeat: Callable[[], None] = lambda: None) -> None:
        """Sweep every `orchestrator_sweep_ms` until `stop` is set, then stop gracefully."""
        await self.open()
        try:
            while not stop.is_set():
                heartbeat()
                try:
                    await self.sweep()
                except Exception:
                    # The database or the broker is away: the heartbeat is not beaten either,
                    # so the gate stops admitting executions until the next sweep works.
                    log.exception("Orchestrator sweep failed; trying again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.sweep_s)
        finally:
            await self.close()

    async def open(self) -> None:
        url = self.settings.event_store_url
        self._ledger = await asyncio.to_thread(Ledger, url)
        self._heartbeats = await asyncio.to_thread(Heartbeats, url)
        self._read_store = await asyncio.to_thread(ReadStore, url)
        self._reader = await asyncio.to_thread(EventStoreReader, url)
        self._infos = ExecutionInfos(self._reader, self.sweep_s)
        self._producer = make_producer(self.settings)
        await self._producer.start()
        log.info("Orchestrator %s started", self.instance_id)

    async def close(self) -> None:
        """Stop the workers (each commits its batch), then say goodbye to the gate."""
        await asyncio.gather(*(group.stop() for group in self.workers.values()))
        self.workers.clear()
        if self._heartbeats is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._heartbeats.forget, self.instance_id)
        if self._producer is not None:
            await self._producer.stop()
        for closable in (self._heartbeats, self._ledger, self._read_store, self._reader):
            if closable is not None:
                await asyncio.to_thread(closable.close)
        log.info("Orchestrator %s stopped", self.instance_id)

    # --- the sweep -----------------------------------------------------------------------

    async def sweep(self) -> None:
        heartbeats, read_store, ledger = self._opened()
        await asyncio.to_thread(
            heartbeats.beat, self.instance_id, self.settings.orchestrator_capacity
        )
        rows = await asyncio.to_thread(read_store.live_config_executions)
        now = asyncio.get_running_loop().time()
        live: dict[ConfigKey, list[Row]] = {}
        for row in rows:
            live.setdefault((UUID(row["config_id"]), int(row["config_version"])), []).append(row)
        for key, executions in live.items():
            await self._keep_workers(key, executions, now)
        await self._retire_idle(set(live), now)
        ids = [UUID(row["id"]) for row in rows]
        progress = await asyncio.to_thread(ledger.progress, ids)
        for key, executions in live.items():
            if key in self._unrunnable:
                continue
            for row in executions:
                execution_id = UUID(row["id"])
                try:
                    await self._tend(row, progress.get(execution_id) or ExecutionProgress.empty())
                except Exception:
                    log.exception("Orchestrator could not tend execution %s", execution_id)
        self._forget(set(ids))
        self.sweeps += 1

    async def _tend(self, row: Row, progress: ExecutionProgress) -> None:
        """One live execution's next step (the read model's view; decisions re-read the
        event store)."""
        execution_id = UUID(row["id"])
        if _utcnow() >= parse(row["deadline"]):
            await self._decide(execution_id, ExecutionDecision.TIME_OUT, "past its deadline")
        elif row["status"] == "pending":
            await self._decide(execution_id, ExecutionDecision.START)
        elif progress.failed:
            await self.finish(execution_id, ExecutionDecision.FAIL)
        elif progress.drained:
            await self.finish(execution_id, ExecutionDecision.COMPLETE)
        else:
            await self._report_progress(execution_id, progress)

    # --- workers -------------------------------------------------------------------------

    async def _keep_workers(self, key: ConfigKey, executions: Sequence[Row], now: float) -> None:
        running = self.workers.get(key)
        if running is not None:
            running.last_live = now
            if all(not task.done() for task in running.tasks):
                return
            # A worker stopped by itself (it could not start: the broker is away): start
            # the config version's workers again.
            for task in running.tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("Route worker of %s failed", key, exc_info=task.exception())
            await running.stop()
            del self.workers[key]
        if key in self._unrunnable:
            await self._interrupt(executions, self._unrunnable[key])
            return
        reader = self._reader
        assert reader is not None
        config = await asyncio.to_thread(reader.config, *key)
        if config is None:
            log.error("Config %s version %s is not in the event store", *key)
            return
        report = config.validate(self.registry)
        if not report.is_valid:
            errors = "; ".join(
                f"{issue.code} {issue.message}"
                for issue in report.issues
                if issue.severity is Severity.ERROR
            )
            self._unrunnable[key] = (
                f"config {key[0]} version {key[1]} does not validate against this "
                f"orchestrator's adapters: {errors}"
            )
            log.error("%s: its executions are interrupted", self._unrunnable[key])
            await self._interrupt(executions, self._unrunnable[key])
            return
        self.workers[key] = self._start_workers(key, config, now)

    def _start_workers(self, key: ConfigKey, config: Config, now: float) -> ConfigWorkers:
        ledger, infos, producer = self._ledger, self._infos, self._producer
        assert ledger is not None and infos is not None and producer is not None
        routes = config.parsed.routes
        consumers_of: dict[str, list[str]] = {}
        for route_id, route in routes.items():
            consumers_of.setdefault(route.inbound.topic, []).append(route_id)
        workers = [
            RouteWorker(
                self.settings,
                key[0],
                route_id,
                route,
                consumers_of,
                self.adapters,
                ledger,
                self.storage,
                infos,
                self.on_drained,
                self.on_failed,
                producer,
                ensure_topics=self._ensure_topics,
                consumer_options=self._consumer_options,
                config_version=key[1],
            )
            for route_id, route in routes.items()
        ]
        tasks = [
            asyncio.create_task(worker.run(), name=f"route-{key[0]}-v{key[1]}-{worker.route_id}")
            for worker in workers
        ]
        log.info("Started route workers of config %s version %s: %s", *key, list(routes))
        return ConfigWorkers(workers, tasks, now)

    async def _retire_idle(self, live: set[ConfigKey], now: float) -> None:
        idle_s = self.settings.orchestrator_worker_idle_s
        idle = [
            key
            for key, group in self.workers.items()
            if key not in live and now - group.last_live >= idle_s
        ]
        for key in idle:
            group = self.workers.pop(key)
            await group.stop()
            log.info("Stopped the idle route workers of config %s version %s", *key)

    # --- what becomes of an execution ----------------------------------------------------

    async def on_drained(self, execution_id: UUID) -> None:
        """A route worker saw the execution's ledger drain."""
        await self.finish(execution_id, ExecutionDecision.COMPLETE)

    async def on_failed(self, execution_id: UUID) -> None:
        """A route worker dead-lettered one of the execution's messages."""
        await self.finish(execution_id, ExecutionDecision.FAIL)

    async def finish(self, execution_id: UUID, chosen: ExecutionDecision) -> None:
        """Final stage reports, then `chosen` (complete or fail), on a fresh read of the
        execution and its ledger; nothing if it has finished already."""
        async with self._lock(execution_id):
            execution = await self._load(execution_id)
            if execution is None or execution.is_terminal:
                return
            ledger = self._ledger
            assert ledger is not None
            found = await asyncio.to_thread(ledger.progress, [execution_id])
            progress = found[execution_id]
            if chosen is ExecutionDecision.COMPLETE and not progress.drained:
                return  # told by a worker that read an older ledger
            reason = _failure_reason(progress) if chosen is ExecutionDecision.FAIL else None
            await self._send(finishing(execution, progress, chosen, _utcnow(), reason))

    async def _decide(
        self, execution_id: UUID, chosen: ExecutionDecision, reason: str | None = None
    ) -> None:
        async with self._lock(execution_id):
            execution = await self._load(execution_id)
            if execution is None or execution.is_terminal:
                return
            if chosen is ExecutionDecision.START and str(execution.status) != "pending":
                return
            await self._send([decision(execution, chosen, _utcnow(), reason)])

    async def _interrupt(self, executions: Iterable[Row], reason: str) -> None:
        for row in executions:
            await self._decide(UUID(row["id"]), ExecutionDecision.INTERRUPT, reason)

    async def _report_progress(self, execution_id: UUID, progress: ExecutionProgress) -> None:
        reported = self._reported.setdefault(execution_id, _Reported())
        reports = progress_reports(execution_id, progress, reported.routes, _utcnow())
        if not reports:
            return
        async with self._lock(execution_id):
            await self._send(reports)
        for outgoing in reports:
            command = outgoing.command
            route = getattr(command, "route", None)
            if route is not None:
                reported.routes[route] = progress.of(route)

    async def _load(self, execution_id: UUID) -> Execution | None:
        reader, infos = self._reader, self._infos
        assert reader is not None and infos is not None
        execution = await asyncio.to_thread(reader.execution, execution_id)
        if execution is not None:
            infos.remember(info_of(execution))
        return execution

    async def _send(self, commands: Sequence[Outgoing]) -> None:
        """Send in order (one execution's commands share a key, so a partition) and wait
        for every acknowledgement."""
        producer = self._producer
        assert producer is not None
        topic = self.settings.topics.commands
        deliveries = []
        for outgoing in commands:
            record = encode_command(outgoing.command, command_id=str(outgoing.command_id))
            deliveries.append(
                await producer.send(
                    topic, value=record.value, key=record.key, headers=record.headers
                )
            )
            log.debug("Sent %s %s", type(outgoing.command).__name__, outgoing.command_id)
        await asyncio.gather(*deliveries)

    # --- bookkeeping ---------------------------------------------------------------------

    def _lock(self, execution_id: UUID) -> asyncio.Lock:
        return self._locks.setdefault(execution_id, asyncio.Lock())

    def _forget(self, live: set[UUID]) -> None:
        for execution_id in [e for e in self._reported if e not in live]:
            del self._reported[execution_id]
        for execution_id, lock in list(self._locks.items()):
            if execution_id not in live and not lock.locked():
                del self._locks[execution_id]
        if self._infos is not None:
            self._infos.forget_live(live)

    def _opened(self) -> tuple[Heartbeats, ReadStore, Ledger]:
        if self._heartbeats is None or self._read_store is None or self._ledger is None:
            raise RuntimeError("Orchestrator.open() first")
        return self._heartbeats, self._read_store, self._ledger


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _failure_reason(progress: ExecutionProgress) -> str:
    failed: Mapping[str, int] = {
        route: counts.messages_failed
        for route, counts in progress.routes.items()
        if counts.messages_failed
    }
    listed = ", ".join(f"{route} ({count})" for route, count in failed.items())
    return f"route(s) dead-lettered messages: {listed}"


async def run_orchestrator(
    settings: Settings, stop: asyncio.Event, heartbeat: Callable[[], None]
) -> None:
    """The `orchestrator` role (services.entrypoints.roles)."""
    await Orchestrator(settings).run(stop, heartbeat)


__all__ = ["ConfigWorkers", "Orchestrator", "consumer_options", "run_orchestrator"]
