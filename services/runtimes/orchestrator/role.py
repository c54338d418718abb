"""The `orchestrator` role: runs the routes of every config on one route consumer, and
tells the command handler what becomes of config executions (docs/orchestrator.md).

One instance has a unique id (its heartbeat row), one producer (route messages and
commands), the ledger and the message storage, the adapter runtime (built-ins and
entry-point plug-ins), a reader of the event store, and one route consumer (group
`{consumer_group}.routes`, services.runtimes.orchestrator.route_consumer) joined at
start-up. Every `PIPELINES_ORCHESTRATOR_SWEEP_MS` it sweeps:

1. beat its heartbeat (capacity `PIPELINES_ORCHESTRATOR_CAPACITY`): the RunConfig gate
   counts it alive;
2. read every config's current version (configs read model) and the live config
   executions (executions read model), and keep the routes of each of those versions on
   the route consumer (services.runtimes.orchestrator.config_workers): a new config's
   topics are subscribed to when the sweep sees the config, not when it first runs; the
   executions of a version that cannot run here are `interrupt`ed;
3. per live execution, in this order: past its deadline -> `time_out`; pending -> `start`;
   the ledger shows a dead-lettered message -> fail; the ledger has drained -> complete;
   else report each route's progress that moved since the last report.

No step of a run waits for the sweep: the route consumer tells `on_seen` when a pending
execution's message (its init message) arrives, and the role starts it beside the batch;
route handlers call `on_drained` / `on_failed` as soon as a batch finishes an execution.
The sweep finishes what a callback could not (a crash in between, an execution run with
`skip_init_message` and no message yet). Finishing is the start if still pending, the
routes' final reports, then the decision, on the version read from the event store
(services.runtimes.orchestrator.stage_reports); a decision made just after a progress
report of ours (which may not have been applied when the execution was read, so the
decision may be refused as stale) is looked at again `CONFIRM_AFTER_S` later. Every
command id is derived from its content, so repeats and two orchestrators deciding the
same thing are one command; the commands go out through the command bus
(services.adapters.kafka.command_bus), which waits for the broker's acknowledgement and
never for the results.

A graceful stop stops the route consumer (the batches in flight finish and commit) and
deletes the heartbeat, so the gate stops counting this instance at once; a killed
instance stops counting after `PIPELINES_ORCHESTRATOR_LIVENESS_S`, and its uncommitted
messages go to the group's other members (or to itself on restart): executions resume,
never `interrupted` by a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from contracts.orchestrator_commands import ExecutionDecision
from domain.execution import Execution
from projections.rows import Row
from projections.store import ReadStore
from projections.times import parse
from services.adapters.kafka.command_bus import CommandBus
from services.adapters.message_store import open_message_store
from services.runtimes.orchestrator.config_workers import (
    ConfigKey,
    ConfigWorkerPool,
    ConfigWorkers,
    WorkerDeps,
    current_config_versions,
)
from services.runtimes.orchestrator.ledger import ExecutionProgress, Ledger, RouteProgress
from services.runtimes.orchestrator.liveness import Heartbeats
from services.runtimes.orchestrator.route_consumer import RouteConsumer
from services.runtimes.orchestrator.stage_reports import (
    Outgoing,
    decision,
    finishing,
    progress_reports,
)
from services.runtimes.orchestrator.store_lookups import EventStoreReader, ExecutionInfos, info_of
from services.runtimes.resources import open_command_bus, open_store
from services.runtimes.retention import orchestrator_retention
from services.runtimes.routes.adapters import AdapterRuntime, load_adapter_registry
from services.runtimes.sweep import Sweep, SweepingRole
from services.settings import Settings

log = logging.getLogger(__name__)

SOURCE: Final = "/pipelines/orchestrator"
"""The CloudEvents source of the orchestrator's commands."""

PROGRESS_AFTER_S: Final = 1.0
"""Progress is reported for executions at least this old: a shorter run gets only its
final reports, and no progress report of it can make its decision stale."""

RECENT_REPORT_S: Final = 2.0
CONFIRM_AFTER_S: Final = 0.1
"""A decision made within RECENT_REPORT_S of a progress report of the same execution is
looked at again CONFIRM_AFTER_S later (it may have been refused as stale)."""


