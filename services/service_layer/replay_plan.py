"""What a replay publishes, computed the same way by the handler that decides it (its
count, its dry run) and by the relay's replay publisher (services.runtimes.replay_publisher).

A replay's manifest, recorded in its child's creation event (`Execution.replay`), names
messages without holding them (except a manual replay's given payloads, which exist
nowhere else):

    {"to_route": r, "to_topic": t,
     "from": {"execution_id": e, "route": r, "direction": "in" | "out"},  # or absent
     "only_failed": bool,
     "stored_until": ns,                       # the newest stored_at the decision saw
     "payloads": [...],                        # a manual replay's own messages
     "overrides": {...},                       # deep-merged into every payload
     "count": n}

Stored messages are never rewritten and a re-stored id keeps its first copy, so the
messages of `from` stored at or before `stored_until` are the same set whenever they are
read: the manifest is a reference, and the child's messages are a function of it. Each
published message enters the child as an init message does (`ce_route` `init`), so the
route that consumes it expects it itself; its id is derived from the child and the
source message (or a manual payload's index), so publishing it again after a crash is
the same message and the ledger counts it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from contracts.route_messages import INIT_ROUTE, RouteMessage
from domain.payload_merge import deep_merge

Direction = Literal["in", "out"]
_NAMESPACE: Final = uuid5(NAMESPACE_URL, "urn:pipeline-service:replay-message")


class Stored(Protocol):
    """One stored message as a message store reads it back."""

    @property
    def message(self) -> RouteMessage: ...
    @property
    def topic(self) -> str: ...
    @property
    def stored_at(self) -> int: ...
    @property
    def error(self) -> str | None: ...


class StoredMessages(Protocol):
    """The reading half of the message store (services.adapters.message_store)."""

    def consumed(self, execution_id: UUID, route: str) -> Sequence[Stored]: ...
    def produced(self, execution_id: UUID, route: str) -> Sequence[Stored]: ...
    def swept(self, execution_id: UUID) -> int | None:
        """When retention removed the execution's messages (epoch ns), or None."""
        ...


class Unfinished(Protocol):
    """The ledger's answer a lineage replay is built on (services.runtimes.orchestrator.ledger)."""

    def unfinished(self, execution_id: UUID) -> list[tuple[str, UUID]]: ...


class MissingMessage(LookupError):
    """A message the ledger expected is in no store: the replay cannot be built."""

    def __init__(self, route: str, message_id: UUID) -> None:
        super().__init__(f"message {message_id} for route {route!r} is not stored")
        self.route = route
        self.message_id = message_id


@dataclass(frozen=True)
class Source:
    """Where a replay's messages were stored: an execution's route, in or out."""

    execution_id: UUID
    route: str
    direction: Direction

    def read(self, store: StoredMessages) -> Sequence[Stored]:
        read = store.consumed if self.direction == "in" else store.produced
        return read(self.execution_id, self.route)

    def as_json(self) -> dict[str, str]:
        return {
            "execution_id": str(self.execution_id),
            "route": self.route,
            "direction": self.direction,
        }


def replay_message_id(child_id: UUID, source: str) -> UUID:
    """The id a replayed message has in the child: derived, so a re-send is the same."""
    return uuid5(_NAMESPACE, f"{child_id}/{source}")


def select(stored: Sequence[Stored], *, only_failed: bool, stored_until: int) -> list[Stored]:
    return [s for s in stored if s.stored_at <= stored_until and (not only_failed or s.error)]


def manifest(
    *,
    to_route: str,
    to_topic: str,
    source: Source | None,
    selected: Sequence[Stored] = (),
    payloads: Sequence[Mapping[str, Any]] | None = None,
    only_failed: bool = False,
) -> dict[str, Any]:
    """The manifest of a replay of `selected` (read from `source`) or of `payloads`."""
    document: dict[str, Any] = {"to_route": to_route, "to_topic": to_topic}
    if source is not None:
        document["from"] = source.as_json()
        document["only_failed"] = only_failed
        document["stored_until"] = max((s.stored_at for s in selected), default=0)
        document["count"] = len(selected)
    else:
        document["payloads"] = [dict(p) for p in payloads or ()]
        document["count"] = len(document["payloads"])
    return document


def read_from(document: Mapping[str, Any]) -> UUID | None:
    """The execution whose stored messages the replay reads (None: a manual replay of
    given payloads)."""
    if "lineage" in document:
        return UUID(document["lineage"]["execution_id"])
    source = source_of(document)
    return None if source is None else source.execution_id


def source_of(document: Mapping[str, Any]) -> Source | None:
    found = document.get("from")
    if found is None:
        return None
    return Source(UUID(found["execution_id"]), found["route"], found["direction"])


@dataclass(frozen=True)
class Planned:
    """One message a replay publishes: to `topic`, expected there by `route`."""

    route: str
    topic: str
    message: RouteMessage


def messages(
    document: Mapping[str, Any],
    child_id: UUID,
    at: datetime,
    store: StoredMessages | None,
    unfinished: Unfinished | None = None,
) -> list[Planned]:
    """Every message the replay described by `document` publishes, in order, with the
    replay's `overrides` (if any) deep-merged into each payload."""
    planned = _planned(document, child_id, at, store, unfinished)
    overrides = document.get("overrides")
    if not overrides:
        return planned
    return [
        replace(p, message=replace(p.message, payload=deep_merge(p.message.payload, overrides)))
        for p in planned
    ]


