"""Reading the API's server-sent-event streams in tests, with httpx streaming and the
CLI's parser (services.entrypoints.cli.executions.sse_events, the client we ship): a
whole stream until the server ends it (`read_stream`), or one followed while the test
acts (`Tail`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from services.entrypoints.cli.executions import SseEvent, sse_events
from tests.waiting import eventually


@dataclass(frozen=True)
class Event:
    name: str
    id: str | None
    data: dict[str, Any]


def parsed(event: SseEvent) -> Event:
    return Event(event.name, event.id, orjson.loads(event.data))


@dataclass
class Streamed:
    """A stream's answer: its status and headers, and its events (or its error body)."""

    status: int
    headers: httpx.Headers
    events: list[Event] = field(default_factory=list)
    error: Any = None

    @property
    def ids(self) -> list[str | None]:
        return [event.id for event in self.events if event.name != "end"]

    @property
    def names(self) -> list[str]:
        return [event.name for event in self.events]


async def read_stream(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Streamed:
    """The whole stream, until the server ends it (the client's timeout ends a hang)."""
    async with client.stream("GET", path, params=params, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            return Streamed(response.status_code, response.headers, error=response.json())
        events = [parsed(event) async for event in sse_events(response.aiter_lines())]
        return Streamed(response.status_code, response.headers, events)


class Tail:
    """A stream read in the background: `events` so far; `until(check)` waits for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.status: int | None = None
        self.ended = False
        self._task: asyncio.Task[None] | None = None

    async def until(self, check: Callable[[Event], bool], what: str) -> Event:
        await eventually(
            lambda: any(check(e) for e in self.events) or self._failed(), what, every_s=0.05
        )
        return next(e for e in self.events if check(e))

    def _failed(self) -> bool:
        if self._task is not None and self._task.done() and self._task.exception():
            raise AssertionError("the stream failed") from self._task.exception()
        return False

    async def until_ended(self) -> None:
        await eventually(lambda: self.ended or self._failed(), "the stream to end")


@contextlib.asynccontextmanager
async def tailing(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[Tail]:
    """A `Tail` of the stream at `path`, open (its 200 received) before the block runs."""
    tail = Tail()
    opened = asyncio.Event()

    async def read() -> None:
        try:
            async with client.stream("GET", path, params=params, headers=headers) as response:
                tail.status = response.status_code
                opened.set()
                if response.status_code != 200:
                    return
                async for event in sse_events(response.aiter_lines()):
                    tail.events.append(parsed(event))
            tail.ended = True
        finally:
            opened.set()

    tail._task = asyncio.create_task(read())
    await asyncio.wait_for(opened.wait(), 30)
    try:
        assert tail.status == 200, tail.status
        yield tail
    finally:
        tail._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tail._task


__all__ = ["Event", "Streamed", "Tail", "parsed", "read_stream", "tailing"]
