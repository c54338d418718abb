"""Wake-ups: the reconciler's sweep runs at once when a Pipeline event is published,
instead of at the next tick (docs/reconciler.md, The sweep).

A reader of the events topic on the one batch-consumer engine
(services.adapters.kafka.engine) calls `on_pipeline(pipeline id)` for every Pipeline
event. A wake-up is only a hint: the sweep reads every pipeline from the event store
anyway, and the tick still runs, so a wake-up lost or repeated changes nothing but when a
step is taken. Its partitions are assigned (no group join, so nothing waits ~5 s for one;
one reconciler runs at a time); the group `{PIPELINES_CONSUMER_GROUP}.reconciler-wake`
only keeps its committed offsets. It starts at those, else at the beginning of the topic
— never at the end, which the embedded broker answers wrongly: a first start replays the
history once, waking the sweep for every pipeline in it. The engine commits after each
batch, so a restarted reconciler replays little, and retries with its backoff when the
broker fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final
from uuid import UUID

from contracts.cloudevents import decode_event
from contracts.errors import WireError
from services.adapters.kafka.engine import Batch, ConsumerEngine, Membership
from services.settings import Settings

PIPELINE: Final = "Pipeline"  # the aggregate type of the events that wake the sweep
_POLL_MS: Final = 1000
_INITIAL_BACKOFF_S: Final = 0.5
_MAX_BACKOFF_S: Final = 30.0


def wake_group(settings: Settings) -> str:
    return f"{settings.consumer_group}.reconciler-wake"


class WakeUps:
    """Usage: a task running `await WakeUps(settings, on_pipeline).run()`, cancelled (or
    `request_stop()`ped) to stop."""

    def __init__(self, settings: Settings, on_pipeline: Callable[[UUID], None]) -> None:
        self.settings = settings
        self.on_pipeline = on_pipeline
        self.engine = ConsumerEngine(
            settings,
            name="reconciler-wake-ups",
            topics=[settings.topics.events],
            handle=self.handle,
            group_id=wake_group(settings),
            membership=Membership.ASSIGNED,
            batch_wait_ms=_POLL_MS,
            initial_backoff_s=_INITIAL_BACKOFF_S,
            max_backoff_s=_MAX_BACKOFF_S,
        )

    async def run(self) -> None:
        await self.engine.run()

    def request_stop(self) -> None:
        self.engine.request_stop()

    async def handle(self, batch: Batch) -> None:
        woken: dict[UUID, None] = {}
        for record in batch.records:
            pipeline_id = _pipeline_of(record.value, list(record.headers or ()))
            if pipeline_id is not None:
                woken[pipeline_id] = None
        for pipeline_id in woken:
            self.on_pipeline(pipeline_id)


def _pipeline_of(value: bytes | None, headers: list[tuple[str, bytes]]) -> UUID | None:
    """The pipeline a record is an event of (None: another aggregate's, or unreadable —
    the projector dead-letters those; a hint need not)."""
    try:
        event = decode_event(value, headers).event
    except WireError:
        return None
    if event.aggregate_type != PIPELINE:
        return None
    try:
        return UUID(event.aggregate_id)
    except ValueError:
        return None


__all__ = ["PIPELINE", "WakeUps", "wake_group"]
