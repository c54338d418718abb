"""Projection benchmark: prints figures, asserts nothing.

One run per store seeds an event store with a fixed mixed history through the real
decider (pipelines created, then start / stop force=true rounds; every fifth command a
pipeline run created, started and completed; one config), then measures on that database:

  (a) raw       a bulk insert of as many rows as there are events (executemany, one
                transaction per batch, rows the size of a pipeline's document): what
                the database takes at best;
  (b) rebuild   `pipelines projections rebuild` without its progress bar
                (`rebuild_read_models`): read the whole history from the event store,
                apply it to fresh tables, swap them in;
  (c) live      the projector role on the embedded broker: the history published to the
                events topic, `ProjectorConsumer` started, timed until every aggregate's
                last version is applied; the projection delay is the time from an event
                published to its version applied, sampled from a reader while a steady
                stream of events is published at (c)'s rate / 2.

b/a and c/a are the figures to read; absolute numbers vary with the machine.

    uv run --frozen python -m benchmarks.projection_bench --store sqlite --store postgres
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.bench import PG_DEFAULT, store_url
from benchmarks.workload import commands, setup_commands
from contracts import Command
from contracts.cloudevents import encode_event
from contracts.events import LifecycleEvent
from contracts.run_commands import CompleteRun, CreateRun, StartRun
from projections.db import Database
from projections.projector import APPLIERS, Projector
from projections.rebuild import BATCH_SIZE
from projections.rows import dump
from services.adapters.eventstore import open_event_store
from services.adapters.kafka.clients import make_producer
from services.adapters.kafka.embedded_broker import EmbeddedBroker, create_topics, embedded_tuning
from services.adapters.stores import open_command_store
from services.runtimes.projector import (
    ProjectorConsumer,
    fetch_events_from,
    history,
    rebuild_read_models,
)
from services.service_layer.decider import Decider, Item
from services.service_layer.handlers import HANDLERS
from services.settings import Settings

DECIDE_BATCH = 500


@dataclass
class Figures:
    store: str
    events: int = 0
    raw: float = 0.0
    rebuild: float = 0.0
    live: float = 0.0
    delay_p50_ms: float = 0.0
    delay_p99_ms: float = 0.0
    delay_rate: float = 0.0


def workload(pipelines: int, total: int) -> Iterator[Command]:
    """The bench workload's commands with a pipeline run (create, start, complete) in
    place of every fifth one."""
    config, config_id = setup_commands()
    yield config
    for i, command in enumerate(commands(pipelines, total, config_id)):
        name = getattr(command, "pipeline_name", None)
        if name is not None and i % 5 == 0:
            run = CreateRun(pipeline_id=name)
            yield run
            yield StartRun(run_id=run.run_id)
            yield CompleteRun(run_id=run.run_id)
        else:
            yield command


def seed(url: str, cmds: Sequence[Command]) -> int:
    """Decide `cmds` into the event store at `url`; the number of events stored."""
    with open_command_store(url) as store:
        decider = Decider(store, HANDLERS)
        for start in range(0, len(cmds), DECIDE_BATCH):
            batch = cmds[start : start + DECIDE_BATCH]
            decider.decide([Item(command_id=str(uuid.uuid4()), command=c) for c in batch])
    with open_event_store(url) as events:
        return int(events.recorder.max_notification_id() or 0)


def raw_insert(url: str, rows: int, batch: int) -> float:
    """Rows per second of a plain bulk insert into a scratch table of the same database."""
    doc = dump({f"field_{i}": f"value {i:04d}" for i in range(30)})  # ~ a pipeline's doc
    db = Database(url)
    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    try:
        with db.transaction() as cursor:
            cursor.execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        start = time.perf_counter()
        for offset in range(0, rows, batch):
            with db.transaction() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} (id, doc) VALUES (?, ?)",
                    [(f"row-{i}", doc) for i in range(offset, min(rows, offset + batch))],
                )
        elapsed = time.perf_counter() - start
        with db.transaction() as cursor:
            cursor.execute(f"DROP TABLE {table}")
    finally:
        db.close()
    return rows / elapsed


def rebuild_rate(url: str, batch: int) -> float:
    settings = Settings(event_store_url=url)
    start = time.perf_counter()
    stats = rebuild_read_models(settings, batch_size=batch)
    return stats.events / (time.perf_counter() - start)


def stored_events(url: str) -> list[LifecycleEvent]:
    with open_event_store(url) as store:
        return list(history(store))


def _last_versions(events: Sequence[LifecycleEvent]) -> dict[str, int]:
    last: dict[str, int] = {}
    for event in events:
        if event.aggregate_type not in APPLIERS:
            continue  # no read model, no version recorded
        last[event.aggregate_id] = max(event.version, last.get(event.aggregate_id, 0))
    return last


async def _publish(settings: Settings, events: Sequence[LifecycleEvent]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        acks = []
        for event in events:
            record = encode_event(event)
            acks.append(
                await producer.send(
                    settings.topics.events, record.value, key=record.key, headers=record.headers
                )
            )
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def _applied_all(read: Any, last: dict[str, int]) -> None:
    """Until every aggregate of `last` has its version applied."""
    pending = dict(last)
    while pending:
        ids = list(pending)[:500]
        marks = ", ".join("?" * len(ids))
        rows = await asyncio.to_thread(
            read.db.query,
            f"SELECT aggregate_id, version FROM read_versions WHERE aggregate_id IN ({marks})",
            ids,
        )
        done = {aid for aid, version in rows if int(version) >= pending[aid]}
        for aid in done:
            del pending[aid]
        if not done:
            await asyncio.sleep(0.05)


async def live_rate(
    bootstrap: str, url: str, events: Sequence[LifecycleEvent], delay_events: int
) -> tuple[float, list[float], float]:
    """(events/s of the projector draining `events` published beforehand, the projection
    delays of `delay_events` more published at half that rate, that rate)."""
    from projections.store import ReadStore

    prefix = f"pbench{uuid.uuid4().hex[:8]}"
    settings = Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, event_store_url=url)
    settings = settings.model_copy(update=embedded_tuning(settings))  # as `pipelines dev`
    await create_topics(bootstrap, settings.topics.all(), partitions=settings.partitions)
    # Fresh live tables: the rebuild above left its read models in this database.
    read = await asyncio.to_thread(ReadStore, url)
    await asyncio.to_thread(read.drop_tables, "")
    await asyncio.to_thread(read.create_tables)
    await _publish(settings, events)
    stop = asyncio.Event()
    store = await asyncio.to_thread(open_event_store, url)
    consumer = ProjectorConsumer(settings, Projector(read, fetch_events_from(store)))
    start = time.perf_counter()
    task = asyncio.create_task(consumer.run(stop, lambda: None))
    try:
        await _applied_all(read, _last_versions(events))
        rate = len(events) / (time.perf_counter() - start)
        delays = await _delays(settings, read, events, delay_events, rate / 2)
    finally:
        stop.set()
        await task
        await asyncio.to_thread(read.close)
        await asyncio.to_thread(store.close)
    return rate, delays, rate / 2


def _later(events: Sequence[LifecycleEvent], count: int) -> list[LifecycleEvent]:
    """`count` events that follow `events`: each aggregate's history again, renumbered
    after its last version (the projector applies them like new ones)."""
    last = _last_versions(events)
    later: list[LifecycleEvent] = []
    for event in events:
        if len(later) == count:
            break
        if event.event_type == "Created" or event.aggregate_id not in last:
            continue
        last[event.aggregate_id] += 1
        later.append(event.model_copy(update={"version": last[event.aggregate_id]}))
    return later


async def _delays(
    settings: Settings, read: Any, events: Sequence[LifecycleEvent], count: int, rate: float
) -> list[float]:
    """Publish `count` more events at `rate`; for every 50th, the time from its send to
    its version applied."""
    later = _later(events, count)
    producer = make_producer(settings)
    await producer.start()
    delays: list[float] = []
    waits: list[asyncio.Task[None]] = []

    async def wait(event: LifecycleEvent, sent: float) -> None:
        applied = await read.wait_for_version(event.aggregate_id, event.version, 60.0)
        if applied:
            delays.append(time.perf_counter() - sent)

    try:
        start = time.perf_counter()
        for i, event in enumerate(later):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            record = encode_event(event)
            await producer.send(
                settings.topics.events, record.value, key=record.key, headers=record.headers
            )
            if i % 50 == 0:
                waits.append(asyncio.create_task(wait(event, time.perf_counter())))
        await asyncio.gather(*waits)
    finally:
        await producer.stop()
    return delays


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def bench_store(kind: str, args: argparse.Namespace, bootstrap: str | None) -> Figures:
    figures = Figures(store=kind)
    url = store_url(kind, args.pg_url)
    cmds = list(workload(args.pipelines, args.commands))
    figures.events = await asyncio.to_thread(seed, url, cmds)
    figures.raw = await asyncio.to_thread(raw_insert, url, figures.events, args.batch)
    figures.rebuild = await asyncio.to_thread(rebuild_rate, url, args.batch)
    if bootstrap is not None:
        events = await asyncio.to_thread(stored_events, url)
        figures.live, delays, figures.delay_rate = await live_rate(
            bootstrap, url, events, args.delay_events
        )
        figures.delay_p50_ms = percentile(delays, 50) * 1000
        figures.delay_p99_ms = percentile(delays, 99) * 1000
    return figures


def report(all_figures: list[Figures], args: argparse.Namespace) -> None:
    print()
    print(
        f"workload: {args.pipelines} pipelines, {args.commands} commands (create, start / "
        f"stop force=true, every fifth a run created, started, completed); batch {args.batch}"
    )
    print(
        f"{'store':10} {'events':>8} {'(a) raw rows/s':>15} {'(b) rebuild ev/s':>17} "
        f"{'b/a':>5} {'(c) live ev/s':>14} {'c/a':>5} {'delay p50 ms':>13} "
        f"{'p99 ms':>8} {'at ev/s':>8}"
    )
    for f in all_figures:
        print(
            f"{f.store:10} {f.events:8,} {f.raw:15,.0f} {f.rebuild:17,.0f} "
            f"{f.rebuild / f.raw:5.2f} {f.live:14,.0f} {f.live / f.raw:5.2f} "
            f"{f.delay_p50_ms:13.1f} {f.delay_p99_ms:8.1f} {f.delay_rate:8,.0f}"
        )


async def main(args: argparse.Namespace) -> None:
    if args.no_live:
        results = [await bench_store(kind, args, None) for kind in args.store]
    else:
        async with EmbeddedBroker() as broker:
            results = [
                await bench_store(kind, args, broker.bootstrap_servers) for kind in args.store
            ]
    report(results, args)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=BATCH_SIZE)
    parser.add_argument("--delay-events", type=int, default=5000)
    parser.add_argument("--no-live", action="store_true", help="only (a) and (b)")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args(argv)
    args.store = args.store or ["sqlite", "postgres"]
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
