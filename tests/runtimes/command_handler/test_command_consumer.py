"""The command consumer end to end through the real broker: commands answered (accepted
and rejected), a repeated command id answered with identical bytes, a batch of bad
input answered and dead-lettered byte for byte, and a batch that fails once seen again
with nothing committed in between and nothing lost."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any
from uuid import UUID

import pytest
from aiokafka import TopicPartition

from contracts import CreatePipeline, StartPipeline
from contracts.cloudevents import KafkaRecord, encode_command
from contracts.envelope import CE_CAUSATIONID, CE_CORRELATIONID, CE_ID, CE_TYPE
from contracts.results import CommandAccepted, CommandRejected
from services.adapters.stores import open_command_store
from services.runtimes.command_handler import CommandConsumer
from services.service_layer.decider import Decider
from services.service_layer.handlers import HANDLERS
from tests.runtimes.command_handler.consumer_support import (
    FlakyDecider,
    by_command_id,
    header,
    producer_for,
    read_topic,
    result_of,
    running,
    send_all,
    topics_for,
)
from tests.waiting import eventually

pytestmark = pytest.mark.broker


def ce_id(record: KafkaRecord) -> str:
    found = record.header(CE_ID)
    assert found is not None
    return found


def with_headers(record: KafkaRecord, **changes: str | None) -> KafkaRecord:
    """The record with headers replaced (a value of None removes the header)."""
    headers = [(k, v) for k, v in record.headers if k not in changes]
    headers += [(k, v.encode()) for k, v in changes.items() if v is not None]
    return dataclasses.replace(record, headers=headers)


async def test_commands_are_answered_and_a_repeat_gets_identical_bytes(
    kafka_bootstrap: str, store_url: str
) -> None:
    settings = await topics_for(kafka_bootstrap, store_url)
    topics = settings.topics
    create = encode_command(CreatePipeline(name="p1"), correlation_id="conversation-1")
    start = encode_command(StartPipeline(pipeline_name="p1"))
    ghost = encode_command(StartPipeline(pipeline_name="ghost"))
    duplicate = encode_command(CreatePipeline(name="p1"))
    sent = [create, start, ghost, duplicate]
    with open_command_store(store_url) as store:
        consumer = CommandConsumer(settings, Decider(store, HANDLERS))
        async with running(consumer), producer_for(settings) as producer:
            await send_all(producer, topics.commands, sent)
            first = by_command_id(await read_topic(settings, topics.command_results, len(sent)))
            assert set(first) == {ce_id(r) for r in sent}

            await send_all(producer, topics.commands, [start])
            again = by_command_id(await read_topic(settings, topics.command_results, 5))
            # The counter moves once the batch is committed.
            await eventually(lambda: consumer.stats.commands == 5, "the repeat to be counted")
        stats = consumer.stats
        created = result_of(first[ce_id(create)][0])
        assert isinstance(created, CommandAccepted)
        stored = store.repository.get(UUID(str(created.aggregate_id)))

    assert (stats.commands, stats.accepted, stats.rejected) == (5, 3, 2)
    create_result = first[ce_id(create)][0]
    assert header(create_result, CE_CORRELATIONID) == "conversation-1"
    assert header(create_result, CE_CAUSATIONID) == ce_id(create)
    assert created.http_status == 201
    started = result_of(first[ce_id(start)][0])
    assert isinstance(started, CommandAccepted)
    assert started.aggregate_id == created.aggregate_id
    assert header(first[ce_id(start)][0], CE_CORRELATIONID) == ce_id(start)

    unknown = result_of(first[ce_id(ghost)][0])
    assert isinstance(unknown, CommandRejected)
    assert (unknown.error_code, unknown.http_status) == ("UnknownPipelineName", 404)
    assert unknown.details == {"pipeline_name": "ghost"}
    taken = result_of(first[ce_id(duplicate)][0])
    assert isinstance(taken, CommandRejected)
    assert (taken.error_code, taken.http_status) == ("DuplicateName", 409)

    repeats = again[ce_id(start)]
    assert len(repeats) == 2
    assert repeats[1].value == repeats[0].value
    # The repeat had no effect: the pipeline is still at the version the start left it.
    assert stored.version == started.aggregate_version


async def test_one_batch_of_bad_input_is_answered_and_dead_lettered_byte_for_byte(
    kafka_bootstrap: str, sqlite_url: str
) -> None:
    settings = await topics_for(kafka_bootstrap, sqlite_url, partitions=1, max_message_bytes=2048)
    topics = settings.topics
    create = encode_command(CreatePipeline(name="m1"))
    start = encode_command(StartPipeline(pipeline_name="m1"))
    schema = dataclasses.replace(encode_command(CreatePipeline(name="m2")), value=b'{"name": ""}')
    unknown = with_headers(encode_command(StartPipeline(pipeline_name="m1")), ce_type="Launch")
    not_json = dataclasses.replace(
        encode_command(StartPipeline(pipeline_name="m1")), value=b"\xff{ not json"
    )
    no_type = with_headers(encode_command(StartPipeline(pipeline_name="m1")), ce_type=None)
    bare = KafkaRecord(key=b"k", value=b"hello", headers=[])
    oversized = encode_command(CreatePipeline(name="big", description="x" * 4096))
    # (record, DLQ reason or None for a valid command, expected result code)
    cases: list[tuple[KafkaRecord, str | None, str | None]] = [
        (create, None, None),
        (schema, "CommandSchemaViolation", "CommandSchemaViolation"),
        (unknown, "UnknownCommandType", "UnknownCommandType"),
        (not_json, "MalformedMessage", "MalformedMessage"),
        (no_type, "MissingCommandType", "MissingCommandType"),
        (bare, "MissingCommandType", "MissingCommandType"),
        (oversized, "MessageTooLarge", "MessageTooLarge"),
        (start, None, None),
    ]
    bad = [case for case in cases if case[1] is not None]
    with open_command_store(sqlite_url) as store:
        consumer = CommandConsumer(settings, Decider(store, HANDLERS))
        async with producer_for(settings) as producer:
            # Everything is on the topic before the consumer starts: one batch.
            positions = await send_all(producer, topics.commands, [c[0] for c in cases])
            async with running(consumer):
                results = by_command_id(
                    await read_topic(settings, topics.command_results, len(cases))
                )
                dead = await read_topic(settings, topics.commands_dlq, len(bad))
        stats = consumer.stats

    assert (stats.batches, stats.commands, stats.dead_lettered) == (1, len(cases), len(bad))
    offsets = {
        id(record): meta.offset for (record, _, _), meta in zip(cases, positions, strict=True)
    }
    dead_by_offset = {int(header(d, "dlq_original_offset") or -1): d for d in dead}
    assert len(dead_by_offset) == len(bad)
    for record, reason, code in cases:
        offset = offsets[id(record)]
        command_id = record.header(CE_ID) or f"{topics.commands}:0:{offset}"
        [answer] = results[command_id]
        result = result_of(answer)
        if reason is None:
            assert isinstance(result, CommandAccepted), result
            assert offset not in dead_by_offset
            continue
        assert isinstance(result, CommandRejected)
        assert result.error_code == code
        assert result.http_status == (413 if code == "MessageTooLarge" else 400)
        assert result.command_type == record.header(CE_TYPE)
        letter = dead_by_offset[offset]
        assert (letter.key, letter.value) == (record.key, record.value)
        assert list(letter.headers[: len(record.headers)]) == record.headers
        assert header(letter, "dlq_error_code") == reason
        assert header(letter, "dlq_original_topic") == topics.commands
        assert header(letter, "dlq_original_partition") == "0"
    created = result_of(results[ce_id(create)][0])
    started = result_of(results[ce_id(start)][0])
    assert isinstance(created, CommandAccepted) and isinstance(started, CommandAccepted)
    assert started.aggregate_id == created.aggregate_id
    assert (started.aggregate_version or 0) > (created.aggregate_version or 0)


async def test_a_type_header_that_is_not_utf8_is_dead_lettered_once_and_the_batch_commits(
    kafka_bootstrap: str, sqlite_url: str
) -> None:
    """Found by the chaos harness: counting the dead letter decoded its `ce_type`, which
    raised, so the batch never committed and was decided again every retry, forever."""
    settings = await topics_for(kafka_bootstrap, sqlite_url, partitions=1)
    topics = settings.topics
    bad = encode_command(CreatePipeline(name="u1"))
    bad = dataclasses.replace(
        bad, headers=[(k, b"\xff\xfe\xfd" if k == CE_TYPE else v) for k, v in bad.headers]
    )
    good = encode_command(CreatePipeline(name="u2"))
    with open_command_store(sqlite_url) as store:
        consumer = CommandConsumer(settings, Decider(store, HANDLERS))
        async with producer_for(settings) as producer:
            await send_all(producer, topics.commands, [bad, good])
            async with running(consumer):
                results = by_command_id(await read_topic(settings, topics.command_results, 2))
                await read_topic(settings, topics.commands_dlq, 1)
                await asyncio.sleep(1.0)  # a batch that failed would be retried by now
        stats = consumer.stats
    assert (stats.batches, stats.commands, stats.dead_lettered) == (1, 2, 1)
    assert isinstance(result_of(results[ce_id(good)][0]), CommandAccepted)
    assert isinstance(result_of(results[ce_id(bad)][0]), CommandRejected)


async def test_a_batch_that_fails_once_is_seen_again_and_nothing_is_lost(
    kafka_bootstrap: str, store_url: str
) -> None:
    settings = await topics_for(kafka_bootstrap, store_url)
    topics = settings.topics
    names = [f"flaky-{i}" for i in range(6)]
    sent = [encode_command(CreatePipeline(name=n)) for n in names]
    sent += [encode_command(StartPipeline(pipeline_name=n)) for n in names]
    loop = asyncio.get_running_loop()
    holder: dict[str, CommandConsumer] = {}

    def committed_offsets() -> dict[int, Any]:
        # Runs in the decider's thread while the event loop is free: ask the broker.
        kafka = holder["consumer"].engine.consumer
        assert kafka is not None
        tps = [TopicPartition(topics.commands, p) for p in range(settings.partitions)]
        return {
            tp.partition: asyncio.run_coroutine_threadsafe(kafka.committed(tp), loop).result(10)
            for tp in tps
        }

    with open_command_store(store_url) as store:
        decider = FlakyDecider(store, HANDLERS, failures=1, on_retry=committed_offsets)
        consumer = CommandConsumer(settings, decider, initial_backoff_s=0.1)
        holder["consumer"] = consumer
        async with producer_for(settings) as producer:
            await send_all(producer, topics.commands, sent)
            async with running(consumer):
                await read_topic(settings, topics.command_results, len(sent))
        records = await read_topic(settings, topics.command_results, len(sent))
    results = by_command_id(records)

    assert len(decider.calls) >= 2
    failed, retried = decider.calls[0], decider.calls[1]
    assert set(failed) <= set(retried)  # the same messages again
    assert decider.seen_on_retry == [dict.fromkeys(range(settings.partitions))]
    assert consumer.stats.retries == 1
    assert consumer.stats.last_error is not None and "OperationalError" in consumer.stats.last_error
    assert len(records) == len(sent)
    assert set(results) == {ce_id(r) for r in sent}
    outcomes = [result_of(rs[0]) for rs in results.values()]
    assert all(isinstance(o, CommandAccepted) for o in outcomes), outcomes
