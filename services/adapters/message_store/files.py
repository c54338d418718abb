"""The files message store: what each route consumed and produced, per execution, in a
folder (services.adapters.message_store.interface says what every store promises).

    {root}/{execution_id}/{route}/in/{stored_at}-{first_id}.jsonl    messages the route consumed
    {root}/{execution_id}/{route}/out/{stored_at}-{first_id}.jsonl   messages the route produced

A route worker stores each batch at once (`store`): one segment file per (execution,
direction) of the batch, holding that execution's messages of the batch in batch order,
one JSON object a line. The name is the segment's `stored_at` (epoch nanoseconds, 20
digits) and the id of its first message, so names sort in stored order and two writers
never pick the same one. Each line is one message: its envelope (`id`, `execution_id`,
`route` — the route that produced it, `init` for an init message —, `stage`,
`correlation_id`, `time`), the `topic` it was read from or written to, `stored_at`, an
`error` for a consumed message that failed, and the `payload`.

A segment is written to a temporary file in its folder; then every segment of the batch is
flushed to disk (in parallel: fsyncs issued together share the file system's journal
commits), renamed into place (`os.replace`) and its folder flushed, so a reader never
sees half a segment and `store` returns only once the batch is durable. A batch stored
again (a redelivery after a crash) adds a later segment; readers merge the segments in
stored order and keep the first copy of each message id — the one whose message the
ledger counted. Files of the earlier layout (`{message_id}.json`, one message each) are
read as one-message segments.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import orjson

from services.adapters.message_store.interface import (
    Direction,
    StoredMessage,
    StoreShortcuts,
    ToStore,
    checked_route,
    message_document,
    message_of,
)

SEGMENT_SUFFIX: Final = ".jsonl"
_LEGACY_SUFFIX: Final = ".json"
_SYNC_THREADS: Final = 8


class FileMessageStore(StoreShortcuts):
    """Under `root` (PIPELINES_EXECUTION_STORAGE_DIR); `fsync=False` only for tests."""

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self._fsync = fsync
        self._sync_pool: ThreadPoolExecutor | None = None

    # --- writing -------------------------------------------------------------------------

    def store(self, route: str, items: Iterable[ToStore]) -> None:
        """A batch of `route`: one segment per (execution, direction), durable on return."""
        checked_route(route)
        segments: dict[Path, list[ToStore]] = {}
        for item in items:
            folder = self._folder(item.message.execution_id, route, item.direction)
            segments.setdefault(folder, []).append(item)
        if not segments:
            return
        stored_at = time.time_ns()
        written: list[tuple[Path, Path]] = []  # (temporary, target)
        folders = set(segments)  # to flush once their segments are renamed in
        try:
            for folder, batch in segments.items():
                folders.update(self._make_folders(folder))
                lines = b"".join(orjson.dumps(_document(i, stored_at)) + b"\n" for i in batch)
                descriptor, name = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
                target = folder / f"{stored_at:020d}-{batch[0].message.id}{SEGMENT_SUFFIX}"
                written.append((Path(name), target))
                with os.fdopen(descriptor, "wb") as file:
                    file.write(lines)
            self._sync([temporary for temporary, _ in written])
            for temporary, target in written:
                os.replace(temporary, target)
            # The renames (and new folders) are durable only once their folders are.
            self._sync(sorted(folders))
        except BaseException:
            for temporary, _ in written:
                temporary.unlink(missing_ok=True)
            raise

    def _make_folders(self, folder: Path) -> list[Path]:
        """Create `folder` and its missing parents; returns the folders whose entries
        changed (the parents of those created)."""
        missing: list[Path] = []
        while not folder.is_dir() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for created in reversed(missing):
            created.mkdir(exist_ok=True)
        return [created.parent for created in missing]

    def _sync(self, paths: Sequence[Path]) -> None:
        if not self._fsync or not paths:
            return
        if len(paths) == 1:
            _fsync(paths[0])
            return
        if self._sync_pool is None:
            self._sync_pool = ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="storage-sync")
        for _ in self._sync_pool.map(_fsync, paths):  # re-raises the first failure
            pass

    def close(self) -> None:
        if self._sync_pool is not None:
            self._sync_pool.shutdown()
            self._sync_pool = None

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
        # (stored_at, file name, line): stored order, a segment's lines in batch order.
        lines: list[tuple[int, str, int, StoredMessage]] = []
        for path in folder.iterdir():
            if path.name.startswith("."):
                continue  # a segment being written
            if path.suffix == SEGMENT_SUFFIX:
                documents = [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
            elif path.suffix == _LEGACY_SUFFIX:
                documents = [orjson.loads(path.read_bytes())]
            else:
                continue
            for index, document in enumerate(documents):
                stored = _parse(document)
                lines.append((stored.stored_at, path.name, index, stored))
        lines.sort(key=lambda line: line[:3])
        seen: set[UUID] = set()
        found: list[StoredMessage] = []
        for *_, stored in lines:
            if stored.message.id not in seen:  # the first copy wins
                seen.add(stored.message.id)
                found.append(stored)
        return found

    def _folder(self, execution_id: UUID, route: str, direction: Direction) -> Path:
        # Only safe route ids (E011 allows no other): a path must never escape root.
        return self.root / str(UUID(str(execution_id))) / checked_route(route) / direction


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _document(item: ToStore, stored_at: int) -> dict[str, Any]:
    # The segment layout keeps the payload last, after the store's own fields.
    document = message_document(item.message)
    payload = document.pop("payload")
    document.update(topic=item.topic, stored_at=stored_at, payload=payload)
    if item.error is not None:
        document["error"] = item.error
    return document


def _parse(document: dict[str, Any]) -> StoredMessage:
    return StoredMessage(
        message_of(document), document["topic"], int(document["stored_at"]), document.get("error")
    )


__all__ = ["SEGMENT_SUFFIX", "FileMessageStore"]
