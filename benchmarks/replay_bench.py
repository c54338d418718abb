"""Replay benchmark: prints figures, asserts nothing.

One config with one pass-through route (`inbound.prefetch` 500), the roles `handler`,
`relay`, `projector` and `orchestrator` in a process of their own (`pipelines serve`) on
the embedded broker, with what `pipelines dev` sets for it. Timed from the command
published to the child's success on the events topic, as messages per second:

  (a) raw            produce N route-message-sized records and consume them all back
                     (one producer, one assigned consumer): the broker's own rate;
  (b) manual         a manual replay of N payloads to the route (the relay's replay
                     publisher expects and publishes them in batches; the route consumes,
                     stores and forwards each);
  (c) storage        a storage replay of what (b)'s child consumed: the same N read back
                     from the message store.

    uv run --frozen python -m benchmarks.replay_bench --messages 5000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from benchmarks.execution_latency import Finishes, events_reader, orchestrator_alive
from benchmarks.latency_support import client_bus, guarded, running_roles
from contracts.command_base import Command
from contracts.config_commands import CreateConfig, RunConfig
from contracts.replay_commands import ReplayExecution
from contracts.statuses import ReplaySource
from services.adapters.kafka.clients import ensure_topics, make_consumer, make_producer
from services.adapters.kafka.command_bus import CommandBus
from services.adapters.kafka.embedded_broker import EmbeddedBroker, create_topics, embedded_tuning
from services.settings import Settings

ROLES = ["handler", "relay", "projector", "orchestrator"]
TIMEOUT_S = 600.0
PAYLOAD = {"order_id": "A-00000", "customer": "ACME", "amount": 42}


def document(prefix: str) -> dict[str, Any]:
    return {
        "version": "1",
        "routes": {
            "hop": {
                "name": "One hop",
                "inbound": {"topic": f"{prefix}.in", "prefetch": 500},
                "adapters": [{"type": "pass_through"}],
                "outbound": [f"{prefix}.out"],
            }
        },
        "init_message": {"route": "hop", "payload": PAYLOAD},
    }


async def raw_rate(settings: Settings, count: int) -> float:
    assert settings.kafka_bootstrap_servers
    topic = f"{settings.topic_prefix}.raw"
    await create_topics(settings.kafka_bootstrap_servers, [topic], 1)
    producer = make_producer(settings)
    consumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=10)
    value = b"x" * 300  # about a route message with its headers
    tp = TopicPartition(topic, 0)
    await producer.start()
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        await consumer.position(tp)
        start = time.perf_counter()
        acks = [await producer.send(topic, value) for _ in range(count)]
        await asyncio.gather(*acks)
        seen = 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            seen += sum(len(records) for records in batches.values())
        return count / (time.perf_counter() - start)
    finally:
        await producer.stop()
        await consumer.stop()


async def timed(bus: CommandBus, finishes: Finishes, command: Command, child: uuid.UUID) -> float:
    """Seconds from `command` published to `child`'s terminal event (success, or it says)."""
    start = time.perf_counter()
    result = await bus.send(command, timeout_s=TIMEOUT_S)
    assert result.outcome == "accepted", result
    status, at = await asyncio.wait_for(finishes.finished(child), TIMEOUT_S)
    if status != "success":
        print(f"the replay {child} ended {status}", file=sys.stderr)
    return at - start


async def measure(bootstrap: str, args: argparse.Namespace, folder: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        kafka_fetch_wait_ms=10,
        topic_prefix=f"replay.{tag}",
        consumer_group=f"replay-{tag}",
        event_store_url=args.pg_url or f"sqlite:///{folder / tag}.db",
        execution_storage_dir=str(folder / tag / "executions"),
        message_store=args.message_store,
        replay_max_messages=max(args.messages, 1),
    )
    settings = settings.model_copy(update=embedded_tuning(settings))
    raw = await raw_rate(settings, args.messages)
    await ensure_topics(settings)
    payloads = [{**PAYLOAD, "order_id": f"A-{i:05d}"} for i in range(args.messages)]
    async with events_reader(settings) as reader, client_bus(settings) as bus:
        finishes = Finishes(reader)
        try:
            async with running_roles(settings, ROLES) as roles:
                await guarded(orchestrator_alive(settings), roles)
                create = CreateConfig(name=f"replay-{tag}", document=document(tag))
                assert (await guarded(bus.send(create, timeout_s=TIMEOUT_S), roles)).outcome == (
                    "accepted"
                )
                parent = RunConfig(config_id=create.config_id, skip_init_message=True)
                assert (await guarded(bus.send(parent, timeout_s=TIMEOUT_S), roles)).outcome == (
                    "accepted"
                )
                manual = ReplayExecution(
                    parent=str(parent.execution_id),
                    replay_source=ReplaySource.MANUAL,
                    to_route="hop",
                    messages=payloads,
                )
                manual_s = await guarded(timed(bus, finishes, manual, manual.execution_id), roles)
                storage = ReplayExecution(parent=str(manual.execution_id), from_stage="hop")
                storage_s = await guarded(
                    timed(bus, finishes, storage, storage.execution_id), roles
                )
        finally:
            finishes.task.cancel()
    store = "PostgreSQL" if args.pg_url else "SQLite"
    print(f"\n{args.messages} messages, event store {store}, message store {args.message_store}")
    print(f"{'figure':44} {'msg/s':>9} {'of raw':>7}")
    for label, rate in (
        ("(a) raw produce + consume", raw),
        ("(b) manual replay, published -> completed", args.messages / manual_s),
        ("(c) storage replay, published -> completed", args.messages / storage_s),
    ):
        print(f"{label:44} {rate:9.0f} {rate / raw:7.3f}")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    async with EmbeddedBroker() as broker:
        print(f"replay throughput on the embedded broker ({broker.bootstrap_servers})")
        with tempfile.TemporaryDirectory(prefix="replay-bench-") as folder:
            await measure(broker.bootstrap_servers, args, Path(folder))


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Replay benchmark: prints figures.")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--message-store", choices=["files", "database"], default="database")
    parser.add_argument("--pg-url", default=None, help="a PostgreSQL event store instead")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(parse()))
