"""The queries of the configs read model: one config by id, the page FactFlow's config
list answers (`GET /api/v1/configs`), and what uses a config (for DeleteConfig).

The list is newest first, by the `created_key` column (ties by id, descending); `name`
matches exactly (case and all), as FactFlow's filter does. Rows stored before the table
had its `name` and `created_key` columns are NULL there until `pipelines projections
rebuild` writes them anew: the list shows them after every other row, and no name
filter finds them. A deleted config is in neither answer; rows stored before the table
had its `deleted` column are NULL there, which counts as live (none of them is deleted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from contracts.run_views import TERMINAL
from contracts.statuses import RunStatus
from projections.db import Database
from projections.rows import Row, load, public
from projections.schema import CONFIGS, EXECUTIONS, PIPELINES

ORDER_BY: Final = "created_key IS NULL, created_key DESC, id DESC"
LIVE: Final = "COALESCE(deleted, 0) = 0"
_UNFINISHED: Final = tuple(str(status) for status in RunStatus if status not in TERMINAL)


@dataclass(frozen=True)
class ConfigUse:
    """What the read models show using a config: how many of its executions carry a run
    number (every config execution does, numbered by the config's run counter: a count
    below the counter's says some are not projected yet), its unfinished executions as
    (id, status), oldest first, and the live pipelines that name it, by name."""

    numbered_executions: int
    running: list[tuple[str, str]]
    pipelines: list[str]


class ConfigQueries:
    """`ReadStore`'s config reads (a mixin: the store owns `db`)."""

    db: Database

    def get_config(self, config_id: str) -> Row | None:
        rows = self.db.query(
            f"SELECT doc FROM {CONFIGS.physical()} WHERE id = ? AND {LIVE}", (str(config_id),)
        )
        return public(load(rows[0][0])) if rows else None

    def list_configs(
        self, *, name: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[int, list[Row]]:
        """(count before paging, the page of rows), newest first; `name` is exact."""
        where, params = f"WHERE {LIVE}", []
        if name is not None:
            where, params = f"{where} AND name = ?", [name]
        source = f"FROM {CONFIGS.physical()} {where}"
        count = int(self.db.query(f"SELECT COUNT(*) {source}", params)[0][0])
        rows = self.db.query(
            f"SELECT doc {source} ORDER BY {ORDER_BY} "
            f"LIMIT {max(int(limit), 0)} OFFSET {max(int(offset), 0)}",
            params,
        )
        return count, [public(load(doc)) for (doc,) in rows]

    def config_use(self, config_id: str) -> ConfigUse:
        config_id = str(config_id)
        executions = EXECUTIONS.physical()
        ((numbered,),) = self.db.query(
            f"SELECT COUNT(*) FROM {executions} "
            "WHERE config_id = ? AND owner_kind = 'config' AND run_number IS NOT NULL",
            (config_id,),
        )
        marks = ", ".join("?" * len(_UNFINISHED))
        running = self.db.query(
            f"SELECT id, status FROM {executions} WHERE config_id = ? AND "
            f"owner_kind = 'config' AND deleted = 0 AND status IN ({marks}) "
            "ORDER BY created_key, id",
            (config_id, *_UNFINISHED),
        )
        # The pipelines table has no config_id column (rows stored before one would be
        # NULL there until a rebuild): the live pipelines are few, their docs say.
        pipelines = self.db.query(
            f"SELECT doc FROM {PIPELINES.physical()} WHERE deleted = 0 ORDER BY name, id"
        )
        return ConfigUse(
            numbered_executions=int(numbered),
            running=[(str(execution_id), str(status)) for execution_id, status in running],
            pipelines=[
                row["name"]
                for row in (load(doc) for (doc,) in pipelines)
                if row.get("config_id") == config_id
            ],
        )
