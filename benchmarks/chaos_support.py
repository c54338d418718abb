"""Pieces of the chaos harness (benchmarks/chaos.py): the role processes it kills and
restarts, the broker it pauses, the PostgreSQL restart, the malformed records it injects,
and the checks on the event store and the read models."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from contracts import CreatePipeline
from contracts.cloudevents import encode_command
from contracts.envelope import CE_ID, CE_TIME, CE_TYPE, KafkaRecord
from contracts.run_views import TERMINAL
from projections.db import Database
from projections.projector import Projector
from projections.schema import EXECUTIONS, TABLES
from projections.store import ReadStore
from services.adapters.eventstore import open_event_store
from services.adapters.kafka.embedded_broker import EmbeddedBroker
from services.runtimes.projector import fetch_events_from, history
from services.settings import Settings

REPO = Path(__file__).resolve().parents[1]
# The roles the harness runs, each a process of its own; all of them are killed in turn.
ROLES = ("handler", "relay", "projector", "orchestrator", "reconciler")
# Carried by every injected malformed record, so the DLQ can be matched to what was sent
# (a record redelivered after a handler kill is dead-lettered again).
MARK = "chaos_malformed"


class Role:
    """One role's current process; `kill` SIGKILLs it, `start` starts a new one. `role` is
    the `serve --role` it runs (`name` by default; a second process of a role for the
    rebalance fault has a name of its own)."""

    def __init__(self, name: str, settings: Settings, log: Path, role: str | None = None) -> None:
        self.name = name
        self.role = role or name
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.exits: list[int] = []  # exit codes of processes that died on their own
        self.held = False  # killed, the restart pending: not one for `ensure`

    def start(self) -> None:
        self.stop()  # never two processes of one role from here
        self.held = False
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
        for name, value in self.settings.model_dump(exclude_none=True).items():
            env[f"PIPELINES_{name.upper()}"] = str(value)
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.entrypoints.cli", "serve", "--role", self.role],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure(self) -> None:
        """Restart a process that exited by itself (counted: the table shows it)."""
        if not self.held and self.process is not None and self.process.poll() is not None:
            self.exits.append(self.process.returncode)
            self.start()

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.held = True
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def retire(self, sig: signal.Signals) -> None:
        """Stop it gracefully (`sig`: SIGTERM or SIGINT) and keep it stopped."""
        self.held = True
        self.stop(sig)


class PausableBroker(EmbeddedBroker):
    """The embedded broker, whose process the pause fault stops and continues."""

    @property
    def pid(self) -> int:
        assert self._process is not None, "the broker is not running"
        return self._process.pid

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


async def restart_postgres(pg_url: str, ready_within_s: float = 120.0) -> None:
    """Restart the local cluster (`pg_ctlcluster`, the newest version under
    /etc/postgresql) and return once `pg_isready` answers for `pg_url`'s host and port."""
    version = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])
    restart = await asyncio.create_subprocess_exec(
        "pg_ctlcluster", "--skip-systemctl-redirect", version[-1], "main", "restart",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, error = await restart.communicate()
    if restart.returncode != 0:
        raise RuntimeError(f"pg_ctlcluster restart failed: {error.decode(errors='replace')}")
    parts = urlsplit(pg_url)
    probe = ["pg_isready", "-q", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    deadline = time.monotonic() + ready_within_s
    while True:
        ready = await asyncio.create_subprocess_exec(*probe)
        if await ready.wait() == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL not ready {ready_within_s} s after the restart")
        await asyncio.sleep(0.2)


class RunsProbe:
    """Whether a config execution created at or after a moment is final in the read model:
    the orchestrator (and handler, relay, projector) making progress again. Queries fail
    while PostgreSQL restarts: that reads as "not yet", on a new connection next time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.db: Database | None = None
        self.failures = 0  # queries that failed
        self.slowest_s = 0.0  # the longest query (a lock wait shows here)
        self.final = sorted(
            {str(s) for s in TERMINAL} | {getattr(s, "value", str(s)) for s in TERMINAL}
        )

    def finished_since(self, created_key: str) -> tuple[bool, int | None]:
        """Whether one created at or after `created_key` is final, and how many are final
        in all (None: the query failed)."""
        marks = ", ".join("?" * len(self.final))
        statement = (
            f"SELECT COALESCE(SUM(CASE WHEN created_key >= ? THEN 1 ELSE 0 END), 0), COUNT(*) "
            f"FROM {EXECUTIONS.physical()} WHERE owner_kind = 'config' AND status IN ({marks})"
        )
        began = time.monotonic()
        try:
            if self.db is None:
                self.db = Database(self.url)
            since, total = self.db.query(statement, (created_key, *self.final))[0]
        except Exception:  # any failure reads as "no progress seen yet"
            self.failures += 1
            self.close()
            return False, None
        finally:
            self.slowest_s = max(self.slowest_s, time.monotonic() - began)
        return int(since) > 0, int(total)

    def lock_waits(self) -> list[str]:
        """PostgreSQL: the sessions of this database waiting on a lock, and on whom."""
        if not self.url.startswith("postgres"):
            return []
        statement = (
            "SELECT pid, pg_blocking_pids(pid), wait_event, state, left(query, 160) "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        try:
            if self.db is None:
                self.db = Database(self.url)
            return [" | ".join(map(str, row)) for row in self.db.query(statement, ())]
        except Exception as error:  # a diagnosis only
            self.close()
            return [f"({type(error).__name__}: {error})"]

    def close(self) -> None:
        db, self.db = self.db, None
        if db is not None:
            with contextlib.suppress(Exception):  # a dead connection is gone either way
                db.close()


def _headers(record: KafkaRecord, **changes: bytes | None) -> list[tuple[str, bytes]]:
    """The record's headers with `changes` (None drops the header)."""
    kept = [(k, v) for k, v in record.headers if k not in changes]
    return kept + [(k, v) for k, v in changes.items() if v is not None]


def malformed_record(n: int, max_bytes: int) -> tuple[str, KafkaRecord]:
    """Kind `n % 11` of the bad records (name, record), each marked with MARK: n."""
    good = encode_command(CreatePipeline(name=f"chaos-bad-{n}"))
    body = orjson.loads(good.value)
    kinds: list[tuple[str, bytes | None, list[tuple[str, bytes]]]] = [
        ("not JSON", b"{not json", list(good.headers)),
        ("JSON array", b"[1, 2, 3]", list(good.headers)),
        ("missing ce_type", good.value, _headers(good, **{CE_TYPE: None})),
        ("unknown ce_type", good.value, _headers(good, **{CE_TYPE: b"NoSuchCommand"})),
        ("missing required field", orjson.dumps({k: v for k, v in body.items() if k != "name"}),
         list(good.headers)),
        ("wrong type", orjson.dumps({**body, "name": 12345}), list(good.headers)),
        ("oversized", orjson.dumps({**body, "description": "x" * (max_bytes + 1)}),
         list(good.headers)),
        ("bad ce_time", good.value, _headers(good, **{CE_TIME: b"yesterday-ish"})),
        ("non-UTF-8 header", good.value, _headers(good, **{CE_TYPE: b"\xff\xfe\xfd"})),
        ("empty value", b"", list(good.headers)),
        ("missing ce_id and ce_type", good.value, _headers(good, **{CE_ID: None, CE_TYPE: None})),
    ]  # fmt: skip
    name, value, headers = kinds[n % len(kinds)]
    marked = [*headers, (MARK, str(n).encode())]
    record = KafkaRecord(key=good.key, value=value or b"", headers=marked)
    return name, record


KINDS = 11


@dataclass
class StoreFindings:
    events: int = 0
    version_gaps: list[str] = field(default_factory=list)  # aggregate: versions seen
    pipelines_by_name: Counter[str] = field(default_factory=Counter)
    aggregates: Counter[str] = field(default_factory=Counter)  # by aggregate type
    created_types: dict[str, str] = field(default_factory=dict)


def examine_store(url: str) -> StoreFindings:
    """Every aggregate's versions must be 1..n with none repeated; a pipeline name must
    have one creation."""
    found = StoreFindings()
    versions: dict[str, list[int]] = defaultdict(list)
    with open_event_store(url) as store:
        for event in history(store):
            found.events += 1
            versions[event.aggregate_id].append(event.version)
            if event.version == 1:
                found.aggregates[event.aggregate_type] += 1
                found.created_types[event.aggregate_id] = event.aggregate_type
                if event.aggregate_type == "Pipeline" and "name" in event.data:
                    found.pipelines_by_name[str(event.data["name"])] += 1
    for aggregate, seen in versions.items():
        if seen != list(range(1, len(seen) + 1)):
            found.version_gaps.append(f"{aggregate}: {seen[:20]}")
    return found


def unfinished_executions(url: str) -> list[tuple[str, str]]:
    """(id, status) of every execution in the read model not in a final status."""
    read = ReadStore(url)
    try:
        rows = read.db.query(
            f"SELECT id || ' ' || owner_kind, status FROM {EXECUTIONS.physical()}", ()
        )
    finally:
        read.close()
    final = {str(s) for s in TERMINAL} | {getattr(s, "value", str(s)) for s in TERMINAL}
    return [(str(r[0]), str(r[1])) for r in rows if str(r[1]) not in final]


def compare_with_rebuild(url: str) -> list[str]:
    """The live read models against fresh tables built from the whole event store:
    the tables whose rows differ ([]: equal). The rebuild is dropped afterwards."""
    suffix = "_chaos_check"
    read = ReadStore(url)
    differ: list[str] = []
    try:
        read.drop_tables(suffix)
        read.create_tables(suffix)
        with open_event_store(url) as store:
            projector = Projector(read, fetch_events_from(store), suffix=suffix)
            batch = []
            for event in history(store):
                batch.append(event)
                if len(batch) == 1000:
                    projector.apply_batch(batch)
                    batch = []
            if batch:
                projector.apply_batch(batch)
        for table in TABLES:
            order = ", ".join(table.primary_key)
            columns = ", ".join(name for name, _ in table.columns)
            live = read.db.query(f"SELECT {columns} FROM {table.physical()} ORDER BY {order}", ())
            built = read.db.query(
                f"SELECT {columns} FROM {table.physical(suffix)} ORDER BY {order}", ()
            )
            if [tuple(r) for r in live] != [tuple(r) for r in built]:
                differ.append(f"{table.name} ({len(live)} live rows, {len(built)} rebuilt)")
    finally:
        read.drop_tables(suffix)
        read.close()
    return differ
