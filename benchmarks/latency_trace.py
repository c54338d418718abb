"""Where the time of the latency benchmark's figure (2) goes: the same probes as
benchmarks.latency_visibility (a command published -> visible in GET /v0/pipelines/{name}),
with every hop of the path timestamped in the roles' process. Prints, per hop, p50 and p99
of the time from the previous hop; asserts nothing.

    uv run --frozen python -m benchmarks.latency_trace --store sqlite --fetch-wait-ms 10

The hops, in the roles' process (`child` mode: the roles with these wrappers installed):
  committed      the command recorder's insert_events returned (the events' transaction
                 committed; the handler's fetch and decision come before it);
  relay read     the relay's select_notifications returned them;
  relay acked    every send of the relay's batch was acknowledged (its position save starts);
  relay saved    the relay's publish_batch returned (position saved; the projector may
                 well have fetched them before: its step is then negative);
  proj fetched   the projector's handler was given the batch holding them;
  proj applied   the projector's read-model transaction committed them;
and in the benchmark's process: published (before CommandBus.publish) and seen (the first
GET that showed the change). Times are perf_counter, CLOCK_MONOTONIC on Linux: one clock
for both processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from benchmarks.bench import PG_DEFAULT, percentile, store_url
from benchmarks.latency import broker, settings_for
from benchmarks.latency_support import role_process
from benchmarks.latency_visibility import Probe, visibility
from services.settings import Settings

HOPS = ("committed", "relay read", "relay acked", "relay saved", "proj fetched", "proj applied")
NO_SIGNAL_ENV = "LATENCY_TRACE_NO_SIGNAL"


# --- the roles' side -----------------------------------------------------------------------


def install(out: TextIO) -> None:
    """Wrap the path's functions so that each writes `<time> <hop> <aggregate id> <version>`
    lines for the events it handled."""
    from services.adapters import commit_signals
    from services.adapters.command_records import PostgresCommandRecorder, SQLiteCommandRecorder
    from services.runtimes.projector import ProjectorConsumer, decode_records
    from services.runtimes.relay import Relay

    if os.environ.get(NO_SIGNAL_ENV):  # the path as it was before commit signals
        commit_signals.committed = lambda key: None
    in_flight: list[tuple[Any, int]] = []  # the relay's batch (one relay per process)

    def mark(hop: str, events: Sequence[tuple[Any, int]]) -> None:
        now = time.perf_counter()
        tag = hop.replace(" ", "_")
        out.write("".join(f"{now:.6f} {tag} {aid} {version}\n" for aid, version in events))

    for cls in (SQLiteCommandRecorder, PostgresCommandRecorder):
        insert = cls.insert_events

        @functools.wraps(insert)
        def traced_insert(self: Any, stored: Any, *, _insert: Any = insert, **kw: Any) -> Any:
            result = _insert(self, stored, **kw)
            mark("committed", [(s.originator_id, s.originator_version) for s in stored])
            return result

        cls.insert_events = traced_insert  # type: ignore[method-assign]
        set_position = cls.set_position

        def traced_set(self: Any, name: str, pos: int, *, _set: Any = set_position) -> None:
            mark("relay acked", in_flight)
            _set(self, name, pos)

        cls.set_position = traced_set  # type: ignore[method-assign,assignment]

    read = Relay._read

    def traced_read(self: Relay) -> Any:
        notifications = read(self)
        pairs = [(n.originator_id, n.originator_version) for n in notifications]
        mark("relay read", pairs)
        in_flight[:] = pairs
        return notifications

    publish = Relay.publish_batch

    async def traced_publish(self: Relay) -> Any:
        outcome = await publish(self)
        mark("relay saved", in_flight)
        in_flight.clear()
        return outcome

    handle = ProjectorConsumer.handle

    async def traced_handle(self: ProjectorConsumer, batch: Any) -> Any:
        events, _ = decode_records(batch)
        pairs = [(e.aggregate_id, e.version) for e in events]
        mark("proj fetched", pairs)
        after = await handle(self, batch)
        mark("proj applied", pairs)
        return after

    Relay._read = traced_read  # type: ignore[method-assign]
    Relay.publish_batch = traced_publish  # type: ignore[method-assign]
    ProjectorConsumer.handle = traced_handle  # type: ignore[method-assign]


def child(trace_file: str, roles: list[str]) -> None:
    from services.entrypoints.cli import run

    with open(trace_file, "w", buffering=1) as out:
        install(out)
        asyncio.run(run._serve(Settings(), roles, None))


# --- the benchmark's side ------------------------------------------------------------------


def traced_runner(trace_file: Path, *, signal: bool) -> Callable[[Settings, list[str]], Any]:
    """benchmarks.latency_support.running_roles, but the roles run traced."""

    @contextlib.asynccontextmanager
    async def run(settings: Settings, names: list[str]) -> AsyncIterator[asyncio.Task[None]]:
        roles = [arg for name in names for arg in ("--role", name)]
        args = ["-m", "benchmarks.latency_trace", "child", str(trace_file), *roles]
        extra = {} if signal else {NO_SIGNAL_ENV: "1"}
        async with role_process(settings, args, trace_file.with_suffix(".log"), extra) as task:
            yield task

    return run


def read_trace(path: Path) -> dict[str, list[tuple[float, str, int]]]:
    """aggregate id -> (time, hop, version), in time order."""
    found: dict[str, list[tuple[float, str, int]]] = {}
    for line in path.read_text().splitlines():
        at, hop, aid, version = line.split()
        found.setdefault(aid, []).append((float(at), hop.replace("_", " "), int(version)))
    for marks in found.values():
        marks.sort()
    return found


def breakdown(probes: list[Probe], trace: dict[str, list[tuple[float, str, int]]]) -> None:
    """Per probe, the first mark of each hop after its publish, of the version committed
    first after it; then p50/p99 of each step."""
    steps: dict[str, list[float]] = {}
    complete = 0
    for probe in probes:
        marks = [m for m in trace.get(probe.pipeline_id, []) if m[0] >= probe.published]
        committed = next((m for m in marks if m[1] == "committed"), None)
        if committed is None:
            continue
        version = committed[2]
        times = [probe.published]
        for hop in HOPS:
            at = next((m[0] for m in marks if m[1] == hop and m[2] == version), None)
            if at is None:
                break
            times.append(at)
        else:
            times.append(probe.seen)
            complete += 1
            names = ["published", *HOPS, "seen"]
            for i in range(1, len(names)):
                steps.setdefault(f"{names[i - 1]} -> {names[i]}", []).append(
                    times[i] - times[i - 1]
                )
            steps.setdefault("total", []).append(probe.seen - probe.published)
    print(f"{complete} of {len(probes)} probes traced end to end")
    print(f"{'step':36} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in steps.items():
        p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
        print(f"{name:36} {p50:8.1f} {p99:8.1f} {max(values) * 1000:8.1f}")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    async with broker(args.bootstrap) as bootstrap:
        for wait_ms in args.fetch_wait_ms:
            for store in args.store:
                settings = settings_for(
                    bootstrap,
                    store_url(store, args.pg_url),
                    wait_ms,
                    embedded=args.bootstrap is None,
                )
                if args.poll_ms is not None:
                    settings.relay_poll_interval_ms = args.poll_ms
                with tempfile.TemporaryDirectory(prefix="latency-trace-") as folder:
                    trace_file = Path(folder) / "trace.txt"
                    probes: list[Probe] = []
                    runner = traced_runner(trace_file, signal=not args.no_signal)
                    figure = await visibility(
                        settings, args.seconds, roles_runner=runner, probes_log=probes
                    )
                    how = "without" if args.no_signal else "with"
                    print(
                        f"\nfetch wait {wait_ms} ms, store {store}, relay poll "
                        f"{settings.relay_poll_interval_ms} ms, {how} commit signals: "
                        f"{figure.label}"
                    )
                    print(f"p50 {figure.ms(50):.1f} ms, p99 {figure.ms(99):.1f} ms")
                    breakdown(probes, read_trace(trace_file))


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Figure (2) of benchmarks.latency, traced.")
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--fetch-wait-ms", action="append", type=int)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    parser.add_argument("--poll-ms", type=int, help="the relay's poll (default: the setting's)")
    parser.add_argument(
        "--no-signal", action="store_true", help="the roles without commit signals (as before)"
    )
    parser.add_argument("--bootstrap", default=os.environ.get("PIPELINES_KAFKA_BOOTSTRAP_SERVERS"))
    args = parser.parse_args(argv)
    args.store = args.store or ["sqlite", "postgres"]
    args.fetch_wait_ms = args.fetch_wait_ms or [10]
    return args


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        child(sys.argv[2], [a for a in sys.argv[3:] if a != "--role"])
    else:
        asyncio.run(main(parse()))
