"""EmbeddedBroker's own contract: start, answer with its cluster id, stop; topic creation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.adapters.kafka.embedded_broker import (
    BrokerStartError,
    EmbeddedBroker,
    create_topics,
    reached_cluster_id,
)

pytestmark = pytest.mark.broker


def test_sync_context_manager_starts_and_stops_the_process() -> None:
    with EmbeddedBroker() as broker:
        assert broker.running
        process = broker._process
        assert process is not None
        assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
    assert not broker.running
    assert process.poll() is not None
    assert f"cluster id {broker.cluster_id}" in broker.log_path.read_text()


async def test_sync_start_works_inside_a_running_event_loop() -> None:
    broker = EmbeddedBroker().start()  # e.g. a CLI command that is already async
    try:
        assert await reached_cluster_id(broker.bootstrap_servers) == broker.cluster_id
    finally:
        await broker.astop()
    assert not broker.running


async def test_a_binary_that_exits_is_reported() -> None:
    broker = EmbeddedBroker(binary="/bin/false", start_timeout_s=5)

    with pytest.raises(BrokerStartError, match="exited"):
        await broker.astart()

    assert not broker.running


async def test_create_topics_is_idempotent(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    names = [topic_name("a"), topic_name("b")]

    await create_topics(kafka_bootstrap, names, partitions=3)
    await create_topics(kafka_bootstrap, [*names, names[0]], partitions=3)

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    assert {t["topic"]: len(t["partitions"]) for t in described} == dict.fromkeys(names, 3)
