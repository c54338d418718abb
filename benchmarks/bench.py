"""Write-path benchmark: prints figures, asserts nothing.

One run measures, on the same broker and database:
  (a) raw produce+consume of messages the size of our commands (aiokafka, no group);
  (b) raw batched event-store appends of the same domain events (no Kafka, no records);
  (c) a naive handler: one transaction per command (our decider, batches of one; no Kafka,
      so (c) is an upper bound for a naive Kafka handler and d/c is a lower bound);
  (d) the command handler end to end, with every guarantee on (command records, results,
      and the relay publishing the stored events as it does in production, in its own
      process): publish N commands, wait for all N results; then p50/p99
      publish-to-result latency at half of (d)'s maximum rate.
Ratios d/c and d/b are the figures to read; absolute numbers vary with the machine.

    uv run python -m benchmarks.bench --store sqlite --store postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.workload import commands, setup_commands
from contracts import Command
from contracts.cloudevents import encode_command
from domain.name_index import name_index_id
from domain.pipeline import Pipeline
from services.adapters.kafka.embedded_broker import EmbeddedBroker, create_topics
from services.service_layer.decider import Decider, Item
from services.settings import Settings

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Figures:
    store: str
    raw_kafka: float = 0.0
    raw_append: float = 0.0
    naive: float = 0.0
    handler: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    half_rate: float = 0.0
    cpu_us: dict[str, float] = field(default_factory=dict)  # CPU per command, by role


def store_url(kind: str, pg_url: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/events.db"
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    return f"{pg_url}?options=-csearch_path%3D{schema}"


def open_store(url: str) -> Any:
    from services.adapters.stores import open_command_store

    return open_command_store(url)


def decider_for(store: Any) -> Decider:
    from services.service_layer.handlers import HANDLERS

    return Decider(store, HANDLERS)


def items(cmds: Sequence[Command]) -> list[Item]:
    return [Item(command_id=str(uuid.uuid4()), command=c) for c in cmds]


async def raw_kafka(bootstrap: str, n: int, size: int) -> float:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [topic], partitions=12)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(12)])
    payload = b"x" * size
    start = time.perf_counter()
    futures = [await producer.send(topic, payload, key=str(i % 1000).encode()) for i in range(n)]
    await asyncio.gather(*futures)
    seen = 0
    while seen < n:
        batch = await consumer.getmany(timeout_ms=200, max_records=5000)
        seen += sum(len(records) for records in batch.values())
    elapsed = time.perf_counter() - start
    await producer.stop()
    await consumer.stop()
    return n / elapsed


def raw_append(url: str, cmds: Sequence[Command], batch: int) -> float:
    """The same events, appended in batches straight through the library."""
    store = open_store(url)
    decider = decider_for(store)
    creates = [c for c in cmds if type(c).__name__ in ("CreateConfig", "CreatePipeline")]
    decider.decide(items(creates))
    rest = [c for c in cmds if c not in creates]
    pipelines: dict[str, Pipeline] = {}
    for c in rest:
        name = c.pipeline_name  # type: ignore[attr-defined]
        if name not in pipelines:
            index = store.repository.get(name_index_id(name))
            pipelines[name] = store.repository.get(index.pipeline_id)
    from datetime import UTC, datetime

    start = time.perf_counter()
    for offset in range(0, len(rest), batch):
        touched: dict[str, Pipeline] = {}
        for c in rest[offset : offset + batch]:
            name = c.pipeline_name  # type: ignore[attr-defined]
            p = pipelines[name]
            if type(c).__name__ == "StartPipeline":
                p.start(at=datetime.now(UTC))
            else:
                p.stop(force=True, at=datetime.now(UTC))
            touched[name] = p
        store.save(*touched.values())
    elapsed = time.perf_counter() - start
    store.close()
    return len(rest) / elapsed


def naive(url: str, cmds: Sequence[Command]) -> float:
    store = open_store(url)
    decider = decider_for(store)
    start = time.perf_counter()
    for item in items(cmds):
        outcome = decider.decide([item])[0]
        assert outcome.result.outcome == "accepted", outcome.result
    elapsed = time.perf_counter() - start
    store.close()
    return len(cmds) / elapsed


async def handler_end_to_end(
    bootstrap: str,
    url: str,
    setup: Sequence[Command],
    cmds: Sequence[Command],
    rate: float | None,
    cpu: dict[str, float] | None = None,
    roles: Sequence[str] = ("handler", "relay"),
) -> tuple[float, list[float]]:
    """Publish `cmds` (all at once, or at `rate` per second) to a handler running in its own
    process (`pipelines serve --role handler`, as in production, so this client does not
    share its GIL), with a relay in another, and wait for every result.

    Returns (commands per second, publish-to-result latencies in seconds); `cpu`, if given,
    gets each role's CPU seconds over the measured part (user + system, from /proc), which
    a shared machine's load does not inflate the way it does wall time."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PIPELINES_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PIPELINES_TOPIC_PREFIX": prefix,
        "PIPELINES_EVENT_STORE_URL": url,
        "PIPELINES_CONSUMER_GROUP": f"{prefix}-handler",
    }
    settings = Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix)
    topics = settings.topics
    await create_topics(bootstrap, topics.all(), partitions=settings.partitions)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "services.entrypoints.cli", "serve", "--role", role),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for role in roles
    ]
    results = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await results.start()
    results.assign([TopicPartition(topics.command_results, p) for p in range(settings.partitions)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks="all")
    await producer.start()
    try:
        # Warm-up, not measured: the group join and `setup`, its first command (the config)
        # answered before the rest are sent (commands on other keys may overtake it).
        sent_at: dict[str, float] = {}
        for wave in (setup[:1], setup[1:]):
            await _publish(producer, topics.commands, wave, sent_at)
            await _await_results(results, sent_at, {})
            sent_at.clear()

        done: dict[str, float] = {}
        sent_at.clear()
        cpu_before = [cpu_seconds(process.pid) for process in processes]
        start = time.perf_counter()
        publisher = asyncio.create_task(_publish(producer, topics.commands, cmds, sent_at, rate))
        await _await_results(results, sent_at, done, expected=len(cmds))
        await publisher
        elapsed = time.perf_counter() - start
        if cpu is not None:
            for name, process, before in zip(roles, processes, cpu_before, strict=True):
                cpu[name] = cpu_seconds(process.pid) - before
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            await asyncio.wait_for(process.wait(), timeout=30)
        await producer.stop()
        await results.stop()
    latencies = [done[i] - sent_at[i] for i in done if i in sent_at]
    return len(cmds) / elapsed, latencies


async def _publish(
    producer: AIOKafkaProducer,
    topic: str,
    cmds: Sequence[Command],
    sent_at: dict[str, float],
    rate: float | None = None,
) -> None:
    start = time.perf_counter()
    futures = []
    for i, cmd in enumerate(cmds):
        if rate:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        record = encode_command(cmd)
        command_id = record.header("ce_id") or ""
        sent_at[command_id] = time.perf_counter()
        futures.append(
            await producer.send(topic, record.value, key=record.key, headers=record.headers)
        )
    await asyncio.gather(*futures)


async def _await_results(
    results: AIOKafkaConsumer,
    sent_at: dict[str, float],
    done: dict[str, float],
    expected: int | None = None,
) -> None:
    want = expected if expected is not None else len(sent_at)
    while len(done) < want:
        batch = await results.getmany(timeout_ms=100, max_records=5000)
        now = time.perf_counter()
        for records in batch.values():
            for record in records:
                key = (record.key or b"").decode()
                if key in sent_at and key not in done:
                    done[key] = now


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def bench_store(kind: str, args: argparse.Namespace, bootstrap: str) -> Figures:
    figures = Figures(store=kind)
    config, config_id = setup_commands()
    workload = [config, *commands(args.pipelines, args.commands, config_id)]
    sample = encode_command(workload[-1])
    size = len(sample.value) + sum(len(k) + len(v) for k, v in sample.headers)

    figures.raw_kafka = await raw_kafka(bootstrap, args.commands, size)
    figures.raw_append = await asyncio.to_thread(
        raw_append, store_url(kind, args.pg_url), workload, args.batch
    )
    naive_cmds = [config, *commands(args.pipelines, args.naive_commands, config_id)]
    figures.naive = await asyncio.to_thread(naive, store_url(kind, args.pg_url), naive_cmds)
    cpu: dict[str, float] = {}
    figures.handler, _ = await handler_end_to_end(
        bootstrap, store_url(kind, args.pg_url), [config], workload[1:], None, cpu
    )
    figures.cpu_us = {role: 1e6 * seconds / len(workload[1:]) for role, seconds in cpu.items()}
    figures.half_rate = figures.handler / 2
    latency_cmds = list(commands(args.pipelines, args.latency_commands, config_id))
    _, latencies = await handler_end_to_end(
        bootstrap, store_url(kind, args.pg_url), [config], latency_cmds, figures.half_rate
    )
    figures.p50_ms = percentile(latencies, 50) * 1000
    figures.p99_ms = percentile(latencies, 99) * 1000
    return figures


def report(all_figures: list[Figures], args: argparse.Namespace) -> None:
    print()
    print(
        f"workload: {args.pipelines} pipelines, {args.commands} commands "
        f"(create, then start / stop force=true); naive run: {args.naive_commands} commands"
    )
    header = (
        f"{'store':8} {'(a) raw kafka':>14} {'(b) raw append':>15} {'(c) naive':>10} "
        f"{'(d) handler':>12} {'d/c':>6} {'d/b':>6} {'p50 ms':>8} {'p99 ms':>8} {'at rate':>8}"
    )
    print(header)
    for f in all_figures:
        print(
            f"{f.store:8} {f.raw_kafka:14,.0f} {f.raw_append:15,.0f} {f.naive:10,.0f} "
            f"{f.handler:12,.0f} {f.handler / f.naive:6.1f} {f.handler / f.raw_append:6.2f} "
            f"{f.p50_ms:8.1f} {f.p99_ms:8.1f} {f.half_rate:8,.0f}"
        )
    print("(a)-(d) in messages or commands per second; latency measured at half of (d).")
    for f in all_figures:
        spent = ", ".join(f"{role} {us:.0f} us" for role, us in f.cpu_us.items())
        print(f"{f.store}: CPU per command during (d): {spent}")


async def main(args: argparse.Namespace) -> None:
    async with EmbeddedBroker() if not args.bootstrap else _External(args.bootstrap) as broker:
        bootstrap = broker.bootstrap_servers
        results = [await bench_store(kind, args, bootstrap) for kind in args.store]
    report(results, args)


class _External:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap_servers = bootstrap

    async def __aenter__(self) -> _External:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=20000)
    parser.add_argument("--naive-commands", type=int, default=3000)
    parser.add_argument("--latency-commands", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--bootstrap", default=None, help="an existing broker; else embedded")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args(argv)
    args.store = args.store or ["sqlite", "postgres"]
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
