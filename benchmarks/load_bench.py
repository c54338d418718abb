"""Aggregate-load benchmark: prints figures, asserts nothing.

How long `repository.get` takes for a Pipeline with a long history against one with 10
events, on the same store in the same run:
  worst: the long history ends `interval - 1` events after its last snapshot, so the
         load reads the snapshot and replays `interval - 1` events;
  best:  the long history ends on a snapshot, so nothing is replayed.
The 10-event pipeline is loaded as the store keeps it (a snapshot when the interval
divides 10) and, as a fixed reference, from 10 replayed events with no snapshot.
Histories are written the way the handler writes them (`open_command_store`, saves of
`--batch` events), so the write figures include the snapshots the interval costs.
Loads go through a second store with no aggregate cache: every get reads the database.

    uv run --frozen python -m benchmarks.load_bench --store sqlite --store postgres
    uv run --frozen python -m benchmarks.load_bench --interval 100 --interval 10
    uv run --frozen python -m benchmarks.load_bench --no-loads --decide-commands 20000 \
        --interval 100 --interval 10
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import ProjectorFunction, project_aggregate

from benchmarks.bench import PG_DEFAULT, store_url
from domain.pipeline import Pipeline
from services.adapters.eventstore import EventStore, open_event_store, replay
from services.adapters.stores import (
    open_command_store,
    snapshotting_intervals,
)

Projector = ProjectorFunction[Any, Any]


@dataclass
class Figures:
    store: str
    interval: int
    events: int
    write_s: float
    snapshots: int
    snapshot_bytes: int
    worst_version: int = 0
    best_version: int = 0
    small_us: float = 0.0
    small_plain_us: float = 0.0
    worst_us: float = 0.0
    best_us: float = 0.0
    best_ratio: float = 0.0
    replayed: int = 0  # events after the latest snapshot, in the worst case


def advance(pipeline: Pipeline, to_version: int) -> None:
    """Start/stop (forced) until the pipeline's version is `to_version`: one event each."""
    now = datetime.now(UTC)
    while pipeline.version < to_version:
        if pipeline.resources_desired_status.value == "Stopped":
            pipeline.start(at=now)
        else:
            pipeline.stop(force=True, at=now)


def grow(store: EventStore, pipeline: Pipeline, to_version: int, batch: int) -> None:
    while pipeline.version < to_version:
        advance(pipeline, min(pipeline.version + batch, to_version))
        store.save(pipeline)


def time_gets(
    loads: Sequence[tuple[EventStore, UUID]], repeats: int, projector: Projector
) -> list[float]:
    """Median microseconds of one uncached `repository.get` of each, taken in turns so the
    noise of a shared machine falls on all of them alike."""
    for store, aggregate_id in loads:  # warm the connection and the statement cache
        store.repository.get(aggregate_id, projector_func=projector)
    samples: list[list[float]] = [[] for _ in loads]
    for _ in range(repeats):
        for (store, aggregate_id), times in zip(loads, samples, strict=True):
            start = time.perf_counter()
            store.repository.get(aggregate_id, projector_func=projector)
            times.append(time.perf_counter() - start)
    return [statistics.median(times) * 1e6 for times in samples]


def snapshot_figures(store: EventStore, aggregate_id: UUID) -> tuple[int, int, int]:
    """How many snapshots the aggregate has, the size of the latest one's state and its
    version (0: none)."""
    assert store.snapshots is not None
    recorder = store.snapshots.recorder
    rows = recorder.select_events(aggregate_id, desc=True, limit=1)
    count = len(recorder.select_events(aggregate_id))
    if not rows:
        return count, 0, 0
    return count, len(rows[0].state), rows[0].originator_version


def bench(kind: str, interval: int, args: argparse.Namespace) -> Figures:
    url = store_url(kind, args.pg_url)
    writer = open_command_store(url, pipeline_snapshot_interval=interval, cache_maxsize=100)
    reader = open_event_store(url, snapshotting_intervals=snapshotting_intervals())
    reference = open_event_store(store_url(kind, args.pg_url))  # no snapshots at all
    now = datetime.now(UTC)
    try:
        small = Pipeline(name="small", config_id=None, at=now)
        grow(writer, small, 10, args.batch)
        plain = Pipeline(name="plain", config_id=None, at=now)
        grow(reference, plain, 10, args.batch)

        big = Pipeline(name="big", config_id=None, at=now)
        worst = args.events - (args.events % interval) - 1 if interval > 1 else args.events
        start = time.perf_counter()
        # Up to a multiple of the interval in saves of `--batch`, then one event per save,
        # so no save crosses another multiple: interval - 1 events after the last snapshot
        # however the store places snapshots within a save.
        grow(writer, big, worst - (interval - 1), args.batch)
        grow(writer, big, worst, 1)
        write_s = time.perf_counter() - start
        snapshots, size, latest = snapshot_figures(writer, big.id)
        figures = Figures(kind, interval, worst, write_s, snapshots, size, worst_version=worst)
        figures.replayed = worst - latest
        projector = project_aggregate if args.library_projector else replay
        loads = [(reader, small.id), (reference, plain.id), (reader, big.id)]
        figures.small_us, figures.small_plain_us, figures.worst_us = time_gets(
            loads, args.repeats, projector
        )
        grow(writer, big, worst + 1, args.batch)  # now it ends on a snapshot
        figures.best_version = big.version
        # The best case against the same 10-event pipeline, timed in its own turns.
        small_again, figures.best_us = time_gets(loads[::2], args.repeats, projector)
        figures.best_ratio = figures.best_us / small_again
        return figures
    finally:
        for store in (writer, reader, reference):
            store.close()


