"""Messages to store, as route workers make them."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from contracts.route_messages import RouteMessage, init_message_id

EXECUTION = UUID("0190a000-0000-7000-8000-0000000000e1")
OTHER = UUID("0190a000-0000-7000-8000-0000000000e2")
T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def message(
    payload: dict[str, object], *, route: str = "init", stage: int = 0, execution: UUID = EXECUTION
) -> RouteMessage:
    """An init message of `execution` (route `init`), else one with a random id."""
    return RouteMessage(
        id=init_message_id(execution) if route == "init" else uuid4(),
        execution_id=execution,
        route=route,
        payload=payload,
        stage=stage,
        correlation_id="corr-1",
        time=T0,
    )


def again(stored: RouteMessage, payload: dict[str, object]) -> RouteMessage:
    """The same message id with another payload: a copy a reader must not see."""
    return RouteMessage(**{**stored.__dict__, "payload": payload})
