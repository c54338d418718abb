"""The read-model store: what the HTTP API and the sweeps read, and what the projector writes.

`ReadStore(url)` opens (and creates, if missing) the read-model tables in SQLite
(`sqlite:///path`) or PostgreSQL (`postgresql://user@host/db`, a libpq `options` search
path allowed). Timestamps are ISO-8601 text in UTC with a `Z`; ids are text.

Query API (stable; rows are JSON-ready dicts, None / empty when absent or deleted):

- `get_pipeline(name)`, `get_pipeline_by_id(id)` -> the pipeline in Feldera's field names:
  id, name, description, config_id, created_at, version, refresh_version,
  program_status(+_since), deployment_status(+_since), deployment_desired_status(+_since),
  deployment_error, deployment_id, deployment_initial,
  deployment_resources_status(+_since), deployment_resources_desired_status(+_since),
  deployment_runtime_status(+_since, _details), deployment_runtime_desired_status(+_since),
  storage_status(+_since), bootstrap_policy, checkpoint_sequence_number.
- `list_pipelines()` -> every live pipeline, by name.
- `pipelines_not_at_rest()` -> the live pipelines whose resources status or desired
  status is not Stopped, by name (the reconciler's sweep).
- `get_config(id)` -> id, name, version, created_at, updated_at, document,
  validation_report (the report of the latest version).
- `get_execution(id)` -> the run: id, owner_kind (pipeline | config), pipeline_id,
  pipeline_name, config_id, config_version, run_number, tag, parent_execution_id,
  replay_source, skip_init_message, init_route, init_payload, init_payload_overrides,
  args, facets, nominal_start_time, nominal_end_time, timeout_s, deadline, status
  (canonical, seed 003), marquez_state (seed 002), execution_status (seed 004),
  created_at, updated_at, started_at, ended_at, duration_ms, last_transition_at,
  stages (as `get_stage_runs`).
- `list_executions(status=, pipeline_name=, pipeline_id=, config_id=, tag=,
  execution_status=, owner_kind=, ordering=, limit=, offset=)` -> (count, rows): count
  before paging; `ordering` is one of ORDERINGS (seed 003's ±run_number, ±status,
  ±pipeline__name, ±started_at, ±ended_at, and ±created_at, the default being
  `-created_at`); missing values sort last ascending and first descending (PostgreSQL's
  rule, also on SQLite); ties go by id. `status` matches in any case.
- `get_stage_runs(execution_id)` -> route, status, messages_in/out/failed, started_at,
  ended_at per route, in the config's route order.
- `applied_version(aggregate_id)` -> the last version applied (0: none).
- `await wait_for_version(aggregate_id, version, timeout_s)` -> True once applied.

The projector and the rebuild write through `transaction(suffix)` (a `ReadTx`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import orjson

from contracts.statuses import RunStatus
from projections.db import Cursor, Database
from projections.rows import Row
from projections.run_views import TERMINAL
from projections.schema import (
    CONFIGS,
    EXECUTIONS,
    PIPELINES,
    ROW_TABLES,
    STAGE_RUNS,
    TABLES,
    VERSIONS,
    Table,
)
from projections.times import sort_key

# Row fields the store keeps for itself (deleted rows are never returned).
_INTERNAL: Final = ("deleted",)

# ordering name -> SQL expression (`e` executions, `p` pipelines)
ORDERINGS: Final[dict[str, str]] = {
    "run_number": "e.run_number",
    "status": "e.status",
    "pipeline__name": "p.name",
    "started_at": "e.started_key",
    "ended_at": "e.ended_key",
    "created_at": "e.created_key",
}
DEFAULT_ORDERING = "-created_at"
_POLL_S = 0.02


class UnknownOrdering(ValueError):
    pass


def _load(doc: str | bytes) -> Row:
    row: Row = orjson.loads(doc)
    return row


def _public(row: Row) -> Row:
    for field in _INTERNAL:
        row.pop(field, None)
    return row


def _dump(row: Row) -> str:
    return orjson.dumps(row).decode()


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
        row = _load(rows[0][0])
        if table is EXECUTIONS:
            stages = self.cursor.execute(
                f"SELECT doc FROM {self._t(STAGE_RUNS)} WHERE execution_id = ? ORDER BY position",
                (aggregate_id,),
            )
            row["stages"] = [_load(doc) for (doc,) in stages]
        return row

    def save(self, aggregate_type: str, row: Row) -> None:
        table = ROW_TABLES[aggregate_type]
        values = _columns(table, row)
        if table is EXECUTIONS:
            self._save_stages(row)
        _upsert(self.cursor, table, self.suffix, [values])

    def _save_stages(self, row: Row) -> None:
        stages = [
            {"execution_id": row["id"], "route": s["route"], "position": i, "doc": _dump(s)}
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
        return {"id": row["id"], "doc": row}
    doc = {key: value for key, value in row.items() if key != "stages"}
    return {
        "id": row["id"],
        "owner_kind": row["owner_kind"],
        "pipeline_id": row["pipeline_id"],
        "config_id": row["config_id"],
        "tag": row["tag"],
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
            tuple(_dump(r[n]) if n == "doc" and not isinstance(r[n], str) else r[n] for n in names)
            for r in rows
        ],
    )


class ReadStore:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.create_tables()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ReadStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- schema --------------------------------------------------------------------------

    def create_tables(self, suffix: str = "") -> None:
        """Create the tables with `suffix` that are missing (with their indexes)."""
        missing = [t for t in TABLES if not self.db.table_exists(t.physical(suffix))]
        if not missing:
            return
        try:
            with self.db.transaction() as cursor:
                for table in missing:
                    for statement in table.create_statements(suffix):
                        cursor.execute(statement)
        except Exception:
            # Two processes starting at once (api and projector) race on PostgreSQL's
            # catalog even with IF NOT EXISTS; the loser finds the winner's tables.
            if any(not self.db.table_exists(t.physical(suffix)) for t in missing):
                raise

    def drop_tables(self, suffix: str, cursor: Cursor | None = None) -> None:
        statements = [f"DROP TABLE IF EXISTS {t.physical(suffix)}" for t in TABLES]
        if cursor is not None:
            for statement in statements:
                cursor.execute(statement)
            return
        with self.db.transaction() as own:
            for statement in statements:
                own.execute(statement)

    @contextmanager
    def transaction(self, suffix: str = "", *, exclusive: bool = False) -> Iterator[ReadTx]:
        """A write transaction. On the live tables it holds PostgreSQL's lock on the versions
        table (shared among writers; `exclusive` for the rebuild's swap, which waits for
        them and keeps them out); SQLite serialises every writer anyway."""
        with self.db.transaction() as cursor:
            if self.db.dialect == "postgresql" and (suffix == "" or exclusive):
                mode = "EXCLUSIVE" if exclusive else "ROW EXCLUSIVE"
                cursor.execute(f"LOCK TABLE {VERSIONS.physical()} IN {mode} MODE")
            yield ReadTx(cursor, suffix)

    def swap_in(self, suffix: str, tx: ReadTx) -> None:
        """Inside `tx`: drop the live tables and rename the `suffix` ones to them."""
        self.drop_tables("", tx.cursor)
        for table in TABLES:
            tx.cursor.execute(f"ALTER TABLE {table.physical(suffix)} RENAME TO {table.physical()}")

    # --- queries -------------------------------------------------------------------------

    def get_pipeline(self, name: str) -> Row | None:
        rows = self.db.query(
            # Newest first: a re-created name may briefly meet its predecessor's delete
            # still in flight on another partition.
            f"SELECT doc FROM {PIPELINES.physical()} WHERE name = ? AND deleted = 0 "
            f"ORDER BY id DESC LIMIT 1",
            (name,),
        )
        return _public(_load(rows[0][0])) if rows else None

    def get_pipeline_by_id(self, pipeline_id: str) -> Row | None:
        rows = self.db.query(
            f"SELECT doc FROM {PIPELINES.physical()} WHERE id = ? AND deleted = 0",
            (str(pipeline_id),),
        )
        return _public(_load(rows[0][0])) if rows else None

    def list_pipelines(self) -> list[Row]:
        rows = self.db.query(
            f"SELECT doc FROM {PIPELINES.physical()} WHERE deleted = 0 ORDER BY name, id"
        )
        return [_public(_load(doc)) for (doc,) in rows]

    def pipelines_not_at_rest(self) -> list[Row]:
        """Every live pipeline whose resources status or desired status is not Stopped, or
        whose storage is being cleared (the reconciler's sweep), by name."""
        fields = (
            "deployment_resources_status",
            "deployment_resources_desired_status",
            "storage_status",
        )
        if self.db.dialect == "sqlite":
            status, desired, storage = (f"json_extract(doc, '$.{f}')" for f in fields)
        else:
            status, desired, storage = (f"(doc::jsonb ->> '{f}')" for f in fields)
        rows = self.db.query(
            f"SELECT doc FROM {PIPELINES.physical()} WHERE deleted = 0 "
            f"AND ({status} <> ? OR {desired} <> ? OR {storage} = ?) ORDER BY name, id",
            ("Stopped", "Stopped", "Clearing"),
        )
        return [_public(_load(doc)) for (doc,) in rows]

    def get_config(self, config_id: str) -> Row | None:
        rows = self.db.query(
            f"SELECT doc FROM {CONFIGS.physical()} WHERE id = ?", (str(config_id),)
        )
        return _load(rows[0][0]) if rows else None

    def get_execution(self, execution_id: str) -> Row | None:
        rows = self.db.query(
            f"SELECT e.doc, p.name FROM {EXECUTIONS.physical()} e "
            f"LEFT JOIN {PIPELINES.physical()} p ON p.id = e.pipeline_id "
            f"WHERE e.id = ? AND e.deleted = 0",
            (str(execution_id),),
        )
        if not rows:
            return None
        row = _execution(rows[0])
        row["stages"] = self.get_stage_runs(row["id"])
        return row

    def get_stage_runs(self, execution_id: str) -> list[Row]:
        rows = self.db.query(
            f"SELECT s.doc FROM {STAGE_RUNS.physical()} s "
            f"JOIN {EXECUTIONS.physical()} e ON e.id = s.execution_id AND e.deleted = 0 "
            f"WHERE s.execution_id = ? ORDER BY s.position",
            (str(execution_id),),
        )
        return [_load(doc) for (doc,) in rows]

    def list_executions(
        self,
        *,
        status: str | None = None,
        pipeline_name: str | None = None,
        pipeline_id: str | None = None,
        config_id: str | None = None,
        tag: str | None = None,
        execution_status: str | None = None,
        owner_kind: str | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[int, list[Row]]:
        where, params = ["e.deleted = 0"], []
        for column, value in (
            ("e.status", None if status is None else status.lower()),
            ("e.pipeline_id", pipeline_id),
            ("e.config_id", config_id),
            ("e.tag", tag),
            ("e.execution_status", execution_status),
            ("e.owner_kind", owner_kind),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        if pipeline_name is not None:
            where.append("p.name = ? AND p.deleted = 0")
            params.append(pipeline_name)
        source = (
            f"FROM {EXECUTIONS.physical()} e "
            f"LEFT JOIN {PIPELINES.physical()} p ON p.id = e.pipeline_id "
            f"WHERE {' AND '.join(where)}"
        )
        count = int(self.db.query(f"SELECT COUNT(*) {source}", params)[0][0])
        page = f" LIMIT {max(int(limit), 0)}" if limit is not None else " LIMIT -1"
        if self.db.dialect == "postgresql" and limit is None:
            page = " LIMIT ALL"
        rows = self.db.query(
            f"SELECT e.doc, p.name {source} ORDER BY {order_by(ordering)}"
            f"{page} OFFSET {max(int(offset), 0)}",
            params,
        )
        return count, [_execution(row) for row in rows]

    def live_config_executions(self) -> list[Row]:
        """Every config execution not finished yet (the orchestrator's sweep), oldest
        first; without stage runs."""
        unfinished = [str(status) for status in RunStatus if status not in TERMINAL]
        rows = self.db.query(
            f"SELECT e.doc, NULL FROM {EXECUTIONS.physical()} e "
            f"WHERE e.owner_kind = 'config' AND e.deleted = 0 "
            f"AND e.status IN ({', '.join('?' * len(unfinished))}) "
            f"ORDER BY e.created_key, e.id",
            unfinished,
        )
        return [_execution(row) for row in rows]

    # --- versions ------------------------------------------------------------------------

    def applied_version(self, aggregate_id: str) -> int:
        rows = self.db.query(
            f"SELECT version FROM {VERSIONS.physical()} WHERE aggregate_id = ?",
            (str(aggregate_id),),
        )
        return int(rows[0][0]) if rows else 0

    def wait_for_version_sync(self, aggregate_id: str, version: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.applied_version(aggregate_id) < version:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True

    async def wait_for_version(self, aggregate_id: str, version: int, timeout_s: float) -> bool:
        """True once `version` (or a later one) of the aggregate is applied; False after
        `timeout_s`. Polls (each poll off the event loop)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await asyncio.to_thread(self.applied_version, aggregate_id) < version:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True


def order_by(ordering: str | None) -> str:
    """ORDER BY for a seed ordering; missing values last ascending, first descending."""
    name = ordering or DEFAULT_ORDERING
    descending = name.startswith("-")
    expression = ORDERINGS.get(name.removeprefix("-"))
    if expression is None:
        raise UnknownOrdering(
            f"Unknown ordering {name!r}; known: "
            + ", ".join(f"{sign}{key}" for key in ORDERINGS for sign in ("", "-"))
        )
    direction = "DESC" if descending else "ASC"
    return f"({expression} IS NULL) {direction}, {expression} {direction}, e.id ASC"


def _execution(found: tuple[Any, ...]) -> Row:
    doc, pipeline_name = found
    row = _public(_load(doc))
    row["pipeline_name"] = pipeline_name
    return row
