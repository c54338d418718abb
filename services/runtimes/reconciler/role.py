"""The `reconciler` role (docs/reconciler.md): drives every pipeline toward its desired
status, one automaton step at a time, and runs the route workers of the pipelines it
provisions.

Every `reconciler_sweep_ms`, and at once when woken up (a Pipeline event on the events
topic, services.runtimes.reconciler.wake, or a worker ready or ended), it reads the pipelines not
at rest from the read model (plus those it runs workers for and those it was woken up
for), reads each again from the event store (the read model may
lag), decides (services.runtimes.reconciler.decide), carries the decision out on the workers
(services.runtimes.reconciler.deployments) and sends the step through the command bus as a
`ReconcilePipeline` command on the version it read, with a derived id
(`reconcile_command_id`). It never waits for the step's result: a step the handler has
not applied yet is decided again on the same version by the next sweep — the same
command, answered from the command records — and a step overtaken by a user action is
refused as stale and decided afresh. So a lost message, a crash or a deadline never
strands a pipeline: the next sweep repairs it.

One reconciler runs at a time (the workers' consumers are assigned their partitions, not
balanced in a group): run a standby as a second process started only when the first is
gone (docs/reconciler.md, Running it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

from contracts.reconciler_commands import ReconcilePipeline, reconcile_command_id
from domain.pipeline import Pipeline
from projections.store import ReadStore
from services.adapters.kafka.command_bus import CommandBus
from services.runtimes.orchestrator.store_lookups import EventStoreReader
from services.runtimes.reconciler.checkpoints import Checkpoints
from services.runtimes.reconciler.decide import Next, decide
from services.runtimes.reconciler.deployments import Deployment, Deployments
from services.runtimes.reconciler.route_stats import RouteStats
from services.runtimes.reconciler.wake import WakeUps
from services.runtimes.resources import open_command_bus, open_store
from services.runtimes.routes.adapters import AdapterRuntime, load_adapter_registry
from services.runtimes.sweep import Sweep, SweepingRole
from services.settings import Settings

log = logging.getLogger(__name__)

ROLE: Final = "reconciler"
"""The role in step ids: the same for every instance, so two reconcilers deciding the same
step on the same version send one command."""
SOURCE: Final = "/pipelines/reconciler"
"""The CloudEvents source of the reconciler's commands."""


@dataclass(frozen=True)
class _Opened:
    """What `open()` opened."""

    read_store: ReadStore
    reader: EventStoreReader
    bus: CommandBus
    deployments: Deployments


class Reconciler(SweepingRole[_Opened]):
    """Usage: `await Reconciler(settings).run(stop, heartbeat)`; `sweep()` is one round."""

    name = "Reconciler"

    def __init__(self, settings: Settings, *, adapters: AdapterRuntime | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.provisioning_timeout_s = settings.reconciler_provisioning_timeout_s
        self.adapters = adapters if adapters is not None else load_adapter_registry()[1]
        self.sweeps = 0
        self.loop = Sweep("Reconciler sweep", self.sweep, settings.reconciler_sweep_ms / 1000)
        # Woken up (services.runtimes.reconciler.wake, and the workers' own changes): the
        # pipelines to tend at once.
        self.woken: set[UUID] = set()
        self._wake_ups: asyncio.Task[None] | None = None

    @property
    def sweep_s(self) -> float:
        return self.loop.interval_s

    @sweep_s.setter
    def sweep_s(self, interval_s: float) -> None:
        self.loop.interval_s = interval_s

    @property
    def wake(self) -> asyncio.Event:
        """Set by a wake-up: ends the wait for the next sweep."""
        return self.loop.woken

    @property
    def deployments(self) -> Mapping[UUID, Deployment]:
        """The deployments it runs workers for, by pipeline id."""
        return {} if self._io is None else self._io.deployments.running

    # --- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        await super().open()
        self._wake_ups = asyncio.create_task(
            WakeUps(self.settings, self.wake_up).run(), name="reconciler-wake-ups"
        )

    async def _open(self, exits: contextlib.AsyncExitStack) -> _Opened:
        url = self.settings.event_store_url
        read_store = await open_store(exits, ReadStore, url)
        reader = await open_store(exits, EventStoreReader, url)
        checkpoints = await open_store(exits, Checkpoints, url)
        route_stats = await open_store(exits, RouteStats, url)
        producer, bus = await open_command_bus(exits, self.settings, SOURCE)
        deployments = Deployments(
            self.settings, self.adapters, reader, checkpoints, producer, self.wake_up, route_stats
        )
        exits.push_async_callback(deployments.stop)
        return _Opened(read_store, reader, bus, deployments)

    async def close(self) -> None:
        """Stop every worker (their batches finish and commit). The pipelines stay as the
        event store has them: a reconciler started later picks them up again."""
        if self._wake_ups is not None:
            self._wake_ups.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._wake_ups
        await super().close()

    # --- the sweep -----------------------------------------------------------------------

    def wake_up(self, pipeline_id: UUID) -> None:
        """Something happened to the pipeline: sweep now, and tend it even if the read
        model does not show it as not at rest yet (the projector may lag)."""
        self.woken.add(pipeline_id)
        self.loop.wake()

    async def pause(self, stop: asyncio.Event) -> None:
        """Until the next sweep: the sweep interval, or less if woken up or stopped."""
        await self.loop.pause(stop)

    async def sweep(self) -> None:
        io = self._opened()
        woken, self.woken = self.woken, set()
        rows = await asyncio.to_thread(io.read_store.pipelines_not_at_rest)
        ids = list(
            dict.fromkeys(
                [*(UUID(row["id"]) for row in rows), *io.deployments.running, *sorted(woken)]
            )
        )
        for pipeline_id in ids:
            try:
                await self.tend(pipeline_id)
            except Exception:
                log.exception("Reconciler could not tend pipeline %s", pipeline_id)
        try:
            await io.deployments.write_counts()
        except Exception:  # the counts are written again at the next sweep
            log.exception("Reconciler could not write the route counts")
        self.sweeps += 1

    async def tend(self, pipeline_id: UUID) -> None:
        """One pipeline's next step, on a fresh read of the event store."""
        io = self._opened()
        pipeline = await asyncio.to_thread(io.reader.pipeline, pipeline_id)
        if pipeline is None:
            # Deleted (its Deleted event woke this sweep, or it had workers): nothing of it
            # is kept.
            await io.deployments.forget(pipeline_id)
            return
        seen = await io.deployments.seen(pipeline)
        nxt = decide(pipeline, seen, _utcnow(), self.provisioning_timeout_s)
        await io.deployments.apply(pipeline, nxt.workers)
        if nxt.step is not None:
            await self._send(pipeline, nxt)

    async def _send(self, pipeline: Pipeline, nxt: Next) -> None:
        assert nxt.step is not None
        command = ReconcilePipeline(
            pipeline_name=pipeline.name,
            pipeline_id=pipeline.id,
            step=nxt.step,
            expected_version=pipeline.version,
            at=_utcnow(),
            **nxt.data,
        )
        command_id = reconcile_command_id(ROLE, pipeline.id, pipeline.version, nxt.step)
        await self._opened().bus.publish(command, str(command_id))
        log.info("Pipeline %s: sent %s at version %s", pipeline.name, nxt.step, pipeline.version)


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def run_reconciler(
    settings: Settings, stop: asyncio.Event, heartbeat: Callable[[], None]
) -> None:
    """The `reconciler` role (services.entrypoints.roles)."""
    await Reconciler(settings).run(stop, heartbeat)


__all__ = ["ROLE", "SOURCE", "Reconciler", "run_reconciler"]
