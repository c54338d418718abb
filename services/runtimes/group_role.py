"""A role whose Kafka side is one member of the service's consumer group for one topic,
on the batch-consumer engine (services.adapters.kafka.engine): the command handler
(commands) and the projector (events). The role gives its batch handler, its counters
and its batch defaults; whoever builds it may override the engine's knobs (`Tuning`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from services.adapters.kafka.engine import (
    AfterCommit,
    Batch,
    ConsumerEngine,
    EngineStats,
    Finish,
    PartitionsHook,
    Tuning,
)
from services.settings import Settings

Stats = TypeVar("Stats", bound=EngineStats)


class GroupRole(Generic[Stats]):
    """Usage: `await role.run(stop, heartbeat)`; it returns once the batch in flight is
    finished and committed. `handle` is what the engine runs for every batch."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        topic: str,
        group_id: str,
        stats: Stats,
        defaults: Tuning,
        tuning: Tuning,
        on_rebalance: PartitionsHook | None = None,
    ) -> None:
        self.settings = settings
        self.group_id = group_id
        self.stats = stats
        tuned: Tuning = {**defaults, **tuning}
        self.engine = ConsumerEngine(
            settings,
            name=name,
            topics=[topic],
            handle=self.handle,
            group_id=group_id,
            on_revoked=on_rebalance,
            on_assigned=on_rebalance,
            stats=stats,
            **tuned,
        )

    @property
    def assigned(self) -> asyncio.Event:
        """Set once partitions were assigned."""
        return self.engine.assigned

    def request_stop(self) -> None:
        self.engine.request_stop()

    async def run(
        self, stop: asyncio.Event | None = None, heartbeat: Callable[[], None] | None = None
    ) -> None:
        """Serve until `stop` is set or `request_stop()`; `heartbeat` ticks every round."""
        self.engine.on_round = heartbeat
        await self.engine.run(stop)

    async def handle(self, batch: Batch) -> AfterCommit | Finish:
        raise NotImplementedError


__all__ = ["GroupRole"]
