"""The one batch-consumer engine: every role that reads Kafka runs on it.

A role supplies only what it does with a batch (`BatchHandler`: one async function of a
`Batch`); the engine owns everything around it, written once:

- fetching: `getmany` of up to `batch_max` records, waiting up to `batch_wait_ms`;
- membership: a consumer group (`subscribe`, rebalances) or assigned partitions
  (`Membership.ASSIGNED`: no join delay, no rebalance; with or without a group id, which
  is then only where offsets are committed);
- the batch lock: a rebalance, `pause()` and `stop()` wait for the batch in flight;
- rebalances: `on_revoked` / `on_assigned` hooks run under the batch lock (a role drops
  its caches there), and `assigned` is set once partitions arrive;
- committing only after the handler returned, so offsets never pass effects that are
  not durable yet (a group-less reader commits nothing); a handler may return what to
  do once its batch is committed (`AfterCommit`: a role's own counters), or a `Finish`:
  its batch completes (and commits, in order) while the next one is handled
  (services.adapters.kafka.finishing);
- a failed batch is rewound to its first offsets and fetched again after one doubling
  backoff (`Retry`); `PutBack` rewinds without counting a failure; an exception listed
  in `fatal` rewinds and ends the run with it;
- broker trouble at start-up or while fetching is retried with the same backoff, so a
  broker pause or a database restart heals by itself;
- stopping drains: the batch in flight is finished and committed, then the consumer
  leaves its group;
- fetch pacing: with `kafka_idle_fetch_wait_ms` set, a consumer that went idle fetches
  with that longer wait until records come again (services.adapters.kafka.fetch_pacing);
- counters (`EngineStats`, or a role's subclass of it given as `stats`) for health
  checks, benchmarks and a metrics exporter.

What a handler sees is in services.adapters.kafka.batch, where an assigned reader starts
in services.adapters.kafka.positions; both are importable from here.

Never FastStream's subscriber acks: `ACK_FIRST` commits before the work, and `ACK`
commits even when the handler raised.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError

from services.adapters.kafka.batch import (
    AfterCommit,
    Batch,
    BatchHandler,
    Finish,
    PutBack,
    Record,
    by_topic,
)
from services.adapters.kafka.clients import make_consumer
from services.adapters.kafka.fetch_pacing import FetchPacing
from services.adapters.kafka.finishing import Unsettled
from services.adapters.kafka.positions import Positioner, all_partitions, from_beginning, since
from services.adapters.kafka.retry import Retry, rewind
from services.settings import Settings

log = logging.getLogger(__name__)

INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
IDLE_ROUND_MS = 1000  # how long an idle paced engine's fetch may wait before going round

PartitionsHook = Callable[[set[TopicPartition]], Awaitable[None] | None]


class Tuning(TypedDict, total=False):
    """The engine's knobs a role passes through from whoever builds it (tests, benchmarks:
    `**tuning: Unpack[Tuning]`), so no role repeats them in its signature."""

    batch_max: int
    batch_wait_ms: int
    initial_backoff_s: float
    max_backoff_s: float
    consumer_options: Mapping[str, Any] | None


class Membership(enum.Enum):
    GROUP = "group"  # subscribe: partitions balanced among the group's members
    ASSIGNED = "assigned"  # every partition of the topics, no join and no rebalance


@dataclass
class EngineStats:
    """Counters (only ever increase, but `last_error`)."""

    batches: int = 0  # handled and committed
    records: int = 0
    retries: int = 0  # failures: batches rewound, fetches and starts that failed
    rebalances: int = 0
    put_back: int = 0
    last_error: str | None = None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, engine: ConsumerEngine) -> None:
        self.engine = engine

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # The batch in flight finishes (and commits) before its partitions move.
        async with self.engine.batch_lock:
            await self.engine._settle_all()
            await self.engine._call(self.engine.on_revoked, set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.engine.stats.rebalances += 1
        async with self.engine.batch_lock:
            await self.engine._call(self.engine.on_assigned, set(assigned))
        if set(assigned):
            self.engine.assigned.set()


class ConsumerEngine:
    """Usage: `task = asyncio.create_task(engine.run())`; `engine.request_stop()` (or set
    the `stop` event given to `run`) and `await task`: the batch in flight is finished and
    committed first. `await engine.start()` beforehand when a caller must know the
    partitions are positioned before it goes on (a reader that must not miss a reply)."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        topics: Sequence[str],
        handle: BatchHandler,
        group_id: str | None,
        membership: Membership = Membership.GROUP,
        batch_max: int = 500,
        batch_wait_ms: int = 200,
        commit: bool = True,
        position: Positioner | None = None,
        on_assigned: PartitionsHook | None = None,
        on_revoked: PartitionsHook | None = None,
        on_round: Callable[[], None] | None = None,
        fatal: tuple[type[BaseException], ...] = (),
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        consumer_options: Mapping[str, Any] | None = None,
        paused: bool = False,
        stats: EngineStats | None = None,
    ) -> None:
        if group_id is None and membership is Membership.GROUP:
            raise ValueError("a group-less reader assigns its partitions")
        self.settings = settings
        self.name = name
        self.topics = list(topics)
        self.handle = handle
        self.group_id = group_id
        self.membership = membership
        self.batch_max = batch_max
        self.batch_wait_ms = batch_wait_ms
        self.commits = commit and group_id is not None
        self.position = position
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self.on_round = on_round
        self.fatal = fatal
        self.consumer_options = dict(consumer_options or {})
        self.stats = stats if stats is not None else EngineStats()
        self.batch_lock = asyncio.Lock()
        self.assigned = asyncio.Event()  # partitions assigned (and positioned)
        self.retry = Retry(initial_backoff_s, max_backoff_s)
        self._stopping = asyncio.Event()
        self._consuming = asyncio.Event()
        if not paused:
            self._consuming.set()
        self._consumer: AIOKafkaConsumer | None = None
        self.pacing = _pacing(settings, self.consumer_options)
        self._unsettled = Unsettled(self._commit, self._finished)
        self._fetch_wanted = True

    # --- lifecycle -------------------------------------------------------------------

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        return self._consumer

    @property
    def consuming(self) -> bool:
        return self._consuming.is_set()

    @property
    def stopping(self) -> asyncio.Event:
        return self._stopping

    async def start(self) -> None:
        """Connect, join or assign, and position; raises when the broker is unreachable."""
        if self._consumer is not None:
            return
        consumer = make_consumer(self.settings, group_id=self.group_id, **self.consumer_options)
        try:
            await consumer.start()
            if self.membership is Membership.GROUP:
                consumer.subscribe(self.topics, listener=_Listener(self))
            else:
                await self._assign(consumer)
        except BaseException:
            await consumer.stop()
            raise
        if self.pacing is not None:
            self.pacing.started(consumer)
        self._consumer = consumer
        self.fetch_only_when(self._fetch_wanted)

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        tps = await all_partitions(consumer, self.topics)
        # Committed offsets, else `auto_offset_reset`; `position` may seek elsewhere.
        consumer.assign(tps)
        if self.position is not None:
            await self.position(consumer, tps)
        for tp in tps:
            await consumer.position(tp)  # resolved before anyone relies on it
        await self._call(self.on_assigned, set(tps))
        self.assigned.set()

    def fetch_only_when(self, wanted: bool) -> None:
        """Fetch (False: send no fetch at all, and keep the positions) — for a reader
        that only reads while someone waits for what it reads. Unlike `pause()`, which
        only stops handing batches over, this stops the consumer's fetch requests, so a
        reader with nobody waiting costs the broker nothing; once wanted again the next
        fetch goes out at once, from where it stopped."""
        self._fetch_wanted = wanted
        consumer = self._consumer
        if consumer is None:
            return
        tps = consumer.assignment()
        if wanted:
            consumer.resume(*tps)
        else:
            consumer.pause(*tps)

    def request_stop(self) -> None:
        self._stopping.set()
        self._consuming.set()  # a paused engine wakes up to stop

    async def stop(self) -> None:
        """Finish the batch in flight, then close (for an engine whose `run` is a task,
        prefer `request_stop()` and awaiting the task)."""
        self.request_stop()
        async with self.batch_lock:
            await self._settle_all()
        # Not under the lock: leaving the group waits for a rebalance under way, whose
        # revoke hook waits for the lock.
        await self._close()

    async def pause(self) -> None:
        """Fetch nothing more; returns once the batch in flight (if any) is done."""
        self._consuming.clear()
        async with self.batch_lock:
            await self._settle_all()

    def resume(self) -> None:
        self._consuming.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Handle batches until stopped; starts the consumer first if needed (retrying
        while the broker is unreachable)."""
        watcher = asyncio.create_task(self._watch(stop)) if stop is not None else None
        try:
            while not self._stopping.is_set():
                if self.on_round is not None:
                    self.on_round()
                if self._consumer is None:
                    await self._start_or_wait()
                    continue
                if not self._consuming.is_set():
                    await self._consuming.wait()
                    continue
                await self.step()
        finally:
            if watcher is not None:
                watcher.cancel()
            async with self.batch_lock:
                await self._settle_all()
            await self._close()

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.request_stop()

    async def _start_or_wait(self) -> None:
        try:
            await self.start()
        except Exception as error:
            if self.fatal and isinstance(error, self.fatal):
                raise
            self._failed(f"{self.name}: starting the consumer failed", error)
            await self.retry.wait(self._stopping)

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()  # leaves the group

    # --- one batch -------------------------------------------------------------------

    async def step(self) -> bool:
        """Fetch and handle one batch; False when it failed (and was rewound)."""
        consumer = self._consumer
        assert consumer is not None
        if (finishing := await self._unsettled.settle_done(consumer)) is not None:
            return await self._batch_failed(finishing)
        try:
            partitions = await consumer.getmany(
                timeout_ms=self._fetch_timeout_ms(), max_records=self.batch_max
            )
        except Exception as error:
            if self._stopping.is_set():
                return True  # closed under a fetch by `stop()`: no failure
            self._failed(f"{self.name}: fetching failed", error)
            await self.retry.wait(self._stopping)
            return False
        partitions = {tp: rs for tp, rs in partitions.items() if rs}
        if self.pacing is not None:
            self.pacing.observe(consumer, bool(partitions))
        if not partitions:
            return True
        batch = Batch(partitions)
        failure: BaseException | None = None
        after: AfterCommit | None = None
        async with self.batch_lock:
            if self._stopping.is_set():
                return True  # stopped while fetching: uncommitted, they come again
            if not self._consuming.is_set():
                # Paused while fetching: these come again on resume.
                rewind(consumer, batch.first_offsets)
                return True
            # The oldest finishing batch first, if too many are; a failure among them
            # rewinds them all and this one (so they come again in order).
            failure = await self._unsettled.settle(consumer, self._unsettled.depth, batch)
            if failure is None:
                try:
                    result = await self.handle(batch)
                    if isinstance(result, Finish):
                        self._unsettled.add(consumer, batch, result)
                        return True
                    after = result
                except PutBack:
                    rewind(consumer, batch.first_offsets)
                    self.stats.put_back += 1
                    return True
                except Exception as error:
                    rewind(consumer, batch.first_offsets)
                    failure = error
            if failure is None:
                # Earlier batches commit first.
                failure = await self._unsettled.settle(consumer, 0, batch)
            if failure is None:
                try:
                    await self._commit(consumer, batch)
                except Exception as error:
                    rewind(consumer, batch.first_offsets)
                    failure = error
                else:
                    self.stats.batches += 1
                    self.stats.records += len(batch)
                    self.retry.succeeded()
                    if after is not None:
                        after()
        if failure is not None:
            return await self._batch_failed(failure)
        return True

    async def _batch_failed(self, failure: BaseException) -> bool:
        if self.fatal and isinstance(failure, self.fatal):
            raise failure
        self._failed(f"{self.name}: a batch failed; it will be handled again", failure)
        await self.retry.wait(self._stopping)
        return False

    async def _settle_all(self) -> None:
        """Every batch finishing meanwhile committed (or rewound); under the batch lock."""
        consumer = self._consumer
        if consumer is None or not len(self._unsettled):
            return
        failure = await self._unsettled.settle(consumer)
        if failure is not None:
            self._failed(f"{self.name}: a batch failed; it will be handled again", failure)

    def _finished(self, batch: Batch, finish: Finish) -> None:
        self.stats.batches += 1
        self.stats.records += len(batch)
        self.retry.succeeded()
        if finish.after is not None:
            finish.after()

    def _fetch_timeout_ms(self) -> int:
        # `getmany` returns as soon as records are there, so its timeout only says how often
        # an idle engine goes round (heartbeat, stop): an idle paced one rarely, so an idle
        # process does not wake up every few milliseconds for nothing.
        pacing = self.pacing
        if pacing is not None and pacing.wait_ms == pacing.idle_ms:
            return max(self.batch_wait_ms, IDLE_ROUND_MS)
        return self.batch_wait_ms

    async def _commit(self, consumer: AIOKafkaConsumer, batch: Batch) -> None:
        if not self.commits:
            return
        try:
            await consumer.commit(batch.next_offsets)
        except CommitFailedError as error:
            # The group rebalanced: the partitions' new owner reads these records again,
            # and every handler here is idempotent.
            log.warning("%s: offsets not committed after a rebalance: %s", self.name, error)

    async def _call(self, hook: PartitionsHook | None, tps: set[TopicPartition]) -> None:
        if hook is None:
            return
        result = hook(tps)
        if result is not None:
            await result

    def _failed(self, what: str, error: BaseException) -> None:
        self.retry.failed(what, error)
        self.stats.retries = self.retry.failures
        self.stats.last_error = self.retry.last_error


def _pacing(settings: Settings, options: Mapping[str, Any]) -> FetchPacing | None:
    idle_ms = settings.kafka_idle_fetch_wait_ms
    active_ms = options.get("fetch_max_wait_ms", settings.kafka_fetch_wait_ms)
    if idle_ms is None or active_ms is None or idle_ms <= active_ms:
        return None
    return FetchPacing(int(active_ms), idle_ms, settings.kafka_idle_after_ms / 1000)


# What a handler sees (batch.py) and where an assigned reader starts (positions.py) are
# imported from here too: one module names the engine's whole surface.
__all__ = [
    "INITIAL_BACKOFF_S",
    "MAX_BACKOFF_S",
    "AfterCommit",
    "Batch",
    "BatchHandler",
    "ConsumerEngine",
    "EngineStats",
    "Finish",
    "Membership",
    "Positioner",
    "PutBack",
    "Record",
    "Tuning",
    "all_partitions",
    "by_topic",
    "from_beginning",
    "since",
]
