"""Recorders that store processed commands (and the relay's position) beside the events.

The eventsourcing library calls `_insert_events(cursor, stored_events, **kwargs)` inside
the same transaction as the event rows, on SQLite and PostgreSQL alike. Passing
`processed_commands=[(command_id, result_bytes), ...]` to `Application.save` therefore
records every command of a batch atomically with the events it caused: a repeat finds
its original result, byte for byte, and a crash can never keep one without the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic
from psycopg import Cursor, sql
from psycopg.rows import DictRow

ProcessedCommand = tuple[str, bytes]


class SQLiteCommandRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS processed_commands ("
            "command_id TEXT PRIMARY KEY, result BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS relay_positions ("
            "name TEXT PRIMARY KEY, position INTEGER NOT NULL)",
        ]

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
            c.executemany(
                "INSERT INTO processed_commands (command_id, result) VALUES (?, ?)",
                list(processed_commands),
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
                    "command_id text PRIMARY KEY, result bytea NOT NULL)"
                ).format(self._processed),
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "name text PRIMARY KEY, position bigint NOT NULL)"
                ).format(self._positions),
            ]
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
            curs.executemany(
                sql.SQL("INSERT INTO {} (command_id, result) VALUES (%s, %s)").format(
                    self._processed
                ),
                list(processed_commands),
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
