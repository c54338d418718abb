"""The relay's replay publisher: a replay child's messages, published from its manifest in
bounded batches (docs/replay.md).

It reads the event store's notification log for Execution creation events (its own
position, `replay` in `relay_positions`) and, for each one that carries a replay manifest
(services.service_layer.replay_plan), in the order they were stored:

1. expects every message the replay will publish in the ledger, by the target route, in
   transactions of `batch_max` rows, before it publishes any: the child cannot look
   drained after its first batch while later ones are still to come;
2. publishes the messages `batch_max` at a time, awaiting each batch's acknowledgements
   and then saving how many are out (`replay_progress`), so a crash re-sends at most the
   one batch that was under way — with the same derived ids, which the route's ledger
   counts once;
3. stops early, and marks the replay done, once the child is finished (cancelled, timed
   out): its messages would be skipped anyway.

Nothing here holds a lock for longer than one batch: a 100k-message replay is 200 short
transactions, never one huge insert. Replays are published one after another: a later
replay waits for an earlier one's last batch, lifecycle events never do (the relay
publishes them on its own).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from contracts.route_messages import encode_route_message
from domain.execution import Execution
from projections.db import TableStore
from services.adapters.command_records import PostgresCommandRecorder, SQLiteCommandRecorder
from services.adapters.eventstore import EventStore
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.relay import EnsureTopics, Sender, to_lifecycle_event
from services.runtimes.sweep import Next, Sweep
from services.service_layer import replay_plan as plan

log = logging.getLogger(__name__)

PUBLISHER_NAME: Final = "replay"
PROGRESS_TABLE: Final = "replay_progress"
_CREATED_TOPIC: Final = get_topic(Execution.Created)
_SCAN: Final = 100  # creation events read per round
# Replays are announced by a wake-up from the relay; this is the safety net.
_SAFETY_POLL_S: Final = 1.0


class ReplayProgress(TableStore):
    """Per replay child: whether its messages are expected in the ledger, how many are
    published, and whether it is done. Synchronous; owns one connection."""

    TABLES = (
        f"CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (execution_id TEXT NOT NULL PRIMARY KEY, "
        "expected INTEGER NOT NULL DEFAULT 0, published BIGINT NOT NULL DEFAULT 0, "
        "total BIGINT NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0)",
    )

    def get(self, execution_id: UUID) -> tuple[bool, int, bool]:
        """(expected, published, done); a replay not begun is (False, 0, False)."""
        rows = self.db.query(
            f"SELECT expected, published, done FROM {PROGRESS_TABLE} WHERE execution_id = ?",
            (str(execution_id),),
        )
        if not rows:
            return False, 0, False
        expected, published, done = rows[0]
        return bool(expected), int(published), bool(done)

    def save(
        self, execution_id: UUID, *, expected: bool, published: int, total: int, done: bool
    ) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(
                f"INSERT INTO {PROGRESS_TABLE} (execution_id, expected, published, total, done) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (execution_id) DO UPDATE SET "
                "expected = excluded.expected, published = excluded.published, "
                "total = excluded.total, done = excluded.done",
                (str(execution_id), int(expected), published, total, int(done)),
            )

    def all(self) -> dict[str, tuple[int, int, bool]]:
        """execution id -> (published, total, done), for tests and operators."""
        rows = self.db.query(f"SELECT execution_id, published, total, done FROM {PROGRESS_TABLE}")
        return {str(e): (int(p), int(t), bool(d)) for e, p, t, d in rows}


class ReplayPublisher:
    def __init__(
        self,
        store: EventStore,
        sender: Sender,
        messages: plan.StoredMessages,
        ledger: Ledger,
        progress: ReplayProgress,
        *,
        batch_max: int = 500,
        ensure_topics: EnsureTopics | None = None,
        reserved_topics: Iterable[str] = (),
    ) -> None:
        recorder = store.recorder
        if not isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder):
            raise TypeError("The replay publisher keeps its position beside the events")
        self._store = store
        self._recorder = recorder
        self._sender = sender
        self._messages = messages
        self._ledger = ledger
        self._progress = progress
        self._batch_max = batch_max
        self._ensure_topics = ensure_topics
        self._reserved = frozenset(reserved_topics)
        self.position = recorder.get_position(PUBLISHER_NAME)
        self.sweep = Sweep("Replay publisher", self._round, _SAFETY_POLL_S, first_backoff_s=0.2)

    async def run(self, stop: asyncio.Event) -> None:
        await self.sweep.run(stop)

    def wake(self) -> None:
        self.sweep.wake()

    async def _round(self) -> Next:
        try:
            found = await asyncio.to_thread(self._read)
            for notification in found:
                event = to_lifecycle_event(notification)
                manifest = None if event is None else event.data.get("replay")
                if event is not None and manifest:
                    await self.publish(UUID(event.aggregate_id), manifest, event.time)
                await asyncio.to_thread(
                    self._recorder.set_position, PUBLISHER_NAME, notification.id
                )
                self.position = notification.id
        except Exception:
            log.exception("Replay publisher failed; retrying from position %s", self.position)
            return Next.BACK_OFF
        return Next.NOW if len(found) >= _SCAN else Next.WAIT

    async def publish(self, child_id: UUID, manifest: dict[str, Any], at: datetime) -> None:
        """Publish the replay `child_id` from where its progress says it stopped."""
        expected, published, done = await asyncio.to_thread(self._progress.get, child_id)
        if done:
            return
        planned = await asyncio.to_thread(
            plan.messages, manifest, child_id, at, self._messages, self._ledger
        )
        total = len(planned)
        reserved = sorted({p.topic for p in planned} & self._reserved)
        if reserved:
            log.error("Not replaying %s to %s: the service's own topics", child_id, reserved)
            await self._save(child_id, expected, published, total, done=True)
            return
        if not expected:
            for start in range(0, total, self._batch_max):
                chunk = planned[start : start + self._batch_max]
                rows = [(child_id, p.route, p.message.id) for p in chunk]
                await asyncio.to_thread(self._ledger.expect_many, rows)
            expected = True
            await self._save(child_id, expected, published, total, done=False)
        if self._ensure_topics is not None and published < total:
            await self._ensure_topics(sorted({p.topic for p in planned[published:]}))
        while published < total:
            if await asyncio.to_thread(self._finished, child_id):
                log.info("Replay %s finished before its messages were all out", child_id)
                break
            batch = planned[published : published + self._batch_max]
            acks = []
            for item in batch:
                record = encode_route_message(item.message)
                acks.append(
                    await self._sender.send(
                        item.topic, value=record.value, key=record.key, headers=record.headers
                    )
                )
            await asyncio.gather(*acks)
            published += len(batch)
            await self._save(child_id, expected, published, total, done=False)
        await self._save(child_id, expected, published, total, done=True)

    async def _save(
        self, child_id: UUID, expected: bool, published: int, total: int, *, done: bool
    ) -> None:
        await asyncio.to_thread(
            self._progress.save,
            child_id,
            expected=expected,
            published=published,
            total=total,
            done=done,
        )

    def _finished(self, child_id: UUID) -> bool:
        try:
            child: object = self._store.repository.get(child_id)
        except AggregateNotFoundError:
            return True
        return isinstance(child, Execution) and (child.is_terminal or child.deleted)

    def _read(self) -> Sequence[Notification]:
        return self._recorder.select_notifications(
            start=self.position, limit=_SCAN, topics=[_CREATED_TOPIC], inclusive_of_start=False
        )


__all__ = ["PROGRESS_TABLE", "PUBLISHER_NAME", "ReplayProgress", "ReplayPublisher"]
