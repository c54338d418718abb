"""Route-runtime benchmark: prints figures, asserts nothing.

One run measures, on the same broker (and database for (b)):
  (a) a raw forwarder: a consumer group reads N messages in batches, produces each to an
      outbound topic, awaits the acknowledgements and commits — what any Kafka route
      costs before it does anything of its own;
  (b) one RouteWorker doing the same with a pass_through adapter: envelope decode, the
      execution lookup, derived output ids, the batch stored by the message store
      (`files`: one fsynced segment per execution and direction; `database`: rows in the
      event store's database) and counted in the ledger (expected, consumed; with
      `database`, in the same transaction), then the commit.
b/a is the figure to read: the price of exactly-once counting and stored messages per
route hop. Absolute numbers vary with the machine.

Both sides get the same clients: consumers from `make_consumer` and producers from
`make_producer` with the same Settings (on the embedded broker, the fetch wait `pipelines
dev` sets, `embedded_tuning`: Tansu holds every fetch for its whole wait, so a wait that
differed between the two would be what b/a measures). (a) reads batches of up to 500
records whatever the route's prefetch (the best of three runs); `(a) at prefetch N`
beside it is the same forwarder reading batches of the route's size, to show what the
batch size alone costs. Both are timed from their first batch to their last commit.

    uv run python -m benchmarks.route_bench --store sqlite --store postgres \
        --message-store files --message-store database --prefetch 10 --prefetch 500
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

from aiokafka import AIOKafkaProducer

from benchmarks.bench import PG_DEFAULT, _External, store_url
from contracts.config_document import Inbound, RouteSpec
from contracts.route_messages import RouteMessage, encode_route_message, init_message_id
from services.adapters.eventstore import open_event_store
from services.adapters.kafka.clients import make_consumer, make_producer
from services.adapters.kafka.embedded_broker import (
    EmbeddedBroker,
    create_topics,
    embedded_tuning,
)
from services.adapters.kafka.engine import Batch
from services.adapters.message_store import DatabaseMessageStore, FileMessageStore, MessageStore
from services.runtimes.orchestrator.execution_info import ExecutionInfo
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.route_worker import RouteWorker
from services.runtimes.routes.adapters import load_adapter_registry
from services.settings import Settings

PARTITIONS = 4
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300}
RAW_BATCH = 500


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


async def _drain(settings: Settings, topic: str, n: int) -> None:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    consumer.subscribe([topic])
    try:
        seen = 0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()


async def raw_forwarder(
    settings: Settings, n: int, executions: list[uuid.UUID], batch_max: int = RAW_BATCH
) -> float:
    bootstrap = settings.kafka_bootstrap_servers
    inbound, outbound = (f"bench-route-{uuid.uuid4().hex[:8]}-{s}" for s in ("in", "out"))
    await create_topics(bootstrap, [inbound, outbound], partitions=PARTITIONS)
    await _publish(bootstrap, inbound, executions, n)
    consumer = make_consumer(settings, group_id=f"bench-raw-{uuid.uuid4().hex[:8]}", **FAST_GROUP)
    producer = make_producer(settings)
    await consumer.start()
    consumer.subscribe([inbound])
    await producer.start()
    try:
        start: float | None = None
        done = 0
        while done < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=batch_max)
            if start is None and batch:
                start = time.perf_counter()  # see `_timed_from_first_batch`
            acks = [
                await producer.send(outbound, r.value, key=r.key, headers=list(r.headers))
                for records in batch.values()
                for r in records
            ]
            await asyncio.gather(*acks)
            await consumer.commit()
            done += len(acks)
        assert start is not None
        return n / (time.perf_counter() - start)
    finally:
        await consumer.stop()
        await producer.stop()


async def route_worker(
    base: Settings,
    url: str,
    n: int,
    executions: list[uuid.UUID],
    storage_root: Path,
    args_prefetch: int,
    message_store: str,
) -> float:
    tag = uuid.uuid4().hex[:8]
    bootstrap = base.kafka_bootstrap_servers
    settings = base.model_copy(
        update={
            "topic_prefix": f"bench.{tag}",
            "consumer_group": f"bench-{tag}",
            "event_store_url": url,
        }
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
    producer = make_producer(settings)
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
    first = _timed_from_first_batch(worker)
    task = asyncio.create_task(worker.run())
    try:
        start = await first
        # Until the last batch is committed, where (a)'s clock stops too; then every output
        # must be on the outbound topic.
        while worker.stats.records < n:  # noqa: ASYNC110 - a counter, polled off the hot path
            await asyncio.sleep(0.002)
        rate = n / (time.perf_counter() - start)
        await _drain(settings, outbound, n)
        return rate
    finally:
        await worker.stop()
        await task
        await producer.stop()
        await asyncio.to_thread(ledger.close)
        await asyncio.to_thread(storage.close)


def _timed_from_first_batch(worker: RouteWorker) -> asyncio.Future[float]:
    """When the worker's first batch arrives. Both sides are timed from their first batch
    to their last commit: a group join and the first fetch's offset look-ups are start-up
    costs (about a second on the embedded broker, more than the whole run at prefetch
    500), not what a route hop costs per message."""
    first: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    handle = worker.engine.handle

    async def timed(batch: Batch) -> Any:
        if not first.done():
            first.set_result(time.perf_counter())
        return await handle(batch)

    worker.engine.handle = timed
    return first


async def main(args: argparse.Namespace) -> None:
    async with EmbeddedBroker() if not args.bootstrap else _External(args.bootstrap) as broker:
        bootstrap = broker.bootstrap_servers
        settings = Settings(kafka_bootstrap_servers=bootstrap, partitions=PARTITIONS)
        if not args.bootstrap:
            settings = settings.model_copy(update=embedded_tuning(settings))
        if args.fetch_wait_ms is not None:
            settings = settings.model_copy(update={"kafka_fetch_wait_ms": args.fetch_wait_ms})
        executions = [uuid.uuid4() for _ in range(args.executions)]
        # The best of a few: on a shared machine a single run of (a) swings by half, and
        # every b/a is divided by it.
        raws = [await raw_forwarder(settings, args.messages, executions) for _ in range(3)]
        raw = max(raws)
        raw_at: dict[int, float] = {}
        rows: list[tuple[int, str, str, float]] = []
        for prefetch in args.prefetch:
            raw_at[prefetch] = await raw_forwarder(settings, args.messages, executions, prefetch)
            for kind in args.store:
                for message_store in args.message_store:
                    root = Path(tempfile.mkdtemp(prefix="bench-storage-"))
                    url = store_url(kind, args.pg_url)
                    rate = await route_worker(
                        settings, url, args.messages, executions, root, prefetch, message_store
                    )
                    rows.append((prefetch, kind, message_store, rate))
    print()
    print(
        f"workload: {args.messages} messages over {len(executions)} executions, one hop, "
        f"fetch wait {settings.kafka_fetch_wait_ms or 'default'} ms"
    )
    print(
        f"(a) raw forwarder, batches of {RAW_BATCH}: {raw:8.0f} msg/s"
        f"   (best of {', '.join(f'{r:.0f}' for r in raws)})"
    )
    for prefetch in args.prefetch:
        print(f"prefetch {prefetch}:")
        print(
            f"    (a) at prefetch {prefetch:<4d}{'':25s}{raw_at[prefetch]:8.0f} msg/s"
            f"   a'/a = {raw_at[prefetch] / raw:.2f}"
        )
        for p, kind, message_store, rate in rows:
            if p == prefetch:
                print(
                    f"    (b) {kind:8s} messages in {message_store:8s}{'':10s}{rate:8.0f} msg/s"
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
    parser.add_argument(
        "--prefetch",
        type=int,
        action="append",
        help="the route's inbound.prefetch (repeat for several; default: 10 and 500)",
    )
    parser.add_argument(
        "--fetch-wait-ms",
        type=int,
        default=None,
        help="both sides' fetch_max_wait_ms (default: the embedded broker's dev tuning)",
    )
    parser.add_argument("--executions", type=int, default=50)
    parser.add_argument("--bootstrap", default=None, help="an external broker (default: embedded)")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args(argv)
    args.store = args.store or ["sqlite"]
    args.message_store = args.message_store or ["files", "database"]
    args.prefetch = args.prefetch or [10, 500]
    return args


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    asyncio.run(main(args))
    return vars(args)


if __name__ == "__main__":
    run()
