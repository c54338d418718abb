"""What a route worker needs to know about an execution before it processes its messages.

The orchestrator role answers `ExecutionLookup` (from the executions read model or the
event store); a route worker only asks. `None` means the execution is not known (yet: the
read model may lag the relay that published the init message).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from contracts.run_views import TERMINAL
from services.adapters.kafka.engine import PutBack


@dataclass(frozen=True)
class ExecutionInfo:
    execution_id: UUID
    config_id: UUID
    status: str  # canonical (seed 003) status, contracts.statuses.RunStatus
    skip_init_message: bool
    init_route: str
    # The config version the execution runs (None: any; a worker of one version treats
    # executions of another version as another config's).
    config_version: int | None = None

    @property
    def finished(self) -> bool:
        """Terminal: its messages are skipped from now on (cancelled included)."""
        return self.status in _FINISHED

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ExecutionInfo:
        """From an executions read-model row (projections.executions)."""
        version = row.get("config_version")
        return cls(
            execution_id=UUID(str(row["id"])),
            config_id=UUID(str(row["config_id"])),
            status=str(row["status"]),
            skip_init_message=bool(row.get("skip_init_message")),
            init_route=str(row.get("init_route") or ""),
            config_version=None if version is None else int(version),
        )


_FINISHED = frozenset(str(status) for status in TERMINAL)

ExecutionLookup = Callable[[UUID], Awaitable[ExecutionInfo | None]]
"""The execution's info, or None if it is unknown."""

ExecutionCallback = Callable[[UUID], Awaitable[None]]
"""`on_drained` / `on_failed`: told an execution id; may be told the same one again."""


class StopRequested(PutBack):
    """The caller was asked to stop while waiting for an execution to become known: the
    engine puts the batch back, uncommitted and not counted as a failure."""


class PatientLookup:
    """Asks an ExecutionLookup about a batch's executions. An unknown one is asked again,
    with a doubling backoff, until it is known or `grace_s` has passed since it was first
    found unknown; `stopping` cuts the wait short (StopRequested). An execution still
    unknown after its grace answers None at once from then on."""

    INITIAL_BACKOFF_S: Final = 0.2
    MAX_BACKOFF_S: Final = 5.0

    def __init__(self, lookup: ExecutionLookup, grace_s: float, stopping: asyncio.Event) -> None:
        self.lookup = lookup
        self.grace_s = grace_s
        self._stopping = stopping
        self._unknown_since: dict[UUID, float] = {}

    async def infos(
        self, wait_for: Iterable[UUID], ask_once: Iterable[UUID] = ()
    ) -> dict[UUID, ExecutionInfo | None]:
        """Every execution of `wait_for` and `ask_once`; only the former are waited for."""
        patient = set(wait_for)
        infos = {e: await self.lookup(e) for e in sorted(patient | set(ask_once))}
        loop = asyncio.get_running_loop()
        delay = self.INITIAL_BACKOFF_S
        while waiting := self._waiting(infos, patient, loop.time()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            if self._stopping.is_set():
                raise StopRequested
            delay = min(delay * 2, self.MAX_BACKOFF_S)
            for execution_id in waiting:
                infos[execution_id] = await self.lookup(execution_id)
        for execution_id, info in infos.items():
            if info is not None:
                self._unknown_since.pop(execution_id, None)
        self._forget_old(loop.time())
        return infos

    def _waiting(
        self, infos: Mapping[UUID, ExecutionInfo | None], patient: set[UUID], now: float
    ) -> list[UUID]:
        return [
            e
            for e, info in infos.items()
            if info is None
            and e in patient
            and now - self._unknown_since.setdefault(e, now) < self.grace_s
        ]

    def _forget_old(self, now: float) -> None:
        # Long-gone unknown executions: keep the table small; one that comes back simply
        # gets a new grace.
        horizon = 10 * self.grace_s + 60
        for execution_id, since in list(self._unknown_since.items()):
            if now - since > horizon:
                del self._unknown_since[execution_id]


__all__ = [
    "ExecutionCallback",
    "ExecutionInfo",
    "ExecutionLookup",
    "PatientLookup",
    "StopRequested",
]
