"""Is an orchestrator alive, and may another config execution start? (docs/orchestrator.md,
step 1)

Orchestrators beat into `orchestrator_heartbeats (instance_id, beat_at, capacity)` in the
event store's own database (SQLite or PostgreSQL), once per sweep. The command handler's
`ExecutionGate` reads those beats and the executions read model (`read_executions`, same
database) before a RunConfig may create an execution:

- no heartbeat younger than `liveness_s` -> 503 `OrchestratorUnavailable`;
- as many config executions running as the limit -> 503 `ExecutionCapacityReached`. The
  limit is `max_running` and never more than the live orchestrators' capacities together.

"Running" is the read model's unfinished config executions plus the ones this gate
admitted that the read model does not show yet: the projector lags the event store, and an
earlier command of the same batch is not even stored yet. An admitted id leaves that set
when the read model has its row, or after `pending_ttl_s` (its batch may never have been
saved). The database is read at most once per `cache_s`, so a burst of RunConfigs costs
a query a second, not one per command. Several handler processes each know only what
they admitted themselves: the cap is exact up to what the others admitted in the last
projection lag.

Beat times are the beating host's wall clock (epoch seconds) compared with the reading
host's: the hosts' clocks must agree (NTP) well within the liveness window.

A stopped orchestrator deletes its row (`forget`); a killed one's row stays until the
orchestrator role's retention sweep removes beats older than
`PIPELINES_RETENTION_HEARTBEATS_S` (`sweep`), long after they stopped counting as alive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

from contracts.run_views import TERMINAL
from contracts.statuses import RunStatus
from domain.errors import RetryableError
from projections.db import Database, TableStore
from projections.schema import EXECUTIONS
from services.settings import Settings

HEARTBEATS_TABLE: Final = "orchestrator_heartbeats"
DEFAULT_CACHE_S: Final = 1.0
DEFAULT_PENDING_TTL_S: Final = 60.0

_CREATE: Final = (
    f"CREATE TABLE IF NOT EXISTS {HEARTBEATS_TABLE} ("
    "instance_id TEXT PRIMARY KEY, beat_at DOUBLE PRECISION NOT NULL, capacity INTEGER NOT NULL)"
)
_UPSERT: Final = (
    f"INSERT INTO {HEARTBEATS_TABLE} (instance_id, beat_at, capacity) VALUES (?, ?, ?) "
    "ON CONFLICT (instance_id) DO UPDATE "
    "SET beat_at = excluded.beat_at, capacity = excluded.capacity"
)
_UNFINISHED: Final = tuple(str(s) for s in RunStatus if s not in TERMINAL)
_CHUNK: Final = 500


@dataclass(frozen=True)
class Heartbeat:
    instance_id: str
    beat_at: datetime
    capacity: int


class Heartbeats(TableStore):
    """The heartbeat table: orchestrators `beat`, the command handler asks who is `alive`.

    Owns its own connection to the database at `url` (the event store's URL)."""

    TABLES = (_CREATE,)

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(url)
        self._clock = clock

    def beat(self, instance_id: str, capacity: int) -> None:
        """`instance_id` is alive now and takes up to `capacity` executions."""
        self.db.query(_UPSERT, (instance_id, self._clock(), capacity))

    def forget(self, instance_id: str) -> None:
        """A clean shutdown: the instance stops counting as alive at once."""
        self.db.query(f"DELETE FROM {HEARTBEATS_TABLE} WHERE instance_id = ?", (instance_id,))

    def sweep(self, before: float, limit: int) -> int:
        """Delete up to `limit` beats older than `before` (epoch s); returns how many."""
        with self.db.transaction() as cursor:
            stale = cursor.execute(
                f"SELECT instance_id FROM {HEARTBEATS_TABLE} WHERE beat_at < ? "
                "ORDER BY beat_at LIMIT ?",
                (before, limit),
            )
            for (instance,) in stale:
                cursor.execute(
                    f"DELETE FROM {HEARTBEATS_TABLE} WHERE instance_id = ? AND beat_at < ?",
                    (instance, before),
                )
        return len(stale)

    def alive(self, within_s: float) -> list[Heartbeat]:
        """Instances whose last beat is at most `within_s` old, by instance id."""
        rows = self.db.query(
            f"SELECT instance_id, beat_at, capacity FROM {HEARTBEATS_TABLE} "
            "WHERE beat_at >= ? ORDER BY instance_id",
            (self._clock() - within_s,),
        )
        return [
            Heartbeat(str(instance), datetime.fromtimestamp(float(at), UTC), int(capacity))
            for instance, at, capacity in rows
        ]


@dataclass(frozen=True)
class _Reading:
    """What the database said at one moment."""

    orchestrators: int
    capacity: int
    running: int


class ExecutionGate:
    """Consulted by the RunConfig handler (services.service_layer.handling.ExecutionGate)."""

    def __init__(
        self,
        heartbeats: Heartbeats,
        *,
        liveness_s: float,
        max_running: int,
        cache_s: float = DEFAULT_CACHE_S,
        pending_ttl_s: float = DEFAULT_PENDING_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.heartbeats = heartbeats
        self.liveness_s = liveness_s
        self.max_running = max_running
        self._cache_s = cache_s
        self._pending_ttl_s = pending_ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # Admitted executions the read model did not show at the last reading -> when.
        self._pending: dict[UUID, float] = {}
        self._reading: _Reading | None = None
        self._read_at = 0.0

    def admit(self, execution_id: UUID) -> None:
        """Count `execution_id` as running, or raise the 503 that says why it may not run."""
        with self._lock:
            now = self._monotonic()
            reading = self._current(now)
            if reading.orchestrators == 0:
                raise orchestrator_unavailable(self.liveness_s)
            if execution_id in self._pending:
                return  # the same batch decided again after a conflict
            running = reading.running + len(self._pending)
            limit = min(self.max_running, reading.capacity)
            if running >= limit:
                raise execution_capacity_reached(running, limit, self.max_running, reading)
            self._pending[execution_id] = now

    def close(self) -> None:
        self.heartbeats.close()

    def _current(self, now: float) -> _Reading:
        if self._reading is None or now - self._read_at >= self._cache_s:
            self._reading = self._read(now)
            self._read_at = now
        return self._reading

    def _read(self, now: float) -> _Reading:
        beats = self.heartbeats.alive(self.liveness_s)
        db = self.heartbeats.db
        table = EXECUTIONS.physical()
        running = 0
        if db.table_exists(table):
            marks = ", ".join("?" * len(_UNFINISHED))
            ((count,),) = db.query(
                f"SELECT COUNT(*) FROM {table} "
                f"WHERE owner_kind = 'config' AND deleted = 0 AND status IN ({marks})",
                _UNFINISHED,
            )
            running = int(count)
            for execution_id in _projected(db, table, list(self._pending)):
                del self._pending[execution_id]
        for execution_id, admitted in list(self._pending.items()):
            if now - admitted > self._pending_ttl_s:
                del self._pending[execution_id]
        return _Reading(len(beats), sum(beat.capacity for beat in beats), running)


def _projected(db: Database, table: str, ids: Iterable[UUID]) -> list[UUID]:
    """The ids among `ids` that have a row in the executions read model."""
    wanted = [str(i) for i in ids]
    found: list[UUID] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = db.query(
            f"SELECT id FROM {table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk
        )
        found.extend(UUID(row[0]) for row in rows)
    return found


def open_gate(settings: Settings) -> ExecutionGate:
    """The gate the handler role wires, on the event store's database."""
    return ExecutionGate(
        Heartbeats(settings.event_store_url),
        liveness_s=settings.orchestrator_liveness_s,
        max_running=settings.max_running_executions,
    )


def orchestrator_unavailable(liveness_s: float) -> RetryableError:
    return RetryableError(
        "OrchestratorUnavailable",
        f"No orchestrator is alive (none sent a heartbeat in the last {liveness_s:g} s): "
        "the execution cannot run now; try again later",
        {"liveness_s": liveness_s},
    )


def execution_capacity_reached(
    running: int, limit: int, max_running: int, reading: _Reading
) -> RetryableError:
    return RetryableError(
        "ExecutionCapacityReached",
        f"{running} config executions are running and the limit is {limit}: "
        "try again when one has finished",
        {
            "running": running,
            "limit": limit,
            "max_running_executions": max_running,
            "orchestrators": reading.orchestrators,
            "orchestrator_capacity": reading.capacity,
        },
    )
