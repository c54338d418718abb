"""What each route consumed and produced, per execution, on the filesystem: the storage
replay reads ("storage is not a cache": nothing here is recomputed).

    {root}/{execution_id}/{route}/in/{message_id}.json    a message the route consumed
    {root}/{execution_id}/{route}/out/{message_id}.json   a message the route produced

Each file is one JSON object: the message's envelope (`id`, `execution_id`, `route` — the
route that produced it, `init` for an init message —, `stage`, `correlation_id`, `time`),
the `topic` it was read from or written to, `stored_at` (epoch nanoseconds, the order the
readers return), an `error` for a consumed message that failed, and the `payload`.

A write goes to a temporary file in the same folder, is flushed to disk and renamed into
place (`os.replace`), so a reader never sees half a file. The first write of a message id
wins: writing the same id again (a redelivery after a crash) keeps the stored file, the
one whose message the ledger counted.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal
from uuid import UUID

import orjson

from contracts.envelope import rfc3339
from contracts.route_messages import RouteMessage

Direction = Literal["in", "out"]
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}\Z")


@dataclass(frozen=True)
class StoredMessage:
    message: RouteMessage
    topic: str
    stored_at: int
    error: str | None = None


class MessageStorage:
    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self._fsync = fsync

    # --- writing -------------------------------------------------------------------------

    def store_consumed(
        self, route: str, topic: str, messages: Iterable[RouteMessage], *, error: str | None = None
    ) -> None:
        for message in messages:
            self._write(route, "in", message, topic, error)

    def store_produced(self, route: str, produced: Iterable[tuple[str, RouteMessage]]) -> None:
        """`produced`: (topic, message) pairs."""
        for topic, message in produced:
            self._write(route, "out", message, topic, None)

    def _write(
        self, route: str, direction: Direction, message: RouteMessage, topic: str, error: str | None
    ) -> None:
        folder = self._folder(message.execution_id, route, direction)
        target = folder / f"{message.id}.json"
        if target.exists():
            return
        folder.mkdir(parents=True, exist_ok=True)
        document: dict[str, Any] = {
            "id": str(message.id),
            "execution_id": str(message.execution_id),
            "route": message.route,
            "stage": message.stage,
            "correlation_id": message.correlation_id,
            "time": rfc3339(message.time),
            "topic": topic,
            "stored_at": time.time_ns(),
            "payload": message.payload,
        }
        if error is not None:
            document["error"] = error
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(orjson.dumps(document))
                if self._fsync:
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    # --- reading -------------------------------------------------------------------------

    def consumed(self, execution_id: UUID, route: str) -> list[StoredMessage]:
        """What `route` consumed in the execution, in the order it was stored."""
        return self._read(self._folder(execution_id, route, "in"))

    def produced(self, execution_id: UUID, route: str) -> list[StoredMessage]:
        """What `route` produced in the execution, in the order it was stored."""
        return self._read(self._folder(execution_id, route, "out"))

    def routes(self, execution_id: UUID) -> list[str]:
        """The routes that stored anything for the execution."""
        folder = self.root / str(execution_id)
        if not folder.is_dir():
            return []
        return sorted(path.name for path in folder.iterdir() if path.is_dir())

    def _read(self, folder: Path) -> list[StoredMessage]:
        if not folder.is_dir():
            return []
        stored = [_parse(orjson.loads(path.read_bytes())) for path in folder.glob("*.json")]
        return sorted(stored, key=lambda s: (s.stored_at, str(s.message.id)))

    def _folder(self, execution_id: UUID, route: str, direction: Direction) -> Path:
        if not _SAFE_NAME.match(route):
            # Validation allows only such route ids (E011); a path must never escape root.
            raise ValueError(f"route id {route!r} cannot be a storage folder name")
        return self.root / str(UUID(str(execution_id))) / route / direction


def _parse(document: dict[str, Any]) -> StoredMessage:
    message = RouteMessage(
        id=UUID(document["id"]),
        execution_id=UUID(document["execution_id"]),
        route=document["route"],
        payload=document["payload"],
        stage=int(document["stage"]),
        correlation_id=document.get("correlation_id"),
        time=datetime.fromisoformat(document["time"]),
    )
    return StoredMessage(
        message, document["topic"], int(document["stored_at"]), document.get("error")
    )


__all__ = ["MessageStorage", "StoredMessage"]
