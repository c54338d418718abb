"""Which span decided each stored event, kept until the relay has published the event.

The trace hop from a decision to its events crosses the event store: the relay reads
notifications, not commands, and a stored event carries no trace context (the domain's
events stay free of it). So while tracing is on the command handler writes, for every
event a batch is about to save, the `traceparent` of the span of the command that raised
it — before the batch's own transaction, so a relay that sees the events sees the links.
A batch that then fails is decided again with new spans, whose links replace its own for
the same events; what a failed batch linked to events it never saved stays unread
(a few rows, only after failures). The relay reads the links of what it publishes, makes its
spans children of them, and deletes them once its position moved past.

One table in the event store's database, `trace_links`; one extra small write per batch,
only while tracing is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from projections.db import TableStore

TABLE: Final = "trace_links"
_CHUNK: Final = 500  # ids per IN (...) list


class TraceLinks(TableStore):
    """Synchronous; owns one connection (thread-safe by its lock)."""

    TABLES = (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (event_id TEXT NOT NULL PRIMARY KEY, "
        "traceparent TEXT NOT NULL)",
    )

    def save(self, links: Mapping[str, str]) -> None:
        """event id -> traceparent; the last link of an event wins (a retried batch's)."""
        if not links:
            return
        with self.db.transaction() as cursor:
            cursor.executemany(
                f"INSERT INTO {TABLE} (event_id, traceparent) VALUES (?, ?) "
                "ON CONFLICT (event_id) DO UPDATE SET traceparent = excluded.traceparent",
                list(links.items()),
            )

    def find(self, event_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(list(event_ids)):
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.query(
                f"SELECT event_id, traceparent FROM {TABLE} WHERE event_id IN ({marks})", chunk
            )
            found.update((str(event_id), str(parent)) for event_id, parent in rows)
        return found

    def forget(self, event_ids: Iterable[str]) -> None:
        chunks = _chunks(list(event_ids))
        if not chunks:
            return
        with self.db.transaction() as cursor:
            for chunk in chunks:
                marks = ", ".join("?" for _ in chunk)
                cursor.execute(f"DELETE FROM {TABLE} WHERE event_id IN ({marks})", chunk)


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


__all__ = ["TABLE", "TraceLinks"]