def new_instance_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}"


ORPHANED: Final = (
    "The broker it ran on was restarted empty (the embedded broker keeps nothing): its "
    "messages are gone. Replay it (POST /api/v1/executions/{id}/replay) to run it again."
)


@dataclass(frozen=True)
class _Opened:
    """What `open()` opened."""

    ledger: Ledger
    heartbeats: Heartbeats
    read_store: ReadStore
    reader: EventStoreReader
    infos: ExecutionInfos
    bus: CommandBus
    workers: ConfigWorkerPool


@dataclass
class _Reported:
    """Per live execution: each route's counts last reported."""

    routes: dict[str, RouteProgress] = field(default_factory=dict)


class Orchestrator(SweepingRole[_Opened]):
    """Usage: `await Orchestrator(settings).run(stop, heartbeat)`; `sweep()` is one round."""

    def __init__(
        self,
        settings: Settings,
        *,
        instance_id: str | None = None,
        adapters: AdapterRuntime | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.instance_id = instance_id or new_instance_id()
        self.name = f"Orchestrator {self.instance_id}"
        self.sweep_s = settings.orchestrator_sweep_ms / 1000
        self.adapters = adapters if adapters is not None else load_adapter_registry()[1]
        self.sweeps = 0
        # The database or the broker away fails a sweep: the heartbeat is not beaten then
        # either, so the gate stops admitting executions until a sweep works again.
        self.loop = Sweep("Orchestrator sweep", self.sweep, self.sweep_s)
        self._reported: dict[UUID, _Reported] = {}
        self._locks: dict[UUID, asyncio.Lock] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}  # starts and confirmations
        self._reported_at: dict[UUID, float] = {}  # loop time of our last progress report

    @property
    def workers(self) -> Mapping[ConfigKey, ConfigWorkers]:
        """The running route workers, by config version."""
        return {} if self._io is None else self._io.workers.running

    @property
    def route_consumer(self) -> RouteConsumer:
        """The one consumer of every route's inbound topic (open first)."""
        return self._opened().workers.consumer

    # --- lifecycle -----------------------------------------------------------------------

    async def _open(self, exits: contextlib.AsyncExitStack) -> _Opened:
        """What it opens is closed in reverse order on `close()`: the workers stop first
        (each commits its batch); the gate is told goodbye before the heartbeats close."""
        url = self.settings.event_store_url
        ledger = await open_store(exits, Ledger, url)
        heartbeats = await open_store(exits, Heartbeats, url)
        exits.push_async_callback(self._goodbye, heartbeats)
        read_store = await open_store(exits, ReadStore, url)
        storage = await open_store(exits, lambda _: open_message_store(self.settings), url)
        reader = await open_store(exits, EventStoreReader, url)
        producer, bus = await open_command_bus(exits, self.settings, SOURCE)
        infos = ExecutionInfos(reader, self.sweep_s)
        deps = WorkerDeps(
            reader, ledger, infos, producer, self.on_drained, self.on_failed, self.on_seen
        )
        workers = ConfigWorkerPool(self.settings, self.adapters, storage, deps)
        workers.consumer.start()
        exits.push_async_callback(self._stop_background)
        exits.push_async_callback(workers.stop)
        return _Opened(ledger, heartbeats, read_store, reader, infos, bus, workers)

    async def _goodbye(self, heartbeats: Heartbeats) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(heartbeats.forget, self.instance_id)

    # --- the sweep -----------------------------------------------------------------------

    async def sweep(self) -> None:
        io = self._opened()
        capacity = self.settings.orchestrator_capacity
        await asyncio.to_thread(io.heartbeats.beat, self.instance_id, capacity)
        current = await asyncio.to_thread(current_config_versions, io.read_store)
        rows = await asyncio.to_thread(io.read_store.live_config_executions)
        now = asyncio.get_running_loop().time()
        live: dict[ConfigKey, list[Row]] = {}
        for row in rows:
            live.setdefault((UUID(row["config_id"]), int(row["config_version"])), []).append(row)
        for key in current - set(live):
            await io.workers.keep(key, now)  # read from now on, before any run needs it
        runnable: list[Row] = []
        for key, executions in live.items():
            executions = await self._interrupt_orphans(executions)
            unrunnable = await io.workers.keep(key, now)
            if unrunnable is None:
                runnable.extend(executions)
            else:
                await self._interrupt(executions, unrunnable)
        await io.workers.retire_idle(current | set(live), now)
        ids = [UUID(row["id"]) for row in rows]
        progress = await asyncio.to_thread(io.ledger.progress, ids)
        for row in runnable:
            execution_id = UUID(row["id"])
            try:
                await self._tend(row, progress.get(execution_id) or ExecutionProgress.empty())
            except Exception:
                log.exception("Orchestrator could not tend execution %s", execution_id)
        self._forget(set(ids))
        self.sweeps += 1

    async def _tend(self, row: Row, progress: ExecutionProgress) -> None:
        """One live execution's next step (the read model's view; decisions re-read the
        event store)."""
        execution_id = UUID(row["id"])
        if _utcnow() >= parse(row["deadline"]):
            await self._decide(execution_id, ExecutionDecision.TIME_OUT, "past its deadline")
        elif row["status"] == "pending":
            await self._decide(execution_id, ExecutionDecision.START)
        elif progress.failed:
            await self.finish(execution_id, ExecutionDecision.FAIL)
        elif progress.drained:
            await self.finish(execution_id, ExecutionDecision.COMPLETE)
        else:
            if (_utcnow() - parse(row["created_at"])).total_seconds() >= PROGRESS_AFTER_S:
                await self._report_progress(execution_id, progress)

    # --- what becomes of an execution ----------------------------------------------------

    async def on_drained(self, execution_id: UUID) -> None:
        """A route worker saw the execution's ledger drain."""
        await self.finish(execution_id, ExecutionDecision.COMPLETE)

    async def on_failed(self, execution_id: UUID) -> None:
        """A route worker dead-lettered one of the execution's messages."""
        await self.finish(execution_id, ExecutionDecision.FAIL)

    async def on_seen(self, execution_id: UUID) -> None:
        """A message of a pending execution arrived (its init message, as a rule): start
        it now rather than at the next sweep, beside the batch (never holding it up)."""
        self._background(
            self._decide(execution_id, ExecutionDecision.START), f"start-{execution_id}"
        )

    def _background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` beside the caller, once per name at a time (awaited on close)."""
        if name in self._tasks:
            work.close()
            return
        task = asyncio.create_task(work, name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda _: self._tasks.pop(name, None))

    async def _stop_background(self) -> None:
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def finish(self, execution_id: UUID, chosen: ExecutionDecision) -> None:
        """Final stage reports, then `chosen` (complete or fail), on a fresh read of the
        execution and its ledger; nothing if it has finished already."""
        async with self._lock(execution_id):
            execution = await self._load(execution_id)
            if execution is None or execution.is_terminal:
                return
            found = await asyncio.to_thread(self._opened().ledger.progress, [execution_id])
            progress = found[execution_id]
            if chosen is ExecutionDecision.COMPLETE and not progress.drained:
                return  # told by a worker that read an older ledger
            reason = _failure_reason(progress) if chosen is ExecutionDecision.FAIL else None
            await self._send(finishing(execution, progress, chosen, _utcnow(), reason))
            reported_at = self._reported_at.get(execution_id)
        if reported_at is not None and self._now() - reported_at < RECENT_REPORT_S:
            # A progress report of ours may not have been applied when the execution was
            # read: then this decision is refused as stale. Look again shortly rather than
            # at the next sweep.
            self._background(self._confirm(execution_id, chosen), f"confirm-{execution_id}")

    async def _confirm(self, execution_id: UUID, chosen: ExecutionDecision) -> None:
        await asyncio.sleep(CONFIRM_AFTER_S)
        self._reported_at.pop(execution_id, None)  # once: the sweep repairs what is left
        await self.finish(execution_id, chosen)

    async def _decide(
        self, execution_id: UUID, chosen: ExecutionDecision, reason: str | None = None
    ) -> None:
        async with self._lock(execution_id):
            execution = await self._load(execution_id)
            if execution is None or execution.is_terminal:
                return
            if chosen is ExecutionDecision.START and str(execution.status) != "pending":
                return
            await self._send([decision(execution, chosen, _utcnow(), reason)])

    async def _interrupt_orphans(self, executions: list[Row]) -> list[Row]:
        """Interrupt the executions created before `orchestrator_interrupt_before` (the
        embedded broker's start in `pipelines dev`: the messages they were waiting for
        went with the broker before it); the others are returned."""
        cutoff = self.settings.orchestrator_interrupt_before
        if cutoff is None:
            return executions
        orphans = [row for row in executions if parse(row["created_at"]) < cutoff]
        if orphans:
            await self._interrupt(orphans, ORPHANED)
        return [row for row in executions if row not in orphans]

    async def _interrupt(self, executions: Iterable[Row], reason: str) -> None:
        for row in executions:
            await self._decide(UUID(row["id"]), ExecutionDecision.INTERRUPT, reason)

    async def _report_progress(self, execution_id: UUID, progress: ExecutionProgress) -> None:
        reported = self._reported.setdefault(execution_id, _Reported())
        reports = progress_reports(execution_id, progress, reported.routes, _utcnow())
        if not reports:
            return
        async with self._lock(execution_id):
            await self._send(reports)
            self._reported_at[execution_id] = self._now()
        for outgoing in reports:
            command = outgoing.command
            route = getattr(command, "route", None)
            if route is not None:
                reported.routes[route] = progress.of(route)

    async def _load(self, execution_id: UUID) -> Execution | None:
        io = self._opened()
        execution = await asyncio.to_thread(io.reader.execution, execution_id)
        if execution is not None:
            io.infos.remember(info_of(execution))
        return execution

    async def _send(self, commands: Sequence[Outgoing]) -> None:
        """Send in order, each acknowledged before the next (one execution's commands
        share a key, so a partition): a command that could not be published stops the
        ones after it (NotPublished), and the next sweep decides again."""
        bus = self._opened().bus
        for outgoing in commands:
            await bus.publish(outgoing.command, str(outgoing.command_id))
            log.debug("Sent %s %s", type(outgoing.command).__name__, outgoing.command_id)

    # --- bookkeeping ---------------------------------------------------------------------

    def _lock(self, execution_id: UUID) -> asyncio.Lock:
        return self._locks.setdefault(execution_id, asyncio.Lock())

    def _forget(self, live: set[UUID]) -> None:
        for execution_id in [e for e in self._reported if e not in live]:
            del self._reported[execution_id]
        for execution_id in [e for e in self._reported_at if e not in live]:
            del self._reported_at[execution_id]
        for execution_id, lock in list(self._locks.items()):
            if execution_id not in live and not lock.locked():
                del self._locks[execution_id]
        if self._io is not None:
            self._io.infos.forget_live(live)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _failure_reason(progress: ExecutionProgress) -> str:
    failed: Mapping[str, int] = {
        route: counts.messages_failed
        for route, counts in progress.routes.items()
        if counts.messages_failed
    }
    listed = ", ".join(f"{route} ({count})" for route, count in failed.items())
    return f"route(s) dead-lettered messages: {listed}"


async def run_orchestrator(
    settings: Settings, stop: asyncio.Event, heartbeat: Callable[[], None]
) -> None:
    """The `orchestrator` role (services.entrypoints.roles), with its retention sweep
    (services.runtimes.retention) beside it."""
    async with contextlib.AsyncExitStack() as exits:
        retention = await orchestrator_retention(settings, exits)
        # The retention loop logs its failures and goes on; it ends with `stop` (its round
        # under way finishes first), or is cancelled when the orchestrator ended without
        # one (failed: its error is the role's).
        sweeping = asyncio.create_task(retention.run(stop), name="orchestrator-retention")
        try:
            await Orchestrator(settings).run(stop, heartbeat)
        finally:
            if not stop.is_set():
                sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping


__all__ = ["SOURCE", "Orchestrator", "run_orchestrator"]
