"""The orchestrator's one route consumer: a single member of the group
`{consumer_group}.routes` reading the inbound topics of every route it runs
(docs/orchestrator.md, "One route consumer").

Why one: a consumer-group join costs seconds on the embedded broker (about half the
session), so a group per route joined when a run first needs it made the first run of a
config, and every run after its workers idled, wait for joins. This consumer joins once,
at start-up, for every config known then; a new config changes its subscription when the
orchestrator sees the config (one rejoin), never when it runs. Idle configs cost no
consumer and no fetches.

It runs on the batch-consumer engine (services.adapters.kafka.engine) for fetching, group
membership and rebalances, but does its own committing (`commit=False`), per share, so
that one slow route does not hold the others: each batch is split by topic
(`Batch.of_topic`), and each topic's share runs in a task of its own (`dispatch`, the
route pool's: every route reading the topic). While a share runs, its partitions are
paused, so the consumer keeps fetching the other partitions (other routes, other
executions' keys) and no partition ever has two shares in flight: a partition's records
are handled in offset order, one share at a time, as a route worker's were. A share's
offsets are committed once its dispatch returned (effects durable first), then its
partitions resume. A share that fails is rewound to its first offsets and its partitions
stay paused for a doubling backoff (per topic) before they are fetched again; `PutBack`
(a stop while a route waits for an unknown execution) rewinds without a failure.

A rebalance (revoke) waits for the shares in flight to finish and commit (one in its
backoff is cut short: it rewound already), as the engine waits for its batch; `stop()`
stops fetching, lets the shares in flight finish and commit, then leaves the group.

The consumer keeps polling while its shares work, so a slow share never exceeds
`max_poll_interval_ms`; the group session is `orchestrator_session_timeout_ms`, and
aiokafka's heartbeat is a task of the event loop beating every `heartbeat_interval_ms`
(a third of the session) on the coordinator's own connection: what keeps it beating is
that nothing here blocks the loop (database, storage and event-store work runs in
threads, adapters are coroutines).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from services.adapters.kafka import engine as kafka_engine
from services.adapters.kafka.clients import session_options
from services.adapters.kafka.engine import (
    INITIAL_BACKOFF_S,
    MAX_BACKOFF_S,
    AfterCommit,
    Batch,
    ConsumerEngine,
    EngineStats,
    Membership,
    PutBack,
)
from services.adapters.kafka.retry import Retry, rewind
from services.observability import collectors
from services.settings import Settings

log = logging.getLogger(__name__)

Dispatch = Callable[[str, Batch], Awaitable[AfterCommit | None]]
"""Runs one topic's share of a batch (every route reading the topic); raises to rewind it."""

BATCH_MAX = 500
BATCH_WAIT_MS = 200


def routes_group_id(settings: Settings) -> str:
    return f"{settings.consumer_group}.routes"


def consumer_options(settings: Settings) -> dict[str, Any]:
    """The group session (`orchestrator_session_timeout_ms`), heartbeating three times in it."""
    return dict(session_options(settings.orchestrator_session_timeout_ms))


