"""The read-model tables as the projector and the rebuild write them: one transaction on
the tables with one suffix (the live ones, or a rebuild's), row by row.

Each row is kept as JSON in `doc` beside the columns SQL filters and sorts on
(`projections.schema`); an execution's stage runs are rows of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
        ids = list(dict.fromkeys(aggregate_ids))
        found: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self.cursor.execute(
                f"SELECT aggregate_id, version FROM {self._t(VERSIONS)} "
                f"WHERE aggregate_id IN ({marks})",
                chunk,
            )
            found.update({aggregate_id: int(version) for aggregate_id, version in rows})
        return found

    def load(self, aggregate_type: str, aggregate_id: str) -> Row | None:
        table = ROW_TABLES[aggregate_type]
        rows = self.cursor.execute(
            f"SELECT doc FROM {self._t(table)} WHERE id = ?", (aggregate_id,)
        )
        if not rows:
            return None
        row = load(rows[0][0])
        if table is EXECUTIONS:
            stages = self.cursor.execute(
                f"SELECT doc FROM {self._t(STAGE_RUNS)} WHERE execution_id = ? ORDER BY position",
                (aggregate_id,),
            )
            row["stages"] = [load(doc) for (doc,) in stages]
        return row

    def save(self, aggregate_type: str, row: Row) -> None:
        table = ROW_TABLES[aggregate_type]
        values = _columns(table, row)
        if table is EXECUTIONS:
            self._save_stages(row)
        _upsert(self.cursor, table, self.suffix, [values])

    def _save_stages(self, row: Row) -> None:
        stages = [
            {"execution_id": row["id"], "route": s["route"], "position": i, "doc": dump(s)}
            for i, s in enumerate(row.get("stages", []))
        ]
        _upsert(self.cursor, STAGE_RUNS, self.suffix, stages)

    def set_versions(self, versions: Mapping[str, tuple[str, int]]) -> None:
        """aggregate id -> (aggregate type, version); a version never moves back."""
        table = self._t(VERSIONS)
        self.cursor.executemany(
            f"INSERT INTO {table} (aggregate_id, aggregate_type, version) VALUES (?, ?, ?) "
            f"ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version "
            f"WHERE {table}.version < excluded.version",
            [(aid, kind, version) for aid, (kind, version) in versions.items()],
        )

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


def _upsert(cursor: Cursor, table: Table, suffix: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = [name for name, _ in table.columns]
    physical = table.physical(suffix)
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in table.primary_key)
    cursor.executemany(
        f"INSERT INTO {physical} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT ({', '.join(table.primary_key)}) DO UPDATE SET {updates}",
        [
            tuple(dump(r[n]) if n == "doc" and not isinstance(r[n], str) else r[n] for n in names)
            for r in rows
        ],
    )
