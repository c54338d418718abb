"""Read-your-writes for clients that do not send `X-Min-Version`, such as Feldera's SDK.

Feldera answers a pipeline read from the same database its writes went to, so its
clients read right after writing: the SDK's `create` posts the pipeline and at once polls
`GET /v0/pipelines/{name}` for its program status, `create_or_replace` and `modify` read
the program back. Here reads come from the read model, a moment behind the event store:
such a read would see no pipeline (404) or its previous program.

So every API process remembers, per pipeline name, the version its last accepted write
of that name was answered with (`RecentWrites`, the newest 10 000 names), and a read of
that name without `X-Min-Version` waits, up to the `X-Min-Version` wait (5 s), until the
read model shows that version (a delete: until the row is gone), then answers; after
the wait it answers what the read model holds. A name whose write the read model has
shown is forgotten, so reads of it cost nothing more. Writes sent to another API process
are not known here: behind a load balancer, pin a client to one process or send
`X-Min-Version`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from fastapi import Request
from fastapi.responses import Response

from projections.rows import Row
from services.entrypoints.http import read_your_writes
from services.entrypoints.http.read_your_writes import read_store_of
from services.entrypoints.http.submit import VERSION_HEADER

REMEMBERED: Final = 10_000
_POLL_S: Final = 0.02


@dataclass(frozen=True)
class Written:
    version: int  # the aggregate version the write left the pipeline at
    deleted: bool = False


class RecentWrites:
    """The last accepted write of each pipeline name this process answered."""

    def __init__(self, limit: int = REMEMBERED) -> None:
        self.limit = limit
        self._by_name: OrderedDict[str, Written] = OrderedDict()

    def note(self, name: str, written: Written) -> None:
        self._by_name[name] = written
        self._by_name.move_to_end(name)
        while len(self._by_name) > self.limit:
            self._by_name.popitem(last=False)

    def pending(self, name: str) -> Written | None:
        return self._by_name.get(name)

    def shown(self, name: str, written: Written) -> None:
        """The read model shows `written`: forget it (unless a later write replaced it)."""
        if self._by_name.get(name) == written:
            del self._by_name[name]


def recent_writes(request: Request) -> RecentWrites:
    state = request.app.state
    writes: RecentWrites | None = getattr(state, "pipeline_writes", None)
    if writes is None:
        writes = state.pipeline_writes = RecentWrites()
    return writes


def note_write(request: Request, response: Response, name: str, *, deleted: bool = False) -> None:
    """Remember an accepted write of the pipeline named `name` (`deleted`: after it no
    pipeline holds the name)."""
    version = response.headers.get(VERSION_HEADER)
    if response.status_code < 300 and version is not None:
        recent_writes(request).note(name, Written(int(version), deleted))


def _shows(row: Row | None, written: Written) -> bool:
    if written.deleted:
        return row is None or int(row["refresh_version"]) >= written.version
    return row is not None and int(row["refresh_version"]) >= written.version


async def settled_row(request: Request, name: str) -> Row | None:
    """The pipeline's row, once the read model shows this process's last write of it."""
    store = read_store_of(request)
    writes = recent_writes(request)
    written = writes.pending(name)
    row = await asyncio.to_thread(store.get_pipeline, name)
    if written is None:
        return row
    loop = asyncio.get_running_loop()
    deadline = loop.time() + read_your_writes.MIN_VERSION_WAIT_S
    while not _shows(row, written):
        if loop.time() >= deadline:
            return row
        await asyncio.sleep(_POLL_S)
        row = await asyncio.to_thread(store.get_pipeline, name)
    writes.shown(name, written)
    return row


__all__ = ["RecentWrites", "Written", "note_write", "recent_writes", "settled_row"]
