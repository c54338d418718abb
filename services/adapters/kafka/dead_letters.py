"""The commands DLQ read back, and its messages redriven (`pipelines dlq`).

`read_dead_letters` reads the DLQ topic as it is now: a group-less engine over its
partitions (nothing committed, no group to join) that stops once it has read up to each
partition's high watermark as the last fetch answered it. Not the end offsets: the
embedded broker answers those short of the last batch (docs/architecture.md), while the
high watermark in its fetch answers is right, as on Apache Kafka.

`redrive_all` puts dead letters back on the commands topic through the command bus and
waits for each one's result (`CommandBus.send_record`). Each keeps its command id
(`contracts.envelope.redrive`), so redriving one twice is deciding it once: the second
gets the first result back, stored, byte for byte. Messages of one key go one after
another, in their DLQ order, so one aggregate's commands keep their order; different
keys go side by side. A message that is still undecodable is answered with its rejection
and goes to the DLQ again, with its new reason and `dlq_redriven_from`; the DLQ itself
is never changed (a topic is append-only), so nothing in it is lost by a redrive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, cast

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts.envelope import (
    CE_ID,
    CE_SOURCE,
    CE_TYPE,
    DLQ_ERROR_CODE,
    DLQ_ERROR_MESSAGE,
    DLQ_REDRIVEN_FROM,
    DLQ_VALUE_DROPPED,
    HeaderMap,
    Redrive,
    redrive,
    split_dead_letter,
)
from contracts.results import CommandResult
from services.adapters.kafka.command_bus import CommandBus, ResultTimeout, Unanswered
from services.adapters.kafka.engine import Batch, ConsumerEngine, Membership
from services.settings import Settings

# A bounded read: an empty partition is known empty after one fetch wait.
_FETCH_WAIT_MS: Final = 100
# Keys redriven side by side.
REDRIVE_CONCURRENCY: Final = 32
REDRIVE_SOURCE: Final = "/pipelines/cli/dlq"


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ message: where it is, when it was written, and what it holds."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def position(self) -> str:
        """`partition:offset`, as `pipelines dlq` names a message."""
        return f"{self.partition}:{self.offset}"

    @property
    def written_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    @property
    def own_headers(self) -> list[tuple[str, bytes]]:
        """The message's headers as they arrived (without the reason)."""
        return split_dead_letter(self.headers)[0]

    @property
    def reason(self) -> dict[str, str]:
        """The `dlq_*` reason headers, name -> text."""
        return split_dead_letter(self.headers)[1]

    @property
    def attributes(self) -> HeaderMap:
        return HeaderMap.of(self.own_headers)

    @property
    def error_code(self) -> str | None:
        return self.reason.get(DLQ_ERROR_CODE)

    @property
    def error_message(self) -> str | None:
        return self.reason.get(DLQ_ERROR_MESSAGE)

    @property
    def command_type(self) -> str | None:
        return self.attributes.get(CE_TYPE)

    @property
    def command_id(self) -> str | None:
        return self.attributes.get(CE_ID) or None

    @property
    def source(self) -> str | None:
        return self.attributes.get(CE_SOURCE)

    @property
    def redriven_from(self) -> str | None:
        """The DLQ position this message was redriven from (it failed again), if any."""
        return self.attributes.get(DLQ_REDRIVEN_FROM)

    @property
    def value_dropped(self) -> bool:
        """The handler kept only its headers (the value was too large): nothing to redrive."""
        return DLQ_VALUE_DROPPED in self.reason

    def redriven(self) -> Redrive:
        return redrive(
            self.value,
            self.key,
            self.headers,
            position=f"{self.topic}:{self.partition}:{self.offset}",
        )


