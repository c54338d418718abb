"""Memory benchmark: every role's RSS over a long run of commands; prints the curve,
asserts nothing.

Starts the embedded broker and each role as its own process (`pipelines serve --role X`,
as the chaos harness runs them), publishes the benchmark workload (benchmarks/workload.py:
P pipelines created, then start / stop force=true) in waves up to `--commands`, waits for
every result of a wave, and reads each role's VmRSS from /proc after it. Prints a table of
commands so far against RSS per role, then per role the RSS after warm-up (the first
`--warmup` fraction of the commands), at the end, the maximum, and the growth after warm-up.

    uv run --frozen python -m benchmarks.rss_bench --commands 200000
    uv run --frozen python -m benchmarks.rss_bench --store postgres --commands 1000000

To find what grows, `--trace ROLE` runs that role under tracemalloc and writes, every
`--trace-every` seconds, the allocation sites that grew most since the previous write to
trace-N.txt in the logs folder (slower: read the curve of an untraced run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.bench import PG_DEFAULT, store_url
from benchmarks.workload import commands, setup_commands
from contracts import Command
from contracts.cloudevents import encode_command
from services.adapters.kafka.embedded_broker import (
    EmbeddedBroker,
    create_topics,
    embedded_tuning,
    free_port,
)
from services.settings import Settings

REPO = Path(__file__).resolve().parents[1]
ROLES = ("handler", "relay", "projector", "orchestrator", "reconciler", "api")


def rss_mb(pid: int) -> float:
    """Resident set size from /proc (no psutil), in MB; NaN once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass
