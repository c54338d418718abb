"""Route-runtime benchmark: prints figures, asserts nothing.

One run measures, on the same broker (and database for (b)):
  (a) a raw forwarder: a consumer group reads N messages in batches, produces each to an
      outbound topic, awaits the acknowledgements and commits — what any Kafka route
      costs before it does anything of its own;
  (b) one RouteWorker doing the same with a pass_through adapter: envelope decode, the
      execution lookup, the ledger (expected, consumed), the batch stored by the message
      store (`files`: one fsynced segment per execution and direction; `database`: rows in
      the event store's database, one transaction) and derived output ids, then the commit.
b/a is the figure to read: the price of exactly-once counting and stored messages per
route hop. Absolute numbers vary with the machine.

    uv run python -m benchmarks.route_bench --store sqlite --store postgres \
        --message-store files --message-store database --prefetch 500
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.bench import PG_DEFAULT, _External, store_url
from contracts.config_document import Inbound, RouteSpec
from contracts.route_messages import RouteMessage, encode_route_message, init_message_id
from services.adapters.eventstore import open_event_store
from services.adapters.kafka.embedded_broker import EmbeddedBroker, create_topics
from services.adapters.message_store import DatabaseMessageStore, FileMessageStore, MessageStore
from services.runtimes.orchestrator.execution_info import ExecutionInfo
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.route_worker import RouteWorker
from services.runtimes.routes.adapters import load_adapter_registry
from services.settings import Settings

PARTITIONS = 4
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300}


async def _publish(bootstrap: str, topic: str, executions: list[uuid.UUID], n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        acks = []
        for i in range(n):
            execution_id = executions[i % len(executions)]
            record = encode_route_message(
                RouteMessage(
                    id=init_message_id(execution_id) if i < len(executions) else uuid.uuid4(),
                    execution_id=execution_id,
                    route="init",
                    payload={"order": i, "note": "x" * 200},
                )
            )
            acks.append(
                await producer.send(topic, record.value, key=record.key, headers=record.headers)
            )
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def _drain(bootstrap: str, topic: str, n: int) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        seen = 0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()


async def raw_forwarder(bootstrap: str, n: int, executions: list[uuid.UUID]) -> float:
    inbound, outbound = (f"bench-route-{uuid.uuid4().hex[:8]}-{s}" for s in ("in", "out"))
    await create_topics(bootstrap, [inbound, outbound], partitions=PARTITIONS)
    await _publish(bootstrap, inbound, executions, n)
    consumer = AIOKafkaConsumer(
        inbound,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **FAST_GROUP,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        start = time.perf_counter()
        done = 0
        while done < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            acks = [
                await producer.send(outbound, r.value, key=r.key, headers=list(r.headers))
                for records in batch.values()
                for r in records
            ]
            await asyncio.gather(*acks)
            await consumer.commit()
            done += len(acks)
        return n / (time.perf_counter() - start)
    finally:
        await consumer.stop()
        await producer.stop()


async def route_worker(
    bootstrap: str,
    url: str,
    n: int,
    executions: list[uuid.UUID],
    storage_root: Path,
    args_prefetch: int,
    message_store: str,
) -> float:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"bench.{tag}",
        consumer_group=f"bench-{tag}",
        partitions=PARTITIONS,
        event_store_url=url,
    )
    inbound, outbound = f"bench-worker-{tag}-in", f"bench-worker-{tag}-out"
    await create_topics(bootstrap, [inbound, outbound], partitions=PARTITIONS)
    await _publish(bootstrap, inbound, executions, n)
    config_id = uuid.uuid4()
    infos = {
        e: ExecutionInfo(
            execution_id=e,
            config_id=config_id,
            status="running",
            skip_init_message=False,
            init_route="a",
        )
        for e in executions
    }

    async def lookup(execution_id: uuid.UUID) -> ExecutionInfo | None:
        return infos.get(execution_id)

    async def nothing(_: uuid.UUID) -> None:
        return None

    spec = RouteSpec(
        name="a",
        inbound=Inbound(topic=inbound, prefetch=args_prefetch),
        adapters=[{"type": "pass_through"}],  # type: ignore[list-item]
        outbound=[outbound],
    )
    # The event store creates a PostgreSQL schema named in the URL; the ledger lives beside it.
    (await asyncio.to_thread(open_event_store, url)).close()
    ledger = await asyncio.to_thread(Ledger, url)
    storage: MessageStore = (
        FileMessageStore(storage_root)
        if message_store == "files"
        else await asyncio.to_thread(DatabaseMessageStore, url)
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    worker = RouteWorker(
        settings,
        config_id,
        "a",
        spec,
        {inbound: ["a"]},
        load_adapter_registry()[1],
        ledger,
        storage,
        lookup,
        nothing,
        nothing,
        producer,
        consumer_options=FAST_GROUP,
    )
    task = asyncio.create_task(worker.run())
    try:
        await worker.assigned.wait()
        start = time.perf_counter()
        await _drain(bootstrap, outbound, n)
        return n / (time.perf_counter() - start)
    finally:
        await worker.stop()
        await task
        await producer.stop()
        await asyncio.to_thread(ledger.close)
        await asyncio.to_thread(storage.close)


async def main(args: argparse.Namespace) -> None:
    async with EmbeddedBroker() if not args.bootstrap else _External(args.bootstrap) as broker:
        bootstrap = broker.bootstrap_servers
        executions = [uuid.uuid4() for _ in range(args.executions)]
        raw = await raw_forwarder(bootstrap, args.messages, executions)
        rows: list[tuple[str, str, float]] = []
        for kind in args.store:
            for message_store in args.message_store:
                root = Path(tempfile.mkdtemp(prefix="bench-storage-"))
                url = store_url(kind, args.pg_url)
                rate = await route_worker(
                    bootstrap, url, args.messages, executions, root, args.prefetch, message_store
                )
                rows.append((kind, message_store, rate))
    print()
    print(
        f"workload: {args.messages} messages over {len(executions)} executions, one hop, "
        f"prefetch {args.prefetch}"
    )
    print(f"(a) raw forwarder: {raw:8.0f} msg/s")
    for kind, message_store, rate in rows:
        print(
            f"(b) route worker, {kind:8s} messages in {message_store:8s}: {rate:8.0f} msg/s"
            f"   b/a = {rate / raw:.2f}"
        )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--message-store",
        action="append",
        choices=["files", "database"],
        help="where the route stores its messages (repeat for both; default: both)",
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--prefetch", type=int, default=10, help="the route's inbound.prefetch")
    parser.add_argument("--executions", type=int, default=50)
    parser.add_argument("--bootstrap", default=None, help="an external broker (default: embedded)")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args(argv)
    args.store = args.store or ["sqlite"]
    args.message_store = args.message_store or ["files", "database"]
    return args


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    asyncio.run(main(args))
    return vars(args)


if __name__ == "__main__":
    run()
