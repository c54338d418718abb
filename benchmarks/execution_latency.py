"""Execution latency benchmark: prints figures, asserts nothing.

The README's three-route example (examples/orders.yaml: validate -> enrich -> notify, the
last with a 0.1 s delay adapter), timed from the `RunConfig` published to the execution's
`StatusChanged` to success on the events topic (what a watcher of the events sees), with
the roles `handler`, `relay`, `projector` and `orchestrator` in one process of their own
(`pipelines serve`, as `pipelines dev` runs them) on the embedded broker, beside the raw
produce -> consume round trip of the same run (benchmarks.latency_support):

  first after create   the config created, then run at once (roles just started);
  warm                 `--runs` runs one after another;
  after idle           one run after `--idle-s` of nothing (longer than the orchestrator's
                       `PIPELINES_ORCHESTRATOR_WORKER_IDLE_S`, set to `--worker-idle-s`);
  first after restart  the roles stopped and started again, the config stored before:
                       the first run once the orchestrator's heartbeat is there.

    uv run --frozen python -m benchmarks.execution_latency --fetch-wait-ms 10 --fetch-wait-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer

from benchmarks.latency_support import (
    Figure,
    client_bus,
    guarded,
    raw_round_trip,
    running_roles,
    topic_reader,
)
from contracts.cloudevents import decode_event
from contracts.config_commands import CreateConfig, RunConfig
from services.adapters.kafka.clients import ensure_topics
from services.adapters.kafka.command_bus import CommandBus
from services.adapters.kafka.embedded_broker import EmbeddedBroker, embedded_tuning
from services.runtimes.orchestrator.liveness import Heartbeats
from services.settings import Settings

ROLES = ["handler", "relay", "projector", "orchestrator"]
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "orders.yaml"
RUN_TIMEOUT_S = 90.0
TERMINAL_EVENT = "StatusChanged"


def example_document(prefix: str) -> dict[str, Any]:
    """examples/orders.yaml with its topics under this run's prefix (a fresh set each)."""
    text = EXAMPLE.read_text().replace("example.orders", f"{prefix}.orders")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def events_reader(settings: Settings) -> contextlib.AbstractAsyncContextManager[AIOKafkaConsumer]:
    """A raw consumer of every events partition, positioned at the end before any run."""
    return topic_reader(settings, settings.topics.events, at_end=True)


class Finishes:
    """Reads the events topic; `finished(execution_id)` waits for the execution's terminal
    status and returns (status, arrival time)."""

    def __init__(self, reader: AIOKafkaConsumer) -> None:
        self.reader = reader
        self.seen: dict[str, tuple[str, float]] = {}
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self.reader.getmany(timeout_ms=1000)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    event = decode_event(record.value, record.headers or ()).event
                    status = str(event.data.get("status", "")).lower()
                    if (
                        event.aggregate_type == "Execution"
                        and event.event_type.endswith(TERMINAL_EVENT)
                        and status in ("success", "failure", "timeout", "interrupted", "cancelled")
                    ):
                        self.seen.setdefault(event.aggregate_id, (status, now))
                        self._changed.set()

    async def finished(self, execution_id: uuid.UUID) -> tuple[str, float]:
        key = str(execution_id)
        while key not in self.seen:
            self._changed.clear()
            await self._changed.wait()
        return self.seen[key]


async def run_once(
    bus: CommandBus, finishes: Finishes, config_id: uuid.UUID, figure: Figure
) -> None:
    """One run, timed from just before its publication to its terminal event."""
    figure.sent += 1
    while True:
        command = RunConfig(config_id=config_id)
        start = time.perf_counter()
        result = await bus.send(command, timeout_s=RUN_TIMEOUT_S)
        if result.outcome == "accepted":
            break
        figure.rejected += 1  # 503 while no orchestrator is alive: sent again
        await asyncio.sleep(0.05)
    status, at = await asyncio.wait_for(finishes.finished(command.execution_id), RUN_TIMEOUT_S)
    if status != "success":
        figure.note = f"{figure.label}: an execution ended {status}"
    figure.latencies.append(at - start)


async def orchestrator_alive(settings: Settings) -> None:
    heartbeats = Heartbeats(settings.event_store_url)
    try:
        alive: list[object] = []
        while not alive:
            alive = list(
                await asyncio.to_thread(heartbeats.alive, settings.orchestrator_liveness_s)
            )
            await asyncio.sleep(0 if alive else 0.05)
    finally:
        heartbeats.close()


