"""Pydantic-based aggregate base: events are immutable pydantic models, so the
event store maps them with pydantic and orjson instead of library transcodings."""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    CanSnapshotAggregate,
    datetime_now_with_tzinfo,
)
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from uuid6 import uuid7

_datetime = TypeAdapter(datetime)


class Immutable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DomainEvent(Immutable):
    originator_id: UUID
    originator_version: int
    timestamp: datetime = Field(default_factory=datetime_now_with_tzinfo)
    # Who sent the command that raised the event (the decider stamps it, never the
    # aggregate: services.service_layer.unit_of_work.stamp). Left out when unknown, so
    # events stored before it existed, and events raised outside a command, stay as
    # they were.
    sent_by: str | None = Field(default=None, exclude_if=lambda value: value is None)


class SnapshotState(Immutable):
    """An aggregate's `__dict__`; subclasses name the fields so pydantic rebuilds them."""

    model_config = ConfigDict(extra="allow")

    def __init__(self, **kwargs: Any) -> None:
        for key in ("_created_on", "_modified_on"):
            kwargs[key] = _datetime.validate_python(kwargs[key])
        super().__init__(**kwargs)


class AggregateSnapshot(DomainEvent, CanSnapshotAggregate[UUID]):
    topic: str
    state: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        state_type = typing.get_type_hints(cls)["state"]
        if not (isinstance(state_type, type) and issubclass(state_type, SnapshotState)):
            raise TypeError(f"{cls.__qualname__}.state must be annotated with a SnapshotState")


class Aggregate(BaseAggregate[UUID]):
    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return uuid7()

    class Event(DomainEvent, CanMutateAggregate[UUID]):
        pass

    class Created(Event, CanInitAggregate[UUID]):
        originator_topic: str
