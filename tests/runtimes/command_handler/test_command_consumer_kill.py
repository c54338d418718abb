"""A consumer process SIGKILLed mid-stream (after storing a batch, before answering it or
committing) and restarted: every command has exactly one effect and at least one result,
and repeated results carry identical bytes.

The expected effects come from deciding the same commands in-process on a fresh store:
per pipeline, the stored event types must be the same list, and per command the outcome
must be the same."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import Command, CreatePipeline, StartPipeline, StopPipeline
from contracts.cloudevents import KafkaRecord, decode_command, encode_command
from contracts.envelope import CE_ID
from contracts.results import RESULTS, CommandResult
from domain.name_index import NameIndex, name_index_id
from services.adapters.command_records import PostgresCommandRecorder, SQLiteCommandRecorder
from services.adapters.eventstore import EventStore
from services.adapters.stores import open_command_store
from services.service_layer.decider import Decider, Item
from services.service_layer.handlers import HANDLERS
from services.settings import Settings
from tests.runtimes.command_handler.consumer_process import KILL_AFTER_ENV
from tests.runtimes.command_handler.consumer_support import producer_for, send_all, topics_for

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[3]
PIPELINES = 10
CYCLES = 3
BATCH_MAX = 8
KILL_AFTER_BATCHES = 3


def workload() -> list[Command]:
    names = [f"kill-{i}" for i in range(PIPELINES)]
    commands: list[Command] = [CreatePipeline(name=n) for n in names]
    for _ in range(CYCLES):
        commands += [StartPipeline(pipeline_name=n) for n in names]
        commands += [StopPipeline(pipeline_name=n, force=True) for n in names]
    commands.append(StartPipeline(pipeline_name="never-created"))
    return commands


def spawn(settings: Settings, kill_after: int = 0) -> subprocess.Popen[bytes]:
    env = {**os.environ, KILL_AFTER_ENV: str(kill_after)}
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"PIPELINES_{name.upper()}"] = str(value)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.runtimes.command_handler.consumer_process"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
    )


async def collect_results(
    settings: Settings, wanted: set[str], timeout_s: float
) -> dict[str, list[bytes]]:
    """Every result record so far, by command id, until all `wanted` ids have one (or the
    time is up: the caller checks)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    values: dict[str, list[bytes]] = defaultdict(list)
    try:
        consumer.assign(
            [TopicPartition(settings.topics.command_results, p) for p in range(settings.partitions)]
        )
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not wanted <= set(values) and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    values[record.key.decode()].append(record.value)
    finally:
        await consumer.stop()
    return dict(values)


def processed_ids(store: EventStore, ids: Sequence[str]) -> set[str]:
    recorder = store.recorder
    assert isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder)
    return set(recorder.select_processed(ids))


def event_types_by_pipeline(store: EventStore, names: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in names:
        index = store.repository.get(name_index_id(name))
        assert isinstance(index, NameIndex) and index.pipeline_id is not None
        aggregate_ids: list[UUID] = [index.id, index.pipeline_id]
        found[name] = [
            stored.topic.rsplit(".", 1)[-1]
            for aggregate_id in aggregate_ids
            for stored in store.recorder.select_events(aggregate_id)
        ]
    return found


async def test_a_consumer_killed_mid_stream_and_restarted_has_exactly_one_effect_per_command(
    kafka_bootstrap: str, store_url: str, tmp_path: Path
) -> None:
    settings = await topics_for(kafka_bootstrap, store_url, command_batch_max=BATCH_MAX)
    records: list[KafkaRecord] = [encode_command(c) for c in workload()]
    ids = [r.header(CE_ID) or "" for r in records]
    async with producer_for(settings) as producer:
        await send_all(producer, settings.topics.commands, records)

    first = spawn(settings, kill_after=KILL_AFTER_BATCHES)
    assert await asyncio.to_thread(first.wait, 90) == -signal.SIGKILL
    answered_before_restart = await collect_results(settings, set(ids), timeout_s=2)
    with open_command_store(store_url) as store:
        stored_before_restart = processed_ids(store, ids)
    # Died mid-stream: some commands stored, one batch stored but never answered.
    assert 0 < len(stored_before_restart) < len(ids)
    assert stored_before_restart - set(answered_before_restart)

    second = spawn(settings)
    try:
        results = await collect_results(settings, set(ids), timeout_s=120)
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 30) == 0

    assert set(ids) <= set(results), "every command has a result"
    assert all(len(set(values)) == 1 for values in results.values()), "repeats are identical"

    # The reference: the same commands decided once, in order, on a fresh store.
    items = []
    for record in records:
        decoded = decode_command(record.value, record.headers)
        items.append(Item(decoded.command_id, decoded.correlation_id, command=decoded.command))
    with open_command_store(f"sqlite:///{tmp_path / 'reference.db'}") as reference:
        expected = {o.command_id: o.result for o in Decider(reference, HANDLERS).decide(items)}
        names = [f"kill-{i}" for i in range(PIPELINES)]
        expected_events = event_types_by_pipeline(reference, names)
    with open_command_store(store_url) as store:
        actual_events = event_types_by_pipeline(store, names)

    assert actual_events == expected_events
    for command_id in ids:
        got = decode_result_body(results[command_id][0])
        want = expected[command_id]
        assert (got.outcome, got.command_type) == (want.outcome, want.command_type)
        assert getattr(got, "error_code", None) == getattr(want, "error_code", None)


def decode_result_body(value: bytes) -> CommandResult:
    data = orjson.loads(value)
    kind = "CommandAccepted" if data["outcome"] == "accepted" else "CommandRejected"
    return RESULTS[kind].model_validate(data)
