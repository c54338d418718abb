"""The read-model tables as the projector and the rebuild write them: one transaction on
the tables with one suffix (the live ones, or a rebuild's), in bulk: a batch's rows are
read with one query per table (`load_many`) and written with one statement per table
(`save_many`, `set_versions`), however many rows it touches.

Each row is kept as JSON in `doc` beside the columns SQL filters and sorts on
(`projections.schema`); an execution's stage runs are rows of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from projections.db import Cursor
from projections.rows import Row, dump, load
from projections.schema import (
    CONFIGS,
    EXECUTIONS,
    PIPELINES,
    ROW_TABLES,
    STAGE_RUNS,
    VERSIONS,
    Table,
)
from projections.times import sort_key

# Values per `IN (...)` on SQLite, well below its limit on parameters.
_IN_CHUNK: Final = 500


class ReadTx:
    """Reads and writes of one transaction on the tables with one suffix."""

    def __init__(self, cursor: Cursor, suffix: str = "") -> None:
        self.cursor = cursor
        self.suffix = suffix

    def view(self, suffix: str) -> ReadTx:
        """The same transaction on the tables with another suffix."""
        return ReadTx(self.cursor, suffix)

    def _t(self, table: Table) -> str:
        return table.physical(self.suffix)

    def versions(self, aggregate_ids: Iterable[str]) -> dict[str, int]:
        select = f"SELECT aggregate_id, version FROM {self._t(VERSIONS)}"
        rows = self._where_in(select, "aggregate_id", aggregate_ids)
        return {str(aggregate_id): int(version) for aggregate_id, version in rows}

    def load(self, aggregate_type: str, aggregate_id: str) -> Row | None:
        return self.load_many(aggregate_type, [aggregate_id]).get(aggregate_id)

    def load_many(self, aggregate_type: str, aggregate_ids: Iterable[str]) -> dict[str, Row]:
        """id -> row of each of `aggregate_ids` that has one: one query per table."""
        table = ROW_TABLES[aggregate_type]
        rows = self._where_in(f"SELECT id, doc FROM {self._t(table)}", "id", aggregate_ids)
        found = {str(aggregate_id): load(doc) for aggregate_id, doc in rows}
        if table is EXECUTIONS and found:
            for row in found.values():
                row["stages"] = []
            stages = self._where_in(
                f"SELECT execution_id, position, doc FROM {self._t(STAGE_RUNS)}",
                "execution_id", list(found),
            )  # fmt: skip
            for execution_id, _, doc in sorted(stages, key=lambda s: (s[0], s[1])):
                found[str(execution_id)]["stages"].append(load(doc))
        return found

    def save(self, aggregate_type: str, row: Row) -> None:
        self.save_many(aggregate_type, [row])

    def save_many(self, aggregate_type: str, rows: Iterable[Row]) -> None:
        """Upsert `rows` (of one aggregate type, one per id): one statement per table."""
        table = ROW_TABLES[aggregate_type]
        rows = list(rows)
        if table is EXECUTIONS:
            _upsert(self.cursor, STAGE_RUNS, self.suffix, [s for r in rows for s in _stages(r)])
        _upsert(self.cursor, table, self.suffix, [_columns(table, row) for row in rows])

    def set_versions(self, versions: Mapping[str, tuple[str, int]]) -> None:
        """aggregate id -> (aggregate type, version); a version never moves back."""
        _upsert(
            self.cursor, VERSIONS, self.suffix,
            [{"aggregate_id": aid, "aggregate_type": kind, "version": version}
             for aid, (kind, version) in versions.items()],
            only_if=f"{self._t(VERSIONS)}.version < excluded.version",
        )  # fmt: skip

    def _where_in(self, select: str, column: str, values: Iterable[str]) -> list[tuple[Any, ...]]:
        """`select` for the rows whose `column` is one of `values` (one query on
        PostgreSQL; on SQLite one per _IN_CHUNK values, its limit on parameters)."""
        wanted = list(dict.fromkeys(values))
        if not wanted:
            return []
        if self.cursor.dialect == "postgresql":
            # One JSON text parameter: psycopg's array dumper escapes element by element.
            return self.cursor.execute(
                f"{select} WHERE {column} IN (SELECT json_array_elements_text(?::json))",
                (orjson.dumps(wanted).decode(),),
            )
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            found += self.cursor.execute(f"{select} WHERE {column} IN ({marks})", chunk)
        return found

    def lagging(self, ahead_suffix: str = "") -> list[tuple[str, str, int]]:
        """(aggregate id, type, version here) of every aggregate the tables with
        `ahead_suffix` have applied further than these (version 0: not at all)."""
        here, ahead = self._t(VERSIONS), VERSIONS.physical(ahead_suffix)
        rows = self.cursor.execute(
            f"SELECT a.aggregate_id, a.aggregate_type, COALESCE(h.version, 0) FROM {ahead} a "
            f"LEFT JOIN {here} h ON h.aggregate_id = a.aggregate_id "
            f"WHERE h.version IS NULL OR h.version < a.version"
        )
        return [(str(aid), str(kind), int(version)) for aid, kind, version in rows]


def _columns(table: Table, row: Row) -> dict[str, Any]:
    if table is PIPELINES:
        return {"id": row["id"], "name": row["name"], "deleted": int(row["deleted"]), "doc": row}
    if table is CONFIGS:
        return {
            "id": row["id"],
            "doc": row,
            "name": row["name"],
            "created_key": sort_key(row["created_at"]),
            # rows stored before configs could be deleted lack it
            "deleted": int(row.get("deleted", False)),
        }
    doc = {key: value for key, value in row.items() if key != "stages"}
    return {
        "id": row["id"],
        "owner_kind": row["owner_kind"],
        "pipeline_id": row["pipeline_id"],
        "config_id": row["config_id"],
        "tag": row["tag"],
        "parent_execution_id": row["parent_execution_id"],
        # rows stored before the read model carried the root lack it
        "root_execution_id": row.get("root_execution_id"),
        "status": row["status"],
        "execution_status": row["execution_status"],
        "run_number": row["run_number"],
        "created_key": sort_key(row["created_at"]),
        "started_key": sort_key(row["started_at"]),
        "ended_key": sort_key(row["ended_at"]),
        "deleted": int(row["deleted"]),
        "doc": doc,
    }


def _stages(row: Row) -> list[dict[str, Any]]:
    return [
        {"execution_id": row["id"], "route": s["route"], "position": i, "doc": s}
        for i, s in enumerate(row.get("stages", []))
    ]


def _upsert(
    cursor: Cursor,
    table: Table,
    suffix: str,
    rows: list[dict[str, Any]],
    only_if: str | None = None,
) -> None:
    """Insert `rows` (one per primary key; `doc` a row or its JSON), updating those
    already there (where `only_if` holds, if given), in one statement: on PostgreSQL an
    INSERT ... SELECT FROM json_to_recordset of one JSON text parameter (one round trip,
    one plan, and the docs embedded as they are); SQLite, in process, takes the rows
    through executemany."""
    if not rows:
        return
    names = [name for name, _ in table.columns]
    physical = table.physical(suffix)
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in table.primary_key)
    conflict = f"ON CONFLICT ({', '.join(table.primary_key)}) DO UPDATE SET {updates}"
    if only_if is not None:
        conflict += f" WHERE {only_if}"
    if cursor.dialect == "postgresql":
        for r in rows:
            if isinstance(r.get("doc"), str):
                r["doc"] = orjson.Fragment(r["doc"])
        kinds = {name: kind.split()[0].lower() for name, kind in table.columns}
        # `doc` is read as json, whose text is the text sent: stored as it is.
        record = ", ".join(f"{n} {'json' if n == 'doc' else kinds[n]}" for n in names)
        selected = ", ".join("doc::text" if n == "doc" else n for n in names)
        cursor.execute(
            f"INSERT INTO {physical} ({', '.join(names)}) SELECT {selected} "
            f"FROM json_to_recordset(?::json) AS x({record}) {conflict}",
            (orjson.dumps(rows).decode(),),
        )
        return
    cursor.executemany(
        f"INSERT INTO {physical} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"{conflict}",
        [
            tuple(dump(r[n]) if n == "doc" and not isinstance(r[n], str) else r[n] for n in names)
            for r in rows
        ],
    )
