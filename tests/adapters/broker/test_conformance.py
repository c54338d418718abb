"""What the broker does that later code might lean on without knowing (docs/architecture.md,
"The embedded broker and its quirks").

Quirks of the embedded broker are pinned so a Tansu upgrade that changes them is noticed;
they are skipped on other brokers. Generic behaviour runs on any broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from services.adapters.kafka.embedded_broker import (
    BrokerStartError,
    EmbeddedBroker,
    create_topics,
    reached_cluster_id,
)
from tests.infra.kafka import BrokerKind, read_partitions, running, send_all

pytestmark = pytest.mark.broker

APACHE_KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


@pytest.fixture
def embedded_only(broker_kind: BrokerKind) -> None:
    if broker_kind != "embedded":
        pytest.skip(f"a quirk of the embedded broker; the session broker is {broker_kind}")


async def produce_one_batch(bootstrap: str, topic: str, values: list[bytes]) -> None:
    async with running(AIOKafkaProducer(bootstrap_servers=bootstrap)) as producer:
        batch = producer.create_batch()
        for value in values:
            assert batch.append(key=None, value=value, timestamp=None) is not None
        batch.close()
        await (await producer.send_batch(batch, topic, partition=0))


@pytest.mark.usefixtures("embedded_only")
async def test_end_offset_is_last_batch_base_offset_plus_one(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("end-offsets")
    await create_topics(kafka_bootstrap, [topic])
    values = [f"v{i}".encode() for i in range(5)]
    await produce_one_batch(kafka_bootstrap, topic, values)

    tp = TopicPartition(topic, 0)
    async with running(AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)) as consumer:
        end_offsets = await consumer.end_offsets([tp])
    records = await read_partitions(kafka_bootstrap, topic, expected=len(values))

    # Apache Kafka answers 5; never count records or lag by end offsets.
    assert end_offsets[tp] == 1
    assert [r.value for r in records] == values
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]


@pytest.mark.usefixtures("embedded_only")
async def test_offset_for_a_time_past_every_record_is_offset_zero_without_a_timestamp(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("offsets-for-times")
    await create_topics(kafka_bootstrap, [topic])
    await produce_one_batch(kafka_bootstrap, topic, [b"a", b"b", b"c"])

    tp = TopicPartition(topic, 0)
    far_future_ms = 2**62
    async with running(AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)) as consumer:
        found = await consumer.offsets_for_times({tp: far_future_ms})

    # Apache Kafka answers None ("no record that recent"); read literally, this answer
    # would replay the partition from the start (services/adapters/kafka/positions.py).
    at = found[tp]
    assert at is not None
    assert (at.offset, at.timestamp) == (0, -1)


@pytest.mark.usefixtures("embedded_only")
async def test_a_waiting_fetch_is_answered_only_when_its_wait_is_over(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("fetch-wait")
    await create_topics(kafka_bootstrap, [topic])
    tp = TopicPartition(topic, 0)
    fetch_wait_ms = 4000
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, fetch_max_wait_ms=fetch_wait_ms)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        assert await consumer.getmany(timeout_ms=300) == {}  # a fetch now waits on the broker
        await produce_one_batch(kafka_bootstrap, topic, [b"arrived"])

        # Apache Kafka answers the waiting fetch as soon as the record is there; Tansu
        # holds it for the whole fetch wait (docs/architecture.md, Settings.kafka_fetch_wait_ms).
        held = await consumer.getmany(timeout_ms=fetch_wait_ms // 3)
        answered = await consumer.getmany(timeout_ms=3 * fetch_wait_ms)
    finally:
        await consumer.stop()

    assert held == {}
    assert [r.value for r in answered[tp]] == [b"arrived"]


async def _join_seconds(bootstrap: str, topic: str, session_timeout_ms: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"join-{uuid.uuid4().hex[:8]}",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=session_timeout_ms // 3,
        fetch_max_wait_ms=10,
    )
    begin = time.perf_counter()
    await consumer.start()
    try:
        consumer.subscribe([topic])
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=20)
        return time.perf_counter() - begin
    finally:
        await consumer.stop()


@pytest.mark.usefixtures("embedded_only")
async def test_a_group_join_is_held_for_about_half_the_session(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    """Measured: 10 s session (aiokafka's default) 5.03 s, 6 s 3.03 s, 2 s 1.03 s — why
    `pipelines dev` gives groups a 2 s session (EMBEDDED_SESSION_TIMEOUT_MS). Apache Kafka
    answers a lone member's join at once (after group.initial.rebalance.delay.ms)."""
    topic = topic_name("join")
    await create_topics(kafka_bootstrap, [topic])
    short = await _join_seconds(kafka_bootstrap, topic, 2000)
    default = await _join_seconds(kafka_bootstrap, topic, 10_000)
    assert 0.8 < short < 3.0
    assert default > 4.0


@pytest.mark.usefixtures("embedded_only")
async def test_idempotent_producer_is_refused(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("idempotent")
    await create_topics(kafka_bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    try:
        with pytest.raises(KafkaError):
            await asyncio.wait_for(producer.start(), 20)
            await asyncio.wait_for(producer.send_and_wait(topic, b"x"), 20)
    finally:
        await producer.stop()


@pytest.mark.usefixtures("embedded_only")
async def test_message_above_apache_kafka_limit_is_accepted(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("oversized")
    await create_topics(kafka_bootstrap, [topic])
    big = bytes(range(256)) * (2 * APACHE_KAFKA_DEFAULT_MAX_MESSAGE_BYTES // 256)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        max_request_size=4 * APACHE_KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    )
    async with running(producer):
        metadata = await producer.send_and_wait(topic, big, partition=0)

    (record,) = await read_partitions(
        kafka_bootstrap,
        topic,
        expected=1,
        max_partition_fetch_bytes=8 * APACHE_KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
        fetch_max_bytes=8 * APACHE_KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    )

    # The broker enforces no limit, so the command handler must enforce its own.
    assert metadata.offset == 0
    assert record.value == big


async def test_second_broker_on_a_taken_port_is_detected() -> None:
    """Tansu panics on a taken port; our wrapper must not mistake the first broker for it."""
    async with EmbeddedBroker() as first:
        second = EmbeddedBroker(port=first.port, start_timeout_s=10)
        with pytest.raises(BrokerStartError, match=str(first.port)):
            await second.astart()

        assert not second.running
        assert first.running
        assert await reached_cluster_id(first.bootstrap_servers) == first.cluster_id
    assert not first.running


async def test_committed_offsets_survive_a_consumer_restart(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("committed")
    group = topic_name("group")
    await create_topics(kafka_bootstrap, [topic])
    await send_all(
        kafka_bootstrap, topic, [(None, f"m{i}".encode(), []) for i in range(6)], partition=0
    )
    tp = TopicPartition(topic, 0)

    def group_consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The embedded broker waits out the rebalance timeout on a join and the departed
            # member's session on a rejoin: keep both short (6 s is Kafka's minimum session).
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
            rebalance_timeout_ms=3000,
        )

    async with running(group_consumer()) as first:
        seen = []
        while len(seen) < 3:
            records = await asyncio.wait_for(first.getone(), 30)
            seen.append(records.value)
        await first.commit({tp: 3})  # processed m0..m2; m3.. must come again

    async with running(group_consumer()) as second:
        resumed = await asyncio.wait_for(second.getone(), 30)
        committed = await second.committed(tp)

    assert seen == [b"m0", b"m1", b"m2"]
    assert committed == 3
    assert (resumed.offset, resumed.value) == (3, b"m3")


async def test_earliest_reset_sees_everything_across_partitions(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("earliest")
    await create_topics(kafka_bootstrap, [topic], partitions=3)
    sent = {f"k{i}".encode(): f"v{i}".encode() for i in range(30)}
    await send_all(kafka_bootstrap, topic, [(k, v, []) for k, v in sent.items()], linger_ms=5)

    records = await read_partitions(kafka_bootstrap, topic, range(3), expected=len(sent))

    assert {r.key: r.value for r in records} == sent
    assert len(records) == len(sent)
    assert len({r.partition for r in records}) > 1  # keys spread, each key on one partition


async def test_headers_round_trip_byte_for_byte(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("headers")
    await create_topics(kafka_bootstrap, [topic])
    headers = [
        ("binary", bytes(range(256))),
        ("empty", b""),
        ("dup", b"first"),
        ("dup", b"second"),
        ("ünïcode-kéy", "välue".encode()),
    ]
    await send_all(kafka_bootstrap, topic, [(None, b"payload", headers)], partition=0)

    (record,) = await read_partitions(kafka_bootstrap, topic, expected=1)

    assert list(record.headers) == headers


async def test_gzip_compressed_batches_decompress(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("gzip")
    await create_topics(kafka_bootstrap, [topic])
    values = [(b"compressible " * 100) + str(i).encode() for i in range(20)]
    gzip = {"compression_type": "gzip", "linger_ms": 20}
    await send_all(kafka_bootstrap, topic, [(None, v, []) for v in values], partition=0, **gzip)

    records = await read_partitions(kafka_bootstrap, topic, expected=len(values))

    assert [r.value for r in records] == values
