"""The queries of the executions read model: one execution with its stage runs, the
filtered and ordered page the run APIs list, a replay's lineage, and the orchestrator's
sweep.

`ordering` is one of ORDERINGS (seed 003's ±run_number, ±status, ±pipeline__name,
±started_at, ±ended_at, and ±created_at, the default being `-created_at`); missing values
sort last ascending and first descending (PostgreSQL's rule, also on SQLite); ties go by
id.
"""

from __future__ import annotations

from typing import Any, Final

from contracts.run_views import TERMINAL
from contracts.statuses import RunStatus
from projections.db import Database
from projections.rows import Row, load, public
from projections.schema import EXECUTIONS, PIPELINES, STAGE_RUNS

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
LINEAGE_CHILDREN_MAX: Final = 1000
"""`lineage` names this many children (and counts them all); the replays page has them all."""


class UnknownOrdering(ValueError):
    pass


class ExecutionQueries:
    """`ReadStore`'s execution reads (a mixin: the store owns `db`)."""

    db: Database

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
        return [load(doc) for (doc,) in rows]

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
        parent_execution_id: str | None = None,
        root_execution_id: str | None = None,
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
            ("e.parent_execution_id", parent_execution_id),
            ("e.root_execution_id", root_execution_id),
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

    def lineage(self, execution_id: str) -> Row | None:
        """Where the execution sits among replays: `execution_id`, `root_execution_id` (the
        run its chain of replays started from; None: it is no replay), `parent_execution_id`,
        `children` (the ids of its replays, newest first as `list_executions` orders them,
        the first LINEAGE_CHILDREN_MAX) and `children_total`. None when absent or deleted.
        Rows stored before the lineage columns existed count as nobody's children until a
        rebuild."""
        found = self.db.query(
            f"SELECT doc FROM {EXECUTIONS.physical()} WHERE id = ? AND deleted = 0",
            (str(execution_id),),
        )
        if not found:
            return None
        doc = load(found[0][0])
        children = self.db.query(
            f"SELECT e.id, COUNT(*) OVER () FROM {EXECUTIONS.physical()} e "
            f"WHERE e.parent_execution_id = ? AND e.deleted = 0 "
            f"ORDER BY {order_by(DEFAULT_ORDERING)} LIMIT {LINEAGE_CHILDREN_MAX}",
            (str(execution_id),),
        )
        return {
            "execution_id": doc["id"],
            "root_execution_id": doc.get("root_execution_id"),
            "parent_execution_id": doc["parent_execution_id"],
            "children": [str(child) for child, _ in children],
            "children_total": int(children[0][1]) if children else 0,
        }

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
    row = public(load(doc))
    row["pipeline_name"] = pipeline_name
    return row
