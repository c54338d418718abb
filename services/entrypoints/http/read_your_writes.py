"""Read-your-writes, one wait for every API family: `X-Min-Version`.

A write answers with the version it left its aggregate at (`X-Pipelines-Version`); a read
of that aggregate sent with `X-Min-Version: N` waits, up to MIN_VERSION_WAIT_S, until the
read model has applied version N, then reads; else it is 503 ReadModelBehind (with
`Retry-After`). Without the header a read answers what the read model holds now.

An aggregate the event store has never seen is answered at once as not found (the
caller's 404), never after the wait: no write can have answered a version of it, since a
write answers only after its events are stored. Knowing "never seen" costs one lookup of
the aggregate's first event (`recorder.select_events(id, limit=1)`: the events table's
primary key), asked only when the read model has not reached the version at its first
look, so a read that needs no wait never pays it. A pipeline is read by its name: the
NameIndex aggregate of that name (its id derives from the name) has events once any
pipeline held the name.

Versions never move back, and the version is checked before the row is read, so the row
read holds at least the version asked for. A pipeline's row is read by the id whose
version was checked, so a name taken over meanwhile cannot answer for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import Header, Request

from domain.errors import DomainError
from domain.name_index import name_index_id
from projections.rows import Row
from projections.store import ReadStore
from services.adapters.eventstore import EventStore

MIN_VERSION_HEADER: Final = "X-Min-Version"
# Read at call time, so a test may shorten it.
MIN_VERSION_WAIT_S: float = 5.0
_POLL_S: Final = 0.02

# What the text header documents (the parser also takes surrounding blanks).
INTEGER_PATTERN: Final = "^[0-9]+$"
_WAIT = (
    "Wait (up to 5 s) until the read model has applied this version of the {noun} (a "
    "write's `X-Pipelines-Version`); 503 if it has not, 404 at once if it never existed."
)


# Read as text by the families that answer a bad header with their own 400
# (parse_min_version); FactFlow's is FastAPI's 422, like every request that fails
# validation there.
def _text_header(noun: str) -> Any:
    return Header(
        alias=MIN_VERSION_HEADER,
        description=_WAIT.format(noun=noun),
        json_schema_extra={"pattern": INTEGER_PATTERN},
    )


PipelineMinVersion = Annotated[str | None, _text_header("pipeline")]
RunMinVersion = Annotated[str | None, _text_header("run")]
MinVersion = Annotated[
    int | None,
    Header(alias=MIN_VERSION_HEADER, ge=0, description=_WAIT.format(noun="resource")),
]


def parse_min_version(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        version = int(raw.strip())
    except ValueError:
        version = -1
    if version < 0:
        raise DomainError(
            "InvalidHeader",
            f"Invalid value '{raw}' for header '{MIN_VERSION_HEADER}': expected an integer >= 0",
            {"header": MIN_VERSION_HEADER, "value": raw},
            400,
        )
    return version


# --- what is waited for ----------------------------------------------------------------------


@dataclass(frozen=True)
class Awaited:
    """An aggregate a read waits for, as the read model and the event store know it."""

    noun: str  # "pipeline", "config", "execution", "run": what the 503 names
    label: dict[str, str]  # the 503's details naming it, e.g. {"run_id": "..."}
    history_id: UUID  # the aggregate whose events prove it was ever written
    current: Callable[[ReadStore], Row | None]  # its row now
    located: Callable[[ReadStore], str | None]  # its aggregate id, if the read model has it
    by_id: Callable[[ReadStore, str], Row | None]  # its row, by that id

    @classmethod
    def aggregate(
        cls,
        noun: str,
        key: str,
        aggregate_id: UUID,
        by_id: Callable[[ReadStore, str], Row | None],
    ) -> Awaited:
        """One addressed by its aggregate id (a config, an execution or run)."""
        the_id = str(aggregate_id)
        return cls(
            noun,
            {key: the_id},
            aggregate_id,
            lambda store: by_id(store, the_id),
            lambda _: the_id,
            by_id,
        )

    @classmethod
    def pipeline(cls, name: str) -> Awaited:
        """A pipeline, addressed by its name."""

        def located(store: ReadStore) -> str | None:
            row = store.get_pipeline(name)
            return None if row is None else str(row["id"])

        return cls(
            "pipeline",
            {"pipeline_name": name},
            name_index_id(name),
            lambda store: store.get_pipeline(name),
            located,
            ReadStore.get_pipeline_by_id,
        )


class EventHistory:
    """Whether the event store ever stored an event of an aggregate."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def seen(self, aggregate_id: UUID) -> bool:
        return bool(self.store.recorder.select_events(aggregate_id, limit=1))


def projection_behind(awaited: Awaited, version: int, timeout_s: float) -> DomainError:
    shown = next(iter(awaited.label.values()))
    return DomainError(
        "ReadModelBehind",
        f"The read model has not reached version {version} of {awaited.noun} '{shown}' "
        f"within {timeout_s:g} s; retry later.",
        {**awaited.label, "min_version": version, "timeout_s": timeout_s},
        503,
    )


# --- the wait --------------------------------------------------------------------------------


def read_store_of(request: Request) -> ReadStore:
    store: ReadStore = request.app.state.read_store
    return store


def _reached(store: ReadStore, awaited: Awaited, version: int) -> str | None:
    aggregate_id = awaited.located(store)
    if aggregate_id is None or store.applied_version(aggregate_id) < version:
        return None
    return aggregate_id


async def reached(request: Request, awaited: Awaited, version: int) -> str | None:
    """The aggregate id once the read model has applied `version` of it; None at once for
    one the event store has never seen; raises the 503 DomainError after the wait."""
    store = read_store_of(request)
    history: EventHistory = request.app.state.event_history
    timeout_s = MIN_VERSION_WAIT_S
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    aggregate_id = await asyncio.to_thread(_reached, store, awaited, version)
    if aggregate_id is None and not await asyncio.to_thread(history.seen, awaited.history_id):
        return None
    while aggregate_id is None:
        if loop.time() >= deadline:
            raise projection_behind(awaited, version, timeout_s)
        await asyncio.sleep(_POLL_S)
        aggregate_id = await asyncio.to_thread(_reached, store, awaited, version)
    return aggregate_id


async def read_after(request: Request, awaited: Awaited, min_version: int | None) -> Row | None:
    """The aggregate's row; with `min_version`, once the read model has applied it. None
    when the read model has no such row, and at once for one never written; raises the
    503 DomainError after the wait."""
    store = read_store_of(request)
    if not min_version:
        return await asyncio.to_thread(awaited.current, store)
    aggregate_id = await reached(request, awaited, min_version)
    if aggregate_id is None:
        return None
    return await asyncio.to_thread(awaited.by_id, store, aggregate_id)


__all__ = [
    "INTEGER_PATTERN",
    "MIN_VERSION_HEADER",
    "MIN_VERSION_WAIT_S",
    "Awaited",
    "EventHistory",
    "MinVersion",
    "PipelineMinVersion",
    "RunMinVersion",
    "parse_min_version",
    "projection_behind",
    "reached",
    "read_after",
    "read_store_of",
]
