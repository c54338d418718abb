"""The aggregates one batch of commands touches.

Commands on one aggregate run in order on one in-memory instance, so a later command of
the batch sees the effects of an earlier one before anything is saved. A command that
fails is rolled back to the mark taken before it: its pending events are discarded and
every aggregate it touched is rebuilt from what it was before, so the batch's save never
carries half of a rejected command.

Loads skip the library's defensive deep copy of cached aggregates (it cost half of a
batch's time): the batch mutates the cached instances in place, so whoever owns the
batch must drop the cache when the batch is not saved (services.service_layer.decider does), and a
rollback rebuilds from the store at the stored version, never from the cache.

A mark only records the aggregates a command touches (as it touches them), so marking,
rolling back and listing a command's events cost what that command touched, not what
the whole batch has touched.
"""

from __future__ import annotations

from typing import TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.base import Aggregate
from services.adapters.eventstore import EventStore

A = TypeVar("A", bound=Aggregate)
Mark = dict[UUID, int]


class UnitOfWork:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._seen: dict[UUID, Aggregate | None] = {}
        self._stored: dict[UUID, int] = {}
        self._mark: Mark = {}

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate as this batch has left it, or None if it does not exist."""
        if aggregate_id not in self._seen:
            self._seen[aggregate_id] = self._load(aggregate_id)
        found = self._seen[aggregate_id]
        if found is None or not isinstance(found, cls):
            return None
        self._touch(found)
        return found

    def get_at(self, cls: type[A], aggregate_id: UUID, version: int) -> A | None:
        """The aggregate as it was at `version` (None if it never had it); an earlier
        version is a read-only copy, never saved."""
        latest = self.get(cls, aggregate_id)
        if latest is None or not 1 <= version <= latest.version:
            return None
        if version == latest.version:
            return latest
        found = cast(Aggregate, self._store.repository.get(aggregate_id, version=version))
        return found if isinstance(found, cls) else None

    def peek(self, aggregate_id: UUID) -> Aggregate | None:
        """An aggregate this batch has already loaded or added (no store access)."""
        return self._seen.get(aggregate_id)

    def add(self, aggregate: Aggregate) -> None:
        """A new aggregate, saved with the batch."""
        self._seen[aggregate.id] = aggregate
        self._mark.setdefault(aggregate.id, 0)

    def aggregates(self) -> list[Aggregate]:
        """The aggregates with events to save (the library's `save` checks every object it
        is given against two runtime protocols, which costs more than a command's guard)."""
        return [a for a in self._seen.values() if a is not None and a.pending_events]

    def mark(self) -> Mark:
        """Start a command: the returned mark fills in as the command touches aggregates."""
        self._mark = {}
        return self._mark

    def new_events_since(self, mark: Mark) -> list[tuple[UUID, int]]:
        """(aggregate id, version) of every event raised since `mark`."""
        raised = []
        for aggregate_id, kept in mark.items():
            aggregate = self._seen.get(aggregate_id)
            if aggregate is None:
                continue
            for event in aggregate.pending_events[kept:]:
                raised.append((aggregate_id, event.originator_version))
        return raised

    def stamp(self, mark: Mark, sent_by: str) -> None:
        """Record on every event raised since `mark` who sent the command that raised it.
        Events are immutable: each pending one is replaced by a copy carrying `sent_by`
        (applying it again changes nothing, the aggregates never read it)."""
        for aggregate_id, kept in mark.items():
            aggregate = self._seen.get(aggregate_id)
            if aggregate is None:
                continue
            pending = aggregate.pending_events
            for index in range(kept, len(pending)):
                raised = cast(Aggregate.Event, pending[index])
                pending[index] = raised.model_copy(update={"sent_by": sent_by})

    def rollback_to(self, mark: Mark) -> None:
        for aggregate_id, kept in mark.items():
            aggregate = self._seen.get(aggregate_id)
            if aggregate is None:
                continue
            pending = aggregate.pending_events
            if len(pending) == kept:
                continue
            base = self._load_stored(aggregate_id)
            for event in pending[:kept]:
                base = cast(Aggregate | None, event.mutate(base))
            if base is None:
                # Created by the failed command: it never existed.
                del self._seen[aggregate_id]
                continue
            base._pending_events = list(pending[:kept])
            self._seen[aggregate_id] = base

    def _touch(self, aggregate: Aggregate) -> None:
        if aggregate.id not in self._mark:
            self._mark[aggregate.id] = len(aggregate.pending_events)

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        repository = self._store.repository
        try:
            aggregate = cast(Aggregate, repository.get(aggregate_id, deepcopy_from_cache=False))
        except AggregateNotFoundError:
            return None
        self._stored[aggregate_id] = aggregate.version - len(aggregate.pending_events)
        return aggregate

    def _load_stored(self, aggregate_id: UUID) -> Aggregate | None:
        """The aggregate as stored when this batch first loaded it (None if it was new)."""
        version = self._stored.get(aggregate_id)
        if version is None:
            return None
        return cast(Aggregate, self._store.repository.get(aggregate_id, version=version))
