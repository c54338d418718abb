"""What a role hands to its metrics and its spans when a batch commits, as protocols: the
decider's outcomes (services.service_layer.decider.Outcome) and a route batch's works
(services.runtimes.orchestrator.route_batch.Work). Written once for metrics and
trace_hops, and as protocols so that observability imports no role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.adapters.kafka.batch import Record


class Result(Protocol):
    @property
    def command_type(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...


class Outcome(Protocol):
    """What the decider answers for one command."""

    @property
    def command_id(self) -> str: ...
    @property
    def result(self) -> Result: ...
    @property
    def repeated(self) -> bool: ...


class Fate(Protocol):
    @property
    def value(self) -> str: ...


class Work(Protocol):
    """One inbound record of a route batch and what its worker made of it."""

    @property
    def record(self) -> Record: ...
    @property
    def fate(self) -> Fate | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def outputs(self) -> Sequence[object]: ...


__all__ = ["Fate", "Outcome", "Result", "Work"]
