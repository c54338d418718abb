"""NameIndex: which pipeline currently holds a name (a `domain.claims.KeyClaim`).

Its id derives from the name, so the name is the lookup key while each Pipeline keeps
its own UUIDv7: deleting a pipeline and creating one with the same name gives a new
pipeline with a fresh history. A rename claims the new name's index and releases the
old one (the caller saves both with the pipeline, in one transaction).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain import pipeline_errors as err
from domain.base import Aggregate, AggregateSnapshot, SnapshotState
from domain.claims import KeyClaim
from domain.errors import DomainError

# Fixed forever: changing it would orphan every stored index.
NAME_INDEX_NAMESPACE = UUID("5b0e6c1e-2f0a-4d4e-9a57-6a1f3c9d7e21")


@functools.lru_cache(maxsize=65536)
def name_index_id(name: str) -> UUID:
    # Looked up for every command that names a pipeline; SHA-1 each time is measurable.
    return uuid5(NAME_INDEX_NAMESPACE, name)


class NameIndexState(SnapshotState):
    name: str
    pipeline_id: UUID | None


class NameIndex(KeyClaim, Aggregate):
    class Snapshot(AggregateSnapshot):
        state: NameIndexState

    @staticmethod
    def create_id(name: str, **_: Any) -> UUID:
        return name_index_id(name)

    @event("Claimed")
    def __init__(self, name: str, pipeline_id: UUID, at: datetime) -> None:
        self.name = name
        self.pipeline_id: UUID | None = pipeline_id

    @property
    def holder(self) -> UUID | None:
        return self.pipeline_id

    def _taken(self, holder: UUID) -> DomainError:
        return err.duplicate_name()

    def _held_by_another(self, given: UUID, holder: UUID) -> DomainError:
        return err.name_held_by_another(self.name, given, holder)

    @event("Reclaimed")
    def _claimed(self, pipeline_id: UUID, at: datetime) -> None:
        self.pipeline_id = pipeline_id

    @event("Released")
    def _released(self, pipeline_id: UUID, at: datetime) -> None:
        self.pipeline_id = None