async def read_dead_letters(
    settings: Settings,
    *,
    partition: int | None = None,
    from_offset: int | None = None,
    stop: Callable[[DeadLetter], bool] | None = None,
) -> list[DeadLetter]:
    """Every message of the DLQ topic now, by partition and offset: only `partition`'s
    when given, from `from_offset` on (that partition only). `stop(message)` true ends
    the read early. Raises RuntimeError when the topic does not exist or the broker is
    unreachable."""
    topic = settings.topics.commands_dlq
    found: list[DeadLetter] = []
    next_offsets: dict[TopicPartition, int] = {}

    async def positioned(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        unread = [tp for tp in tps if partition is not None and tp.partition != partition]
        read = [tp for tp in tps if tp not in unread]
        if not read:
            raise RuntimeError(f"topic {topic!r} has no partition {partition}")
        # The engine fetches every partition it assigns: the others start at their end
        # (the embedded broker's is a little short of it) and what they give is skipped.
        if unread:
            for tp, end in (await consumer.end_offsets(unread)).items():
                consumer.seek(tp, end)
        await consumer.seek_to_beginning(*read)
        for tp in read:
            if from_offset is not None:
                consumer.seek(tp, max(from_offset, await consumer.position(tp)))
            next_offsets[tp] = await consumer.position(tp)

    async def collect(batch: Batch) -> None:
        for record in batch.records:
            if TopicPartition(record.topic, record.partition) not in next_offsets:
                continue
            letter = DeadLetter(
                record.topic,
                record.partition,
                record.offset,
                # the engine hands aiokafka's records over, which carry the broker's time
                cast("ConsumerRecord[bytes, bytes]", record).timestamp,
                record.key,
                record.value,
                [(name, raw or b"") for name, raw in record.headers or ()],
            )
            found.append(letter)
            next_offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
            if stop is not None and stop(letter):
                engine.request_stop()
                return

    def caught_up() -> None:
        consumer = engine.consumer
        if consumer is None or not next_offsets:
            return
        for tp, offset in next_offsets.items():
            highwater = consumer.highwater(tp)
            if highwater is None or offset < highwater:
                return
        engine.request_stop()

    engine = ConsumerEngine(
        settings,
        name="dlq-read",
        topics=[topic],
        handle=collect,
        group_id=None,
        membership=Membership.ASSIGNED,
        commit=False,
        batch_wait_ms=_FETCH_WAIT_MS,
        position=positioned,
        on_round=caught_up,
        consumer_options={"fetch_max_wait_ms": _FETCH_WAIT_MS},
    )
    await engine.start()
    await engine.run()
    return sorted(found, key=lambda letter: (letter.partition, letter.offset))


@dataclass(frozen=True)
class Redriven:
    """A dead letter and what redriving it gave: its result, or why it has none."""

    letter: DeadLetter
    command_id: str | None
    result: CommandResult | None = None
    problem: str | None = None
    timed_out: bool = False  # no result in time: it may still be decided


async def redrive_all(
    settings: Settings, letters: Sequence[DeadLetter], *, timeout_s: float
) -> list[Redriven]:
    """Redrive `letters` and wait for their results (in `letters`' order). A letter
    without its value is not redriven (its `problem` says so)."""
    bus = CommandBus(settings, source=REDRIVE_SOURCE, timeout_s=timeout_s)
    await bus.start(results=True)
    limit = asyncio.Semaphore(REDRIVE_CONCURRENCY)
    outcomes: dict[int, Redriven] = {}

    async def one_key(indexed: list[tuple[int, DeadLetter]]) -> None:
        async with limit:
            for index, letter in indexed:
                outcomes[index] = await _redrive_one(bus, letter)

    by_key: dict[bytes | None, list[tuple[int, DeadLetter]]] = {}
    for index, letter in enumerate(letters):
        by_key.setdefault(letter.key, []).append((index, letter))
    try:
        await asyncio.gather(*(one_key(group) for group in by_key.values()))
    finally:
        await bus.stop()
    return [outcomes[index] for index in range(len(letters))]


async def _redrive_one(bus: CommandBus, letter: DeadLetter) -> Redriven:
    if letter.value_dropped:
        return Redriven(
            letter,
            letter.command_id,
            problem=f"its value ({letter.reason[DLQ_VALUE_DROPPED]} bytes) was too large to "
            "keep in the DLQ: there is nothing to redrive",
        )
    again = letter.redriven()
    try:
        result = await bus.send_record(
            again.record, again.command_id, again.command_type or "unknown"
        )
    except Unanswered as error:
        timed_out = isinstance(error, ResultTimeout)
        return Redriven(letter, again.command_id, problem=str(error), timed_out=timed_out)
    return Redriven(letter, again.command_id, result)


def age_s(letter: DeadLetter, now: float | None = None) -> float:
    """Seconds since the message was written to the DLQ."""
    return max(0.0, (time.time() if now is None else now) - letter.timestamp_ms / 1000)


__all__ = [
    "REDRIVE_SOURCE",
    "DeadLetter",
    "Redriven",
    "age_s",
    "read_dead_letters",
    "redrive_all",
]
