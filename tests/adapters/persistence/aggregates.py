"""Small aggregates for the persistence tests (the real ones live in domain/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.domain import event

from domain.base import Aggregate, AggregateSnapshot, SnapshotState
from domain.errors import DomainError


class CounterState(SnapshotState):
    name: str
    total: int
    last_at: datetime | None


class Counter(Aggregate):
    class Snapshot(AggregateSnapshot):
        state: CounterState

    @event("Created")
    def __init__(self, name: str) -> None:
        self.name = name
        self.total = 0
        self.last_at: datetime | None = None

    def add(self, amount: int, at: datetime) -> None:
        if amount <= 0:
            raise DomainError("NonPositiveAmount", "amount must be positive", {"amount": amount})
        self._added(amount=amount, at=at)

    @event("Added")
    def _added(self, amount: int, at: datetime) -> None:
        self.total += amount
        self.last_at = at


class Note(Aggregate):
    """Its `Titled` event gained a `language` field in version 2."""

    @event("Created")
    def __init__(self) -> None:
        self.title = ""
        self.language = ""

    def retitle(self, title: str, language: str) -> None:
        self.trigger_event(self.Titled, title=title, language=language)

    class Titled(Aggregate.Event):
        class_version: ClassVar[int] = 2
        title: str
        language: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["language"] = "en"

        def apply(self, aggregate: Any) -> None:
            aggregate.title = self.title
            aggregate.language = self.language

    class TitledV1(Aggregate.Event):
        """What `Titled` looked like when version 1 events were written."""

        title: str
