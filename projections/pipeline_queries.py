"""The queries of the pipelines read model: by name or id, the whole list, and the
reconciler's sweep (the configs' are projections.config_queries)."""

from __future__ import annotations

from projections.db import Database
from projections.rows import Row, load, public
from projections.schema import PIPELINES


class PipelineQueries:
    """`ReadStore`'s pipeline reads (a mixin: the store owns `db`)."""

    db: Database

    def get_pipeline(self, name: str) -> Row | None:
        rows = self.db.query(
            # Newest first: a re-created name may briefly meet its predecessor's delete
            # still in flight on another partition.
            f"SELECT doc FROM {PIPELINES.physical()} WHERE name = ? AND deleted = 0 "
            f"ORDER BY id DESC LIMIT 1",
            (name,),
        )
        return public(load(rows[0][0])) if rows else None

    def get_pipeline_by_id(self, pipeline_id: str) -> Row | None:
        rows = self.db.query(
            f"SELECT doc FROM {PIPELINES.physical()} WHERE id = ? AND deleted = 0",
            (str(pipeline_id),),
        )
        return public(load(rows[0][0])) if rows else None

    def list_pipelines(self) -> list[Row]:
        rows = self.db.query(
            f"SELECT doc FROM {PIPELINES.physical()} WHERE deleted = 0 ORDER BY name, id"
        )
        return [public(load(doc)) for (doc,) in rows]

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
        return [public(load(doc)) for (doc,) in rows]
