"""Published domain events: the envelope projections and other services read.

The outbox relay turns each stored domain event into one LifecycleEvent on the events
topic, keyed by aggregate id. Consumers see only this envelope, never domain objects;
`(aggregate_id, version)` identifies an event, so a consumer skips one it has applied.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def event_id(aggregate_id: str, version: int) -> str:
    """An event's id (CloudEvents `ce_id`, and `CommandAccepted.event_ids`).

    Derived, not random, so re-publishing the same stored event gives the same id.
    """
    return f"{aggregate_id}:{version}"


class LifecycleEvent(BaseModel):
    """One domain event. `event_type` is the event's class name (e.g. `StartRequested`),
    `aggregate_type` the aggregate's (`Pipeline`, `Config`, `Execution`, ...), `version`
    its position in that aggregate's history (1 = creation) and `data` its fields."""

    # A reader ignores fields it does not know: the service may add optional ones in a
    # minor release without breaking consumers on an older pipeline-contracts (README).
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: str = Field(min_length=1)
    aggregate_id: str = Field(min_length=1)
    aggregate_type: str = Field(min_length=1)
    version: int = Field(ge=1)
    time: datetime
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return event_id(self.aggregate_id, self.version)

    def key(self) -> str:
        return self.aggregate_id
