"""The command handler's Kafka side: decide a batch of commands, answer it, then commit.

It runs on the one batch-consumer engine (services.adapters.kafka.engine: the commands
topic, the service's consumer group, commits after the effects, rewind and backoff on a
failure, the decider's cache dropped on every rebalance); what is written here is only
what a batch of commands means:

1. decode every record; a bad one goes byte for byte, with `dlq_*` reason headers, to
   the DLQ topic and, whenever a command id can be read, is answered with a
   CommandRejected;
2. decide the batch off the event loop (`Decider.decide`: one event-store transaction,
   dedupe by command id);
3. send one result per command to the results topic and the DLQ records, and hand the
   engine a `Finish` awaiting every delivery: the engine decides the next batch while
   the broker acknowledges this one, and commits exactly this batch's offsets only once
   its deliveries (and every earlier batch's) are acknowledged.

If deciding or publishing fails (the database briefly unavailable, the broker not
acknowledging) nothing is committed and the engine hands the same records over again
after a backoff. That is safe because a repeated command id gets its stored result back
without touching the domain. Bad input never stops the loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Unpack

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from contracts import rejection
from contracts.cloudevents import decode_command, encode_dead_letter
from contracts.envelope import CE_CORRELATIONID, DLQ_VALUE_DROPPED, HeaderMap, KafkaRecord
from contracts.errors import WireError
from services.adapters.kafka.clients import make_producer
from services.adapters.kafka.engine import Batch, EngineStats, Finish, Record, Tuning
from services.observability import collectors, metrics
from services.observability.trace_hops import CommandBatch, CommandSpans
from services.runtimes.group_role import GroupRole
from services.service_layer.decider import Decider, Item, Outcome
from services.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ConsumerStats(EngineStats):
    """The engine's counters (`batches` committed, `retries` after a failure, ...) and the
    handler's own, counted once a batch is committed (only ever increase)."""

    commands: int = 0  # results published and committed, repeats included
    accepted: int = 0
    rejected: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True)
class Decoded:
    """One batch's records, decoded, with the offsets it spans."""

    items: list[Item]
    dead_letters: list[KafkaRecord]
    first_offsets: dict[TopicPartition, int]
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)


def prepare_batch(records: Mapping[TopicPartition, Sequence[Record]], *, max_bytes: int) -> Decoded:
    """Decode every record; pure, so the rules can be tested without a broker."""
    batch = Batch({tp: rs for tp, rs in records.items() if rs})
    items: list[Item] = []
    dead_letters: list[KafkaRecord] = []
    for record in batch.records:
        item, dead_letter = decode_record(record, max_bytes=max_bytes)
        if item is not None:
            items.append(item)
        if dead_letter is not None:
            dead_letters.append(dead_letter)
    return Decoded(items, dead_letters, batch.first_offsets, batch.next_offsets)


