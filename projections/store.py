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
- `get_config(id)` -> id, name, description, version, created_at, updated_at, document,
  validation_report (the report of the latest version).
- `list_configs(name=, limit=, offset=)` -> (count, rows): count before paging, rows as
  `get_config`'s, newest first (ties by id); `name` matches exactly. Rows stored before
  the configs table had its name and created-at columns come last and match no name,
  until `pipelines projections rebuild` writes them anew. A deleted config is in neither.
- `config_use(id)` -> ConfigUse: what uses a config (its unfinished executions, the live
  pipelines naming it) and how many of its executions are projected (DeleteConfig).
- `get_execution(id)` -> the run: id, owner_kind (pipeline | config), pipeline_id,
  pipeline_name, config_id, config_version, run_number, tag, parent_execution_id,
  root_execution_id, replay_source, skip_init_message, init_route, init_payload,
  init_payload_overrides, args, facets, nominal_start_time, nominal_end_time, timeout_s,
  deadline, status (canonical, seed 003), marquez_state (seed 002), execution_status
  (seed 004), created_at, updated_at, started_at, ended_at, duration_ms,
  last_transition_at, stages (as `get_stage_runs`).
- `list_executions(status=, pipeline_name=, pipeline_id=, config_id=, tag=,
  execution_status=, owner_kind=, parent_execution_id=, root_execution_id=, ordering=,
  limit=, offset=)` -> (count, rows): count before paging; `ordering` is one of ORDERINGS
  (seed 003's ±run_number, ±status, ±pipeline__name, ±started_at, ±ended_at, and
  ±created_at, the default being `-created_at`); missing values sort last ascending and
  first descending (PostgreSQL's rule, also on SQLite); ties go by id. `status` matches
  in any case. `parent_execution_id=` finds an execution's replays, `root_execution_id=`
  every replay descending from a run.
- `lineage(id)` -> execution_id, root_execution_id (None: it is no replay),
  parent_execution_id, children (ids of its replays, newest first, at most
  LINEAGE_CHILDREN_MAX), children_total.
  Rows stored before the executions table had its parent and root columns are NULL
  there, so neither filter nor `children` finds them, until `pipelines projections
  rebuild` writes them anew.
- `get_stage_runs(execution_id)` -> route, status, messages_in/out/failed, started_at,
  ended_at per route, in the config's route order.
- `applied_version(aggregate_id)` -> the last version applied (0: none).
- `await wait_for_version(aggregate_id, version, timeout_s)` -> True once applied.

The projector and the rebuild write through `transaction(suffix)` (a `ReadTx`,
`projections.read_tx`). The queries live by read model in `projections.pipeline_queries`,
`projections.config_queries` and `projections.execution_queries`; this module holds the
store itself: its tables, transactions and the versions applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from projections.config_queries import ConfigQueries
from projections.db import Cursor, TableStore
from projections.execution_queries import ORDERINGS, ExecutionQueries, UnknownOrdering
from projections.pipeline_queries import PipelineQueries
from projections.read_tx import ReadTx
from projections.schema import TABLES, VERSIONS

_POLL_S = 0.02


class ReadStore(PipelineQueries, ConfigQueries, ExecutionQueries, TableStore):
    """The read models' database: its tables, its write transactions and every query.
    Opening it creates the live tables that are missing and upgrades the existing ones
    (`create_tables`)."""

    # --- schema --------------------------------------------------------------------------

    def create_tables(self, suffix: str = "") -> None:
        """Create the tables with `suffix` that are missing (with their indexes) and give
        the existing ones the columns and indexes declared since they were created (rows
        stored before stay NULL there until a rebuild)."""
        # Only what is missing: CREATE INDEX locks its table against writers even when the
        # index exists. Looked for once without the lock (the usual answer is nothing), then
        # again under it, since another process may have made it meanwhile.
        if self.schema_changes(suffix):
            with self.db.schema_transaction() as cursor:
                for statement in self.schema_changes(suffix, cursor):
                    cursor.execute(statement)

    def schema_changes(self, suffix: str = "", cursor: Cursor | None = None) -> list[str]:
        """The statements `create_tables(suffix)` would run now ([]: the schema is current)."""
        statements: list[str] = []
        for table in TABLES:
            physical = table.physical(suffix)
            if not self.db.table_exists(physical, cursor):
                statements += table.create_statements(suffix)
            else:
                statements += table.upgrade_statements(
                    suffix, self.db.columns(physical, cursor), self.db.indexed(physical, cursor)
                )
        return statements

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

    # --- versions ------------------------------------------------------------------------

    def applied_version(self, aggregate_id: str) -> int:
        rows = self.db.query(
            f"SELECT version FROM {VERSIONS.physical()} WHERE aggregate_id = ?",
            (str(aggregate_id),),
        )
        return int(rows[0][0]) if rows else 0

    async def wait_for_version(self, aggregate_id: str, version: int, timeout_s: float) -> bool:
        """True once `version` (or a later one) of the aggregate is applied; False after
        `timeout_s`. Polls (each poll off the event loop)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await asyncio.to_thread(self.applied_version, aggregate_id) < version:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True


__all__ = ["ORDERINGS", "ReadStore", "ReadTx", "UnknownOrdering"]
