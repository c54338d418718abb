"""What each route of a pipeline's current deployment has done, as the reconciler last
wrote it down: the counts behind Feldera's `GET /v0/pipelines/{name}/stats`
(services/entrypoints/http/pipeline_stats.py), in the event store's database.

The route workers run in the reconciler's process and count in memory
(`PipelineWorkerStats`); the API answers from another process, so the reconciler writes
the counts of every deployment it runs at the end of each sweep when they changed (about
once a second while records flow, nothing while none do). A row is therefore up to one
sweep behind the workers. Counts belong to one deployment and start from zero with each
(as Feldera's belong to one pipeline process); a pipeline's rows are replaced as a whole,
and deleted with its checkpoint (storage cleared, pipeline deleted). Synchronous: call it
off the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Final
from uuid import UUID

import orjson

from projections.db import TableStore

TABLE: Final = "reconciler_route_stats"

_CREATE: Final = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "pipeline_id TEXT NOT NULL, route TEXT NOT NULL, deployment_id TEXT NOT NULL, "
    "doc TEXT NOT NULL, PRIMARY KEY (pipeline_id, route))"
)


@dataclass(frozen=True)
class RouteCounts:
    """One route of a deployment: where it reads and writes, and what it has done."""

    route: str
    inbound: str
    outbound: list[str] = field(default_factory=list)
    consumed: int = 0  # records handled and committed
    consumed_bytes: int = 0
    produced: int = 0  # records published, to each outbound topic
    produced_bytes: int = 0  # bytes published, to each outbound topic
    batches: int = 0
    retries: int = 0  # failed batches rewound, failed fetches and starts
    consuming: bool = False
    last_error: str | None = None


class RouteStats(TableStore):
    """Owns one connection to `url` (an event-store URL)."""

    TABLES = (_CREATE,)

    def record(self, pipeline_id: UUID, deployment_id: UUID, routes: Sequence[RouteCounts]) -> None:
        """The deployment's routes, replacing whatever the pipeline had."""
        with self.db.transaction() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE pipeline_id = ?", (str(pipeline_id),))
            if routes:
                cursor.executemany(
                    f"INSERT INTO {TABLE} (pipeline_id, route, deployment_id, doc) "
                    "VALUES (?, ?, ?, ?)",
                    [
                        (
                            str(pipeline_id),
                            counts.route,
                            str(deployment_id),
                            orjson.dumps(asdict(counts)).decode(),
                        )
                        for counts in routes
                    ],
                )

    def of(self, pipeline_id: UUID, deployment_id: UUID) -> list[RouteCounts]:
        """The routes of that deployment of the pipeline, by route ([]: none written)."""
        rows = self.db.query(
            f"SELECT doc FROM {TABLE} WHERE pipeline_id = ? AND deployment_id = ? ORDER BY route",
            (str(pipeline_id), str(deployment_id)),
        )
        return [RouteCounts(**orjson.loads(doc)) for (doc,) in rows]

    def forget(self, pipeline_id: UUID) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE pipeline_id = ?", (str(pipeline_id),))


__all__ = ["TABLE", "RouteCounts", "RouteStats"]
