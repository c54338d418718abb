"""TagIndex: which execution holds a tag (seed 004: "Tag for the new execution (unique)"),
a `domain.claims.KeyClaim`: two `RunConfig` commands racing for one tag conflict in the
event store. A tag is released only by its holder (e.g. when that execution is
deleted); the released tag may then be claimed by another execution.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.base import Aggregate, AggregateSnapshot, SnapshotState
from domain.claims import KeyClaim
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


class TagIndex(KeyClaim, Aggregate):
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
    def holder(self) -> UUID | None:
        return self.execution_id

    def _taken(self, holder: UUID) -> DomainError:
        return duplicate_tag(self.tag, holder)

    def _held_by_another(self, given: UUID, holder: UUID) -> DomainError:
        return tag_held_by_another(self.tag, given, holder)

    @event("Reclaimed")
    def _claimed(self, execution_id: UUID, at: datetime) -> None:
        self.execution_id = execution_id

    @event("Released")
    def _released(self, execution_id: UUID, at: datetime) -> None:
        self.execution_id = None
