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

Retention (`sweep`) goes by execution folder: one whose newest segment (by its name's
`stored_at`; a legacy file by its modification time) is older than the cutoff loses its
route folders, and `{root}/{execution_id}/.swept` (the sweep's time, epoch ns) is left as
its marker. The sweep lists the root each round (the files store is the one-machine
store; a database store has an index for this).
"""

from __future__ import annotations

import os
import shutil
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
SWEPT_MARKER: Final = ".swept"
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

    # --- retention (interface.py) --------------------------------------------------------

    def sweep(self, before_ns: int, limit: int, *, now_ns: int | None = None) -> list[UUID]:
        """Remove the route folders of up to `limit` executions whose newest segment is
        older than `before_ns`, leaving the marker; returns the executions swept."""
        swept: list[UUID] = []
        if not self.root.is_dir():
            return swept
        for folder in sorted(self.root.iterdir()):
            if len(swept) >= limit:
                break
            execution = _execution_id(folder)
            if execution is None or (folder / SWEPT_MARKER).exists():
                continue
            routes = [path for path in folder.iterdir() if path.is_dir()]
            newest = max((_newest(route) for route in routes), default=0)
            if newest >= before_ns:
                continue
            marker = folder / SWEPT_MARKER
            stamp = time.time_ns() if now_ns is None else now_ns
            # The marker first: a crash half-way leaves a marked execution with some old
            # folders (which `forget_swept` removes with it), never an unmarked half.
            marker.write_text(str(stamp))
            for route in routes:
                shutil.rmtree(route, ignore_errors=True)
            swept.append(execution)
        return swept

    def swept(self, execution_id: UUID) -> int | None:
        marker = self.root / str(UUID(str(execution_id))) / SWEPT_MARKER
        try:
            return int(marker.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def forget_swept(self, before_ns: int, limit: int) -> int:
        """Drop up to `limit` markers older than `before_ns` (with any folders a crash
        left behind); an execution that stored messages again keeps its folder."""
        forgotten = 0
        if not self.root.is_dir():
            return forgotten
        for folder in sorted(self.root.iterdir()):
            if forgotten >= limit:
                break
            stamp = self.swept(execution) if (execution := _execution_id(folder)) else None
            if stamp is None or stamp >= before_ns:
                continue
            routes = [path for path in folder.iterdir() if path.is_dir()]
            if any(_newest(route) > stamp for route in routes):
                (folder / SWEPT_MARKER).unlink(missing_ok=True)  # in use again
            else:
                shutil.rmtree(folder, ignore_errors=True)
            forgotten += 1
        return forgotten

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


def _execution_id(folder: Path) -> UUID | None:
    """The execution a folder of the root holds, or None for anything else."""
    if not folder.is_dir():
        return None
    try:
        return UUID(folder.name)
    except ValueError:
        return None


def _newest(route_folder: Path) -> int:
    """The newest `stored_at` (epoch ns) of a route folder's segments, 0 if none."""
    newest = 0
    for direction in route_folder.iterdir():
        if not direction.is_dir():
            continue
        for path in direction.iterdir():
            if path.suffix == SEGMENT_SUFFIX and not path.name.startswith("."):
                stamp = int(path.name.partition("-")[0])
            elif path.suffix == _LEGACY_SUFFIX:
                stamp = path.stat().st_mtime_ns
            else:
                stamp = path.stat().st_mtime_ns  # a segment being written: in use
            newest = max(newest, stamp)
    return newest


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


__all__ = ["SEGMENT_SUFFIX", "SWEPT_MARKER", "FileMessageStore"]