async def measure(bootstrap: str, wait_ms: int, args: argparse.Namespace, folder: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        kafka_fetch_wait_ms=wait_ms,
        topic_prefix=f"exec.{tag}",
        consumer_group=f"exec-{tag}",
        event_store_url=f"sqlite:///{folder / tag}.db",
        execution_storage_dir=str(folder / tag / "executions"),
        orchestrator_worker_idle_s=args.worker_idle_s,
        **({"orchestrator_session_timeout_ms": args.session_ms} if args.session_ms else {}),
    )
    # The rest as `pipelines dev` sets it for the embedded broker (idle wait, sessions).
    settings = settings.model_copy(update=embedded_tuning(settings))
    say = f"fetch wait {wait_ms} ms:"
    print(say, "raw round trip", file=sys.stderr, flush=True)
    raw = await raw_round_trip(settings, args.raw_messages, 10.0)
    first = Figure("first run after create (roles just started)")
    warm = Figure(f"warm runs, one after another ({args.runs})")
    idle = Figure(f"first run after {args.idle_s:g} s idle")
    restart = Figure("first run after a restart (config stored)")
    await ensure_topics(settings)
    async with events_reader(settings) as reader, client_bus(settings) as bus:
        finishes = Finishes(reader)
        try:
            async with running_roles(settings, ROLES) as roles:
                await guarded(orchestrator_alive(settings), roles)
                create = CreateConfig(name=f"orders-{tag}", document=example_document(tag))
                created = await guarded(bus.send(create, timeout_s=RUN_TIMEOUT_S), roles)
                assert created.outcome == "accepted", created
                print(say, "first run", file=sys.stderr, flush=True)
                await guarded(run_once(bus, finishes, create.config_id, first), roles)
                print(say, "warm runs", file=sys.stderr, flush=True)
                for _ in range(args.runs):
                    await guarded(run_once(bus, finishes, create.config_id, warm), roles)
                print(say, "after idle", file=sys.stderr, flush=True)
                for _ in range(args.idle_runs):
                    await asyncio.sleep(args.idle_s)
                    await guarded(run_once(bus, finishes, create.config_id, idle), roles)
            print(say, "after a restart", file=sys.stderr, flush=True)
            async with running_roles(settings, ROLES) as roles:
                await guarded(orchestrator_alive(settings), roles)
                await guarded(run_once(bus, finishes, create.config_id, restart), roles)
        finally:
            finishes.task.cancel()
    report(
        f"fetch wait {wait_ms} ms, session {settings.orchestrator_session_timeout_ms} ms",
        raw,
        [first, warm, idle, restart],
    )


def report(title: str, raw: Figure, rows: list[Figure]) -> None:
    print(f"\n{title}")
    columns = ("n", 4), ("p50 ms", 9), ("p99 ms", 9), ("p99/raw", 8)
    print(f"{'figure':48}", *(f"{name:>{width}}" for name, width in columns))
    for f in [raw, *rows]:
        print(
            f"{f.label:48} {len(f.latencies):4d} {f.ms(50):9.1f} {f.ms(99):9.1f} "
            f"{f.ms(99) / raw.ms(99):8.1f}"
        )
    for f in rows:
        if f.rejected:
            print(
                f"{f.label}: {f.rejected} RunConfig refused (no orchestrator alive yet), sent again"
            )
        if f.note:
            print(f.note)
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    async with EmbeddedBroker() as broker:
        print(f"execution latency on the embedded broker ({broker.bootstrap_servers});")
        print("RunConfig published -> StatusChanged to success read from the events topic")
        with tempfile.TemporaryDirectory(prefix="execution-latency-") as folder:
            for wait_ms in args.fetch_wait_ms:
                await measure(broker.bootstrap_servers, wait_ms, args, Path(folder))


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Execution latency benchmark: prints figures.")
    parser.add_argument("--fetch-wait-ms", action="append", type=int)
    parser.add_argument("--runs", type=int, default=30, help="warm runs")
    parser.add_argument("--idle-runs", type=int, default=2)
    parser.add_argument("--idle-s", type=float, default=5.0, help="quiet time before a run")
    parser.add_argument("--worker-idle-s", type=float, default=2.0)
    parser.add_argument(
        "--session-ms", type=int, default=None, help="orchestrator_session_timeout_ms"
    )
    parser.add_argument("--raw-messages", type=int, default=200)
    args = parser.parse_args(argv)
    args.fetch_wait_ms = args.fetch_wait_ms or [10, 50]
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(parse()))
