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
(each PostgreSQL statement is a round trip), durable on commit. Its rows go in primary-key
order, so two orchestrators storing overlapping batches (a redelivery after a takeover)
take their key locks in one order and never deadlock; their stored order is `seq`, not the
insert order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from functools import cache
from typing import Final
from uuid import UUID

import orjson

from projections.db import TableStore
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

Row = tuple[str, str, str, str, int, int, str, str | None, str]


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

    # --- writing -------------------------------------------------------------------------

    def store(self, route: str, items: Iterable[ToStore]) -> None:
        """A batch of `route`, one transaction, durable on return."""
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
            return
        ordered = [rows[key] for key in sorted(rows)]
        with self.db.transaction() as cursor:
            for start in range(0, len(ordered), _CHUNK):
                chunk = ordered[start : start + _CHUNK]
                cursor.execute(_insert(len(chunk)), [value for row in chunk for value in row])

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


__all__ = ["MESSAGES_TABLE", "DatabaseMessageStore"]
