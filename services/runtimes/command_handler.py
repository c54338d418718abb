"""The command handler's Kafka side: read a batch, decide it, answer it, then commit.

One loop, plain aiokafka (never FastStream's default ACK_FIRST, which commits before the
work is done):

1. `getmany` a batch from the commands topic (consumer group, manual commits);
2. decode every record; a bad one goes byte for byte, with `dlq_*` reason headers, to
   the DLQ topic and, whenever a command id can be read, is answered with a
   CommandRejected;
3. decide the batch off the event loop (`Decider.decide`: one event-store transaction,
   dedupe by command id);
4. send one result per command to the results topic and the DLQ records, then await
   every delivery;
5. only then commit exactly the batch's offsets.

If deciding or publishing fails (the database briefly unavailable, the broker not
acknowledging) nothing is committed: every partition of the batch is rewound to the
batch's first offset and the same records are processed again after a backoff. That is
safe because a repeated command id gets its stored result back without touching the
domain. Bad input never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, MessageSizeTooLargeError

from contracts import rejection
from contracts.cloudevents import decode_command, encode_dead_letter
from contracts.envelope import CE_CORRELATIONID, HeaderMap, KafkaRecord
from contracts.errors import WireError
from services.adapters.kafka.clients import make_consumer, make_producer
from services.adapters.kafka.engine import Record
from services.adapters.kafka.retry import Retry, rewind
from services.service_layer.decider import Decider, Item, Outcome
from services.settings import Settings

log = logging.getLogger(__name__)


INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0


@dataclass
class ConsumerStats:
    """Counters for health checks and the benchmark (only ever increase)."""

    batches: int = 0
    commands: int = 0  # results published and committed, repeats included
    accepted: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    retries: int = 0  # batches rewound after a failure
    last_error: str | None = None


@dataclass(frozen=True)
class Batch:
    """One `getmany` worth of records, decoded, with the offsets it spans."""

    items: list[Item]
    dead_letters: list[KafkaRecord]
    first_offsets: dict[TopicPartition, int]
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)


def prepare_batch(records: Mapping[TopicPartition, Sequence[Record]], *, max_bytes: int) -> Batch:
    """Decode every record; pure, so the rules can be tested without a broker."""
    items: list[Item] = []
    dead_letters: list[KafkaRecord] = []
    first_offsets: dict[TopicPartition, int] = {}
    next_offsets: dict[TopicPartition, int] = {}
    for tp, partition_records in records.items():
        if not partition_records:
            continue
        first_offsets[tp] = partition_records[0].offset
        next_offsets[tp] = partition_records[-1].offset + 1
        for record in partition_records:
            item, dead_letter = decode_record(record, max_bytes=max_bytes)
            if item is not None:
                items.append(item)
            if dead_letter is not None:
                dead_letters.append(dead_letter)
    return Batch(items, dead_letters, first_offsets, next_offsets)


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
    return Item(decoded.command_id, decoded.correlation_id, command=decoded.command), None


def _without_value(record: KafkaRecord) -> KafkaRecord:
    """A DLQ record too large to publish: keep key, headers and reasons, drop the value."""
    dropped = ("dlq_value_dropped_bytes", str(len(record.value)).encode())
    return KafkaRecord(key=record.key, value=b"", headers=[*record.headers, dropped])


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: CommandConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Let the batch in flight finish (and commit) before the partitions move; then
        # forget cached aggregates another member may change from now on.
        async with self.owner.batch_lock:
            self.owner.decider.drop_cache()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        async with self.owner.batch_lock:
            self.owner.decider.drop_cache()
        if set(assigned):
            self.owner.assigned.set()


class CommandConsumer:
    """Usage: `task = asyncio.create_task(consumer.run())`; later `consumer.request_stop()`
    and `await task` (the current batch is finished and committed first)."""

    def __init__(
        self,
        settings: Settings,
        decider: Decider,
        *,
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        consumer_options: Mapping[str, object] | None = None,
    ) -> None:
        self.settings = settings
        self.decider = decider
        self.topics = settings.topics
        self.consumer_options = dict(consumer_options or {})
        self.stats = ConsumerStats()
        self.batch_lock = asyncio.Lock()
        self.assigned = asyncio.Event()  # set once partitions were assigned
        self._stopping = asyncio.Event()
        self._retry = Retry(initial_backoff_s, max_backoff_s)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        consumer = make_consumer(
            self.settings, group_id=self.settings.consumer_group, **self.consumer_options
        )
        producer = make_producer(self.settings)
        await producer.start()
        try:
            await consumer.start()
            self._consumer, self._producer = consumer, producer
            consumer.subscribe([self.topics.commands], listener=_Rebalance(self))
            while not self._stopping.is_set():
                await self._step(consumer, producer)
        finally:
            await consumer.stop()
            await producer.stop()
            self._consumer = self._producer = None

    async def _step(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        try:
            records = await consumer.getmany(
                timeout_ms=self.settings.command_batch_wait_ms,
                max_records=self.settings.command_batch_max,
            )
        except Exception as error:
            self._note_failure("Fetching commands failed", error)
            await self._retry.wait(self._stopping)
            return
        if not records:
            return
        batch = prepare_batch(records, max_bytes=self.settings.max_message_bytes)
        async with self.batch_lock:
            try:
                outcomes = await self._process(batch, consumer, producer)
            except Exception as error:
                self._note_failure("Batch failed; it will be processed again", error)
                rewind(consumer, batch.first_offsets)
                failed = True
            else:
                self._count(batch, outcomes)
                self._retry.succeeded()
                failed = False
        if failed:
            await self._retry.wait(self._stopping)

    async def _process(
        self, batch: Batch, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
    ) -> list[Outcome]:
        # The eventsourcing library is synchronous: keep it off the event loop.
        outcomes = await asyncio.to_thread(self.decider.decide, batch.items)
        await self._publish(producer, outcomes, batch.dead_letters)
        try:
            await consumer.commit(dict(batch.next_offsets))
        except CommitFailedError as error:
            # The group rebalanced: the partitions' new owner reads these records again
            # and gets the stored results back. Nothing to retry here.
            log.warning("Offsets not committed after a rebalance: %s", error)
        return outcomes

    async def _publish(
        self,
        producer: AIOKafkaProducer,
        outcomes: Sequence[Outcome],
        dead_letters: Sequence[KafkaRecord],
    ) -> None:
        # Send everything first (the producer batches), then wait for every delivery.
        deliveries: list[asyncio.Future[object]] = []
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
        results = await asyncio.gather(*deliveries, *waits, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

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

    def _count(self, batch: Batch, outcomes: Sequence[Outcome]) -> None:
        stats = self.stats
        stats.batches += 1
        stats.commands += len(outcomes)
        accepted = sum(1 for o in outcomes if o.result.outcome == "accepted")
        stats.accepted += accepted
        stats.rejected += len(outcomes) - accepted
        stats.dead_lettered += len(batch.dead_letters)

    def _note_failure(self, what: str, error: Exception) -> None:
        self._retry.failed(what, error)
        self.stats.retries = self._retry.failures
        self.stats.last_error = self._retry.last_error
