"""Latency benchmark: prints figures, asserts nothing. For every fetch wait given
(`Settings.kafka_fetch_wait_ms`) and every store, one table of:
  (0) raw round trip: aiokafka producer -> an assigned consumer at that fetch wait, one
      message at a time;
  (1) command published -> its result, open loop (fired on schedule, never waiting) at
      50, 500 and 1,000 cmd/s, the `handler` role in a process of its own; each command timed by
      CommandBus.send and by a raw reader of the results topic, so what the bus adds shows;
  (2) command published -> visible in GET /v0/pipelines/{name} over HTTP (roles handler,
      relay, projector and api in one process of their own, as `pipelines serve` runs them):
      StartPipeline / StopPipeline alternately at ~20 cmd/s, polled every ~2 ms until
      deployment_desired_status changes;
each beside (0) of the same table (p99 / raw p99). The embedded broker holds every fetch
for its whole wait (docs/architecture.md), so there every consumer hop costs up to it.

    uv run --frozen python -m benchmarks.latency --store sqlite --fetch-wait-ms 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from itertools import islice

from aiokafka import AIOKafkaConsumer

from benchmarks.bench import PG_DEFAULT, _await_results, store_url
from benchmarks.latency_support import (
    RATES,
    Figure,
    client_bus,
    guarded,
    on_schedule,
    raw_round_trip,
    results_reader,
    running_roles,
    send_all,
)
from benchmarks.latency_visibility import free_port, visibility
from benchmarks.workload import commands, setup_commands
from contracts import Command
from services.adapters.kafka.command_bus import CommandBus, Unanswered
from services.adapters.kafka.embedded_broker import EmbeddedBroker, embedded_tuning
from services.settings import Settings


async def command_results(settings: Settings, pipelines: int, seconds: float) -> list[Figure]:
    config, config_id = setup_commands()
    stream = commands(pipelines, sys.maxsize, config_id, prefix="lat")
    figures: list[Figure] = []
    async with (
        running_roles(settings, ["handler"]) as roles,
        results_reader(settings) as reader,
        client_bus(settings) as bus,
    ):
        await send_all(bus, [config], roles)  # waits out the group join
        await send_all(bus, list(islice(stream, pipelines)), roles)
        for rate in RATES:
            figures += await guarded(open_loop(bus, reader, stream, rate, seconds), roles)
    return figures


async def open_loop(
    bus: CommandBus, reader: AIOKafkaConsumer, stream: Iterator[Command], rate: int, seconds: float
) -> list[Figure]:
    count = max(2, int(rate * seconds))
    via_bus = Figure(f"(1) result @ {rate}/s, CommandBus.send", sent=count)
    via_reader = Figure(f"(1) result @ {rate}/s, raw results reader", sent=count)
    sent_at: dict[str, float] = {}
    arrived: dict[str, float] = {}
    reading = asyncio.create_task(_await_results(reader, sent_at, arrived, expected=count))

    async def send(command: Command, command_id: str, start: float) -> None:
        with contextlib.suppress(Unanswered):
            result = await bus.send(command, command_id)
            via_bus.latencies.append(time.perf_counter() - start)
            via_bus.rejected += result.outcome != "accepted"

    def fire() -> asyncio.Task[None]:
        command_id = str(uuid.uuid4())
        sent_at[command_id] = time.perf_counter()
        return asyncio.create_task(send(next(stream), command_id, sent_at[command_id]))

    tasks, via_bus.rate = await on_schedule(rate, count, fire)
    via_reader.rate = via_bus.rate
    await asyncio.gather(*tasks)
    with contextlib.suppress(TimeoutError):  # the reader may lag the bus a little
        await asyncio.wait_for(reading, 5)
    via_reader.latencies = [arrived[i] - t for i, t in sent_at.items() if i in arrived]
    return [via_bus, via_reader]


# --- (2) command -> visible over HTTP -----------------------------------------------------


def settings_for(bootstrap: str, url: str, wait_ms: int, *, embedded: bool) -> Settings:
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        kafka_fetch_wait_ms=wait_ms,
        topic_prefix=f"latency.{tag}",
        consumer_group=f"latency-{tag}",
        event_store_url=url,
        api_host="127.0.0.1",
        api_port=free_port(),
    )
    # On the embedded broker, the rest as `pipelines dev` sets it (idle wait, sessions).
    return settings.model_copy(update=embedded_tuning(settings)) if embedded else settings


async def measure(bootstrap: str, store: str, wait_ms: int, args: argparse.Namespace) -> None:
    def fresh() -> Settings:
        url = store_url(store, args.pg_url)
        return settings_for(bootstrap, url, wait_ms, embedded=args.bootstrap is None)

    say = f"fetch wait {wait_ms} ms, {store}:"
    print(say, "raw round trip", file=sys.stderr, flush=True)
    raw = await raw_round_trip(fresh(), args.raw_messages, max(5.0, 4 * args.seconds))
    print(say, "command -> result", file=sys.stderr, flush=True)
    rows = await command_results(fresh(), args.pipelines, args.seconds)
    print(say, "command -> GET", file=sys.stderr, flush=True)
    rows.append(await visibility(fresh(), 2 * args.seconds))
    report(f"fetch wait {wait_ms} ms, store {store}", raw, rows)


def report(title: str, raw: Figure, rows: list[Figure]) -> None:
    print(f"\n{title}")
    columns = ("n", 5), ("lost", 5), ("sent/s", 7), ("p50 ms", 8), ("p99 ms", 8), ("p99/raw", 8)
    print(f"{'figure':52}", *(f"{name:>{width}}" for name, width in columns))
    for f in [raw, *rows]:
        rate = f"{f.rate:7.0f}" if f.rate is not None else f"{'-':>7}"
        print(
            f"{f.label:52} {len(f.latencies):5d} {f.lost:5d} {rate} "
            f"{f.ms(50):8.1f} {f.ms(99):8.1f} {f.ms(99) / raw.ms(99):8.2f}"
        )
    for f in rows:
        if f.rejected:
            print(f"{f.label}: {f.rejected} rejected (timed all the same)")
        if f.note:
            print(f.note)
    sys.stdout.flush()


@contextlib.asynccontextmanager
async def broker(bootstrap: str | None) -> AsyncIterator[str]:
    if bootstrap:
        yield bootstrap
        return
    async with EmbeddedBroker() as embedded:
        yield embedded.bootstrap_servers


async def main(args: argparse.Namespace) -> None:
    async with broker(args.bootstrap) as bootstrap:
        where = "an existing broker" if args.bootstrap else "the embedded broker"
        print(f"latency on {where} ({bootstrap}); the roles in a process of their own")
        print("(1) is timed by CommandBus.send and, for the same commands, by a raw reader;")
        print("open loop: every command fired on schedule, whatever is still in flight.")
        for wait_ms in args.fetch_wait_ms:
            for store in args.store:
                await measure(bootstrap, store, wait_ms, args)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Latency benchmark: prints figures.")
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--fetch-wait-ms", action="append", type=int)
    parser.add_argument("--seconds", type=float, default=3.0, help="per rate; (2) runs twice it")
    parser.add_argument("--raw-messages", type=int, default=200)
    parser.add_argument("--pipelines", type=int, default=500, help="for (1)")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("PIPELINES_KAFKA_BOOTSTRAP_SERVERS")
        or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="an existing broker (default: the environment's, else the embedded one)",
    )
    args = parser.parse_args(argv)
    args.store = args.store or ["sqlite", "postgres"]
    args.fetch_wait_ms = args.fetch_wait_ms or [500, 10]
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(parse()))
