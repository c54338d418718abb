"""What every read model module shares: the row type and the apply contract.

A row is a JSON-ready dict (timestamps as ISO text). Each read model module exposes
`apply(event, row) -> row`, pure: the current row (None before the aggregate's first
event) and one event give the next row. The projector and the rebuild call it; neither
knows any event's fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from contracts.events import LifecycleEvent

Row = dict[str, Any]
Data = Mapping[str, Any]
# (current row, event data) -> next row; the table of one aggregate type's events.
Step = Callable[[Row, Data], Row]

# Row fields the store keeps for itself (deleted rows are never returned).
_INTERNAL: Final = ("deleted",)


def load(doc: str | bytes) -> Row:
    """A row from its stored JSON."""
    row: Row = orjson.loads(doc)
    return row


def dump(row: Row) -> str:
    return orjson.dumps(row).decode()


def public(row: Row) -> Row:
    """The row as readers get it: without the fields the store keeps for itself."""
    for field in _INTERNAL:
        row.pop(field, None)
    return row


class EventNotApplied(ValueError):
    """An event a read model cannot apply (`event` is that event)."""

    def __init__(self, event: LifecycleEvent, why: str) -> None:
        self.event = event
        super().__init__(
            f"{event.aggregate_type}.{event.event_type} v{event.version} for "
            f"{event.aggregate_id}: {why}"
        )


class UnknownEvent(EventNotApplied):
    """An event type the read model has no step for (a newer writer, or drift)."""


class MissingRow(EventNotApplied):
    """A non-creation event for an aggregate the read model has no row for."""


def apply_with(
    create: Callable[[LifecycleEvent], Row],
    steps: Mapping[str, Step],
    event: LifecycleEvent,
    row: Row | None,
) -> Row:
    """The shared shape of `apply`: `Created` makes the row, every other event steps it."""
    if event.event_type == "Created":
        return create(event)
    step = steps.get(event.event_type)
    if step is None:
        raise UnknownEvent(event, "no read-model step for this event")
    if row is None:
        raise MissingRow(event, "no row (its creation was not applied)")
    return step(dict(row), event.data)
