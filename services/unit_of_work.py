"""The aggregates one batch of commands touches.

Commands on one aggregate run in order on one in-memory instance, so a later command of
the batch sees the effects of an earlier one before anything is saved. A command that
fails is rolled back to the mark taken before it: its pending events are discarded and
every aggregate it touched is rebuilt from what it was before, so the batch's save never
carries half of a rejected command.
"""

from __future__ import annotations

from typing import TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.base import Aggregate
from services.eventstore import EventStore

A = TypeVar("A", bound=Aggregate)
Mark = dict[UUID, int]


class UnitOfWork:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._seen: dict[UUID, Aggregate | None] = {}
        self._stored: set[UUID] = set()

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate as this batch has left it, or None if it does not exist."""
        if aggregate_id not in self._seen:
            self._seen[aggregate_id] = self._load(aggregate_id)
        found = self._seen[aggregate_id]
        return found if isinstance(found, cls) else None

    def add(self, aggregate: Aggregate) -> None:
        """A new aggregate, saved with the batch."""
        self._seen[aggregate.id] = aggregate

    def aggregates(self) -> list[Aggregate]:
        return [a for a in self._seen.values() if a is not None]

    def pending_count(self) -> int:
        return sum(len(a.pending_events) for a in self.aggregates())

    def mark(self) -> Mark:
        return {a.id: len(a.pending_events) for a in self.aggregates()}

    def new_events_since(self, mark: Mark) -> list[tuple[UUID, int]]:
        """(aggregate id, version) of every event raised since `mark`."""
        raised = []
        for aggregate in self.aggregates():
            for event in aggregate.pending_events[mark.get(aggregate.id, 0) :]:
                raised.append((aggregate.id, event.originator_version))
        return raised

    def rollback_to(self, mark: Mark) -> None:
        for aggregate_id, aggregate in list(self._seen.items()):
            if aggregate is None:
                continue
            kept = mark.get(aggregate_id, 0)
            pending = aggregate.pending_events
            if len(pending) == kept:
                continue
            base = self._load(aggregate_id) if aggregate_id in self._stored else None
            for event in pending[:kept]:
                base = cast(Aggregate | None, event.mutate(base))
            if base is None:
                # Created by the failed command: it never existed.
                del self._seen[aggregate_id]
                continue
            base._pending_events = list(pending[:kept])
            self._seen[aggregate_id] = base

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            aggregate = cast(Aggregate, self._store.repository.get(aggregate_id))
        except AggregateNotFoundError:
            return None
        self._stored.add(aggregate_id)
        return aggregate
