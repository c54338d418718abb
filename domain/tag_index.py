"""TagIndex: which execution holds a tag (seed 004: "Tag for the new execution (unique)").

Its id derives from the tag, so uniqueness is enforced by the event store itself: two
`RunConfig` commands racing for one tag both try to create the same aggregate and the
second save conflicts. The caller saves the index together with the new Execution, in
one transaction. A tag is released only by its holder (e.g. when that execution is
deleted); the released tag may then be claimed by another execution.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.base import Aggregate, AggregateSnapshot, SnapshotState
from domain.errors import DomainError

# Fixed forever: changing it would orphan every stored index.
TAG_INDEX_NAMESPACE = UUID("0c7d3f5e-8a41-4b8e-b1f2-4e6a9d2c5b17")


def tag_index_id(tag: str) -> UUID:
    return uuid5(TAG_INDEX_NAMESPACE, tag)


def duplicate_tag(tag: str, holder: UUID) -> DomainError:
    return DomainError(
        "DuplicateTag",
        f"Tag '{tag}' is already used by execution {holder}",
        {"tag": tag, "execution_id": str(holder)},
        409,
    )


def tag_held_by_another(tag: str, given: UUID, holder: UUID | None) -> DomainError:
    return DomainError(
        "TagHeldByAnotherExecution",
        f"Tag '{tag}' is not held by execution {given}",
        {"tag": tag, "execution_id": str(given), "holder": str(holder) if holder else None},
        409,
    )


class TagIndexState(SnapshotState):
    tag: str
    execution_id: UUID | None


class TagIndex(Aggregate):
    class Snapshot(AggregateSnapshot):
        state: TagIndexState

    @staticmethod
    def create_id(tag: str, **_: Any) -> UUID:
        return tag_index_id(tag)

    @event("Claimed")
    def __init__(self, tag: str, execution_id: UUID, at: datetime) -> None:
        self.tag = tag
        self.execution_id: UUID | None = execution_id

    @property
    def is_held(self) -> bool:
        return self.execution_id is not None

    def claim(self, execution_id: UUID, *, at: datetime) -> None:
        """Point the tag at `execution_id`; a tag another execution holds is refused."""
        if self.execution_id == execution_id:
            return
        if self.execution_id is not None:
            raise duplicate_tag(self.tag, self.execution_id)
        self._claimed(execution_id=execution_id, at=at)

    def release(self, execution_id: UUID, *, at: datetime) -> None:
        """Free the tag; only its holder may (releasing a free tag changes nothing)."""
        if self.execution_id is None:
            return
        if self.execution_id != execution_id:
            raise tag_held_by_another(self.tag, execution_id, self.execution_id)
        self._released(execution_id=execution_id, at=at)

    @event("Reclaimed")
    def _claimed(self, execution_id: UUID, at: datetime) -> None:
        self.execution_id = execution_id

    @event("Released")
    def _released(self, execution_id: UUID, at: datetime) -> None:
        self.execution_id = None