class RouteConsumer:
    """Usage: `subscribe(topics)` (at least one before anything is read), `task =
    asyncio.create_task(consumer.run())`, `await consumer.stop()`."""

    def __init__(
        self,
        settings: Settings,
        dispatch: Dispatch,
        *,
        batch_max: int = BATCH_MAX,
        batch_wait_ms: int = BATCH_WAIT_MS,
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        consumer_options_: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.dispatch = dispatch
        self.group_id = routes_group_id(settings)
        self.stats = EngineStats()  # shares: handled and committed, rewound, put back
        self.fetches = EngineStats()  # the engine's: batches fetched (and split)
        self.engine = ConsumerEngine(
            settings,
            name="route consumer",
            topics=[],
            handle=self._handle,
            group_id=self.group_id,
            membership=Membership.GROUP,
            batch_max=batch_max,
            batch_wait_ms=batch_wait_ms,
            commit=False,  # each share commits its own offsets (see the module docstring)
            on_revoked=self._revoked,
            initial_backoff_s=initial_backoff_s,
            max_backoff_s=max_backoff_s,
            consumer_options=consumer_options_ or consumer_options(settings),
            stats=self.fetches,
        )
        collectors.track(self.engine)  # its counters and lag, at scrape time
        self.stopping = asyncio.Event()  # the routes' waits for unknown executions end
        self._backoffs = (initial_backoff_s, max_backoff_s)
        self._retries: dict[str, Retry] = {}
        self._shares: dict[asyncio.Task[None], set[TopicPartition]] = {}
        self._backing_off: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()
        self._run: asyncio.Task[None] | None = None

    @property
    def topics(self) -> list[str]:
        return list(self.engine.topics)

    @property
    def assignment(self) -> set[TopicPartition]:
        consumer = self.engine.consumer
        return set() if consumer is None else set(consumer.assignment())

    @property
    def in_flight(self) -> int:
        return len(self._shares)

    def subscribe(self, topics: Sequence[str]) -> None:
        """Read `topics` from now on (a change rejoins the group; the same set does
        nothing). An empty set keeps the last one: a consumer never subscribes to none."""
        wanted = sorted(set(topics))
        if not wanted or wanted == sorted(self.engine.topics):
            return
        self.engine.topics = wanted  # what a (re)started consumer subscribes to
        consumer = self.engine.consumer
        if consumer is not None:
            # The engine's own listener, so its rebalance hooks and lock still apply.
            consumer.subscribe(wanted, listener=kafka_engine._Listener(self.engine))
        log.info("Route consumer subscribed to %s", wanted)
        self._subscribed.set()

    async def run(self) -> None:
        """Fetch and dispatch until `stop()`; waits for a first subscription."""
        await self._subscribed.wait()
        await self.engine.run()

    def start(self) -> asyncio.Task[None]:
        self._run = asyncio.create_task(self.run(), name="route-consumer")
        return self._run

    async def stop(self) -> None:
        """No more fetches; the shares in flight finish and commit; then leave the group."""
        self.stopping.set()
        await self.engine.pause()
        await self._drain(self._shares)
        self.engine.request_stop()
        self._subscribed.set()  # a consumer never subscribed ends at once
        if self._run is not None:
            await asyncio.gather(self._run, return_exceptions=True)
        else:
            await self.engine.stop()

    # --- the engine's handler: start every topic's share ---------------------------------

    async def _handle(self, batch: Batch) -> None:
        consumer = self.engine.consumer
        assert consumer is not None
        for topic in sorted({tp.topic for tp in batch.partitions}):
            share = batch.of_topic(topic)
            tps = set(share.partitions)
            consumer.pause(*tps)
            task = asyncio.create_task(self._run_share(topic, share), name=f"route-share-{topic}")
            self._shares[task] = tps
            task.add_done_callback(self._shares.pop)

    async def _run_share(self, topic: str, share: Batch) -> None:
        consumer = self.engine.consumer
        assert consumer is not None
        retry = self._retries.setdefault(topic, Retry(*self._backoffs))
        try:
            after = await self.dispatch(topic, share)
            await self._commit(share)
        except PutBack:
            rewind(consumer, share.first_offsets)
            self.stats.put_back += 1
        except Exception as error:
            rewind(consumer, share.first_offsets)
            retry.failed(f"route consumer: a batch of {topic} failed; it will run again", error)
            self.stats.retries += 1
            self.stats.last_error = retry.last_error
            task = asyncio.current_task()
            assert task is not None
            self._backing_off.add(task)
            try:
                await retry.wait(self.stopping)  # paused meanwhile: nothing of it is fetched
            finally:
                self._backing_off.discard(task)
        else:
            retry.succeeded()
            self.stats.batches += 1
            self.stats.records += len(share)
            if after is not None:
                after()
        finally:
            self._resume(consumer, set(share.partitions))

    async def _commit(self, share: Batch) -> None:
        consumer = self.engine.consumer
        assert consumer is not None
        try:
            await consumer.commit(dict(share.next_offsets))
        except CommitFailedError as error:
            # The group rebalanced: the partitions' new owner reads these records again,
            # and every route handler is idempotent.
            log.warning("route consumer: offsets not committed after a rebalance: %s", error)

    def _resume(self, consumer: Any, tps: set[TopicPartition]) -> None:
        owned = consumer.assignment()
        if not self.stopping.is_set():
            consumer.resume(*(tp for tp in tps if tp in owned))

    # --- rebalances ------------------------------------------------------------------------

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        # Revoked partitions must not move while a share of theirs runs uncommitted (its
        # new owner would run it too); a share in its backoff has rewound already.
        affected = {task: tps for task, tps in self._shares.items() if tps & revoked}
        await self._drain(affected)

    async def _drain(self, shares: Mapping[asyncio.Task[None], set[TopicPartition]]) -> None:
        tasks = list(shares)
        for task in tasks:
            if task in self._backing_off:
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(task, return_exceptions=True)


__all__ = ["BATCH_MAX", "Dispatch", "RouteConsumer", "consumer_options", "routes_group_id"]
