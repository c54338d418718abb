"""What every batch consumer here does when a batch fails: note the failure, seek the
batch's partitions back to its first offsets (so the same records come again and nothing
is skipped), and wait a doubling backoff before fetching again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)


class Retry:
    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.delay_s = initial_s
        self.failures = 0
        self.last_error: str | None = None

    def failed(self, what: str, error: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        log.warning("%s (retry in %.1f s): %r", what, self.delay_s, error, exc_info=error)

    def succeeded(self) -> None:
        self.delay_s = self.initial_s

    async def wait(self, stop: asyncio.Event) -> None:
        """The backoff, cut short by `stop`; the next one is twice as long (up to max_s)."""
        delay, self.delay_s = self.delay_s, min(self.delay_s * 2, self.max_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)


def rewind(consumer: AIOKafkaConsumer, first_offsets: Mapping[TopicPartition, int]) -> None:
    owned = consumer.assignment()
    for tp, offset in first_offsets.items():
        # A partition revoked meanwhile is re-read from its committed offset by its new
        # owner; seeking it here would raise.
        if tp in owned:
            consumer.seek(tp, offset)
