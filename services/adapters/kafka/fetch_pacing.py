"""A consumer's fetch wait, short while records flow and long once it has gone idle.

On the embedded broker every fetch is held for its whole wait, data or not
(docs/architecture.md), so the wait is what a record waits at each consumer hop: it must
be short for latency. But an idle consumer then sends a fetch every few milliseconds,
and a process of several consumers becomes a busy loop (measured on an idle
`pipelines dev` of four consumers: 65 % of a core for the process and the broker at
10 ms). So a consumer that fetched nothing for `idle_after_s` switches to `idle_ms`, and
the first batch with records switches it back: the first record after a quiet spell
waits up to `idle_ms` once, the rest of a busy spell the short wait.

On Apache Kafka (no `idle_ms` configured) the wait is left alone: the broker answers as
soon as data is there, and the wait only bounds idle polling.

aiokafka takes the wait once, in its constructor, and reads it afresh for every fetch
request it builds (`Fetcher._fetch_max_wait_ms`); there is no public setter, so
`set_fetch_wait` writes that attribute, and refuses loudly if a new aiokafka no longer
has it (tests/adapters/broker/test_fetch_pacing.py pins it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

_FETCHER_WAIT = "_fetch_max_wait_ms"


def set_fetch_wait(consumer: AIOKafkaConsumer, wait_ms: int) -> None:
    """Every fetch request from now on waits at most `wait_ms` (a started consumer)."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, _FETCHER_WAIT):
        raise RuntimeError(
            "aiokafka's fetcher no longer keeps its fetch wait where fetch pacing sets it; "
            "unset PIPELINES_KAFKA_IDLE_FETCH_WAIT_MS or update fetch_pacing.py"
        )
    setattr(fetcher, _FETCHER_WAIT, wait_ms)


class FetchPacing:
    """Usage: `pacing.observe(consumer, got_records)` after every fetch of the consumer.
    `wait_ms` is the wait its fetches use now."""

    def __init__(
        self,
        active_ms: int,
        idle_ms: int,
        idle_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.active_ms = active_ms
        self.idle_ms = idle_ms
        self.idle_after_s = idle_after_s
        self.wait_ms = active_ms
        self.idle_spells = 0  # times it went idle (a counter for tests and metrics)
        self._clock = clock
        self._last_records = clock()

    def observe(self, consumer: AIOKafkaConsumer, got_records: bool) -> None:
        now = self._clock()
        if got_records:
            self._last_records = now
            wanted = self.active_ms
        elif now - self._last_records >= self.idle_after_s:
            wanted = self.idle_ms
        else:
            wanted = self.wait_ms
        if wanted != self.wait_ms:
            if wanted == self.idle_ms:
                self.idle_spells += 1
            self.wait_ms = wanted
            set_fetch_wait(consumer, wanted)

    def started(self, consumer: AIOKafkaConsumer) -> None:
        """A new consumer (a restart): it starts busy, as after a record."""
        self._last_records = self._clock()
        self.wait_ms = self.active_ms
        set_fetch_wait(consumer, self.active_ms)


__all__ = ["FetchPacing", "set_fetch_wait"]
