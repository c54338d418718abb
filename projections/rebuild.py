"""Rebuild every read model from the event history, then swap it in.

1. Fresh tables with a unique suffix receive every event of `events` (the whole history,
   e.g. the event store's notification log), a batch per transaction, while the live
   projector goes on writing the live tables.
2. Catch up: every aggregate the live tables have applied further than the new ones
   (the live projector got there meanwhile) is brought level through `fetch_events`.
3. Swap, in one transaction that keeps live writers out (PostgreSQL: an exclusive lock on
   the live versions table; SQLite: its write lock): catch up once more, drop the live
   tables and rename the new ones. The live projector's next batch writes the new tables,
   skipping whatever they already hold.

Nothing applied to the live tables is lost: the final catch-up runs while no live writer
can commit. If anything fails before the swap, the new tables are dropped and the live
ones stay as they were.

Speed: a batch is BATCH_SIZE events (ten times the live projector's), so an aggregate's
row is read and written once for many of its events; and the next batch is read from
`events` on a thread of its own while the current one is applied (reading the history
and writing the tables each wait on the database about as long as the other).
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import cast

from contracts.events import LifecycleEvent
from projections.projector import BatchStats, FetchEvents, Projector, apply_events
from projections.read_tx import ReadTx
from projections.store import ReadStore

BATCH_SIZE = 10_000
# Batches read ahead of the one being applied.
_READ_AHEAD = 2

Progress = Callable[[int], None]


@dataclass
class RebuildStats:
    events: int = 0  # events read from the history
    caught_up: int = 0  # aggregates brought level with the live tables
    batches: BatchStats = field(default_factory=BatchStats)


def _batches(events: Iterable[LifecycleEvent], size: int) -> Iterator[list[LifecycleEvent]]:
    iterator = iter(events)
    while batch := list(islice(iterator, size)):
        yield batch


_END = object()


def _read_ahead(batches: Iterator[list[LifecycleEvent]]) -> Iterator[list[LifecycleEvent]]:
    """`batches`, produced on a thread of its own up to _READ_AHEAD ahead; an error
    there is raised here. Stopping early (an error while applying) stops the thread."""
    ready: queue.Queue[object] = queue.Queue(_READ_AHEAD)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_END)
        except BaseException as error:  # handed over, raised by the consumer
            put(error)

    reader = threading.Thread(target=read, name="rebuild-reader", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield cast(list[LifecycleEvent], item)
    finally:
        stop.set()
        reader.join()


def _catch_up(tx: ReadTx, fetch_events: FetchEvents, stats: RebuildStats) -> None:
    """Bring the tables of `tx` level with the live ones (inside `tx`): what each lagging
    aggregate misses, applied as one batch."""
    lagging = tx.lagging(ahead_suffix="")
    missed = [e for aid, _, version in lagging for e in fetch_events(aid, version)]
    stats.batches.add(apply_events(tx, missed, fetch_events))
    stats.caught_up += len(lagging)


def rebuild(
    store: ReadStore,
    events: Iterable[LifecycleEvent],
    fetch_events: FetchEvents,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> RebuildStats:
    """Rebuild from `events` and swap the result in (see the module docstring).
    `progress(n)` is called with the number of events read so far after each batch."""
    suffix = f"_rb{uuid.uuid4().hex[:10]}"
    stats = RebuildStats()
    store.create_tables(suffix)
    swapped = False
    try:
        projector = Projector(store, fetch_events, suffix=suffix)
        for batch in _read_ahead(_batches(events, batch_size)):
            stats.batches.add(projector.apply_batch(batch))
            stats.events += len(batch)
            if progress is not None:
                progress(stats.events)
        # Most of the catching up happens here, while live writers still run.
        with store.transaction(suffix) as tx:
            _catch_up(tx, fetch_events, stats)
        with store.transaction("", exclusive=True) as live:
            _catch_up(live.view(suffix), fetch_events, stats)
            store.swap_in(suffix, live)
        swapped = True
    finally:
        if not swapped:
            store.drop_tables(suffix)
    return stats
