"""What the outbox relay publishes besides the events themselves: messages derived from one
stored event alone (pure: no I/O, no clock, no randomness).

Deriving them from the event, instead of storing them beside it, keeps the event store
the single record: an execution and its init message are one row, so a crash can never
leave one without the other, and the relay's position passes that row only when the
event and every message derived from it were acknowledged (services.runtimes.relay). The same
event always gives the same messages, byte for byte (ids come from the execution, times
from the event), so a re-sent message is the same message.

`DERIVATIONS` maps (aggregate type, event type) to its messages. Today there is one: an
Execution's `Created` with `init_topic` set and `skip_init_message` false gives the
execution's init message (contracts.route_messages): from route `init`, stage 0, id
`init_message_id(execution id)`, correlation id the execution id, the merged init payload
as its value, to `init_topic`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final
from uuid import UUID

from contracts.envelope import KafkaRecord
from contracts.events import LifecycleEvent
from contracts.route_messages import (
    INIT_ROUTE,
    RouteMessage,
    encode_route_message,
    init_message_id,
)

Outbound = tuple[str, KafkaRecord]
"""(topic, record) to publish."""


def _init_message(event: LifecycleEvent) -> list[Outbound]:
    data = event.data
    topic = data.get("init_topic")  # absent from creation events stored before it existed
    if not topic or data.get("skip_init_message"):
        return []
    execution_id = UUID(event.aggregate_id)
    message = RouteMessage(
        id=init_message_id(execution_id),
        execution_id=execution_id,
        route=INIT_ROUTE,
        payload=dict(data.get("init_payload") or {}),
        stage=0,
        correlation_id=str(execution_id),
        time=event.time,
    )
    return [(str(topic), encode_route_message(message))]


DERIVATIONS: Final[dict[tuple[str, str], Callable[[LifecycleEvent], list[Outbound]]]] = {
    ("Execution", "Created"): _init_message,
}


def outbound_messages(event: LifecycleEvent) -> list[Outbound]:
    """The messages to publish with `event` (usually none)."""
    derive = DERIVATIONS.get((event.aggregate_type, event.event_type))
    return [] if derive is None else derive(event)