def decide_rate(kind: str, interval: int, args: argparse.Namespace) -> float:
    """Commands per second through the handler's decider (no Kafka), in batches of
    `--decide-batch`, with a Pipeline snapshot every `interval` events: the write-path
    cost of the interval (few pipelines, so each crosses many multiples)."""
    from benchmarks.bench import decider_for, items
    from benchmarks.workload import commands, setup_commands

    store = open_command_store(store_url(kind, args.pg_url), pipeline_snapshot_interval=interval)
    decider = decider_for(store)
    config, config_id = setup_commands()
    workload = items([config, *commands(args.decide_pipelines, args.decide_commands, config_id)])
    decider.decide(workload[: 1 + args.decide_pipelines])  # the config and the creates
    rest = workload[1 + args.decide_pipelines :]
    start = time.perf_counter()
    for offset in range(0, len(rest), args.decide_batch):
        decider.decide(rest[offset : offset + args.decide_batch])
    elapsed = time.perf_counter() - start
    store.close()
    return len(rest) / elapsed


def report_decide(args: argparse.Namespace) -> None:
    print()
    print(
        f"Write path: {args.decide_commands} commands on {args.decide_pipelines} pipelines "
        f"through the decider, batches of {args.decide_batch}; intervals timed in turns"
    )
    for kind in args.store:
        rates: dict[int, list[float]] = {i: [] for i in args.interval}
        for _ in range(args.decide_rounds):
            for interval in args.interval:
                rates[interval].append(decide_rate(kind, interval, args))
        best = {i: max(r) for i, r in rates.items()}
        base = best[args.interval[0]]
        cells = ", ".join(
            f"every {i}: {rate:,.0f} cmd/s ({rate / base:.2f})" for i, rate in best.items()
        )
        print(f"{kind:8} {cells}")


def report(all_figures: Sequence[Figures], args: argparse.Namespace) -> None:
    print()
    print(
        f"Pipeline loads (median of {args.repeats} uncached repository.get, "
        f"{'library' if args.library_projector else 'eventstore.replay'} projector); "
        f"histories written "
        f"in saves of {args.batch} events."
    )
    print(
        f"{'store':8} {'interval':>8} {'events':>8} {'replayed':>8} {'write ev/s':>11} "
        f"{'snaps':>6} "
        f"{'snap B':>7} {'10ev us':>8} {'10 plain':>9} {'worst us':>9} {'best us':>8} "
        f"{'worst/10':>9} {'worst/plain':>12} {'best/10':>8}"
    )
    for f in all_figures:
        print(
            f"{f.store:8} {f.interval:8} {f.events:8} {f.replayed:8} {f.events / f.write_s:11,.0f} "
            f"{f.snapshots:6} {f.snapshot_bytes:7} {f.small_us:8.0f} {f.small_plain_us:9.0f} "
            f"{f.worst_us:9.0f} {f.best_us:8.0f} {f.worst_us / f.small_us:9.2f} "
            f"{f.worst_us / f.small_plain_us:12.2f} {f.best_ratio:8.2f}"
        )
    print(
        "worst: the history ends interval-1 events after its last snapshot; best: on a "
        "snapshot.\n10ev: a 10-event pipeline as the store keeps it; 10 plain: 10 events "
        "replayed, no snapshot."
    )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--interval", action="append", type=int)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=50, help="events per save")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument(
        "--library-projector",
        action="store_true",
        help="load with the library's project_aggregate (as before stores.replay)",
    )
    parser.add_argument("--decide-commands", type=int, default=0, help="0: skip")
    parser.add_argument("--decide-pipelines", type=int, default=50)
    parser.add_argument("--decide-batch", type=int, default=500)
    parser.add_argument("--decide-rounds", type=int, default=2, help="best of")
    parser.add_argument("--loads", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args(argv)
    args.store = args.store or ["sqlite", "postgres"]
    args.interval = args.interval or [snapshotting_intervals()[Pipeline]]
    return args


def main(args: argparse.Namespace) -> None:
    if args.loads:
        figures = [bench(kind, interval, args) for kind in args.store for interval in args.interval]
        report(figures, args)
    if args.decide_commands:
        report_decide(args)
    every = snapshotting_intervals()[Pipeline]
    print(f"(services/adapters/stores.py snapshots a Pipeline every {every} events)")


if __name__ == "__main__":
    main(parse())
