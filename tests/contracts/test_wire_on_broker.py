"""Encoded records survive a real Kafka-compatible broker and decode to what was sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from contracts import decode_command, encode_command
from services.adapters.kafka.embedded_broker import create_topics
from tests.contracts.samples import SAMPLES
from tests.infra.kafka import read_partitions, send_all

pytestmark = pytest.mark.broker


async def test_every_command_crosses_the_broker(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("commands")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    records = [encode_command(cmd, command_id=f"c{i}") for i, (cmd, _) in enumerate(SAMPLES)]
    await send_all(kafka_bootstrap, topic, [(r.key, r.value, r.headers) for r in records])

    received = await read_partitions(kafka_bootstrap, topic, expected=len(records))

    assert [m.key for m in received] == [r.key for r in records]
    decoded = [decode_command(m.value, m.headers) for m in received]
    assert [d.command for d in decoded] == [cmd for cmd, _ in SAMPLES]
    assert [d.command_id for d in decoded] == [f"c{i}" for i in range(len(SAMPLES))]
