"""The projector role: the events topic -> the read models, and the rebuild's wiring.

One loop, plain aiokafka, group `<topic prefix>-projector`, manual commits:

1. `getmany` a batch from the events topic;
2. decode each record (one that does not decode is logged and left out: if it carried a
   real event, the aggregate's next event shows a gap and the projector fetches it from
   the event store);
3. apply the batch in ONE read-store transaction, off the event loop
   (`projections.Projector`, versions recorded in the same transaction);
4. only then commit the batch's offsets.

If applying fails nothing is committed: the partitions are rewound to the batch's first
offsets and the batch is applied again after a backoff (already-applied versions are
skipped). Gaps are healed from the event store (`fetch_events_from`). The read models live
in the event store's database (`Settings.event_store_url`), in their own `read_*` tables.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError
from eventsourcing.persistence import Notification, StoredEvent

from contracts.cloudevents import decode_event
from contracts.errors import WireError
from contracts.events import LifecycleEvent
from projections.projector import BatchStats, FetchEvents, Projector
from projections.rebuild import Progress, RebuildStats, rebuild
from projections.store import ReadStore
from services.adapters.eventstore import EventStore, open_event_store
from services.adapters.kafka.clients import make_consumer
from services.adapters.kafka.engine import Record
from services.adapters.kafka.retry import Retry, rewind
from services.runtimes.relay import to_lifecycle_event
from services.settings import Settings

log = logging.getLogger(__name__)

BATCH_MAX = 1000
BATCH_WAIT_MS = 50
INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
_HISTORY_PAGE = 1000


def projector_group(settings: Settings) -> str:
    return f"{settings.topic_prefix}-projector"


# --- the event store as the projector's source ---------------------------------------------


def _published(stored: StoredEvent) -> LifecycleEvent | None:
    return to_lifecycle_event(
        Notification(
            id=0,
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=stored.state,
        )
    )


def fetch_events_from(store: EventStore) -> FetchEvents:
    """`fetch_events` over the event store: an aggregate's events after a version, in the
    form the relay publishes them."""

    def fetch(aggregate_id: str, after_version: int) -> list[LifecycleEvent]:
        stored = store.recorder.select_events(UUID(aggregate_id), gt=after_version)
        return [event for s in stored if (event := _published(s)) is not None]

    return fetch


def history(store: EventStore, page: int = _HISTORY_PAGE) -> Iterator[LifecycleEvent]:
    """Every stored event in notification order (the order the relay publishes)."""
    position = 0
    while True:
        notifications = store.recorder.select_notifications(
            start=position, limit=page, inclusive_of_start=False
        )
        if not notifications:
            return
        for notification in notifications:
            event = to_lifecycle_event(notification)
            if event is not None:
                yield event
        position = notifications[-1].id


def rebuild_read_models(
    settings: Settings, progress: Progress | None = None, *, batch_size: int = BATCH_MAX
) -> RebuildStats:
    """`pipelines projections rebuild`: the read models rebuilt from the event store and
    swapped in (synchronous; see projections.rebuild)."""
    url = settings.event_store_url
    with open_event_store(url) as store:
        read = ReadStore(url)
        try:
            return rebuild(
                read, history(store), fetch_events_from(store), batch_size=batch_size,
                progress=progress,
            )  # fmt: skip
        finally:
            read.close()


def total_events(settings: Settings) -> int:
    """How many notifications the event store holds (for a progress bar's total)."""
    with open_event_store(settings.event_store_url) as store:
        return int(store.recorder.max_notification_id() or 0)


# --- the consumer ------------------------------------------------------------------------------


@dataclass
class ProjectorStats:
    batches: int = 0
    events: BatchStats = field(default_factory=BatchStats)
    undecodable: int = 0
    retries: int = 0
    last_error: str | None = None


def decode_records(records: Iterable[Record]) -> tuple[list[LifecycleEvent], int]:
    """The events among `records`, and how many did not decode."""
    events: list[LifecycleEvent] = []
    bad = 0
    for record in records:
        try:
            events.append(decode_event(record.value, list(record.headers or ())).event)
        except WireError as error:
            bad += 1
            log.error(
                "Undecodable record %s:%s@%s left out: %s",
                record.topic, record.partition, record.offset, error,
            )  # fmt: skip
    return events, bad


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: ProjectorConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # The batch in flight finishes (and commits) before its partitions move.
        async with self.owner.batch_lock:
            pass

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        if set(assigned):
            self.owner.assigned.set()


class ProjectorConsumer:
    """Usage: `await consumer.run(stop)`; it returns after finishing the current batch."""

    def __init__(
        self,
        settings: Settings,
        projector: Projector,
        *,
        group_id: str | None = None,
        batch_max: int = BATCH_MAX,
        batch_wait_ms: int = BATCH_WAIT_MS,
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        consumer_options: Mapping[str, object] | None = None,
    ) -> None:
        self.settings = settings
        self.projector = projector
        self.group_id = group_id or projector_group(settings)
        self.batch_max = batch_max
        self.batch_wait_ms = batch_wait_ms
        self.consumer_options = dict(consumer_options or {})
        self.stats = ProjectorStats()
        self.batch_lock = asyncio.Lock()
        self.assigned = asyncio.Event()
        self._retry = Retry(initial_backoff_s, MAX_BACKOFF_S)

    async def run(self, stop: asyncio.Event, heartbeat: Callable[[], None] | None = None) -> None:
        consumer = make_consumer(self.settings, group_id=self.group_id, **self.consumer_options)
        await consumer.start()
        try:
            consumer.subscribe([self.settings.topics.events], listener=_Rebalance(self))
            while not stop.is_set():
                if heartbeat is not None:
                    heartbeat()
                if not await self.step(consumer):
                    await self._retry.wait(stop)
        finally:
            await consumer.stop()

    async def step(self, consumer: AIOKafkaConsumer) -> bool:
        """One batch: fetch, apply, commit. False when it failed (and was rewound)."""
        try:
            records = await consumer.getmany(
                timeout_ms=self.batch_wait_ms, max_records=self.batch_max
            )
        except Exception as error:
            self._note_failure("Fetching events failed", error)
            return False
        if not records:
            return True
        async with self.batch_lock:
            try:
                await self._apply(consumer, records)
            except Exception as error:
                self._note_failure("Applying a batch failed; it will be applied again", error)
                rewind(consumer, {tp: b[0].offset for tp, b in records.items() if b})
                return False
        self._retry.succeeded()
        return True

    async def _apply(
        self, consumer: AIOKafkaConsumer, records: Mapping[TopicPartition, Sequence[Record]]
    ) -> None:
        events, bad = decode_records(r for batch in records.values() for r in batch)
        stats = await asyncio.to_thread(self.projector.apply_batch, events)
        offsets = {tp: batch[-1].offset + 1 for tp, batch in records.items() if batch}
        try:
            await consumer.commit(offsets)
        except CommitFailedError as error:
            # A rebalance: the new owner re-reads these records and skips them by version.
            log.warning("Offsets not committed after a rebalance: %s", error)
        self.stats.batches += 1
        self.stats.events.add(stats)
        self.stats.undecodable += bad

    def _note_failure(self, what: str, error: Exception) -> None:
        self._retry.failed(what, error)
        self.stats.retries = self._retry.failures
        self.stats.last_error = self._retry.last_error


async def run_projector(
    settings: Settings, stop: asyncio.Event, heartbeat: Callable[[], None]
) -> None:
    """The projector role: events topic -> read models (in the event store's database)."""
    url = settings.event_store_url
    store = await asyncio.to_thread(open_event_store, url)
    read = await asyncio.to_thread(ReadStore, url)
    try:
        projector = Projector(read, fetch_events_from(store))
        await ProjectorConsumer(settings, projector).run(stop, heartbeat)
    finally:
        await asyncio.to_thread(read.close)
        await asyncio.to_thread(store.close)
