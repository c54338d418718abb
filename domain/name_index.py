"""NameIndex: which pipeline currently holds a name.

Its id derives from the name, so the name is the lookup key while each Pipeline keeps
its own UUIDv7: deleting a pipeline and creating one with the same name gives a new
pipeline with a fresh history. A rename claims the new name's index and releases the
old one (the caller saves both with the pipeline, in one transaction).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain import pipeline_errors as err
from domain.base import Aggregate, AggregateSnapshot, SnapshotState

# Fixed forever: changing it would orphan every stored index.
NAME_INDEX_NAMESPACE = UUID("5b0e6c1e-2f0a-4d4e-9a57-6a1f3c9d7e21")


def name_index_id(name: str) -> UUID:
    return uuid5(NAME_INDEX_NAMESPACE, name)


class NameIndexState(SnapshotState):
    name: str
    pipeline_id: UUID | None


class NameIndex(Aggregate):
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
    def is_held(self) -> bool:
        return self.pipeline_id is not None

    def claim(self, pipeline_id: UUID, *, at: datetime) -> None:
        """Point the name at `pipeline_id`; a name another live pipeline holds is taken."""
        if self.pipeline_id == pipeline_id:
            return
        if self.pipeline_id is not None:
            raise err.duplicate_name()
        self._claimed(pipeline_id=pipeline_id, at=at)

    def release(self, pipeline_id: UUID, *, at: datetime) -> None:
        """Free the name (delete, or the old name of a rename); only its holder may."""
        if self.pipeline_id is None:
            return
        if self.pipeline_id != pipeline_id:
            raise err.name_held_by_another(self.name, pipeline_id, self.pipeline_id)
        self._released(pipeline_id=pipeline_id, at=at)

    @event("Reclaimed")
    def _claimed(self, pipeline_id: UUID, at: datetime) -> None:
        self.pipeline_id = pipeline_id

    @event("Released")
    def _released(self, pipeline_id: UUID, at: datetime) -> None:
        self.pipeline_id = None
