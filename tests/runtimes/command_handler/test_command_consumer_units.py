"""The consumer's pure parts without a broker: how records become items and DLQ records,
the offsets a batch spans, and what the Kafka client builders refuse."""

from __future__ import annotations

import dataclasses

import pytest
from aiokafka import TopicPartition

from contracts import CreatePipeline, StartPipeline
from contracts.cloudevents import KafkaRecord, encode_command
from contracts.envelope import CE_ID
from contracts.results import CommandRejected
from services.adapters.kafka.clients import (
    client_options,
    make_consumer,
    make_producer,
    max_record_bytes,
)
from services.adapters.kafka.embedded_broker import embedded_tuning
from services.runtimes.command_handler import _without_value, decode_record, prepare_batch
from services.settings import Settings
from tests.adapters.kafka.fakes import FakeRecord

TOPIC = "unit.commands"


def as_consumed(record: KafkaRecord, partition: int = 0, offset: int = 0) -> FakeRecord:
    return FakeRecord(TOPIC, partition, offset, record.key, record.value, record.headers)


def test_a_valid_command_becomes_an_item_and_nothing_is_dead_lettered() -> None:
    sent = encode_command(CreatePipeline(name="p"), correlation_id="c-1")
    item, dead = decode_record(as_consumed(sent), max_bytes=4096)
    assert dead is None
    assert item is not None and item.rejected is None
    assert (item.command_id, item.correlation_id) == (sent.header(CE_ID), "c-1")
    assert item.command == CreatePipeline(name="p")


def test_a_bad_command_with_an_id_is_answered_and_dead_lettered() -> None:
    sent = dataclasses.replace(
        encode_command(StartPipeline(pipeline_name="p"), correlation_id="c-2"), value=b"[1]"
    )
    item, dead = decode_record(as_consumed(sent, partition=2, offset=7), max_bytes=4096)
    assert item is not None and isinstance(item.rejected, CommandRejected)
    assert item.command is None
    assert (item.command_id, item.correlation_id) == (sent.header(CE_ID), "c-2")
    assert item.rejected.error_code == "MalformedMessage"
    assert item.rejected.command_type == "StartPipeline"
    assert dead is not None
    assert (dead.key, dead.value) == (sent.key, sent.value)
    assert dead.header("dlq_original_partition") == "2"
    assert dead.header("dlq_original_offset") == "7"


def test_a_message_without_headers_is_answered_under_its_position() -> None:
    item, dead = decode_record(FakeRecord(TOPIC, 1, 42, None, b"hello"), max_bytes=4096)
    assert item is not None and item.rejected is not None
    assert item.command_id == f"{TOPIC}:1:42"
    assert item.rejected.error_code == "MissingCommandType"
    assert dead is not None and dead.value == b"hello" and dead.key == b""


def test_a_batch_spans_first_to_last_offset_per_partition() -> None:
    good = encode_command(CreatePipeline(name="p"))
    bad = dataclasses.replace(good, value=b"nope")
    records = {
        TopicPartition(TOPIC, 0): [as_consumed(good, 0, 5), as_consumed(bad, 0, 6)],
        TopicPartition(TOPIC, 1): [as_consumed(good, 1, 9)],
        TopicPartition(TOPIC, 2): [],
    }
    batch = prepare_batch(records, max_bytes=4096)
    assert batch.first_offsets == {TopicPartition(TOPIC, 0): 5, TopicPartition(TOPIC, 1): 9}
    assert batch.next_offsets == {TopicPartition(TOPIC, 0): 7, TopicPartition(TOPIC, 1): 10}
    assert len(batch.items) == 3
    assert [i.rejected is None for i in batch.items] == [True, False, True]
    assert len(batch.dead_letters) == 1


def test_an_unpublishable_dead_letter_keeps_its_reasons_and_drops_its_value() -> None:
    letter = KafkaRecord(key=b"k", value=b"x" * 100, headers=[("dlq_error_code", b"E")])
    smaller = _without_value(letter)
    assert (smaller.key, smaller.value) == (b"k", b"")
    assert smaller.header("dlq_error_code") == "E"
    assert smaller.header("dlq_value_dropped_bytes") == "100"


async def test_clients_use_manual_commits_and_no_idempotence() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", max_message_bytes=4096)
    producer = make_producer(settings)
    consumer = make_consumer(settings, group_id="g")
    try:
        # No transaction manager: neither idempotent nor transactional.
        assert producer._txn_manager is None
        assert consumer._enable_auto_commit is False
        assert consumer._auto_offset_reset == "earliest"
    finally:
        await producer.stop()
        await consumer.stop()
    assert max_record_bytes(settings) > 2 * settings.max_message_bytes
    with pytest.raises(ValueError, match="Idempotent"):
        make_producer(settings, enable_idempotence=True)


def test_no_bootstrap_server_is_refused() -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        client_options(Settings(kafka_bootstrap_servers=None))


def test_security_options_reach_the_clients() -> None:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["ssl_context"] is not None


async def test_the_fetch_wait_setting_reaches_every_consumer_unless_overridden() -> None:
    default = make_consumer(Settings(kafka_bootstrap_servers="127.0.0.1:1"), group_id=None)
    short = Settings(kafka_bootstrap_servers="127.0.0.1:1", kafka_fetch_wait_ms=50)
    configured = make_consumer(short, group_id=None)
    overridden = make_consumer(short, group_id=None, fetch_max_wait_ms=7)
    try:
        # Unset: aiokafka's own default, right for Apache Kafka (it answers on data).
        assert default._fetch_max_wait_ms == 500
        assert configured._fetch_max_wait_ms == 50
        assert overridden._fetch_max_wait_ms == 7
    finally:
        for consumer in (default, configured, overridden):
            await consumer.stop()


async def test_the_session_setting_reaches_group_consumers_only() -> None:
    short = Settings(kafka_bootstrap_servers="127.0.0.1:1", kafka_session_timeout_ms=2000)
    grouped = make_consumer(short, group_id="g")
    groupless = make_consumer(short, group_id=None)
    default = make_consumer(Settings(kafka_bootstrap_servers="127.0.0.1:1"), group_id="g")
    try:
        assert (grouped._session_timeout_ms, grouped._heartbeat_interval_ms) == (2000, 666)
        # Unset, or a reader without a group: aiokafka's own 10 s and 3 s.
        assert (default._session_timeout_ms, default._heartbeat_interval_ms) == (10_000, 3000)
        assert groupless._session_timeout_ms == 10_000
    finally:
        for consumer in (grouped, groupless, default):
            await consumer.stop()


def test_pipelines_dev_tunes_what_the_user_left_unset_for_the_embedded_broker() -> None:
    tuned = embedded_tuning(Settings(kafka_fetch_wait_ms=30))
    assert "kafka_fetch_wait_ms" not in tuned  # the user's own value stays
    assert tuned == {
        "kafka_idle_fetch_wait_ms": 250,
        "kafka_session_timeout_ms": 2000,
        "orchestrator_session_timeout_ms": 2000,
    }
