"""What observability keeps in or reads from the event store's database, on SQLite and
PostgreSQL: the relay's backlog as a scrape shows it while the relay runs, and the trace
links the handler leaves for the relay; and the decider's log line, as JSON with the
command's ids."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Awaitable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from contracts.pipeline_commands import CreatePipeline
from services.adapters.command_records import recorder_env
from services.adapters.eventstore import EventStore, open_event_store
from services.adapters.kafka.embedded_broker import create_topics
from services.adapters.stores import open_command_store
from services.observability import logs
from services.observability.metrics import REGISTRY
from services.observability.trace_links import TraceLinks
from services.runtimes.relay import Relay
from services.service_layer.decider import Decider, Item
from tests.adapters.persistence.aggregates import Counter
from tests.waiting import eventually


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_event_store(store_url, extra_env=recorder_env(store_url)) as app:
        yield app


class GatedSender:
    """The real producer, each acknowledgement held until `open` is set."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.open = asyncio.Event()

    async def send(self, topic: str, **kwargs: Any) -> Awaitable[Any]:
        ack = await self.producer.send(topic, **kwargs)

        async def gated() -> Any:
            await self.open.wait()
            return await ack

        return asyncio.ensure_future(gated())


def backlog(name: str) -> float | None:
    return REGISTRY.get_sample_value("pipelines_relay_backlog_notifications", {"relay": name})


@pytest.mark.broker
async def test_the_relay_backlog_is_what_it_has_not_published(
    store: EventStore, kafka_bootstrap: str, topic_name: Any
) -> None:
    topic = topic_name("events")
    await create_topics(kafka_bootstrap, [topic], 1)
    counters = [Counter(name=f"c{i}") for i in range(3)]
    store.save(*counters)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=2)
    await producer.start()
    sender = GatedSender(producer)
    name = topic_name("relay")
    relay = Relay(store, sender, topic, name=name, poll_interval_s=0.02)
    published = REGISTRY.get_sample_value("pipelines_relay_published_notifications_total") or 0
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await eventually(lambda: backlog(name) == 3, "a backlog of three")
        sender.open.set()
        await eventually(lambda: backlog(name) == 0, "the backlog drained")
        assert relay.position == store.recorder.max_notification_id()
        after = REGISTRY.get_sample_value("pipelines_relay_published_notifications_total")
        assert after == published + 3
    finally:
        stop.set()
        await task
        await producer.stop()
    assert backlog(name) is None  # a stopped relay is no longer scraped


def test_trace_links_are_kept_until_forgotten(store_url: str) -> None:
    with TraceLinks(store_url) as links:
        links.save({"a:1": "00-aa-01-01", "a:2": "00-aa-02-01"})
        links.save({"a:2": "00-bb-02-01"})  # a retried batch's span wins
        assert links.find(["a:1", "a:2", "b:1"]) == {"a:1": "00-aa-01-01", "a:2": "00-bb-02-01"}
        links.forget(["a:1"])
        assert links.find(["a:1", "a:2"]) == {"a:2": "00-bb-02-01"}


def test_a_decision_logs_as_json_with_the_commands_ids(sqlite_url: str) -> None:
    def broken(command: object, context: object) -> Any:
        raise RuntimeError("the handler's bug")

    lines = io.StringIO()
    json_lines = logs.handler("json", lines)
    decider_log = logging.getLogger("services.service_layer.decider")
    decider_log.addHandler(json_lines)
    store = open_command_store(sqlite_url)
    try:
        decider = Decider(store, {CreatePipeline: broken})
        [outcome] = decider.decide(
            [Item("cmd-1", correlation_id="corr-1", command=CreatePipeline(name="p"))]
        )
    finally:
        decider_log.removeHandler(json_lines)
        store.close()

    assert outcome.result.outcome == "rejected"
    [line] = [json.loads(text) for text in lines.getvalue().splitlines()]
    assert line["level"] == "ERROR"
    assert line["message"] == "Handler for CreatePipeline raised"
    assert (line["command_id"], line["correlation_id"]) == ("cmd-1", "corr-1")
    assert "RuntimeError: the handler's bug" in line["exception"]
    assert "execution_id" not in line
