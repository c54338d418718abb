"""The queries of the configs read model: one config by id, and the page FactFlow's
config list answers (`GET /api/v1/configs`).

The list is newest first, by the `created_key` column (ties by id, descending); `name`
matches exactly (case and all), as FactFlow's filter does. Rows stored before the table
had its `name` and `created_key` columns are NULL there until `pipelines projections
rebuild` writes them anew: the list shows them after every other row, and no name
filter finds them.
"""

from __future__ import annotations

from typing import Final

from projections.db import Database
from projections.rows import Row, load
from projections.schema import CONFIGS

ORDER_BY: Final = "created_key IS NULL, created_key DESC, id DESC"


class ConfigQueries:
    """`ReadStore`'s config reads (a mixin: the store owns `db`)."""

    db: Database

    def get_config(self, config_id: str) -> Row | None:
        rows = self.db.query(
            f"SELECT doc FROM {CONFIGS.physical()} WHERE id = ?", (str(config_id),)
        )
        return load(rows[0][0]) if rows else None

    def list_configs(
        self, *, name: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[int, list[Row]]:
        """(count before paging, the page of rows), newest first; `name` is exact."""
        where, params = ("WHERE name = ?", [name]) if name is not None else ("", [])
        source = f"FROM {CONFIGS.physical()} {where}"
        count = int(self.db.query(f"SELECT COUNT(*) {source}", params)[0][0])
        rows = self.db.query(
            f"SELECT doc {source} ORDER BY {ORDER_BY} "
            f"LIMIT {max(int(limit), 0)} OFFSET {max(int(offset), 0)}",
            params,
        )
        return count, [load(doc) for (doc,) in rows]
