"""One group-less reader that many watchers share.

A watcher (a server-sent-events client, a CLI tail, a test) must not cost a consumer of
its own: every consumer is a fetcher polling the broker, and a group member would cost a
join. A `Broadcast` runs one engine (services.adapters.kafka.engine: assigned partitions,
no group, nothing committed) over some topics and hands every record it reads to every
watcher registered at the time.

A watcher's queue is bounded. One that falls `max_backlog` records behind is cut off
(`Watcher.overflowed` set, its iteration ends) rather than slowing the reader down for
everyone else; it can watch again and catch up from what it reads elsewhere (a read
model, or the events from a known position).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

from services.adapters.kafka.batch import Batch, Record
from services.adapters.kafka.engine import ConsumerEngine, Membership
from services.adapters.kafka.positions import Positioner, since
from services.settings import Settings

DEFAULT_MAX_BACKLOG = 10_000

_END = None  # put on a watcher's queue when it is cut off or the broadcast stops


class Watcher:
    """The records read since it was registered, in each partition's order."""

    def __init__(self, max_backlog: int) -> None:
        self._queue: asyncio.Queue[Record | None] = asyncio.Queue(max_backlog + 1)
        self._max_backlog = max_backlog
        self.overflowed = False
        self.closed = False

    def offer(self, record: Record) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._max_backlog:
            self.overflowed = True
            self.close()
            return
        self._queue.put_nowait(record)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_END)  # room is kept for it

    def __aiter__(self) -> AsyncIterator[Record]:
        return self._records()

    async def _records(self) -> AsyncIterator[Record]:
        while (record := await self._queue.get()) is not _END:
            yield record


class Broadcast:
    """`await start()` (positioned before it returns, by default at the present), then
    `async with broadcast.watch() as watcher: async for record in watcher: ...`;
    `await stop()` ends every watcher."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        topics: Sequence[str],
        position: Positioner | None = None,
        batch_wait_ms: int = 200,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
    ) -> None:
        started_ms = int(time.time() * 1000)
        self.engine = ConsumerEngine(
            settings,
            name=name,
            topics=topics,
            handle=self._deliver,
            group_id=None,
            membership=Membership.ASSIGNED,
            batch_max=1000,
            batch_wait_ms=batch_wait_ms,
            position=position or since(lambda: started_ms),
        )
        self.max_backlog = max_backlog
        self._watchers: set[Watcher] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    async def start(self) -> None:
        await self.engine.start()
        self._task = asyncio.create_task(self.engine.run(), name=self.engine.name)

    async def stop(self) -> None:
        self.engine.request_stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for watcher in list(self._watchers):
            watcher.close()
        self._watchers.clear()

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[Watcher]:
        watcher = Watcher(self.max_backlog)
        self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            self._watchers.discard(watcher)
            watcher.close()

    async def _deliver(self, batch: Batch) -> None:
        for watcher in list(self._watchers):
            for record in batch.records:
                watcher.offer(record)
            if watcher.overflowed:
                self._watchers.discard(watcher)


__all__ = ["DEFAULT_MAX_BACKLOG", "Broadcast", "Watcher"]
