"""What the run families share (seed 002, Marquez; seed 003, Esper): a run's id in a path
and the run's row.

A run is an execution, a pipeline's or a config's, as the executions read model keeps
it. A path id that is no UUID names no run: 404 UnknownRun, as Marquez's path conversion
answers and as Esper's lookup of a missing id does.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import Request

from domain.errors import DomainError
from projections.rows import Row
from projections.store import ReadStore
from services.entrypoints.http.read_your_writes import Awaited, read_after


def parse_run_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise DomainError("UnknownRun", f"Run '{raw}' not found.", {"run_id": raw}, 404) from None


async def read_run(request: Request, run_id: UUID, min_version: int | None) -> Row | None:
    """The run's row, with `min_version` once the read model has that version of it
    (read_your_writes.py); None when there is no such run (at once for one never
    created)."""
    awaited = Awaited.aggregate("run", "run_id", run_id, ReadStore.get_execution)
    return await read_after(request, awaited, min_version)


__all__ = ["parse_run_id", "read_run"]
