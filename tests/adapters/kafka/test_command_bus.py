"""The command bus's results reader fetches only while a `send` waits: with nobody
waiting it sends the broker no fetches (its partitions paused, positions kept); a send
resumes it before it publishes, so its result cannot be missed."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contracts import CommandAccepted, StartPipeline
from contracts.cloudevents import encode_result
from services.adapters.kafka.clients import ensure_topics, make_producer
from services.adapters.kafka.command_bus import CommandBus, ResultTimeout
from services.settings import Settings
from tests.waiting import eventually

pytestmark = pytest.mark.broker


def settings_for(bootstrap: str) -> Settings:
    tag = uuid.uuid4().hex[:10]
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        kafka_fetch_wait_ms=10,
        topic_prefix=f"test.bus.{tag}",
        partitions=2,
    )


async def answer(settings: Settings, command_id: str) -> None:
    """The result the command handler would publish for `command_id`."""
    record = encode_result(
        CommandAccepted(command_id=command_id, command_type="StartPipeline", http_status=202)
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.command_results,
            value=record.value,
            key=record.key,
            headers=record.headers,
        )
    finally:
        await producer.stop()


async def test_the_results_reader_fetches_only_while_someone_waits(kafka_bootstrap: str) -> None:
    settings = settings_for(kafka_bootstrap)
    await ensure_topics(settings)
    bus = CommandBus(settings, source="tests", timeout_s=20)
    await bus.start(results=True)
    try:
        reader = bus._results
        assert reader is not None and reader.consumer is not None
        consumer = reader.consumer
        assigned = consumer.assignment()
        assert assigned and consumer.paused() == assigned  # nobody waits: no fetches

        command_id = str(uuid.uuid4())
        sending = asyncio.create_task(
            bus.send(StartPipeline(pipeline_name="p"), command_id, timeout_s=20)
        )
        await eventually(lambda: consumer.paused() == set(), "fetching while a send waits")
        await answer(settings, command_id)
        result = await sending
        assert result.command_id == command_id and result.outcome == "accepted"
        assert consumer.paused() == assigned  # nobody waits again

        with pytest.raises(ResultTimeout):  # a wait that ends unanswered pauses it too
            await bus.send(StartPipeline(pipeline_name="p"), timeout_s=0.3)
        assert consumer.paused() == assigned
    finally:
        await bus.stop()
