"""Recorders that store processed commands (and the relay's position) beside the events.

The eventsourcing library calls `_insert_events(cursor, stored_events, **kwargs)` inside
the same transaction as the event rows, on SQLite and PostgreSQL alike. Passing
`processed_commands=[(command_id, result_bytes), ...]` to `Application.save` therefore
records every command of a batch atomically with the events it caused: a repeat finds
its original result, byte for byte, and a crash can never keep one without the other.

Each record carries `processed_at` (epoch seconds, the handler's clock), so the relay role
can remove the records older than `PIPELINES_RETENTION_COMMAND_RECORDS_S`
(`sweep_processed`, a batch per transaction, oldest first by the `processed_at` index):
a command sent again after that is decided again (docs/operations.md, "Retention").
A table made before the column existed gets it on start, its rows dated the moment of
the upgrade (their real age is unknown; this keeps them one more window, not zero).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic
from psycopg import Cursor, sql
from psycopg.rows import DictRow

ProcessedCommand = tuple[str, bytes]

PROCESSED_TABLE: Final = "processed_commands"
_PROCESSED_INDEX: Final = "processed_commands_processed_at"


class SQLiteCommandRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS processed_commands ("
            "command_id TEXT PRIMARY KEY, result BLOB NOT NULL, processed_at REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS relay_positions ("
            "name TEXT PRIMARY KEY, position INTEGER NOT NULL)",
        ]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        c.execute("SELECT name FROM pragma_table_info('processed_commands')")
        if "processed_at" not in {row["name"] for row in c.fetchall()}:
            c.execute(
                "ALTER TABLE processed_commands ADD COLUMN processed_at REAL NOT NULL DEFAULT 0"
            )
            c.execute("UPDATE processed_commands SET processed_at = ?", (time.time(),))
        c.execute(
            f"CREATE INDEX IF NOT EXISTS {_PROCESSED_INDEX} ON processed_commands (processed_at)"
        )

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        processed_commands: Sequence[ProcessedCommand] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        if processed_commands:
            now = time.time()
            c.executemany(
                "INSERT INTO processed_commands (command_id, result, processed_at) "
                "VALUES (?, ?, ?)",
                [(command_id, result, now) for command_id, result in processed_commands],
            )
        return ids

    def select_processed(self, command_ids: Iterable[str]) -> dict[str, bytes]:
        ids = list(command_ids)
        found: dict[str, bytes] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                c.execute(
                    f"SELECT command_id, result FROM processed_commands "
                    f"WHERE command_id IN ({marks})",
                    chunk,
                )
                for row in c.fetchall():
                    found[row["command_id"]] = bytes(row["result"])
        return found

    def get_position(self, name: str) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT position FROM relay_positions WHERE name = ?", (name,))
            row = c.fetchone()
        return int(row["position"]) if row else 0

    def sweep_processed(self, before: float, limit: int) -> int:
        """Remove up to `limit` records processed before `before` (epoch s), oldest first,
        in one short transaction; returns how many went."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                "DELETE FROM processed_commands WHERE command_id IN ("
                "SELECT command_id FROM processed_commands WHERE processed_at < ? "
                "ORDER BY processed_at LIMIT ?)",
                (before, limit),
            )
            return int(c.sqlite_cursor.rowcount)

    def set_position(self, name: str, position: int) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                "INSERT INTO relay_positions (name, position) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET position = excluded.position",
                (name, position),
            )


class PostgresCommandRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = sql.Identifier(self.datastore.schema)
        self._processed = sql.SQL("{}.{}").format(schema, sql.Identifier("processed_commands"))
        self._positions = sql.SQL("{}.{}").format(schema, sql.Identifier("relay_positions"))
        self.sql_create_statements.extend(
            [
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "command_id text PRIMARY KEY, result bytea NOT NULL, "
                    "processed_at double precision NOT NULL)"
                ).format(self._processed),
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "name text PRIMARY KEY, position bigint NOT NULL)"
                ).format(self._positions),
            ]
        )

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        super()._create_table(curs)
        # Read the catalog first: ALTER TABLE takes the table's strongest lock even when
        # the column is there already.
        curs.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'processed_commands' AND column_name = 'processed_at'",
            (self.datastore.schema or "public",),
        )
        if curs.fetchone() is None:
            curs.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS processed_at double precision "
                    "NOT NULL DEFAULT extract(epoch from now())"
                ).format(self._processed)
            )
        # Likewise CREATE INDEX IF NOT EXISTS takes processed_commands' SHARE lock first.
        # Here, after the library's statements took the events table's SHARE lock, that
        # waits for a save in progress, which writes its command records before it locks
        # the events table: the opposite order, a deadlock.
        curs.execute(
            "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
            (self.datastore.schema or "public", _PROCESSED_INDEX),
        )
        if curs.fetchone() is None:
            curs.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (processed_at)").format(
                    sql.Identifier(_PROCESSED_INDEX), self._processed
                )
            )

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        processed_commands: Sequence[ProcessedCommand] = (),
        **kwargs: Any,
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        if processed_commands:
            now = time.time()
            curs.executemany(
                sql.SQL(
                    "INSERT INTO {} (command_id, result, processed_at) VALUES (%s, %s, %s)"
                ).format(self._processed),
                [(command_id, result, now) for command_id, result in processed_commands],
            )

    def select_processed(self, command_ids: Iterable[str]) -> dict[str, bytes]:
        ids = list(command_ids)
        if not ids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                sql.SQL("SELECT command_id, result FROM {} WHERE command_id = ANY(%s)").format(
                    self._processed
                ),
                (ids,),
            )
            return {row["command_id"]: bytes(row["result"]) for row in curs.fetchall()}

    def get_position(self, name: str) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                sql.SQL("SELECT position FROM {} WHERE name = %s").format(self._positions),
                (name,),
            )
            row = curs.fetchone()
        return int(row["position"]) if row else 0

    def sweep_processed(self, before: float, limit: int) -> int:
        """Remove up to `limit` records processed before `before` (epoch s), oldest first,
        in one short transaction; returns how many went."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                sql.SQL(
                    "DELETE FROM {0} WHERE command_id IN (SELECT command_id FROM {0} "
                    "WHERE processed_at < %s ORDER BY processed_at LIMIT %s)"
                ).format(self._processed),
                (before, limit),
            )
            return int(curs.rowcount)

    def set_position(self, name: str, position: int) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                sql.SQL(
                    "INSERT INTO {} (name, position) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
                ).format(self._positions),
                (name, position),
            )


def recorder_env(event_store_url: str) -> dict[str, str]:
    """Library settings that make the event store use the command recorder for `url`."""
    recorder = (
        SQLiteCommandRecorder if event_store_url.startswith("sqlite") else PostgresCommandRecorder
    )
    return {"APPLICATION_RECORDER_TOPIC": get_topic(recorder)}
