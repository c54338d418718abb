"""The OpenLineage emitter: a follower of the event store's notification log, beside the
relay in the relay role, that turns every stored status change of a run into its
RunEvents (run_events.py) and hands them to the sink.

Like the replay publisher it reads only the events it needs (Execution.StatusChanged)
after a position of its own (`openlineage` in `relay_positions`), and moves that position
past a change only once the sink acknowledged all of its events: after a crash or a sink
outage the events from the position on are sent again, and since they are built from the
stored events alone (run_history.py) a re-sent event is the first one again — same runId,
same eventTime, same body. An HTTP sink has no idempotency key: a consumer sees a repeat
as the same event (Marquez keeps the run's state as the last one for each type).

A first start (or a deployment that turns lineage on later) begins at position 0: the
whole history is emitted once, in order.

It is woken by the relay after every pass that published something, with a slow poll
behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Final
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from openlineage.client.event_v2 import RunEvent

from domain.execution import Execution
from services.adapters.command_records import PostgresCommandRecorder, SQLiteCommandRecorder
from services.adapters.eventstore import EventStore
from services.runtimes.openlineage.run_events import run_events
from services.runtimes.openlineage.run_history import RunHistory
from services.runtimes.openlineage.sinks import Sink, dataset_namespace, make_sink
from services.runtimes.relay import EnsureTopics, Sender, to_lifecycle_event
from services.runtimes.sweep import Next, Sweep
from services.settings import Settings

log = logging.getLogger(__name__)

EMITTER_NAME: Final = "openlineage"
# The class the @event decorator makes for `_status_changed` (mypy cannot see it).
_STATUS_TOPIC: Final = f"{get_topic(Execution)}.StatusChanged"
_SCAN: Final = 200  # status changes read per round
_SAFETY_POLL_S: Final = 1.0  # the relay wakes it; this is the net behind


class LineageEmitter:
    def __init__(
        self, store: EventStore, history: RunHistory, sink: Sink, *, name: str = EMITTER_NAME
    ) -> None:
        recorder = store.recorder
        if not isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder):
            raise TypeError("The lineage emitter keeps its position beside the events")
        self._recorder = recorder
        self._history = history
        self._sink = sink
        self._name = name
        self.position = recorder.get_position(name)
        self.emitted = 0  # events the sink acknowledged, for tests and operators
        self.sweep = Sweep("Lineage emitter", self._round, _SAFETY_POLL_S, first_backoff_s=0.2)

    async def run(self, stop: asyncio.Event) -> None:
        await self.sweep.run(stop)

    def wake(self) -> None:
        self.sweep.wake()

    async def _round(self) -> Next:
        found = await asyncio.to_thread(self.pending)
        reached = self.position
        try:
            for notification in found:
                events = await asyncio.to_thread(self.events_of, notification)
                for event in events:
                    await self._sink.emit(event)
                    self.emitted += 1
                reached = notification.id
                if events:  # saved at once: a crash from here on re-sends none of them
                    await self._save(reached)
        except Exception:
            log.exception("Lineage emitter failed; retrying from position %s", reached)
            await self._save(reached)
            return Next.BACK_OFF
        await self._save(reached)
        return Next.NOW if len(found) >= _SCAN else Next.WAIT

    def events_of(self, notification: Notification) -> list[RunEvent]:
        """The RunEvents one stored status change is (none for a run not ours)."""
        event = to_lifecycle_event(notification)
        if event is None:
            return []
        data = event.data
        at = datetime.fromisoformat(data["at"])
        run_id = UUID(event.aggregate_id)
        change = self._history.change(run_id, event.version, data["status"], at, data.get("reason"))
        return [] if change is None else run_events(*change)

    async def _save(self, position: int) -> None:
        if position != self.position:
            await asyncio.to_thread(self._recorder.set_position, self._name, position)
            self.position = position

    def pending(self) -> Sequence[Notification]:
        """The next status changes after the position (up to one round's worth)."""
        return self._recorder.select_notifications(
            start=self.position, limit=_SCAN, topics=[_STATUS_TOPIC], inclusive_of_start=False
        )


def lineage_emitter(
    settings: Settings,
    store: EventStore,
    sender: Sender,
    ensure_topics: EnsureTopics | None,
    stack: contextlib.AsyncExitStack,
) -> LineageEmitter | None:
    """The relay role's emitter, as `settings` configure it (None: lineage is off); its
    sink is closed with `stack`."""
    sink = make_sink(settings, sender, ensure_topics)
    if sink is None:
        return None
    stack.push_async_callback(asyncio.to_thread, sink.close)
    history = RunHistory(store, settings.lineage_namespace, dataset_namespace(settings))
    return LineageEmitter(store, history, sink)


__all__ = ["EMITTER_NAME", "LineageEmitter", "lineage_emitter"]
