"""Batches that finish while the next one is handled (a handler's `Finish`), for the
engine (services.adapters.kafka.engine).

A handler that returns `Finish(done)` has decided its batch; what is left (typically the
broker's acknowledgements of what it sent) completes in `done`. The engine then goes on
to fetch and handle the next batch while `done` completes, so a role's decision of batch
N+1 overlaps the acknowledgements of batch N instead of following them. What is written
here keeps that as safe as finishing in line:

- each batch commits only once its `done` and every earlier batch's have completed, and
  commits go in batch order (a chain of tasks), so committed offsets never pass an effect
  that is not durable yet;
- at most `depth` batches are unsettled when the next is handled (the engine waits for
  the oldest first), so a slow broker slows the role down instead of piling work up;
- if one `done` fails, it and every batch after it are rewound to their first offsets
  (the earliest per partition) and handled again: handlers are idempotent, so what batch
  N+1 did already is a repeat the second time;
- a rebalance, a pause and a stop settle every unsettled batch first.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.adapters.kafka.batch import Batch, Finish
from services.adapters.kafka.retry import rewind

Commit = Callable[[AIOKafkaConsumer, Batch], Awaitable[None]]
Settled = Callable[[Batch, Finish], None]


class Unsettled:
    """The engine's batches whose `Finish` has not completed yet, oldest first."""

    def __init__(self, commit: Commit, settled: Settled, depth: int = 1) -> None:
        self._commit = commit
        self._settled = settled
        self.depth = depth
        self._chain: deque[tuple[asyncio.Task[None], dict[TopicPartition, int]]] = deque()

    def __len__(self) -> int:
        return len(self._chain)

    def add(self, consumer: AIOKafkaConsumer, batch: Batch, finish: Finish) -> None:
        previous = self._chain[-1][0] if self._chain else None
        task = asyncio.create_task(self._finish(consumer, batch, finish, previous))
        self._chain.append((task, batch.first_offsets))

    async def _finish(
        self,
        consumer: AIOKafkaConsumer,
        batch: Batch,
        finish: Finish,
        previous: asyncio.Task[None] | None,
    ) -> None:
        # Both awaited either way, so a failed `done` is never left unretrieved.
        waits = [finish.done] if previous is None else [previous, finish.done]
        for result in await asyncio.gather(*waits, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        await self._commit(consumer, batch)
        self._settled(batch, finish)

    async def settle(
        self, consumer: AIOKafkaConsumer, keep: int = 0, also: Batch | None = None
    ) -> BaseException | None:
        """Wait until at most `keep` batches are unsettled. If one failed, every unsettled
        batch and `also` (fetched, not handled) are rewound and the failure returned."""
        while len(self._chain) > keep:
            task, _ = self._chain[0]
            await asyncio.wait([task])
            failure = _failure(task)
            if failure is not None:
                await self._rewind_all(consumer, also)
                return failure
            self._chain.popleft()
        return None

    async def settle_done(self, consumer: AIOKafkaConsumer) -> BaseException | None:
        """Drop the batches settled meanwhile; a failure among them as in `settle`."""
        while self._chain and self._chain[0][0].done():
            failure = _failure(self._chain[0][0])
            if failure is not None:
                await self._rewind_all(consumer, None)
                return failure
            self._chain.popleft()
        return None

    async def _rewind_all(self, consumer: AIOKafkaConsumer, also: Batch | None) -> None:
        # The later links fail after the failed one and commit nothing; wait for them so
        # none is still running when the batches are fetched again.
        await asyncio.wait([task for task, _ in self._chain])
        earliest: dict[TopicPartition, int] = {}
        offsets = [first for _, first in self._chain]
        if also is not None:
            offsets.append(also.first_offsets)
        for first in offsets:
            for tp, offset in first.items():
                earliest[tp] = min(offset, earliest.get(tp, offset))
        self._chain.clear()
        rewind(consumer, earliest)


def _failure(task: asyncio.Task[None]) -> BaseException | None:
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception()


__all__ = ["Unsettled"]
