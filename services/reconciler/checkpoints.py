"""A pipeline's checkpoint: where each of its routes had got to in each inbound partition
when it was suspended (`/stop?force=false`), in the event store's database.

This is the only checkpoint: the route workers never rely on the broker's offsets across
deployments (each deployment has consumer groups of its own), so a new deployment starts
every partition the checkpoint covers at the recorded offset — nothing before it is
processed again — and the others at the topic's end.

A checkpoint replaces the previous one as a whole (one transaction), so a crash while it
is written leaves the previous one. Synchronous: call it off the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from uuid import UUID

from aiokafka import TopicPartition

from projections.db import Database

TABLE: Final = "reconciler_checkpoints"

_CREATE: Final = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "pipeline_id TEXT NOT NULL, route TEXT NOT NULL, topic TEXT NOT NULL, "
    "partition_no INTEGER NOT NULL, next_offset BIGINT NOT NULL, "
    "PRIMARY KEY (pipeline_id, route, topic, partition_no))"
)

Offsets = Mapping[TopicPartition, int]


class Checkpoints:
    """Owns one connection to `url` (an event-store URL)."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        try:
            self.db.query(_CREATE)
        except Exception:
            # Two processes creating it at once on PostgreSQL: one loses the race.
            if not self.db.table_exists(TABLE):
                raise

    def close(self) -> None:
        self.db.close()

    def record(self, pipeline_id: UUID, routes: Mapping[str, Offsets]) -> None:
        """The pipeline's new checkpoint: per route, the next offset of each partition."""
        rows = [
            (str(pipeline_id), route, tp.topic, tp.partition, offset)
            for route, offsets in routes.items()
            for tp, offset in offsets.items()
        ]
        with self.db.transaction() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE pipeline_id = ?", (str(pipeline_id),))
            if rows:
                cursor.executemany(
                    f"INSERT INTO {TABLE} (pipeline_id, route, topic, partition_no, next_offset) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )

    def of(self, pipeline_id: UUID) -> dict[str, dict[TopicPartition, int]]:
        """The pipeline's checkpoint, per route (empty: none yet)."""
        found: dict[str, dict[TopicPartition, int]] = {}
        for route, topic, partition, offset in self.db.query(
            f"SELECT route, topic, partition_no, next_offset FROM {TABLE} WHERE pipeline_id = ?",
            (str(pipeline_id),),
        ):
            found.setdefault(route, {})[TopicPartition(topic, int(partition))] = int(offset)
        return found


__all__ = ["TABLE", "Checkpoints", "Offsets"]