class Roles:
    settings: Settings
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    traced: Sequence[str] = ()
    trace_every_s: float = 60.0
    restarts: dict[str, list[int]] = field(default_factory=dict)  # exit codes, by role
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, names: Sequence[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
        for name, value in self.settings.model_dump(exclude_none=True).items():
            env[f"PIPELINES_{name.upper()}"] = str(value)
        env.update(self.extra_env)
        for role in names:
            serve = ["-m", "services.entrypoints.cli", "serve", "--role", role]
            if role in self.traced:
                serve = ["-m", "benchmarks.rss_bench", "--serve-traced", role]
                serve += ["--trace-dir", str(self.logs), "--trace-every", str(self.trace_every_s)]
            with (self.logs / f"{role}.log").open("ab") as output:
                self.processes[role] = subprocess.Popen(
                    [sys.executable, *serve],
                    cwd=REPO,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )

    def rss(self) -> dict[str, float]:
        return {role: rss_mb(p.pid) for role, p in self.processes.items()}

    def restart_exited(self) -> list[str]:
        """Start again the roles whose process exited by itself (as a supervisor would;
        the report lists them): their RSS curve starts over."""
        exited = [role for role, p in self.processes.items() if p.poll() is not None]
        for role in exited:
            self.restarts.setdefault(role, []).append(self.processes[role].returncode)
        self.start(exited)
        return exited

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


class Results:
    """Counts the results of the commands sent, by command id (the result's key)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    async def wait_for(self, pending: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} results missing after {timeout_s:.0f} s")
            batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                for record in records:
                    pending.discard((record.key or b"").decode())


async def publish(producer: AIOKafkaProducer, topic: str, cmds: Sequence[Command]) -> set[str]:
    sent: set[str] = set()
    futures = []
    for cmd in cmds:
        record = encode_command(cmd)
        sent.add(record.header("ce_id") or "")
        futures.append(
            await producer.send(topic, record.value, key=record.key, headers=record.headers)
        )
    await asyncio.gather(*futures)
    return sent


def waves(stream: Iterator[Command], size: int) -> Iterator[list[Command]]:
    while True:
        wave = [c for _, c in zip(range(size), stream, strict=False)]
        if not wave:
            return
        yield wave


@dataclass
class Sample:
    commands: int
    seconds: float
    rss: dict[str, float]


async def run(args: argparse.Namespace) -> list[Sample]:
    work = Path(tempfile.mkdtemp(prefix="rss-bench-"))
    async with EmbeddedBroker(log_path=work / "tansu.log") as broker:
        tag = uuid.uuid4().hex[:8]
        base = Settings(
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic_prefix=f"rss.{tag}",
            consumer_group=f"rss-{tag}",
            event_store_url=store_url(args.store, args.pg_url),
            execution_storage_dir=str(work / "executions"),
            api_port=free_port(),
        )
        settings = base.model_copy(update=embedded_tuning(base))
        topics = settings.topics
        await create_topics(broker.bootstrap_servers, topics.all(), partitions=settings.partitions)
        roles = Roles(settings, work, traced=args.trace or (), trace_every_s=args.trace_every)
        if args.malloc_arena_max:
            roles.extra_env["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
        roles.start(args.role or ROLES)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest"
        )
        await consumer.start()
        consumer.assign(
            [TopicPartition(topics.command_results, p) for p in range(settings.partitions)]
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, linger_ms=5, acks="all"
        )
        await producer.start()
        results = Results(consumer)
        samples: list[Sample] = []
        try:
            config, config_id = setup_commands()
            await results.wait_for(await publish(producer, topics.commands, [config]), 120)
            started = time.monotonic()
            samples.append(Sample(0, 0.0, roles.rss()))
            print(f"logs in {work}; roles: {', '.join(roles.processes)}", flush=True)
            done = 0
            stream = commands(args.pipelines, args.commands, config_id)
            for wave in waves(stream, args.wave):
                pending = await publish(producer, topics.commands, wave)
                await results.wait_for(pending, args.wave_timeout)
                done += len(wave)
                samples.append(Sample(done, time.monotonic() - started, roles.rss()))
                if done % args.print_every < args.wave:
                    print_row(samples[-1], list(roles.processes), flush=True)
                if exited := roles.restart_exited():
                    print(f"restarted {exited} (exited by themselves); logs in {work}")
            # Whatever follows the results (relay, projector) settles before the last sample.
            await asyncio.sleep(args.settle)
            samples.append(Sample(done, time.monotonic() - started, roles.rss()))
            for role, codes in roles.restarts.items():
                print(f"{role} exited {len(codes)} time(s) (codes {codes}), restarted")
        finally:
            await producer.stop()
            await consumer.stop()
            roles.stop()
        return samples


def print_row(sample: Sample, roles: Sequence[str], flush: bool = False) -> None:
    cells = " ".join(f"{sample.rss.get(r, float('nan')):>12.1f}" for r in roles)
    print(f"{sample.commands:>10,} {sample.seconds:>8.0f} {cells}", flush=flush)


def report(samples: Sequence[Sample], args: argparse.Namespace) -> None:
    roles = list(samples[0].rss)
    print()
    arenas = f", MALLOC_ARENA_MAX={args.malloc_arena_max}" if args.malloc_arena_max else ""
    print(
        f"RSS MB per role, {args.store}, {args.pipelines} pipelines, waves of {args.wave}{arenas}"
    )
    print(f"{'commands':>10} {'seconds':>8} " + " ".join(f"{r:>12}" for r in roles))
    step = max(1, len(samples) // args.rows)
    for sample in [*samples[:-1:step], samples[-1]]:
        print_row(sample, roles)
    total = samples[-1].commands
    warm = next((s for s in samples if s.commands >= args.warmup * total), samples[0])
    elapsed = samples[-1].seconds or 1.0
    print()
    print(
        f"{total:,} commands in {elapsed:.0f} s ({total / elapsed:,.0f}/s); warm-up: the first "
        f"{warm.commands:,} commands"
    )
    print(
        f"{'role':12} {'warm-up MB':>11} {'final MB':>9} {'max MB':>8} {'growth MB':>10} {'%':>6}"
    )
    for role in roles:
        after = [s.rss[role] for s in samples if s.commands >= warm.commands]
        final = samples[-1].rss[role]
        growth = final - warm.rss[role]
        print(
            f"{role:12} {warm.rss[role]:11.1f} {final:9.1f} {max(after):8.1f} {growth:10.1f} "
            f"{100 * growth / warm.rss[role]:6.1f}"
        )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--wave", type=int, default=5000, help="commands per wave")
    parser.add_argument("--wave-timeout", type=float, default=300.0)
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of --commands")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the last")
    parser.add_argument("--rows", type=int, default=25, help="rows of the printed curve")
    parser.add_argument("--print-every", type=int, default=50_000)
    parser.add_argument("--role", action="append", choices=ROLES, help="default: all")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    parser.add_argument(
        "--malloc-arena-max",
        type=int,
        help="glibc MALLOC_ARENA_MAX for the roles: tells allocator arenas from a leak",
    )
    parser.add_argument("--trace", action="append", choices=ROLES, help="under tracemalloc")
    parser.add_argument("--trace-every", type=float, default=60.0)
    parser.add_argument("--serve-traced", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--trace-dir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def serve_traced(role: str, out: Path, every_s: float) -> None:
    """`pipelines serve --role ROLE` in this process, under tracemalloc, writing the
    allocation sites that grew between successive snapshots."""
    import runpy
    import threading
    import tracemalloc

    tracemalloc.start(8)

    def dump() -> None:
        # Against the first snapshot after a warm-up interval: what grows from there on.
        ignore = [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
            tracemalloc.Filter(False, "*/linecache.py"),
        ]
        time.sleep(every_s)
        baseline = tracemalloc.take_snapshot().filter_traces(ignore)
        for n in range(1, 1_000_000):
            time.sleep(every_s)
            snapshot = tracemalloc.take_snapshot().filter_traces(ignore)
            grown = snapshot.compare_to(baseline, "traceback")[:12]
            current, peak = tracemalloc.get_traced_memory()
            lines = [
                f"traced {current / 2**20:.1f} MB (peak {peak / 2**20:.1f} MB), RSS "
                f"{rss_mb(os.getpid()):.1f} MB; growth since the baseline:"
            ]
            for stat in grown:
                lines.append(f"{stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+} blocks")
                lines.extend(f"    {line}" for line in stat.traceback.format()[-12:])
            (out / f"trace-{role}-{n}.txt").write_text("\n".join(lines))

    threading.Thread(target=dump, daemon=True, name="tracemalloc-dump").start()
    sys.argv = ["pipelines", "serve", "--role", role]
    runpy.run_module("services.entrypoints.cli", run_name="__main__")


def main(args: argparse.Namespace) -> None:
    if args.serve_traced:
        serve_traced(args.serve_traced, args.trace_dir, args.trace_every)
        return
    report(asyncio.run(run(args)), args)


if __name__ == "__main__":
    main(parse())
