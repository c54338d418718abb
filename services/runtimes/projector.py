"""The projector role: the events topic -> the read models, and the rebuild's wiring.

It runs on the one batch-consumer engine (services.adapters.kafka.engine), in the group
`<topic prefix>-projector`; for each batch of the events topic it does only this:

1. decode each record (one that does not decode is logged and left out: if it carried a
   real event, the aggregate's next event shows a gap and the projector fetches it from
   the event store);
2. apply the batch in ONE read-store transaction, off the event loop
   (`projections.Projector`, versions recorded in the same transaction); the engine
   commits the batch's offsets only after that.

If applying fails nothing is committed: the engine hands the same records over again
after a backoff (already-applied versions are skipped). Gaps are healed from the event
store (`fetch_events_from`). The read models live in the event store's database
(`Settings.event_store_url`), in their own `read_*` tables.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Unpack
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from contracts.cloudevents import decode_event
from contracts.errors import WireError
from contracts.events import LifecycleEvent
from projections.projector import BatchStats, FetchEvents, Projector
from projections.rebuild import BATCH_SIZE, Progress, RebuildStats, rebuild
from projections.store import ReadStore
from services.adapters.eventstore import EventStore, open_event_store
from services.adapters.kafka.engine import AfterCommit, Batch, EngineStats, Tuning
from services.observability import collectors, metrics
from services.observability.trace_hops import RecordSpans, projection_spans
from services.runtimes.group_role import GroupRole
from services.runtimes.relay import to_lifecycle_event
from services.settings import Settings

log = logging.getLogger(__name__)

BATCH_MAX = 1000
BATCH_WAIT_MS = 50
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
    settings: Settings, progress: Progress | None = None, *, batch_size: int = BATCH_SIZE
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
class ProjectorStats(EngineStats):
    """The engine's counters and what the committed batches did to the read models."""

    events: BatchStats = field(default_factory=BatchStats)
    undecodable: int = 0


def decode_records(batch: Batch) -> tuple[list[LifecycleEvent], int]:
    """The events among a batch's records, and how many did not decode."""
    events: list[LifecycleEvent] = []
    bad = 0
    for record in batch.records:
        try:
            events.append(decode_event(record.value, list(record.headers or ())).event)
        except WireError as error:
            bad += 1
            log.error(
                "Undecodable record %s:%s@%s left out: %s",
                record.topic, record.partition, record.offset, error,
            )  # fmt: skip
    return events, bad


class ProjectorConsumer(GroupRole[ProjectorStats]):
    """Usage: `await consumer.run(stop)`; it returns after finishing the current batch.
    `handle` is what the engine runs for every batch."""

    def __init__(
        self,
        settings: Settings,
        projector: Projector,
        *,
        group_id: str | None = None,
        **tuning: Unpack[Tuning],
    ) -> None:
        self.projector = projector
        super().__init__(
            settings,
            name="projector",
            topic=settings.topics.events,
            group_id=group_id or projector_group(settings),
            stats=ProjectorStats(),
            defaults={"batch_max": BATCH_MAX, "batch_wait_ms": BATCH_WAIT_MS},
            tuning=tuning,
        )
        collectors.track(self.engine)  # its counters and lag, at scrape time

    async def handle(self, batch: Batch) -> AfterCommit:
        started = time.perf_counter()
        events, bad = decode_records(batch)
        traced = projection_spans(batch.records)  # None while tracing is off
        applied = await asyncio.to_thread(self.projector.apply_batch, events)
        newest = metrics.newest_time(event.time for event in events)
        return functools.partial(self._count, applied, bad, newest, len(batch), started, traced)

    def _count(
        self,
        applied: BatchStats,
        undecodable: int,
        newest: datetime | None,
        records: int,
        started: float,
        traced: RecordSpans | None,
    ) -> None:
        self.stats.events.add(applied)
        self.stats.undecodable += undecodable
        metrics.projected(applied, undecodable, newest, records, started)
        if traced is not None:
            traced.end()


async def run_projector(
    settings: Settings, stop: asyncio.Event, heartbeat: Callable[[], None]
) -> None:
    """The projector role: events topic -> read models (in the event store's database)."""
    url = settings.event_store_url
    store = await asyncio.to_thread(open_event_store, url)
    read = await asyncio.to_thread(ReadStore, url)
    try:
        projector = Projector(read, fetch_events_from(store))
        with collectors.executions_by_status(url):  # counted from the read model when scraped
            await ProjectorConsumer(settings, projector).run(stop, heartbeat)
    finally:
        await asyncio.to_thread(read.close)
        await asyncio.to_thread(store.close)
