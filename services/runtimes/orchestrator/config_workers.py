"""The orchestrator's route workers, by config version (docs/orchestrator.md, step 2).

Workers are keyed by (config id, config version): an execution runs the adapters of the
version it was created with, in groups `{consumer_group}.route.{config_id}.v{version}.{route}`,
and a worker skips the executions of other versions reading the same topic. The sweep
`keep`s the workers of every version with live executions running (starting them again if
they stopped by themselves: their topics could not be created; a broker that is away is
retried by each worker's consumer engine), and
`retire_idle` stops those whose last live execution was seen
`orchestrator_worker_idle_s` ago. A version that does not validate against this
orchestrator's adapters (a plug-in was uninstalled) cannot run: `keep` says why, and the
role interrupts its executions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaProducer

from contracts.validation import Severity
from domain.config import Config
from services.adapters.kafka.clients import topic_creator
from services.runtimes.orchestrator.execution_info import ExecutionCallback
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.route_worker import RouteWorker
from services.runtimes.orchestrator.storage import MessageStorage
from services.runtimes.orchestrator.store_lookups import EventStoreReader, ExecutionInfos
from services.runtimes.routes.adapters import AdapterRuntime
from services.settings import Settings

log = logging.getLogger(__name__)

ConfigKey = tuple[UUID, int]
"""(config id, config version): the workers of one version of one config."""


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

    def log_failures(self, key: ConfigKey) -> None:
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("Route worker of %s failed", key, exc_info=task.exception())


@dataclass
class WorkerDeps:
    """What every route worker of the orchestrator shares (opened by the role)."""

    reader: EventStoreReader
    ledger: Ledger
    infos: ExecutionInfos
    producer: AIOKafkaProducer
    on_drained: ExecutionCallback
    on_failed: ExecutionCallback


class ConfigWorkerPool:
    """The running workers (`running`) and the versions that cannot run here
    (`unrunnable`: why)."""

    def __init__(
        self,
        settings: Settings,
        adapters: AdapterRuntime,
        storage: MessageStorage,
        deps: WorkerDeps,
    ) -> None:
        self.settings = settings
        self.adapters = adapters
        self.storage = storage
        self.deps = deps
        self.running: dict[ConfigKey, ConfigWorkers] = {}
        self.unrunnable: dict[ConfigKey, str] = {}
        self._registry = adapters.registry()
        self._ensure_topics = topic_creator(settings)
        self._consumer_options = consumer_options(settings)

    async def keep(self, key: ConfigKey, now: float) -> str | None:
        """The version has live executions: make sure its workers run. Returns why they
        cannot (None: they run, or its config could not be read this time)."""
        running = self.running.get(key)
        if running is not None:
            running.last_live = now
            if all(not task.done() for task in running.tasks):
                return None
            # A worker stopped by itself (its topics could not be created): start the
            # version's workers again.
            running.log_failures(key)
            await running.stop()
            del self.running[key]
        if key in self.unrunnable:
            return self.unrunnable[key]
        config = await asyncio.to_thread(self.deps.reader.config, *key)
        if config is None:
            log.error("Config %s version %s is not in the event store", *key)
            return None
        report = config.validate(self._registry)
        if not report.is_valid:
            errors = "; ".join(
                f"{issue.code} {issue.message}"
                for issue in report.issues
                if issue.severity is Severity.ERROR
            )
            why = self.unrunnable[key] = (
                f"config {key[0]} version {key[1]} does not validate against this "
                f"orchestrator's adapters: {errors}"
            )
            log.error("%s: its executions are interrupted", why)
            return why
        self.running[key] = self._start(key, config, now)
        return None

    def _start(self, key: ConfigKey, config: Config, now: float) -> ConfigWorkers:
        deps = self.deps
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
                deps.ledger,
                self.storage,
                deps.infos,
                deps.on_drained,
                deps.on_failed,
                deps.producer,
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

    async def retire_idle(self, live: set[ConfigKey], now: float) -> None:
        """Stop the workers of versions without live executions for the idle time."""
        idle_s = self.settings.orchestrator_worker_idle_s
        idle = [
            key
            for key, group in self.running.items()
            if key not in live and now - group.last_live >= idle_s
        ]
        for key in idle:
            await self.running.pop(key).stop()
            log.info("Stopped the idle route workers of config %s version %s", *key)

    async def stop(self) -> None:
        """Stop every worker (each finishes and commits its batch)."""
        await asyncio.gather(*(group.stop() for group in self.running.values()))
        self.running.clear()


__all__ = ["ConfigKey", "ConfigWorkerPool", "ConfigWorkers", "WorkerDeps", "consumer_options"]
