"""Following aggregates for the streams: their stored events, then the live ones from the
process's shared reader (stream_hub.py), in version order and each once, each with the
aggregate's read-model row after it (the projections' pure `apply`, so a stream shows
what a read of the aggregate would, without waiting on the projector).

The order that leaves no gap: the watcher is registered FIRST, then the event store is
read. An event stored after that read is published after it, so the watcher gets it; one
stored before is in what was read (published late, it comes again live and is skipped
by its version). A watcher cut off for falling behind (overflow) is registered again and
the store read again after the last version sent, in the same order; a version missing
between two live ones (a record that did not decode) is read from the store as well.

`Follower` follows one aggregate (an execution, a pipeline); `PipelinesFollower` every
pipeline, live only: from when it registered, and after an overflow from the event
store's notification log since the last position it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self
from uuid import UUID

from eventsourcing.persistence import Notification

from contracts.cloudevents import decode_event
from contracts.errors import WireError
from contracts.events import LifecycleEvent
from projections.rows import Row
from services.adapters.eventstore import EventStore
from services.adapters.kafka.batch import Record
from services.adapters.kafka.broadcast import Watcher
from services.entrypoints.http.stream_hub import Stream, StreamHub
from services.runtimes.projector import fetch_events_from
from services.runtimes.relay import to_lifecycle_event

log = logging.getLogger(__name__)

Apply = Callable[[LifecycleEvent, Row | None], Row]

PIPELINE: Final = "Pipeline"
MAX_FOLDS: Final = 10_000  # pipelines one all-pipelines stream remembers the row of
_PAGE: Final = 1000


@dataclass(frozen=True)
class Step:
    """One event and the aggregate's row after it."""

    event: LifecycleEvent
    row: Row


class Fold:
    """An aggregate's row as of a version, moved on by each next event."""

    def __init__(self, apply: Apply) -> None:
        self.apply = apply
        self.row: Row | None = None
        self.version = 0

    def take(self, event: LifecycleEvent) -> Step | None:
        """The step of `event`; None for a version already folded in."""
        if event.version <= self.version:
            return None
        self.row = self.apply(event, self.row)
        self.version = event.version
        return Step(event, self.row)


class StoredEvents:
    """The event store as the streams read it (synchronous library: off the loop)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._fetch = fetch_events_from(store)

    async def after(self, aggregate_id: str, version: int) -> list[LifecycleEvent]:
        return list(await asyncio.to_thread(self._fetch, aggregate_id, version))

    async def position(self) -> int:
        """The newest notification's id (0 before any)."""
        newest = await asyncio.to_thread(self.store.recorder.max_notification_id)
        return int(newest or 0)

    async def notifications(self, after: int, upto: int) -> list[Notification]:
        """The notifications with ids in (after, upto]."""
        found: list[Notification] = []
        while after < upto:
            page: Sequence[Notification] = await asyncio.to_thread(
                self.store.recorder.select_notifications,
                after,
                _PAGE,
                upto,
                inclusive_of_start=False,
            )
            if not page:
                break
            found.extend(page)
            after = page[-1].id
        return found


def decoded(record: Record) -> LifecycleEvent | None:
    try:
        return decode_event(record.value, list(record.headers or ())).event
    except WireError as error:  # a real event is healed from the store at the next one
        log.warning("A stream skipped an undecodable record: %s", error)
        return None


class _Registered:
    """A follower's current watcher, registered again after an overflow."""

    def __init__(self, hub: StreamHub, stream: Stream) -> None:
        self.hub = hub
        self.stream = stream
        self._stack: contextlib.AsyncExitStack | None = None
        self.watcher: Watcher | None = None

    async def register(self) -> Watcher:
        await self.leave()
        self._stack = contextlib.AsyncExitStack()
        self.watcher = await self._stack.enter_async_context(self.hub.watching(self.stream))
        return self.watcher

    async def leave(self) -> None:
        stack, self._stack, self.watcher = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.leave()

    def cut_off(self, watcher: Watcher) -> bool:
        """Whether the watcher ended because it fell behind (and the stream goes on)."""
        return watcher.overflowed and self.stream.reason is None


