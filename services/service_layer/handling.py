"""What a command handler is: a small function from a command and a context to a decision.

Handlers load aggregates through the unit of work, call one domain verb (sometimes two,
e.g. a pipeline and its name index) and say which aggregate the command was about and
what the client is answered. Rejections are raised as DomainError. Batching, dedupe,
acks, retries and result publishing live around all handlers (services.service_layer.decider and
services.runtimes.command_handler), never inside one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from domain.adapters import BUILTIN_ADAPTERS, AdapterRegistry
from projections.config_queries import ConfigUse
from services.service_layer.replay_plan import StoredMessages, Unfinished
from services.service_layer.unit_of_work import UnitOfWork

DEFAULT_RUN_TIMEOUT = timedelta(days=21)
DEFAULT_REPLAY_MAX_MESSAGES = 10_000


@dataclass(frozen=True)
class Decision:
    """The accepted command's aggregate, the reply body and the HTTP status to answer with."""

    aggregate_id: UUID | None
    reply: Any = None
    http_status: int = 202


class ExecutionGate(Protocol):
    """May a new config execution start now? (services.runtimes.orchestrator.liveness)"""

    def admit(self, execution_id: UUID) -> None:
        """Count `execution_id` as running, or raise a DomainError (503) saying why not."""


class ConfigUseReader(Protocol):
    """What uses a config, as the read models show it (projections.config_queries; the
    handler role wires the read store)."""

    def config_use(self, config_id: str) -> ConfigUse: ...


@dataclass(frozen=True)
class Context:
    uow: UnitOfWork
    now: datetime
    command_id: str
    # Who sent the command (services.service_layer.decider.Item.sent_by), for replies
    # that name it; its events get it from the decider, not from the handlers.
    sent_by: str | None = None
    # A factory because the registry is unhashable, which dataclasses take for mutable.
    adapters: AdapterRegistry = field(default_factory=lambda: BUILTIN_ADAPTERS)
    run_timeout: timedelta = DEFAULT_RUN_TIMEOUT
    # None: no orchestrator check (unit tests); the handler role always wires one.
    gate: ExecutionGate | None = None
    # What the routes stored, for ReplayExecution (None: storage replays are refused).
    stored: StoredMessages | None = None
    # The route ledger's unfinished messages, for lineage replays (None: refused).
    unfinished: Unfinished | None = None
    replay_max_messages: int = DEFAULT_REPLAY_MAX_MESSAGES
    # For DeleteConfig (None: refused, 503, until a handler that has one decides it).
    usage: ConfigUseReader | None = None


Handler = Callable[[Any, Context], Decision]