def decode_record(record: Record, *, max_bytes: int) -> tuple[Item | None, KafkaRecord | None]:
    """A record as an Item to decide and/or a DLQ record (a bad one can be both)."""
    headers = list(record.headers or ())
    # A message without ce_id still gets a stable id: the same position on redelivery.
    position_id = f"{record.topic}:{record.partition}:{record.offset}"
    try:
        decoded = decode_command(
            record.value, headers, max_bytes=max_bytes, default_command_id=position_id
        )
    except WireError as error:
        dead_letter = encode_dead_letter(
            record.value,
            record.key,
            headers,
            error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        if error.command_id is None:
            return None, dead_letter
        rejected = rejection(error, command_id=error.command_id, command_type=error.command_type)
        correlation_id = HeaderMap.of(headers).get(CE_CORRELATIONID)
        return Item(error.command_id, correlation_id, rejected=rejected), dead_letter
    sent_by = decoded.attributes.sent_by
    return Item(decoded.command_id, decoded.correlation_id, decoded.command, sent_by=sent_by), None


async def _all_delivered(deliveries: Sequence[Awaitable[object]]) -> None:
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _without_value(record: KafkaRecord) -> KafkaRecord:
    """A DLQ record too large to publish: keep key, headers and reasons, drop the value."""
    dropped = (DLQ_VALUE_DROPPED, str(len(record.value)).encode())
    return KafkaRecord(key=record.key, value=b"", headers=[*record.headers, dropped])


class CommandConsumer(GroupRole[ConsumerStats]):
    """Usage: `task = asyncio.create_task(consumer.run())`; later `consumer.request_stop()`
    (or set the `stop` event given to `run`) and `await task`: the current batch is
    finished and committed first. `handle` is what the engine runs for every batch."""

    def __init__(self, settings: Settings, decider: Decider, **tuning: Unpack[Tuning]) -> None:
        self.decider = decider
        self.topics = settings.topics
        super().__init__(
            settings,
            name="command-handler",
            topic=settings.topics.commands,
            group_id=settings.consumer_group,
            stats=ConsumerStats(),
            defaults={
                "batch_max": settings.command_batch_max,
                "batch_wait_ms": settings.command_batch_wait_ms,
            },
            tuning=tuning,
            # Another member may change the aggregates of partitions that moved.
            on_rebalance=self._drop_cache,
        )
        self._producer: AIOKafkaProducer | None = None
        self._spans = CommandSpans(settings.event_store_url)  # while tracing is on
        collectors.track(self.engine)  # its counters and lag, at scrape time

    @property
    def batch_lock(self) -> asyncio.Lock:
        """Held while a batch is handled (tests write to the store between batches)."""
        return self.engine.batch_lock

    async def run(
        self, stop: asyncio.Event | None = None, heartbeat: Callable[[], None] | None = None
    ) -> None:
        try:
            await super().run(stop, heartbeat)
        finally:
            producer, self._producer = self._producer, None
            if producer is not None:
                await producer.stop()
            self._spans.close()

    async def handle(self, batch: Batch) -> Finish:
        started = time.perf_counter()
        decoded = prepare_batch(batch.partitions, max_bytes=self.settings.max_message_bytes)
        traced = self._spans.begin(batch.records)  # None while tracing is off
        self.decider.before_save = None if traced is None else traced.before_save
        # The eventsourcing library is synchronous: keep it off the event loop.
        outcomes = await asyncio.to_thread(self.decider.decide, decoded.items)
        delivered = await self._publish(
            await self._started_producer(), outcomes, decoded.dead_letters
        )
        count = functools.partial(self._count, decoded, outcomes, started, len(batch), traced)
        return Finish(delivered, count)

    def _drop_cache(self, _: set[TopicPartition]) -> None:
        self.decider.drop_cache()

    async def _started_producer(self) -> AIOKafkaProducer:
        # Started with the first batch, so a broker unreachable at start-up is retried
        # like any failed batch.
        if self._producer is None:
            producer = make_producer(self.settings)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _publish(
        self,
        producer: AIOKafkaProducer,
        outcomes: Sequence[Outcome],
        dead_letters: Sequence[KafkaRecord],
    ) -> asyncio.Future[None]:
        """Send everything (the producer batches it, in order after the batches before);
        answers the future of every delivery, failing with the first failure."""
        deliveries: list[Awaitable[object]] = []
        for outcome in outcomes:
            record = outcome.record()
            deliveries.append(
                await producer.send(
                    self.topics.command_results,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                )
            )
        waits = [asyncio.ensure_future(self._dead_letter(producer, r)) for r in dead_letters]
        return asyncio.ensure_future(_all_delivered([*deliveries, *waits]))

    async def _dead_letter(self, producer: AIOKafkaProducer, record: KafkaRecord) -> None:
        topic = self.topics.commands_dlq
        try:
            sent = await producer.send(
                topic, value=record.value, key=record.key, headers=record.headers
            )
            await sent
        except MessageSizeTooLargeError:
            # Retrying would poison the partition forever; the reason headers and the
            # original position still say what was dropped and where to find it.
            log.error("DLQ record of %d bytes is too large; value dropped", len(record.value))
            smaller = _without_value(record)
            sent = await producer.send(
                topic, value=smaller.value, key=smaller.key, headers=smaller.headers
            )
            await sent

    def _count(
        self,
        decoded: Decoded,
        outcomes: Sequence[Outcome],
        started: float,
        records: int,
        traced: CommandBatch | None,
    ) -> None:
        metrics.commands(outcomes, decoded.dead_letters, records, started)
        if traced is not None:
            traced.end(outcomes)
        stats = self.stats
        stats.commands += len(outcomes)
        accepted = sum(1 for o in outcomes if o.result.outcome == "accepted")
        stats.accepted += accepted
        stats.rejected += len(outcomes) - accepted
        stats.dead_lettered += len(decoded.dead_letters)