def _planned(
    document: Mapping[str, Any],
    child_id: UUID,
    at: datetime,
    store: StoredMessages | None,
    unfinished: Unfinished | None,
) -> list[Planned]:
    if "lineage" in document:
        if store is None or unfinished is None:
            raise RuntimeError("a lineage replay needs the message store and the ledger")
        return lineage_messages(document, child_id, at, store, unfinished)
    route, topic = str(document["to_route"]), str(document["to_topic"])
    source = source_of(document)
    if source is None:
        return [
            Planned(route, topic, _message(child_id, at, f"manual/{index}", payload, None))
            for index, payload in enumerate(document.get("payloads") or ())
        ]
    if store is None:
        raise RuntimeError("a storage replay needs the message store")
    chosen = select(
        source.read(store),
        only_failed=bool(document.get("only_failed")),
        stored_until=int(document["stored_until"]),
    )
    return [Planned(route, topic, _replayed(child_id, at, s.message)) for s in chosen]


def lineage_manifest(
    *,
    parent_id: UUID,
    parent_routes: Sequence[str],
    topics: Mapping[str, str],
    init: RouteMessage | None,
    parent_replay: Mapping[str, Any] | None,
    parent_created: datetime,
) -> dict[str, Any]:
    """The manifest of a lineage replay of the finished `parent_id`: its routes are fed
    what they had not finished, each on its topic in the child's config (`topics`). The
    parent's ledger no longer changes once it is finished, so this names the same
    messages whenever it is read; `init` and `parent_replay` say where the messages that
    entered the parent from outside are (its init message, its own replay)."""
    lineage: dict[str, Any] = {
        "execution_id": str(parent_id),
        "routes": list(parent_routes),
        "topics": dict(topics),
        "created": parent_created.isoformat(),
    }
    if init is not None:
        lineage["init"] = {
            "id": str(init.id),
            "payload": init.payload,
            "time": init.time.isoformat(),
        }
    if parent_replay:
        lineage["replay"] = dict(parent_replay)
    return {"lineage": lineage}


def lineage_messages(
    document: Mapping[str, Any],
    child_id: UUID,
    at: datetime,
    store: StoredMessages,
    unfinished: Unfinished,
) -> list[Planned]:
    """Each message the parent's routes had not finished, by the child's route order (the
    order of `topics`), each route's in the order the messages were stored."""
    lineage = document["lineage"]
    parent_id = UUID(lineage["execution_id"])
    topics: dict[str, str] = lineage["topics"]
    known = _known_messages(lineage, parent_id, store, unfinished)
    order = {route: index for index, route in enumerate(topics)}
    planned: list[tuple[int, int, str, Planned]] = []
    for route, message_id in unfinished.unfinished(parent_id):
        if route not in topics:
            raise MissingMessage(route, message_id)
        found = known.get(message_id)
        if found is None:
            raise MissingMessage(route, message_id)
        stored_at, message = found
        replayed = Planned(route, topics[route], _replayed(child_id, at, message))
        planned.append((order[route], stored_at, str(message_id), replayed))
    planned.sort(key=lambda p: p[:3])
    return [p[3] for p in planned]


def _known_messages(
    lineage: Mapping[str, Any], parent_id: UUID, store: StoredMessages, unfinished: Unfinished
) -> dict[UUID, tuple[int, RouteMessage]]:
    """message id -> (stored_at, message): whatever the parent stored, its init message
    and what its own replay published."""
    known: dict[UUID, tuple[int, RouteMessage]] = {}
    init = lineage.get("init")
    if init is not None:
        message = RouteMessage(
            id=UUID(init["id"]),
            execution_id=parent_id,
            route=INIT_ROUTE,
            payload=dict(init["payload"]),
            correlation_id=str(parent_id),
            time=datetime.fromisoformat(init["time"]),
        )
        known[message.id] = (0, message)
    replay = lineage.get("replay")
    if replay:
        created = datetime.fromisoformat(lineage["created"])
        for planned in messages(replay, parent_id, created, store, unfinished):
            known.setdefault(planned.message.id, (0, planned.message))
    for route in lineage["routes"]:
        for stored in (*store.produced(parent_id, route), *store.consumed(parent_id, route)):
            known.setdefault(stored.message.id, (stored.stored_at, stored.message))
    return known


def _replayed(child_id: UUID, at: datetime, source: RouteMessage) -> RouteMessage:
    return _message(child_id, at, str(source.id), source.payload, source.correlation_id)


def _message(
    child_id: UUID, at: datetime, source: str, payload: Mapping[str, Any], correlation: str | None
) -> RouteMessage:
    return RouteMessage(
        id=replay_message_id(child_id, source),
        execution_id=child_id,
        route=INIT_ROUTE,
        payload=dict(payload),
        stage=0,
        correlation_id=correlation or str(child_id),
        time=at,
    )


__all__ = [
    "MissingMessage",
    "Planned",
    "Source",
    "Stored",
    "StoredMessages",
    "Unfinished",
    "lineage_manifest",
    "lineage_messages",
    "manifest",
    "messages",
    "replay_message_id",
    "select",
    "source_of",
]
