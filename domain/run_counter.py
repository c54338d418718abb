"""RunCounter: hands out run numbers 1, 2, 3 ... per owner (a pipeline or a config).

Seed 003's `run_number` is read-only and per pipeline. One small aggregate per owner,
with an id derived from the owner id, makes the numbering a plain optimistic-concurrency
question: two runs created at once for one owner both load version N and the second save
conflicts, so no number is ever handed out twice. The caller saves the counter together
with the new Execution, in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.base import Aggregate, AggregateSnapshot, SnapshotState

# Fixed forever: changing it would restart every owner's numbering.
RUN_COUNTER_NAMESPACE = UUID("9e2b71c4-3d5a-4f08-8c6e-1a7b0d4f2e93")


def run_counter_id(owner_id: UUID) -> UUID:
    return uuid5(RUN_COUNTER_NAMESPACE, f"runs:{owner_id}")


class RunCounterState(SnapshotState):
    owner_id: UUID
    last_run_number: int


class RunCounter(Aggregate):
    class Snapshot(AggregateSnapshot):
        state: RunCounterState

    @staticmethod
    def create_id(owner_id: UUID, **_: Any) -> UUID:
        return run_counter_id(owner_id)

    @event("Created")
    def __init__(self, owner_id: UUID, at: datetime) -> None:
        self.owner_id = owner_id
        self.last_run_number = 0

    def next_run_number(self, *, at: datetime) -> int:
        """Take the owner's next run number (the first is 1)."""
        number = self.last_run_number + 1
        self._issued(run_number=number, at=at)
        return number

    @event("Issued")
    def _issued(self, run_number: int, at: datetime) -> None:
        self.last_run_number = run_number
