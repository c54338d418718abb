"""Shared helpers for the handler and decider tests: a command store, a decider with a
ticking clock, and one-call ways to decide commands and drive a pipeline's reconciler
steps (which no command covers) straight on the stored aggregate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from uuid import UUID, uuid4

from contracts import Command, CommandAccepted, CommandRejected
from contracts.results import CommandResult
from contracts.statuses import RuntimeStatus
from domain.adapters import BUILTIN_ADAPTERS, AdapterRegistry
from domain.name_index import NameIndex, name_index_id
from domain.pipeline import Pipeline
from services.adapters.eventstore import EventStore
from services.adapters.stores import open_command_store
from services.service_layer.decider import Decider, Item
from services.service_layer.handlers import HANDLERS
from tests.domain.config_documents import FETCH_INIT, MAP_STEP, one_route_document

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock that moves one second per reading, so every timestamp differs."""

    def __init__(self) -> None:
        self._ticks = count()

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=next(self._ticks))


@contextmanager
def opened_decider(url: str, adapters: AdapterRegistry = BUILTIN_ADAPTERS) -> Iterator[Decider]:
    with open_command_store(url) as store:
        yield Decider(store, HANDLERS, adapters=adapters, clock=Clock())


def item(command: Command, command_id: str | None = None) -> Item:
    return Item(command_id=command_id or str(uuid4()), command=command)


def decide(decider: Decider, *commands: Command) -> list[CommandResult]:
    """Decide `commands` as one batch, each under a fresh command id."""
    return [o.result for o in decider.decide([item(c) for c in commands])]


def accepted(result: CommandResult) -> CommandAccepted:
    assert isinstance(result, CommandAccepted), result
    return result


def rejected(result: CommandResult) -> CommandRejected:
    assert isinstance(result, CommandRejected), result
    return result


def decide_one(decider: Decider, command: Command) -> CommandResult:
    return decide(decider, command)[0]


def config_document(adapter: str = "map") -> dict[str, Any]:
    step = MAP_STEP if adapter == "map" else {"type": adapter, "config": {}}
    return one_route_document([step], init_message=FETCH_INIT)


def stored_pipeline(store: EventStore, name: str) -> Pipeline:
    index: NameIndex = store.repository.get(name_index_id(name))
    assert index.pipeline_id is not None
    pipeline: Pipeline = store.repository.get(index.pipeline_id)
    return pipeline


def provision(store: EventStore, name: str, at: datetime) -> UUID:
    """The reconciler's part of a start: Provisioning, Provisioned, runtime Running."""
    pipeline = stored_pipeline(store, name)
    deployment = pipeline.begin_provisioning(at=at)
    pipeline.provisioned(deployment, at=at)
    pipeline.runtime_status_reported(deployment, RuntimeStatus.RUNNING, at=at)
    store.save(pipeline)
    return deployment


def begin_stopping(store: EventStore, name: str, at: datetime) -> None:
    pipeline = stored_pipeline(store, name)
    assert pipeline.deployment_id is not None
    pipeline.begin_stopping(pipeline.deployment_id, at=at)
    store.save(pipeline)


def stopped(store: EventStore, name: str, at: datetime) -> None:
    pipeline = stored_pipeline(store, name)
    assert pipeline.deployment_id is not None
    pipeline.stopped(pipeline.deployment_id, at=at)
    store.save(pipeline)


def stored_event_count(store: EventStore, aggregate_id: UUID) -> int:
    return len(store.recorder.select_events(aggregate_id))
