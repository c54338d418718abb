"""The database message store: what each route consumed and produced, per execution, in
the event store's own database (SQLite or PostgreSQL), so every orchestrator — and replay,
from any machine — reads the same messages
(services.adapters.message_store.interface says what every store promises).

One row per stored message in `route_messages`:

    (execution_id, route, direction, message_id)   the primary key: a message id stored
                                                   again is a no-op, so the first copy wins
    stored_at, seq                                 the batch's epoch ns and the message's
                                                   place in it: the stored order
    topic, error                                   read from / written to; a failed input's error
    document                                       the envelope and payload, as JSON

`route` is the storing route (the one that consumed or produced the message); the
document's own `route` is the one that produced it, as on the wire. The index
`(execution_id, route, direction, stored_at, seq)` serves `consumed` and `produced` in
stored order; `routes` reads the primary key's prefix.

A batch is one transaction of multi-row `INSERT ... ON CONFLICT DO NOTHING` statements
(each PostgreSQL statement is a round trip), durable on commit: its own (`store`), or the
one a route's ledger settles the batch in when both live in one database (`writes`:
one commit per batch instead of two). Its rows go in primary-key
order, so two orchestrators storing overlapping batches (a redelivery after a takeover)
take their key locks in one order and never deadlock; their stored order is `seq`, not the
insert order.

Retention (`sweep`) goes by execution, never by row: a replay reads all of an execution's
messages or, once they are swept, none (interface.py). `route_message_executions` holds one
row per execution: `last_seen_at`, a lower bound of its newest `stored_at` (the first
batch's, written by `store` with `ON CONFLICT DO NOTHING`, which takes no row lock, so two
routes of one execution never wait for each other) and `swept_at`, the marker of a swept
execution. The sweep takes the executions whose `last_seen_at` is older than the cutoff,
reads each one's real newest `stored_at` and either raises `last_seen_at` to it (still in
use: looked at again once that ages) or deletes its messages, `_DELETE_CHUNK` rows per
transaction, and marks it swept in the last one. A message stored after the sweep read
the newest one (an execution idle for a whole window that gets a message in that
instant) keeps that message alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from functools import cache
from typing import Any, Final
from uuid import UUID

import orjson

from projections.db import Database, TableStore
from services.adapters.message_store.interface import (
    Direction,
    StoredMessage,
    StoreShortcuts,
    ToStore,
    checked_route,
    message_document,
    message_of,
)

MESSAGES_TABLE: Final = "route_messages"
_COLUMNS: Final = (
    "execution_id, route, direction, message_id, stored_at, seq, topic, error, document"
)
_KEY: Final = "(execution_id, route, direction, message_id)"
# 9 parameters a row: 4,500 a statement, well under SQLite's 32,766 and PostgreSQL's 65,535.
_CHUNK: Final = 500

_CREATE: Final = (
    f"CREATE TABLE IF NOT EXISTS {MESSAGES_TABLE} ("
    "execution_id TEXT NOT NULL, route TEXT NOT NULL, "
    "direction TEXT NOT NULL CHECK (direction IN ('in', 'out')), message_id TEXT NOT NULL, "
    "stored_at BIGINT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL, error TEXT, "
    f"document TEXT NOT NULL, PRIMARY KEY {_KEY})"
)
_CREATE_ORDER: Final = (
    f"CREATE INDEX IF NOT EXISTS {MESSAGES_TABLE}_stored_order "
    f"ON {MESSAGES_TABLE} (execution_id, route, direction, stored_at, seq)"
)
EXECUTIONS_TABLE: Final = "route_message_executions"
_CREATE_EXECUTIONS: Final = (
    f"CREATE TABLE IF NOT EXISTS {EXECUTIONS_TABLE} ("
    "execution_id TEXT PRIMARY KEY, last_seen_at BIGINT NOT NULL, swept_at BIGINT)"
)
_EXECUTION_INDEXES: Final = (
    f"CREATE INDEX IF NOT EXISTS {EXECUTIONS_TABLE}_last_seen ON {EXECUTIONS_TABLE} (last_seen_at)",
    f"CREATE INDEX IF NOT EXISTS {EXECUTIONS_TABLE}_swept ON {EXECUTIONS_TABLE} (swept_at)",
)
# The executions of messages stored before this table existed: once, when it is made.
_BACKFILL: Final = (
    f"INSERT INTO {EXECUTIONS_TABLE} (execution_id, last_seen_at) "
    f"SELECT execution_id, MIN(stored_at) FROM {MESSAGES_TABLE} GROUP BY execution_id "
    "ON CONFLICT (execution_id) DO NOTHING"
)
_DELETE_CHUNK: Final = 5000  # rows per retention transaction: short write locks

Row = tuple[str, str, str, str, int, int, str, str | None, str]
Write = tuple[str, list[Any]]
"""One statement (`?` placeholders) and its parameters."""


@cache
def _seen(count: int) -> str:
    rows = ", ".join(["(?, ?)"] * count)
    return (
        f"INSERT INTO {EXECUTIONS_TABLE} (execution_id, last_seen_at) VALUES {rows} "
        "ON CONFLICT (execution_id) DO NOTHING"
    )


@cache
def _insert(count: int) -> str:
    rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * count)
    return f"INSERT INTO {MESSAGES_TABLE} ({_COLUMNS}) VALUES {rows} ON CONFLICT {_KEY} DO NOTHING"


class DatabaseMessageStore(StoreShortcuts, TableStore):
    """Owns one connection to `url` (the event store's); creates its table when opened."""

    TABLES = (_CREATE, _CREATE_ORDER)

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._clock = threading.Lock()
        self._last_stored_at = 0
        # The physical row id, for chunked deletes of a table with a composite key.
        self._row_id = "rowid" if self.db.dialect == "sqlite" else "ctid"

    def create_tables(self) -> None:
        with self.db.schema_transaction() as cursor:
            for statement in self.TABLES:
                cursor.execute(statement)
            fresh = not self.db.table_exists(EXECUTIONS_TABLE, cursor)
            cursor.execute(_CREATE_EXECUTIONS)
            for statement in _EXECUTION_INDEXES:
                cursor.execute(statement)
            if fresh:
                cursor.execute(_BACKFILL)

    # --- writing -------------------------------------------------------------------------

    def store(self, route: str, items: Iterable[ToStore]) -> None:
        """A batch of `route`, one transaction, durable on return."""
        writes = self.writes(route, items)
        if writes:
            with self.db.transaction() as cursor:
                for statement, params in writes:
                    cursor.execute(statement, params)

    def shares(self, db: Database) -> bool:
        """Whether `db` (another store's connection) opens this store's database, so its
        transactions may carry this store's rows (`writes`)."""
        return db.url == self.db.url

    def writes(self, route: str, items: Iterable[ToStore]) -> list[Write]:
        """The statements that store a batch of `route`, for a transaction of this
        database someone else commits (a route's ledger settlement: the batch stored and
        counted in one commit); durable once it has. Each statement touches a row once."""
        checked_route(route)
        stored_at = self._stored_at()
        rows: dict[tuple[str, str, str], Row] = {}
        for seq, item in enumerate(items):
            message = item.message
            key = (str(UUID(str(message.execution_id))), item.direction, str(message.id))
            if key in rows:
                continue  # a repeat within the batch: its first copy wins, as across batches
            document = orjson.dumps(message_document(message)).decode()
            rows[key] = (
                key[0],
                route,
                key[1],
                key[2],
                stored_at,
                seq,
                item.topic,
                item.error,
                document,
            )
        if not rows:
            return []
        ordered = [rows[key] for key in sorted(rows)]
        executions = sorted({row[0] for row in ordered})
        writes: list[Write] = []
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            writes.append((_insert(len(chunk)), [value for row in chunk for value in row]))
        for start in range(0, len(executions), _CHUNK):
            ids = executions[start : start + _CHUNK]
            writes.append((_seen(len(ids)), [v for e in ids for v in (e, stored_at)]))
        return writes

    def _stored_at(self) -> int:
        # Strictly increasing within this store, so two batches stored in the same
        # nanosecond (a coarse clock) still read back in the order they were stored.
        with self._clock:
            self._last_stored_at = max(time.time_ns(), self._last_stored_at + 1)
            return self._last_stored_at

    # --- reading -------------------------------------------------------------------------

    def consumed(self, execution_id: UUID, route: str) -> list[StoredMessage]:
        """What `route` consumed in the execution, in the order it was stored."""
        return self._read(execution_id, route, "in")

    def produced(self, execution_id: UUID, route: str) -> list[StoredMessage]:
        """What `route` produced in the execution, in the order it was stored."""
        return self._read(execution_id, route, "out")

    def routes(self, execution_id: UUID) -> list[str]:
        """The routes that stored anything for the execution, sorted."""
        rows = self.db.query(
            f"SELECT DISTINCT route FROM {MESSAGES_TABLE} WHERE execution_id = ?",
            (str(UUID(str(execution_id))),),
        )
        # Sorted here: PostgreSQL's ORDER BY follows the database's collation.
        return sorted(str(route) for (route,) in rows)

    # --- retention (interface.py) --------------------------------------------------------

    def sweep(self, before_ns: int, limit: int, *, now_ns: int | None = None) -> list[UUID]:
        """Remove the messages of up to `limit` executions whose newest is older than
        `before_ns`, oldest first; returns the executions swept."""
        candidates = self.db.query(
            f"SELECT execution_id FROM {EXECUTIONS_TABLE} "
            "WHERE swept_at IS NULL AND last_seen_at < ? ORDER BY last_seen_at LIMIT ?",
            (before_ns, limit),
        )
        swept: list[UUID] = []
        for (execution,) in candidates:
            ((newest,),) = self.db.query(
                f"SELECT MAX(stored_at) FROM {MESSAGES_TABLE} WHERE execution_id = ?",
                (execution,),
            )
            if newest is not None and int(newest) >= before_ns:
                self.db.query(
                    f"UPDATE {EXECUTIONS_TABLE} SET last_seen_at = ? WHERE execution_id = ?",
                    (int(newest), execution),
                )
                continue
            self._remove(str(execution), before_ns, time.time_ns() if now_ns is None else now_ns)
            swept.append(UUID(str(execution)))
        return swept

    def _remove(self, execution: str, before_ns: int, now_ns: int) -> None:
        delete = (
            f"DELETE FROM {MESSAGES_TABLE} WHERE {self._row_id} IN (SELECT {self._row_id} "
            f"FROM {MESSAGES_TABLE} WHERE execution_id = ? AND stored_at < ? LIMIT ?)"
        )
        while True:
            with self.db.transaction() as cursor:
                cursor.execute(delete, (execution, before_ns, _DELETE_CHUNK))
                ((left,),) = cursor.execute(
                    f"SELECT COUNT(*) FROM (SELECT 1 FROM {MESSAGES_TABLE} "
                    "WHERE execution_id = ? AND stored_at < ? LIMIT 1) AS one",
                    (execution, before_ns),
                )
                if not left:
                    cursor.execute(
                        f"UPDATE {EXECUTIONS_TABLE} SET swept_at = ? WHERE execution_id = ?",
                        (now_ns, execution),
                    )
                    return

    def swept(self, execution_id: UUID) -> int | None:
        rows = self.db.query(
            f"SELECT swept_at FROM {EXECUTIONS_TABLE} WHERE execution_id = ?",
            (str(UUID(str(execution_id))),),
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def forget_swept(self, before_ns: int, limit: int) -> int:
        """Drop up to `limit` markers older than `before_ns`. An execution that stored
        messages again after its sweep becomes an ordinary one instead (its new messages
        age and go like any others)."""
        rows = self.db.query(
            f"SELECT execution_id FROM {EXECUTIONS_TABLE} WHERE swept_at < ? "
            "ORDER BY swept_at LIMIT ?",
            (before_ns, limit),
        )
        with self.db.transaction() as cursor:
            for (execution,) in rows:
                ((oldest,),) = cursor.execute(
                    f"SELECT MIN(stored_at) FROM {MESSAGES_TABLE} WHERE execution_id = ?",
                    (execution,),
                )
                if oldest is None:
                    cursor.execute(
                        f"DELETE FROM {EXECUTIONS_TABLE} WHERE execution_id = ?", (execution,)
                    )
                else:
                    cursor.execute(
                        f"UPDATE {EXECUTIONS_TABLE} SET swept_at = NULL, last_seen_at = ? "
                        "WHERE execution_id = ?",
                        (int(oldest), execution),
                    )
        return len(rows)

    def _read(self, execution_id: UUID, route: str, direction: Direction) -> list[StoredMessage]:
        rows = self.db.query(
            f"SELECT stored_at, topic, error, document FROM {MESSAGES_TABLE} "
            "WHERE execution_id = ? AND route = ? AND direction = ? ORDER BY stored_at, seq",
            (str(UUID(str(execution_id))), checked_route(route), direction),
        )
        return [
            StoredMessage(message_of(orjson.loads(document)), topic, int(stored_at), error)
            for stored_at, topic, error, document in rows
        ]


__all__ = ["EXECUTIONS_TABLE", "MESSAGES_TABLE", "DatabaseMessageStore"]
