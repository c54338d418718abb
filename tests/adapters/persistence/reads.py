"""Watch what an event store reads back: a store reloaded from a snapshot maps the
snapshot and the events after it, not the whole history."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent

from services.adapters.eventstore import EventStore


def count_reads(store: EventStore) -> list[StoredEvent]:
    """Record every stored event the store maps back to a domain event."""
    reads: list[StoredEvent] = []
    to_domain_event = store.mapper.to_domain_event

    def counting(stored: StoredEvent) -> DomainEventProtocol[UUID]:
        reads.append(stored)
        return to_domain_event(stored)

    store.mapper.to_domain_event = counting  # type: ignore[method-assign, assignment]
    return reads
