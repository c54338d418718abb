"""What a message store is: where each route's consumed and produced messages are kept, per
execution — the store replay reads ("storage is not a cache": nothing in it is recomputed).

Every implementation keeps these promises:

- `store` returns only once the batch is durable (a route handler commits its offsets and
  counts the batch in the ledger after it);
- `consumed` and `produced` return messages in the order they were stored: batches in
  stored order, a batch's messages in batch order;
- the first copy of a message id stored for an (execution, route, direction) wins: a batch
  stored again after a crash (a redelivery) changes nothing a reader sees;
- a route id that could not be a folder name is refused (`UnsafeRouteId`), by every store,
  so a config that works on one store works on the other;
- retention removes an execution's messages all at once, never some of them: `sweep`
  removes the executions whose newest stored message is older than the cutoff and leaves
  a marker, so `swept` can tell "removed by retention" from "never stored" (a replay
  answers `StoredMessagesExpired` for the first). Markers older than their own cutoff go
  in a later sweep (`forget_swept`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol
from uuid import UUID

from contracts.envelope import rfc3339
from contracts.route_messages import RouteMessage

Direction = Literal["in", "out"]
_SAFE_ROUTE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}\Z")


@dataclass(frozen=True)
class StoredMessage:
    """One message read back: the topic it was read from or written to, when its segment
    was stored (epoch ns), and its error if it was consumed and failed."""

    message: RouteMessage
    topic: str
    stored_at: int
    error: str | None = None


@dataclass(frozen=True)
class ToStore:
    """One message of a batch to store: consumed (`in`) or produced (`out`) by the route."""

    direction: Direction
    message: RouteMessage
    topic: str
    error: str | None = None


class UnsafeRouteId(ValueError):
    """A route id no store accepts: validation allows only safe ones (E011), and the files
    store makes folders of them, which must never escape its root."""

    def __init__(self, route: str) -> None:
        super().__init__(
            f"route id {route!r} cannot be a storage name: 1-200 characters of "
            "[A-Za-z0-9_.-], starting with a letter or digit"
        )
        self.route = route


def checked_route(route: str) -> str:
    """`route`, or `UnsafeRouteId`."""
    if not isinstance(route, str) or not _SAFE_ROUTE.match(route):
        raise UnsafeRouteId(route)
    return route


class StoreShortcuts:
    """`store_consumed` and `store_produced` in terms of `store`, for every store."""

    def store(self, route: str, items: Iterable[ToStore]) -> None:
        raise NotImplementedError

    def store_consumed(
        self, route: str, topic: str, messages: Iterable[RouteMessage], *, error: str | None = None
    ) -> None:
        self.store(route, (ToStore("in", m, topic, error) for m in messages))

    def store_produced(self, route: str, produced: Iterable[tuple[str, RouteMessage]]) -> None:
        """`produced`: (topic, message) pairs."""
        self.store(route, (ToStore("out", m, topic) for topic, m in produced))


class MessageStore(Protocol):
    """Synchronous: call it off the event loop. `close` releases what it holds."""

    def store(self, route: str, items: Iterable[ToStore]) -> None:
        """A batch of `route`, durable on return."""
        ...

    def store_consumed(
        self, route: str, topic: str, messages: Iterable[RouteMessage], *, error: str | None = None
    ) -> None: ...

    def store_produced(self, route: str, produced: Iterable[tuple[str, RouteMessage]]) -> None:
        """`produced`: (topic, message) pairs."""
        ...

    def consumed(self, execution_id: UUID, route: str) -> list[StoredMessage]:
        """What `route` consumed in the execution, in the order it was stored."""
        ...

    def produced(self, execution_id: UUID, route: str) -> list[StoredMessage]:
        """What `route` produced in the execution, in the order it was stored."""
        ...

    def routes(self, execution_id: UUID) -> list[str]:
        """The routes that stored anything for the execution, sorted."""
        ...

    def sweep(self, before_ns: int, limit: int, *, now_ns: int | None = None) -> list[UUID]:
        """Remove every message of up to `limit` executions whose newest stored message
        is older than `before_ns`, marking each as swept at `now_ns` (default: now);
        returns their ids."""
        ...

    def swept(self, execution_id: UUID) -> int | None:
        """When retention removed the execution's messages (epoch ns), or None."""
        ...

    def forget_swept(self, before_ns: int, limit: int) -> int:
        """Drop up to `limit` swept markers made before `before_ns`; returns how many."""
        ...

    def close(self) -> None: ...


def message_document(message: RouteMessage) -> dict[str, Any]:
    """A message's envelope and payload as JSON-ready values (`message_of` reads it)."""
    return {
        "id": str(message.id),
        "execution_id": str(message.execution_id),
        "route": message.route,
        "stage": message.stage,
        "correlation_id": message.correlation_id,
        "time": rfc3339(message.time),
        "payload": message.payload,
    }


def message_of(document: dict[str, Any]) -> RouteMessage:
    return RouteMessage(
        id=UUID(document["id"]),
        execution_id=UUID(document["execution_id"]),
        route=document["route"],
        payload=document["payload"],
        stage=int(document["stage"]),
        correlation_id=document.get("correlation_id"),
        time=datetime.fromisoformat(document["time"]),
    )


__all__ = [
    "Direction",
    "MessageStore",
    "StoreShortcuts",
    "StoredMessage",
    "ToStore",
    "UnsafeRouteId",
    "checked_route",
    "message_document",
    "message_of",
]
