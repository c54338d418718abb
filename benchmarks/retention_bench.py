"""Retention benchmark: prints the retained tables' sizes per round, asserts nothing.

Each round decides `--commands` commands on the event store (CreateConfig, each one a
processed-command record beside its events; a failure would be a record too, so the
first round checks they were accepted), stores `--messages` route messages of one new
execution (consumed and produced, with their ledger rows) and beats one new orchestrator
instance that never says goodbye; then it runs the relay's and the orchestrator's
retention rounds (services.runtimes.retention) until they have nothing left, and prints
the table sizes. Every window is `--retention-s` of wall-clock time and rounds are
`--round-s` apart, so after the first window the sizes stop growing: about
retention / round rounds' worth. The events (the history) are kept by design; they are
shown for comparison.

    uv run --frozen python -m benchmarks.retention_bench --rounds 30
    uv run --frozen python -m benchmarks.retention_bench --stores postgres \\
        --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from contracts.config_commands import CreateConfig
from contracts.route_messages import RouteMessage
from projections.db import Database
from services.adapters.command_records import (
    PROCESSED_TABLE,
    PostgresCommandRecorder,
    SQLiteCommandRecorder,
)
from services.adapters.message_store import DatabaseMessageStore
from services.adapters.message_store.database import EXECUTIONS_TABLE, MESSAGES_TABLE
from services.adapters.stores import open_command_store
from services.runtimes.orchestrator.ledger import LEDGER_TABLE, OUTPUTS_TABLE, Ledger
from services.runtimes.orchestrator.liveness import HEARTBEATS_TABLE, Heartbeats
from services.runtimes.retention import (
    Retention,
    command_records_task,
    heartbeats_task,
    route_messages_task,
    swept_markers_task,
)
from services.service_layer.decider import Decider, Item
from services.service_layer.handlers import HANDLERS

TABLES = (
    PROCESSED_TABLE,
    MESSAGES_TABLE,
    EXECUTIONS_TABLE,
    LEDGER_TABLE,
    OUTPUTS_TABLE,
    HEARTBEATS_TABLE,
)
DOCUMENT = {
    "version": "1",
    "routes": {
        "hop": {
            "name": "One hop",
            "inbound": {"topic": "bench.in"},
            "adapters": [{"type": "pass_through"}],
            "outbound": ["bench.out"],
        }
    },
    "init_message": {"route": "hop", "payload": {"n": 0}},
}


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on `url`, selected the libpq way; dropped afterwards."""
    schema = f"retention_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{url}?options=-csearch_path%3D{quote(schema)}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def run(url: str, args: argparse.Namespace) -> None:
    window = args.retention_s
    with ExitStack() as stack:
        store = stack.enter_context(open_command_store(url))
        recorder = store.recorder
        assert isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder)
        messages = stack.enter_context(DatabaseMessageStore(url))
        ledger = stack.enter_context(Ledger(url))
        heartbeats = stack.enter_context(Heartbeats(url))
        db = Database(url)
        stack.callback(db.close)
        decider = Decider(store, HANDLERS)
        relay = Retention(
            "relay", [command_records_task(recorder, window)], interval_s=1, batch=args.batch
        )
        orchestrator = Retention(
            "orchestrator",
            [
                route_messages_task(messages, ledger, window),
                swept_markers_task(messages, window),
                heartbeats_task(heartbeats, window),
            ],
            interval_s=1,
            batch=args.batch,
        )
        print(
            f"{'round':>5} "
            + " ".join(f"{t:>24}" for t in (*TABLES, "events"))
            + f" {'sweep ms':>9}"
        )
        for number in range(1, args.rounds + 1):
            started = time.monotonic()
            outcomes = decider.decide(
                [
                    Item(
                        command_id=str(uuid.uuid4()),
                        command=CreateConfig(name=f"r{number}-{n}", document=DOCUMENT),
                    )
                    for n in range(args.commands)
                ]
            )
            if number == 1 and outcomes[0].result.outcome != "accepted":
                raise SystemExit(f"the benchmark's command was refused: {outcomes[0].result}")
            execution = uuid.uuid4()
            batch = [
                RouteMessage(
                    id=uuid.uuid4(),
                    execution_id=execution,
                    route="init",
                    payload={"n": n},
                    stage=0,
                    correlation_id="bench",
                )
                for n in range(args.messages)
            ]
            messages.store_consumed("hop", "bench.in", batch)
            messages.store_produced("hop", [("bench.out", m) for m in batch])
            ledger.expect(execution, [("hop", m.id) for m in batch])
            ledger.settle_many(
                [(execution, "hop", m.id) for m in batch], [(execution, "hop", m.id) for m in batch]
            )
            heartbeats.beat(f"instance-{number}", 1)
            swept_at = time.monotonic()
            while relay.once() or orchestrator.once():
                pass
            sweep_ms = (time.monotonic() - swept_at) * 1000
            sizes = [db.query(f"SELECT COUNT(*) FROM {table}")[0][0] for table in TABLES]
            events = db.query(f"SELECT COUNT(*) FROM {recorder.events_table_name}")[0][0]
            print(
                f"{number:>5} "
                + " ".join(f"{size:>24}" for size in (*sizes, events))
                + f" {sweep_ms:>9.1f}",
                flush=True,
            )
            time.sleep(max(0.0, args.round_s - (time.monotonic() - started)))
        print(f"removed: relay {relay.removed}, orchestrator {orchestrator.removed}")


def main(args: argparse.Namespace) -> None:
    for kind in args.stores:
        print(f"\n== {kind}: window {args.retention_s:g} s, a round every {args.round_s:g} s")
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                run(f"sqlite:///{Path(folder) / 'events.db'}", args)
        else:
            with postgres_schema(args.postgres) as url:
                run(url, args)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Retention benchmark: prints table sizes.")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--commands", type=int, default=200, help="commands a round")
    parser.add_argument("--messages", type=int, default=1000, help="route messages a round")
    parser.add_argument("--retention-s", type=float, default=2.0, help="every window")
    parser.add_argument("--round-s", type=float, default=0.5, help="time between rounds")
    parser.add_argument("--batch", type=int, default=500, help="PIPELINES_RETENTION_BATCH")
    parser.add_argument(
        "--stores", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse())
