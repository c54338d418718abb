"""Wake-ups: the reconciler's sweep runs at once when a Pipeline event is published,
instead of at the next tick (docs/reconciler.md, The sweep).

A consumer of the events topic, in the group `{PIPELINES_CONSUMER_GROUP}.reconciler-wake`,
calls `on_pipeline(pipeline id)` for every Pipeline event. A wake-up is only a hint: the
sweep reads every pipeline from the event store anyway, and the tick still runs, so a
wake-up lost or repeated changes nothing but when a step is taken. Its partitions are
assigned (no group join, so nothing waits ~5 s for one; one reconciler runs at a time) and
it starts at the group's committed offsets, else at the beginning of the topic — never at
the end, which Tansu answers wrongly (DESIGN.md, Testing): a first start replays the
history once, waking the sweep for every pipeline in it. It commits after each batch, so a
restarted reconciler replays little.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.cloudevents import decode_event
from contracts.errors import WireError
from services.adapters.kafka.clients import make_consumer
from services.settings import Settings

log = logging.getLogger(__name__)

PIPELINE: Final = "Pipeline"  # the aggregate type of the events that wake the sweep
_POLL_MS: Final = 1000
_MAX_BACKOFF_S: Final = 30.0


def wake_group(settings: Settings) -> str:
    return f"{settings.consumer_group}.reconciler-wake"


class WakeUps:
    """Usage: a task running `await WakeUps(settings, on_pipeline).run()`, cancelled to stop.
    A broker error restarts the consumer after a doubling backoff."""

    def __init__(self, settings: Settings, on_pipeline: Callable[[UUID], None]) -> None:
        self.settings = settings
        self.on_pipeline = on_pipeline
        self.topic = settings.topics.events

    async def run(self) -> None:
        backoff = 0.5
        while True:
            consumer = make_consumer(self.settings, group_id=wake_group(self.settings))
            try:
                await consumer.start()
                await self._assign(consumer)
                backoff = 0.5
                while True:
                    await self._step(consumer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "Reconciler wake-ups failed; retrying in %.1f s", backoff, exc_info=True
                )
            finally:
                await consumer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        await consumer.topics()  # loads the metadata partitions_for_topic reads
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            raise RuntimeError(f"topic {self.topic!r} has no partitions")
        # Committed offsets, else the beginning (auto_offset_reset="earliest").
        consumer.assign([TopicPartition(self.topic, p) for p in sorted(partitions)])

    async def _step(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=_POLL_MS)
        if not batches:
            return
        woken: dict[UUID, None] = {}
        for records in batches.values():
            for record in records:
                pipeline_id = _pipeline_of(record.value, list(record.headers or ()))
                if pipeline_id is not None:
                    woken[pipeline_id] = None
        for pipeline_id in woken:
            self.on_pipeline(pipeline_id)
        await consumer.commit()


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
