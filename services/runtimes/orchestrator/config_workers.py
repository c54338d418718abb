"""The orchestrator's routes, by config version, on its one route consumer
(docs/orchestrator.md, steps 3 and 4).

Routes are keyed by (config id, config version): an execution runs the adapters of the
version it was created with, and a route's handler skips the executions of other versions
reading the same topic. The pool holds one `RouteHandler` per route of every version it
runs, and keeps the route consumer (services.runtimes.orchestrator.route_consumer)
subscribed to the inbound topics of them all:

- the sweep `keep`s the current version of every config (so a config's topics are read
  from when the config is seen, never joined when it runs) and every version with live
  executions; `retire_idle` drops the other versions' handlers once no live execution of
  theirs was seen for `orchestrator_worker_idle_s` (handlers are objects, not consumers:
  this only keeps the table small);
- a record whose execution runs a version the pool has no handlers for (an update the
  sweep has not seen yet, a retired version that got a late message) gets them before
  its share is dispatched, so every record reaches the handlers of its version before
  its offset is committed (one group offset per partition, shared by every route
  reading the topic);
- a version whose routes' topics could not be created yet, or whose config could not be
  read, fails the share (it runs again after a backoff): nothing is committed past a
  record no handler saw.

A version that does not validate against this orchestrator's adapters (a plug-in was
uninstalled) cannot run: `keep` says why, and the role interrupts its executions.
`dispatch` also tells the role about pending executions it sees (`on_seen`): a run's init
message is how an orchestrator first hears of it, in any process, with no sweep between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from aiokafka import AIOKafkaProducer, TopicPartition

from contracts.validation import Severity
from domain.config import Config
from projections.config_queries import LIVE as LIVE_CONFIG
from projections.rows import load
from projections.schema import CONFIGS
from projections.store import ReadStore
from services.adapters.kafka.batch import AfterCommit, Batch, Record
from services.adapters.kafka.clients import topic_creator
from services.adapters.message_store import MessageStore
from services.runtimes.orchestrator.execution_info import ExecutionCallback
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.route_batch import execution_id_of
from services.runtimes.orchestrator.route_consumer import RouteConsumer
from services.runtimes.orchestrator.route_worker import RouteHandler
from services.runtimes.orchestrator.store_lookups import EventStoreReader, ExecutionInfos
from services.runtimes.routes.adapters import AdapterRuntime
from services.settings import Settings

log = logging.getLogger(__name__)

ConfigKey = tuple[UUID, int]
"""(config id, config version): the routes of one version of one config."""


async def _in_chunks(handler: RouteHandler, share: Batch) -> list[AfterCommit]:
    """The share in the route's own batches (`inbound.prefetch * inbound.concurrency`
    records), one after another, as its worker would have fetched them."""
    size = handler.route.inbound.prefetch * handler.route.inbound.concurrency
    afters = []
    for chunk in chunks(share, size):
        afters.append(await handler.handle(chunk))
    return afters


def chunks(batch: Batch, size: int) -> list[Batch]:
    """`batch` cut into batches of at most `size` records, in its order."""
    found: list[Batch] = []
    current: dict[TopicPartition, list[Record]] = {}
    count = 0
    for tp, records in batch.partitions.items():
        for record in records:
            if count == size:
                found.append(Batch(current))
                current, count = {}, 0
            current.setdefault(tp, []).append(record)
            count += 1
    if current:
        found.append(Batch(current))
    return found


def current_config_versions(read_store: ReadStore) -> set[ConfigKey]:
    """Every live config's latest version, as the configs read model has it (synchronous):
    a deleted config's routes go once its last execution has been idle long enough."""
    rows = read_store.db.query(f"SELECT doc FROM {CONFIGS.physical()} WHERE {LIVE_CONFIG}")
    docs = [load(row[0]) for row in rows]
    return {(UUID(str(doc["id"])), int(doc["version"])) for doc in docs}


class ConfigUnavailable(Exception):
    """A version's routes cannot be set up now (its config unreadable, its topics not
    created): the share that needs them runs again later."""


@dataclass
class ConfigWorkers:
    """The route handlers of one config version."""

    workers: list[RouteHandler]
    last_live: float  # loop time a live execution of it was last seen
    topics: set[str] = field(default_factory=set)  # inbound topics

    @property
    def by_route(self) -> dict[str, RouteHandler]:
        return {worker.route_id: worker for worker in self.workers}


@dataclass
class WorkerDeps:
    """What every route handler of the orchestrator shares (opened by the role)."""

    reader: EventStoreReader
    ledger: Ledger
    infos: ExecutionInfos
    producer: AIOKafkaProducer
    on_drained: ExecutionCallback
    on_failed: ExecutionCallback
    on_seen: ExecutionCallback  # a pending execution's message arrived


