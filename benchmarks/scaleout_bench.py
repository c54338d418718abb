"""Scale-out benchmark: the figures docs/scaling.md reasons from; prints, asserts nothing.

  (a) CPU seconds per command in the command handler process (`pipelines serve --role
      handler`, as benchmarks/bench.py runs it): utime+stime from /proc/PID/stat around a
      fixed run of N commands, so commands/s per core = 1 / (CPU s per command);
  (b) PostgreSQL event-store appends by 1, 2, 4 writer processes into ONE events table,
      each saving batches of events of its own pipelines through the library (as
      bench.py's raw_append): the recorder takes `LOCK TABLE ... IN EXCLUSIVE MODE` per
      insert transaction, so the writers take turns;
  (c) the same writers, each with its own schema (its own events table and notification
      log), as a partitioned event store keyed like the commands topic would be.
Ratios within one run are the figures to read: the machine may be shared.

    uv run --frozen python -m benchmarks.scaleout_bench --commands 5000 --writers 1 2 4
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from benchmarks.bench import PG_DEFAULT, handler_end_to_end, store_url
from benchmarks.workload import commands, setup_commands
from domain.pipeline import Pipeline
from services.adapters.kafka.embedded_broker import EmbeddedBroker

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class HandlerFigures:
    store: str
    commands: int
    wall_s: float
    cpu_s: float

    @property
    def cpu_per_command_ms(self) -> float:
        return 1000 * self.cpu_s / self.commands


async def handler_cpu(bootstrap: str, kind: str, args: argparse.Namespace) -> HandlerFigures:
    """The handler alone in its own process; the config and the pipelines' creation are
    the warm-up, outside the measure."""
    config, config_id = setup_commands()
    workload = list(commands(args.pipelines, args.pipelines + args.commands, config_id))
    creates, cmds = workload[: args.pipelines], workload[args.pipelines :]
    cpu: dict[str, float] = {}
    start = time.perf_counter()
    rate, _ = await handler_end_to_end(
        bootstrap, store_url(kind, args.pg_url), [config, *creates], cmds, None, cpu, ("handler",)
    )
    wall = len(cmds) / rate if rate else time.perf_counter() - start
    return HandlerFigures(kind, len(cmds), wall, cpu["handler"])


def writer(
    url: str, pipelines: int, batches: int, batch: int, barrier: Barrier, out: Queue[float]
) -> None:
    """One writer process: its own pipelines, then `batches` saves of `batch` events.
    Puts on `out` the seconds its insert transactions took (lock wait included)."""
    from services.adapters.stores import open_command_store

    store = open_command_store(url, cache_maxsize=pipelines)
    recorder = store.recorder
    insert_events = recorder.insert_events
    in_transactions = [0.0]

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return insert_events(*args, **kwargs)
        finally:
            in_transactions[0] += time.perf_counter() - start

    now = datetime.now(UTC)
    own = [Pipeline(name=f"w{os.getpid()}-{i}", config_id=None, at=now) for i in range(pipelines)]
    store.save(*own)
    recorder.insert_events = timed  # type: ignore[method-assign]
    barrier.wait()
    for n in range(batches):
        touched = []
        for i in range(batch):
            pipeline = own[(n * batch + i) % pipelines]
            if pipeline.resources_desired_status.value == "Stopped":
                pipeline.start(at=now)
            else:
                pipeline.stop(force=True, at=now)
            touched.append(pipeline)
        store.save(*touched)
    barrier.wait()
    out.put(in_transactions[0])
    store.close()


@dataclass
class WriteFigures:
    layout: str
    writers: int
    events: int
    seconds: float
    transactions: int
    transaction_s: float  # all writers' insert transactions, lock waits included

    @property
    def transaction_ms(self) -> float:
        return 1000 * self.transaction_s / self.transactions

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def write_rate(
    urls: Sequence[str], layout: str, args: argparse.Namespace, ctx: mp.context.SpawnContext
) -> WriteFigures:
    """All writers start together (a barrier after their set-up) and the clock stops when
    the last one has saved its last batch."""
    barrier = ctx.Barrier(len(urls) + 1)
    out: Queue[float] = ctx.Queue()
    procs = [
        ctx.Process(
            target=writer,
            args=(url, args.writer_pipelines, args.batches, args.batch, barrier, out),
        )
        for url in urls
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=300)
    start = time.perf_counter()
    barrier.wait(timeout=900)
    seconds = time.perf_counter() - start
    spent = sum(out.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(60)
    events = len(urls) * args.batches * args.batch
    return WriteFigures(layout, len(urls), events, seconds, len(urls) * args.batches, spent)


def writers_bench(args: argparse.Namespace) -> list[WriteFigures]:
    # Spawned, not forked: each writer imports and connects for itself, as a handler would.
    ctx = mp.get_context("spawn")
    figures = []
    for n in args.writers:
        shared = store_url("postgres", args.pg_url)
        figures.append(write_rate([shared] * n, "one table", args, ctx))
        own = [store_url("postgres", args.pg_url) for _ in range(n)]
        figures.append(write_rate(own, "table each", args, ctx))
    return figures


def report(
    handlers: Sequence[HandlerFigures], writes: Sequence[WriteFigures], args: argparse.Namespace
) -> None:
    print()
    print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f} (shared machine)")
    if handlers:
        print(f"(a) handler process CPU, {args.commands} commands after the creates (start/stop)")
        print(
            f"{'store':8} {'wall cmd/s':>11} {'CPU s':>7} {'CPU ms/cmd':>11} {'cmd/s per core':>15}"
        )
        for h in handlers:
            print(
                f"{h.store:8} {h.commands / h.wall_s:11,.0f} {h.cpu_s:7.2f} "
                f"{h.cpu_per_command_ms:11.3f} {1000 / h.cpu_per_command_ms:15,.0f}"
            )
    if writes:
        print()
        print(
            f"(b)/(c) PostgreSQL appends: {args.batches} saves of {args.batch} events per "
            f"writer, {args.writer_pipelines} pipelines each"
        )
        print(
            f"{'layout':11} {'writers':>7} {'events':>8} {'seconds':>8} {'events/s':>9} "
            f"{'vs 1':>6} {'txn ms':>7} {'in txn %':>9} {'1-table cap':>12}"
        )
        base = {w.layout: w for w in writes if w.writers == 1}
        for w in writes:
            ref = base.get(w.layout, w)
            # Only one insert transaction holds the table lock at a time: its duration
            # with no one waiting (one writer) bounds one table's rate, whatever the writers.
            cap = args.batch / (ref.transaction_ms / 1000)
            busy = 100 * w.transaction_s / (w.writers * w.seconds)
            print(
                f"{w.layout:11} {w.writers:7} {w.events:8} {w.seconds:8.2f} {w.rate:9,.0f} "
                f"{w.rate / ref.rate:6.2f} {w.transaction_ms:7.1f} {busy:9.0f} {cap:12,.0f}"
            )
        print(
            "one table: every writer in one schema; table each: a schema per writer.\n"
            "txn ms: an insert transaction, lock wait included; in txn %: of the writers' "
            "time;\n1-table cap: batch / txn ms of one writer, the rate one locked table allows."
        )
        rates = {(w.layout, w.writers): w.rate for w in writes}
        for n in sorted({w.writers for w in writes}):
            if ("one table", n) in rates and ("table each", n) in rates:
                ratio = rates[("table each", n)] / rates[("one table", n)]
                print(f"{n} writers: table each / one table = {ratio:.2f}")


async def main(args: argparse.Namespace) -> None:
    handlers = []
    if args.commands:
        async with EmbeddedBroker() as broker:
            for kind in args.store:
                handlers.append(await handler_cpu(broker.bootstrap_servers, kind, args))
    writes = writers_bench(args) if args.writers else []
    report(handlers, writes, args)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--commands", type=int, default=5000, help="0: skip (a)")
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--writers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--writer-pipelines", type=int, default=200)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50, help="events per save")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args(argv)
    args.store = args.store or ["sqlite", "postgres"]
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
