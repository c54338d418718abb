"""The read-model tables: their columns, indexes and physical names.

Each table keeps its row as JSON in `doc` plus the columns SQL filters and sorts on.
Physical names are `read_<table><suffix>`: the live tables have no suffix, a rebuild
writes into suffixed ones and renames them at the swap. Index names carry the physical
table name they were created with, so a swapped-in table keeps unique index names and
the next rebuild's names never collide with them.

A table created before a column or an index was declared here gets it when a store opens
it (`Table.upgrade_statements`, run by `ReadStore.create_tables`). An added column is
NULL in the rows stored before it; `pipelines projections rebuild` writes them anew.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    def physical(self, suffix: str = "") -> str:
        return f"read_{self.name}{suffix}"

    def create_statements(self, suffix: str = "") -> list[str]:
        table = self.physical(suffix)
        columns = ", ".join(f"{name} {kind}" for name, kind in self.columns)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {table} ({columns}, "
            f"PRIMARY KEY ({', '.join(self.primary_key)}))"
        ]
        statements.extend(_create_index(table, index) for index in self.indexes)
        return statements

    def upgrade_statements(
        self, suffix: str, columns: Iterable[str], indexed: Iterable[tuple[str, ...]]
    ) -> list[str]:
        """What brings an existing table, with `columns` and indexes on `indexed`, up to
        this declaration: ADD COLUMN and CREATE INDEX for each column and index it lacks.
        Indexes are matched by their columns, not by name: a table a rebuild swapped in
        carries the names of its rebuild."""
        table, have, found = self.physical(suffix), set(columns), set(indexed)
        statements = []
        for name, kind in self.columns:
            if name in have:
                continue
            if "NOT NULL" in kind:
                # SQLite refuses it outright, PostgreSQL once the table has rows.
                raise ValueError(
                    f"{table}.{name} is NOT NULL: an existing table cannot get it; declare "
                    "it nullable (a rebuild fills it)"
                )
            statements.append(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        statements.extend(_create_index(table, i) for i in self.indexes if i not in found)
        return statements


def _create_index(table: str, index: tuple[str, ...]) -> str:
    name = f"ix_{table}_{'_'.join(index)}"
    return f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(index)})"


PIPELINES: Final = Table(
    "pipelines",
    (("id", "TEXT NOT NULL"), ("name", "TEXT NOT NULL"), ("deleted", "INTEGER NOT NULL"),
     ("doc", "TEXT NOT NULL")),
    ("id",),
    (("name",),),
)  # fmt: skip
CONFIGS: Final = Table(
    "configs",
    (
        ("id", "TEXT NOT NULL"),
        ("doc", "TEXT NOT NULL"),
        # Added after the table: NULL in rows stored before them, until a rebuild
        # (projections.config_queries lists those last).
        ("name", "TEXT"),
        # fixed-width UTC text (projections.times.sort_key): text order is time order
        ("created_key", "TEXT"),
        # 1 once deleted; NULL in rows stored before it, none of which is deleted
        ("deleted", "INTEGER"),
    ),
    ("id",),
    (("name",), ("created_key",)),
)
EXECUTIONS: Final = Table(
    "executions",
    (
        ("id", "TEXT NOT NULL"),
        ("owner_kind", "TEXT NOT NULL"),
        ("pipeline_id", "TEXT"),
        ("config_id", "TEXT"),
        ("tag", "TEXT"),
        # a replay's lineage (projections.execution_queries.lineage); NULL in rows stored
        # before these columns existed, until a rebuild
        ("parent_execution_id", "TEXT"),
        ("root_execution_id", "TEXT"),
        ("status", "TEXT NOT NULL"),
        ("execution_status", "TEXT NOT NULL"),
        ("run_number", "BIGINT"),
        # fixed-width UTC text (projections.times.sort_key): text order is time order
        ("created_key", "TEXT NOT NULL"),
        ("started_key", "TEXT"),
        ("ended_key", "TEXT"),
        ("deleted", "INTEGER NOT NULL"),
        ("doc", "TEXT NOT NULL"),
    ),
    ("id",),
    (
        ("pipeline_id",),
        ("config_id",),
        ("tag",),
        ("status",),
        ("parent_execution_id",),
        ("root_execution_id",),
    ),
)
STAGE_RUNS: Final = Table(
    "stage_runs",
    (("execution_id", "TEXT NOT NULL"), ("route", "TEXT NOT NULL"),
     ("position", "INTEGER NOT NULL"), ("doc", "TEXT NOT NULL")),
    ("execution_id", "route"),
)  # fmt: skip
VERSIONS: Final = Table(
    "versions",
    (("aggregate_id", "TEXT NOT NULL"), ("aggregate_type", "TEXT NOT NULL"),
     ("version", "BIGINT NOT NULL")),
    ("aggregate_id",),
)  # fmt: skip

TABLES: Final[tuple[Table, ...]] = (PIPELINES, CONFIGS, EXECUTIONS, STAGE_RUNS, VERSIONS)

# aggregate type -> the table its rows live in
ROW_TABLES: Final[dict[str, Table]] = {
    "Pipeline": PIPELINES,
    "Config": CONFIGS,
    "Execution": EXECUTIONS,
}
