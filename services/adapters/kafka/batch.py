"""What a batch handler of the engine (services.adapters.kafka.engine) sees and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import TopicPartition


class Record(Protocol):
    """What is read of an aiokafka ConsumerRecord (a protocol, so tests can fake one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | None: ...


@dataclass(frozen=True)
class Batch:
    """One fetch: its records per partition, in offset order."""

    partitions: Mapping[TopicPartition, Sequence[Record]]

    @property
    def records(self) -> list[Record]:
        return [r for rs in self.partitions.values() for r in rs]

    @property
    def first_offsets(self) -> dict[TopicPartition, int]:
        return {tp: rs[0].offset for tp, rs in self.partitions.items() if rs}

    @property
    def next_offsets(self) -> dict[TopicPartition, int]:
        return {tp: rs[-1].offset + 1 for tp, rs in self.partitions.items() if rs}

    def __len__(self) -> int:
        return sum(len(rs) for rs in self.partitions.values())

    def of_topic(self, topic: str) -> Batch:
        return Batch({tp: rs for tp, rs in self.partitions.items() if tp.topic == topic})


AfterCommit = Callable[[], None]


@dataclass(frozen=True)
class Finish:
    """Returned by a handler whose batch is decided but not yet done: `done` completes it
    (for example, awaits the acknowledgements of what the handler sent). The engine
    fetches and handles the next batch meanwhile, and commits each batch once its `done`
    and every earlier batch's have completed, in order; then runs `after`. If a `done`
    fails, that batch and every later one are rewound and handled again."""

    done: Awaitable[object]
    after: AfterCommit | None = None


# A handler returns None, what to run once its batch's offsets are committed, or a Finish.
BatchHandler = Callable[[Batch], Awaitable[AfterCommit | Finish | None]]


def by_topic(handlers: Mapping[str, BatchHandler]) -> BatchHandler:
    """One handler of several topics' work, so one consumer (one fetcher, one group
    membership) serves them all: each topic's share of a batch goes to its own handler,
    in the order given; the batch commits once every one of them returned."""

    async def handle(batch: Batch) -> AfterCommit | None:
        afters: list[AfterCommit] = []
        for topic, handler in handlers.items():
            share = batch.of_topic(topic)
            if not len(share):
                continue
            after = await handler(share)
            if isinstance(after, Finish):  # several topics' work: no overlap between them
                await after.done
                after = after.after
            if after is not None:
                afters.append(after)
        if not afters:
            return None

        def after_all() -> None:
            for after in afters:
                after()

        return after_all

    return handle


class PutBack(Exception):
    """Raised by a handler: rewind this batch and fetch it again, not a failure (the role
    is stopping or pausing and the batch must not be committed)."""


__all__ = ["AfterCommit", "Batch", "BatchHandler", "Finish", "PutBack", "Record", "by_topic"]