class ConfigWorkerPool:
    """The versions it runs (`running`), those that cannot run here (`unrunnable`: why),
    and the route consumer reading them (`consumer`; the role starts and stops it)."""

    def __init__(
        self,
        settings: Settings,
        adapters: AdapterRuntime,
        storage: MessageStore,
        deps: WorkerDeps,
    ) -> None:
        self.settings = settings
        self.adapters = adapters
        self.storage = storage
        self.deps = deps
        self.running: dict[ConfigKey, ConfigWorkers] = {}
        self.unrunnable: dict[ConfigKey, str] = {}
        self.consumer = RouteConsumer(settings, self.dispatch)
        self._registry = adapters.registry()
        self._ensure_topics = topic_creator(settings)
        self._starting: dict[ConfigKey, asyncio.Task[ConfigWorkers | None]] = {}

    # --- which versions run --------------------------------------------------------------

    async def keep(self, key: ConfigKey, now: float) -> str | None:
        """The version must run (current, or live executions): make sure its handlers
        exist. Returns why they cannot (None: they do, or its config could not be read or
        its topics created this time: logged, tried again by the next call)."""
        try:
            await self._ensure(key, now)
        except ConfigUnavailable as why:
            log.error("%s", why)
        return self.unrunnable.get(key)

    async def retire_idle(self, keep: set[ConfigKey], now: float) -> None:
        """Drop the handlers of versions not in `keep` (current or live) for the idle time."""
        idle_s = self.settings.orchestrator_worker_idle_s
        for key in [
            k
            for k, group in self.running.items()
            if k not in keep and now - group.last_live >= idle_s
        ]:
            del self.running[key]
            log.info("Retired the idle routes of config %s version %s", *key)
        self.subscribe()

    def subscribe(self) -> None:
        """The route consumer reads the inbound topics of every version the pool runs."""
        self.consumer.subscribe([t for group in self.running.values() for t in group.topics])

    async def _ensure(self, key: ConfigKey, now: float) -> ConfigWorkers | None:
        running = self.running.get(key)
        if running is not None:
            running.last_live = now
            return running
        if key in self.unrunnable:
            return None
        # One set-up per version, however many shares and sweeps ask at once.
        task = self._starting.get(key)
        if task is None:
            task = self._starting[key] = asyncio.create_task(self._set_up(key, now))
            task.add_done_callback(lambda _: self._starting.pop(key, None))
        return await asyncio.shield(task)

    async def _set_up(self, key: ConfigKey, now: float) -> ConfigWorkers | None:
        config = await asyncio.to_thread(self.deps.reader.config, *key)
        if config is None:
            raise ConfigUnavailable(f"Config {key[0]} version {key[1]} is not in the event store")
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
            return None
        group = self._handlers(key, config, now)
        try:
            # Before the consumer subscribes: a topic created after a subscription is
            # only seen at the next metadata refresh (minutes).
            await asyncio.gather(*(worker.create_topics() for worker in group.workers))
        except Exception as error:
            raise ConfigUnavailable(
                f"The topics of config {key[0]} version {key[1]} could not be created: {error!r}"
            ) from error
        self.running[key] = group
        self.subscribe()
        log.info("Running the routes of config %s version %s: %s", *key, list(group.by_route))
        return group

    def _handlers(self, key: ConfigKey, config: Config, now: float) -> ConfigWorkers:
        deps = self.deps
        routes = config.parsed.routes
        consumers_of: dict[str, list[str]] = {}
        for route_id, route in routes.items():
            consumers_of.setdefault(route.inbound.topic, []).append(route_id)
        workers = [
            RouteHandler(
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
                config_version=key[1],
                stopping=self.consumer.stopping,
            )
            for route_id, route in routes.items()
        ]
        return ConfigWorkers(workers, now, set(consumers_of))

    # --- the route consumer's dispatch ---------------------------------------------------

    async def dispatch(self, topic: str, share: Batch) -> AfterCommit | None:
        """Every route reading `topic` runs the share (at once: they are different routes);
        the share's offsets are committed once all of them returned."""
        unknown = await self._versions_of(share.records)
        handlers = self._reading(topic)
        results = await asyncio.gather(
            *(_in_chunks(handler, share) for handler in handlers), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result  # every handler has finished: the share runs again whole
        if await self._versions_of_known(unknown):
            # An execution unknown at first became known while its handlers waited, of a
            # version that was not running: run the share again with that version's routes
            # (the others skip what they did already).
            raise ConfigUnavailable("a version to run turned up during the batch")
        afters = [a for r in results if not isinstance(r, BaseException) for a in r]

        def after_all() -> None:
            for handler in handlers:
                handler.stats.batches += 1
                handler.stats.records += len(share)
            for after in afters:
                after()

        return after_all

    def _reading(self, topic: str) -> list[RouteHandler]:
        return [
            worker
            for group in self.running.values()
            if topic in group.topics
            for worker in group.workers
            if worker.inbound_topic == topic
        ]

    async def _versions_of(self, records: Sequence[Record]) -> set[UUID]:
        """Set up the versions of the share's live executions and tell the role about the
        pending ones (the lookup is the handlers' cache: they ask it again for free).
        Returns the executions not known."""
        ids = {e for e in map(execution_id_of, records) if e is not None}
        now = asyncio.get_running_loop().time()
        unknown: set[UUID] = set()
        for execution_id in sorted(ids):
            info = await self.deps.infos(execution_id)
            if info is None:
                unknown.add(execution_id)
            elif not info.finished and info.config_version is not None:
                await self._ensure((info.config_id, info.config_version), now)
                if info.status == "pending":
                    await self.deps.on_seen(execution_id)
        return unknown

    async def _versions_of_known(self, ids: Iterable[UUID]) -> bool:
        """Whether one of `ids` is known by now and runs a version not running before."""
        new = False
        for execution_id in ids:
            info = await self.deps.infos(execution_id)
            if info is None or info.finished or info.config_version is None:
                continue
            key = (info.config_id, info.config_version)
            if key not in self.running and key not in self.unrunnable:
                await self._ensure(key, asyncio.get_running_loop().time())
                new = True
        return new

    async def stop(self) -> None:
        """Stop the route consumer (the shares in flight finish and commit)."""
        await self.consumer.stop()


__all__ = [
    "ConfigKey",
    "ConfigUnavailable",
    "ConfigWorkerPool",
    "ConfigWorkers",
    "WorkerDeps",
    "current_config_versions",
]
