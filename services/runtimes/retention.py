"""Retention: the sweeps that keep what would otherwise grow forever to a window
(docs/operations.md, "Retention"; the windows are `PIPELINES_RETENTION_*`).

A `Retention` is a list of `Task`s run on one `Sweep` (services.runtimes.sweep) every
`retention_interval_s`. Each task removes at most `retention_batch` rows (or executions)
older than its window per call, in short transactions, so a sweep never holds a write
lock for long; a task that removed a full batch asks for the next round at once (a
backlog, say after the window was shortened), the others wait the interval. A window of
0 keeps that data forever (the task is left out).

Which role sweeps what, by who owns it:

- the relay role: the processed-command records (the handler's dedupe records and stored
  results, beside the events; `retention_command_records_s`);
- the orchestrator role: an execution's stored route messages and its route ledger,
  together, once its newest message is older than `retention_route_messages_s` (a replay
  finds both or neither; the swept markers that let a replay say `StoredMessagesExpired`
  go after another such window), and the heartbeats of orchestrators that died without
  saying goodbye (`retention_heartbeats_s`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from services.adapters.command_records import PostgresCommandRecorder, SQLiteCommandRecorder
from services.adapters.eventstore import EventStore
from services.adapters.message_store import MessageStore, open_message_store
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.liveness import Heartbeats
from services.runtimes.resources import open_store
from services.runtimes.sweep import Next, Sweep
from services.settings import Settings

log = logging.getLogger(__name__)

Remove = Callable[[float, int], int]
"""(cutoff in epoch seconds, at most how many) -> how many were removed."""


@dataclass(frozen=True)
class Task:
    name: str
    window_s: float
    remove: Remove


@dataclass
class Retention:
    """Usage: `await Retention(name, tasks, interval_s=..., batch=...).run(stop)`, or
    `once()` for one synchronous round (tests, the benchmark)."""

    name: str
    tasks: Sequence[Task]
    interval_s: float
    batch: int
    clock: Callable[[], float] = time.time
    removed: dict[str, int] = field(default_factory=dict)  # per task, in all

    def __post_init__(self) -> None:
        self.tasks = [task for task in self.tasks if task.window_s > 0]
        self.loop = Sweep(f"{self.name} retention", self._round, self.interval_s)

    def once(self) -> bool:
        """Every task once; True when one of them removed a full batch (more to do)."""
        now = self.clock()
        more = False
        for task in self.tasks:
            count = task.remove(now - task.window_s, self.batch)
            if count:
                self.removed[task.name] = self.removed.get(task.name, 0) + count
                log.info("%s retention removed %d %s", self.name, count, task.name)
            more = more or count >= self.batch
        return more

    async def _round(self) -> Next:
        return Next.NOW if await asyncio.to_thread(self.once) else Next.WAIT

    async def run(self, stop: asyncio.Event) -> None:
        if self.tasks:
            await self.loop.run(stop)


def command_records_task(
    recorder: SQLiteCommandRecorder | PostgresCommandRecorder, window_s: float
) -> Task:
    return Task("command records", window_s, recorder.sweep_processed)


def route_messages_task(store: MessageStore, ledger: Ledger, window_s: float) -> Task:
    def remove(cutoff: float, limit: int) -> int:
        swept = store.sweep(int(cutoff * 1e9), limit)
        ledger.forget(swept)  # after the messages: a crash leaves ledger rows, not messages
        return len(swept)

    return Task("executions' route messages and ledgers", window_s, remove)


def swept_markers_task(store: MessageStore, window_s: float) -> Task:
    return Task(
        "swept-execution markers",
        window_s,
        lambda cutoff, limit: store.forget_swept(int(cutoff * 1e9), limit),
    )


def heartbeats_task(heartbeats: Heartbeats, window_s: float) -> Task:
    return Task("orchestrator heartbeats", window_s, heartbeats.sweep)


def relay_retention(settings: Settings, store: EventStore) -> Retention:
    """The relay role's: the processed-command records of the event store it follows."""
    recorder = store.recorder
    if not isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder):
        raise TypeError("open the event store with services.adapters.command_records.recorder_env")
    return Retention(
        "relay",
        [command_records_task(recorder, settings.retention_command_records_s)],
        interval_s=settings.retention_interval_s,
        batch=settings.retention_batch,
    )


async def orchestrator_retention(settings: Settings, exits: AsyncExitStack) -> Retention:
    """The orchestrator role's, on connections of its own (pushed on `exits`): route
    messages with their ledgers, the swept markers, dead instances' heartbeats."""
    url = settings.event_store_url
    window = settings.retention_route_messages_s
    store = await open_store(exits, lambda _: open_message_store(settings), url)
    ledger = await open_store(exits, Ledger, url)
    heartbeats = await open_store(exits, Heartbeats, url)
    return Retention(
        "orchestrator",
        [
            route_messages_task(store, ledger, window),
            swept_markers_task(store, window),
            heartbeats_task(heartbeats, settings.retention_heartbeats_s),
        ],
        interval_s=settings.retention_interval_s,
        batch=settings.retention_batch,
    )


__all__ = [
    "Remove",
    "Retention",
    "Task",
    "command_records_task",
    "heartbeats_task",
    "orchestrator_retention",
    "relay_retention",
    "route_messages_task",
    "swept_markers_task",
]