class Follower(_Registered):
    """`async with Follower(...) as f: steps = await f.history()` (every stored event:
    an empty list means the store has never seen the aggregate), then `async for step in
    f.live()`."""

    def __init__(
        self,
        hub: StreamHub,
        stream: Stream,
        stored: StoredEvents,
        aggregate_id: UUID,
        apply: Apply,
    ) -> None:
        super().__init__(hub, stream)
        self.stored = stored
        self.aggregate_id = str(aggregate_id)
        self._key = self.aggregate_id.encode()
        self.fold = Fold(apply)

    async def history(self) -> list[Step]:
        await self.register()
        return await self._catch_up()

    async def live(self) -> AsyncIterator[Step]:
        while (watcher := self.watcher) is not None and self.stream.reason is None:
            async for record in watcher:
                if self.stream.reason is not None:
                    return
                if record.key != self._key or (event := decoded(record)) is None:
                    continue
                for step in await self._advance(event):
                    yield step
            if not self.cut_off(watcher):
                return
            await self.register()
            for step in await self._catch_up():
                yield step

    async def _advance(self, event: LifecycleEvent) -> list[Step]:
        if event.aggregate_id != self.aggregate_id or event.version <= self.fold.version:
            return []
        if event.version > self.fold.version + 1:
            return await self._catch_up()  # what is missing, this one included
        step = self.fold.take(event)
        return [] if step is None else [step]

    async def _catch_up(self) -> list[Step]:
        events = await self.stored.after(self.aggregate_id, self.fold.version)
        return [step for event in events if (step := self.fold.take(event)) is not None]


class PipelinesFollower(_Registered):
    """Every pipeline's events from now on: `async with PipelinesFollower(...) as f:
    await f.start()`, then `async for step in f.live()`."""

    def __init__(self, hub: StreamHub, stream: Stream, stored: StoredEvents, apply: Apply) -> None:
        super().__init__(hub, stream)
        self.stored = stored
        self.apply = apply
        self.folds: dict[str, Fold] = {}
        self.position = 0

    async def start(self) -> None:
        await self.register()
        self.position = await self.stored.position()

    async def live(self) -> AsyncIterator[Step]:
        while (watcher := self.watcher) is not None and self.stream.reason is None:
            async for record in watcher:
                if self.stream.reason is not None:
                    return
                event = decoded(record)
                if event is not None and event.aggregate_type == PIPELINE:
                    for step in await self._advance(event):
                        yield step
            if not self.cut_off(watcher):
                return
            await self.register()
            upto = await self.stored.position()
            missed = await self.stored.notifications(self.position, upto)
            self.position = upto
            for notification in missed:
                event = to_lifecycle_event(notification)
                if event is not None and event.aggregate_type == PIPELINE:
                    for step in await self._advance(event):
                        yield step

    async def _advance(self, event: LifecycleEvent) -> list[Step]:
        fold = self.folds.get(event.aggregate_id)
        if fold is None:
            # First seen: its row up to just before this event, from the store.
            fold = self._remember(event.aggregate_id)
            stored = await self.stored.after(event.aggregate_id, 0)
            for earlier in stored:
                if earlier.version < event.version:
                    fold.take(earlier)
        if event.version <= fold.version:
            return []
        if event.version > fold.version + 1:
            stored = await self.stored.after(event.aggregate_id, fold.version)
            steps = [fold.take(e) for e in stored if e.version <= event.version]
            return [step for step in steps if step is not None]
        step = fold.take(event)
        return [] if step is None else [step]

    def _remember(self, aggregate_id: str) -> Fold:
        if len(self.folds) >= MAX_FOLDS:
            del self.folds[next(iter(self.folds))]  # the longest remembered
        fold = self.folds[aggregate_id] = Fold(self.apply)
        return fold


__all__ = ["Apply", "Fold", "Follower", "PipelinesFollower", "Step", "StoredEvents", "decoded"]
