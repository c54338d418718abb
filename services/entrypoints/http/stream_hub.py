"""What the server-sent-event streams of one API process share: ONE reader of the events
topic (a services.adapters.kafka.broadcast.Broadcast, never a consumer per client) and
the streams open now.

The reader starts with the first stream (so an API nobody watches reads nothing) and is
positioned at that moment; every stream registers a watcher on it. `close()` ends every
open stream: the server calls it when it stops, before it waits for its connections to
finish (an open stream would otherwise hold the process up to its timeout).

A `Stream` is one request's stream: why it must stop, if it must (its timeout, its key
revoked, the server stopping), and the watcher it reads now. Its key is checked again
every `RECHECK_S` seconds (services.entrypoints.http.stream_tokens), so a revoked key's
stream ends at the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from typing import Final

from fastapi import FastAPI, Request

from domain.errors import DomainError
from services.adapters.kafka.broadcast import DEFAULT_MAX_BACKLOG, Broadcast, Watcher
from services.settings import Settings

log = logging.getLogger(__name__)

# Read at call time, so a test may shorten it.
RECHECK_S: float = 30.0
# Short: a watcher's first record should not wait on a batch to fill.
BATCH_WAIT_MS: Final = 50

# A still-allowed check: False once the stream's key is no longer live.
StillAllowed = Callable[[], Awaitable[bool]]


class StopReason(StrEnum):
    TIMEOUT = "timeout"
    REVOKED = "revoked"
    SHUTDOWN = "shutdown"


def shutting_down() -> DomainError:
    return DomainError(
        "ShuttingDown", "This API process is stopping; open the stream again", None, 503
    )


class Stream:
    """One open stream: the watcher it reads now, and why it must stop (None: it need
    not)."""

    def __init__(self) -> None:
        self.reason: StopReason | None = None
        self.watcher: Watcher | None = None

    def stop(self, reason: StopReason) -> None:
        """Ends the stream's reading at once: its watcher's iteration ends."""
        if self.reason is None:
            self.reason = reason
        if self.watcher is not None:
            self.watcher.close()


class StreamHub:
    """`async with hub.open(timeout_s, still_allowed) as stream:` then, as often as the
    stream needs one (again after an overflow), `async with hub.watching(stream) as
    watcher:`."""

    def __init__(self, settings: Settings, *, max_backlog: int = DEFAULT_MAX_BACKLOG) -> None:
        self.settings = settings
        self.max_backlog = max_backlog
        self._broadcast: Broadcast | None = None
        self._starting = asyncio.Lock()
        self._streams: set[Stream] = set()
        self._closed = False

    @property
    def streams(self) -> int:
        return len(self._streams)

    @property
    def reader(self) -> Broadcast | None:
        """The shared reader, once a stream started it."""
        return self._broadcast

    async def _started(self) -> Broadcast:
        async with self._starting:
            if self._broadcast is None:
                broadcast = Broadcast(
                    self.settings,
                    name="api-streams",
                    topics=[self.settings.topics.events],
                    batch_wait_ms=BATCH_WAIT_MS,
                    max_backlog=self.max_backlog,
                )
                await broadcast.start()
                self._broadcast = broadcast
            return self._broadcast

    @contextlib.asynccontextmanager
    async def open(self, timeout_s: float, still_allowed: StillAllowed) -> AsyncIterator[Stream]:
        """A stream that stops after `timeout_s`, when `still_allowed` turns False, or
        when the hub closes (503 once it closed)."""
        if self._closed:
            raise shutting_down()
        stream = Stream()
        loop = asyncio.get_running_loop()
        timer = loop.call_later(timeout_s, stream.stop, StopReason.TIMEOUT)
        recheck = asyncio.create_task(_recheck(stream, still_allowed), name="stream-recheck")
        self._streams.add(stream)
        try:
            yield stream
        finally:
            self._streams.discard(stream)
            timer.cancel()
            recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recheck

    @contextlib.asynccontextmanager
    async def watching(self, stream: Stream) -> AsyncIterator[Watcher]:
        """A watcher registered on the shared reader for `stream` (ended at once if the
        stream was stopped)."""
        broadcast = await self._started()
        async with broadcast.watch() as watcher:
            stream.watcher = watcher
            if stream.reason is not None:
                watcher.close()
            try:
                yield watcher
            finally:
                stream.watcher = None

    async def close(self) -> None:
        """End every open stream (and refuse new ones, 503); then stop the reader."""
        self._closed = True
        for stream in list(self._streams):
            stream.stop(StopReason.SHUTDOWN)
        broadcast, self._broadcast = self._broadcast, None
        if broadcast is not None:
            await broadcast.stop()


async def _recheck(stream: Stream, still_allowed: StillAllowed) -> None:
    while stream.reason is None:
        await asyncio.sleep(RECHECK_S)
        try:
            allowed = await still_allowed()
        except Exception:  # the database is away: keep the stream, ask again later
            log.warning("Could not check a stream's API key again", exc_info=True)
            continue
        if not allowed:
            stream.stop(StopReason.REVOKED)


def hub_of(request: Request) -> StreamHub:
    hub: StreamHub = request.app.state.stream_hub
    return hub


async def close_streams(app: FastAPI) -> None:
    """End the app's open streams (the server calls it as it stops)."""
    hub: StreamHub | None = getattr(app.state, "stream_hub", None)
    if hub is not None:
        await hub.close()


__all__ = [
    "RECHECK_S",
    "StillAllowed",
    "StopReason",
    "Stream",
    "StreamHub",
    "close_streams",
    "hub_of",
    "shutting_down",
]
