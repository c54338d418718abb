"""A pipeline's checkpoint: where each of its routes had got to in each inbound partition
when it was suspended (`/stop?force=false`), in the event store's database.

This is the only checkpoint: the route workers never rely on the broker's offsets across
deployments (each deployment has consumer groups of its own), so a new deployment starts
every partition the checkpoint covers at the recorded offset — nothing before it is
processed again — and the others at the topic's end.

A checkpoint also has a head (`reconciler_checkpoint_heads`, one row per pipeline): the
config and config version it was taken at — a start whose config differs applies the
pipeline's bootstrap policy (docs/reconciler.md, Bootstrap) — and the `/checkpoint`
sequence number it answers. The heads are a table of their own (created if missing, no
ALTER of the offsets table), so a checkpoint recorded before heads existed simply has
none: its config is unknown and a start from it bootstraps nothing, as before.

A checkpoint replaces the previous one as a whole, offsets and head in one transaction,
so a crash while it is written leaves the previous one. Synchronous: call it off the
event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from aiokafka import TopicPartition

from projections.db import TableStore

TABLE: Final = "reconciler_checkpoints"

_CREATE: Final = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "pipeline_id TEXT NOT NULL, route TEXT NOT NULL, topic TEXT NOT NULL, "
    "partition_no INTEGER NOT NULL, next_offset BIGINT NOT NULL, "
    "PRIMARY KEY (pipeline_id, route, topic, partition_no))"
)

HEADS: Final = "reconciler_checkpoint_heads"

_CREATE_HEADS: Final = (
    f"CREATE TABLE IF NOT EXISTS {HEADS} ("
    "pipeline_id TEXT PRIMARY KEY, config_id TEXT NOT NULL, config_version INTEGER NOT NULL, "
    "sequence_number BIGINT NOT NULL)"
)

Offsets = Mapping[TopicPartition, int]


@dataclass(frozen=True)
class Head:
    """What a checkpoint was taken at: the config's id and `config_version`, and the
    highest `/checkpoint` sequence number it answers (0: none)."""

    config_id: UUID
    config_version: int
    sequence_number: int = 0


class Checkpoints(TableStore):
    """Owns one connection to `url` (an event-store URL)."""

    TABLES = (_CREATE, _CREATE_HEADS)

    def record(
        self, pipeline_id: UUID, routes: Mapping[str, Offsets], head: Head | None = None
    ) -> None:
        """The pipeline's new checkpoint: per route, the next offset of each partition, and
        what it was taken at (`None`: unknown)."""
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
            cursor.execute(f"DELETE FROM {HEADS} WHERE pipeline_id = ?", (str(pipeline_id),))
            if head is not None:
                cursor.execute(
                    f"INSERT INTO {HEADS} (pipeline_id, config_id, config_version, "
                    "sequence_number) VALUES (?, ?, ?, ?)",
                    (
                        str(pipeline_id),
                        str(head.config_id),
                        head.config_version,
                        head.sequence_number,
                    ),
                )

    def forget(self, pipeline_id: UUID) -> None:
        """Delete the pipeline's checkpoint, offsets and head (the pipeline is gone)."""
        with self.db.transaction() as cursor:
            for table in (TABLE, HEADS):
                cursor.execute(f"DELETE FROM {table} WHERE pipeline_id = ?", (str(pipeline_id),))

    def of(self, pipeline_id: UUID) -> dict[str, dict[TopicPartition, int]]:
        """The pipeline's checkpoint, per route (empty: none yet)."""
        found: dict[str, dict[TopicPartition, int]] = {}
        for route, topic, partition, offset in self.db.query(
            f"SELECT route, topic, partition_no, next_offset FROM {TABLE} WHERE pipeline_id = ?",
            (str(pipeline_id),),
        ):
            found.setdefault(route, {})[TopicPartition(topic, int(partition))] = int(offset)
        return found

    def head(self, pipeline_id: UUID) -> Head | None:
        """What the pipeline's checkpoint was taken at (`None`: no checkpoint, or one from
        before heads were recorded)."""
        rows = self.db.query(
            f"SELECT config_id, config_version, sequence_number FROM {HEADS} WHERE pipeline_id = ?",
            (str(pipeline_id),),
        )
        if not rows:
            return None
        config_id, config_version, sequence_number = rows[0]
        return Head(UUID(str(config_id)), int(config_version), int(sequence_number))


__all__ = ["HEADS", "TABLE", "Checkpoints", "Head", "Offsets"]
