"""Config aggregate: a named, versioned pipeline definition (routes + init_message).

A Config only ever holds a document that passed validation: create and update run the
validator first and raise `ConfigValidationFailed` (the report in `details`) before any
event exists. The stored document is the normalized one (defaults filled in), so replay
never needs the validator or the adapter registry.

A config may carry a free-text description (FactFlow's); events stored before it existed
(version 1 of Created and Updated) are upcast to none.

A deleted config keeps its history (and its executions theirs) but takes no command:
the handlers answer it as unknown. `delete` is refused while anything still uses the
config: an unfinished execution of it, or a pipeline that names it (the handler gathers
both, services.service_layer.handlers.configs.delete_config).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import event
from uuid6 import uuid7

from contracts.config_document import ConfigDocument
from contracts.validation import ValidationReport
from domain.adapters import BUILTIN_ADAPTERS, AdapterRegistry
from domain.base import Aggregate, AggregateSnapshot, SnapshotState
from domain.errors import DomainError
from domain.validation import validate_config

CONFIG_VALIDATION_FAILED = "ConfigValidationFailed"
INVALID_CONFIG_NAME = "InvalidConfigName"
CONFIG_IN_USE = "ConfigInUse"
# A refusal names this many of the config's users (and counts them all).
IN_USE_SHOWN = 100


class ConfigState(SnapshotState):
    name: str
    description: str | None = None
    document: dict[str, Any]
    report: ValidationReport
    config_version: int
    created_at: datetime
    updated_at: datetime
    # Snapshots taken before configs could be deleted lack it.
    deleted: bool = False


@dataclass(frozen=True)
class ConfigUsers:
    """What uses a config: its unfinished executions, as (id, status), and the names of
    the live pipelines that name it."""

    running: Sequence[tuple[str, str]] = ()
    pipelines: Sequence[str] = ()

    def __bool__(self) -> bool:
        return bool(self.running or self.pipelines)


class _CreatedUpcasts(Aggregate):
    """The upcaster of Config's creation event, on a base class so the library still
    derives that event's fields from `Config.__init__` (and only adds it here)."""

    class Created(Aggregate.Created):
        class_version: ClassVar[int] = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["description"] = None  # v1 configs had no description


class Config(_CreatedUpcasts):
    # `version` is the aggregate's event version (eventsourcing); the document's own
    # revision counter is therefore `config_version`.
    INITIAL_CONFIG_VERSION: ClassVar[int] = 1
    # Declaring `id` makes eventsourcing take the id from the caller (the command).
    id: UUID

    class Snapshot(AggregateSnapshot):
        state: ConfigState

    @classmethod
    def create(
        cls,
        name: str,
        document: Mapping[str, Any] | str,
        at: datetime,
        *,
        config_id: UUID | None = None,
        description: str | None = None,
        registry: AdapterRegistry = BUILTIN_ADAPTERS,
    ) -> Config:
        """A new config; its id is `config_id` when the command carries one, else a UUIDv7."""
        _check_name(name)
        normalized, report = _validated(document, registry)
        config_id = uuid7() if config_id is None else config_id
        # The metaclass takes `id` because the class declares it; mypy only sees __init__.
        return cls(  # type: ignore[call-arg]
            id=config_id,
            name=name,
            document=normalized,
            report=report,
            at=at,
            description=description,
        )

    @event("Created")
    def __init__(
        self,
        name: str,
        document: dict[str, Any],
        report: ValidationReport,
        at: datetime,
        description: str | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.document = document
        self.report = report
        self.config_version = self.INITIAL_CONFIG_VERSION
        self.created_at = at
        self.updated_at = at
        self.deleted = False

    def update(
        self,
        document: Mapping[str, Any] | str,
        at: datetime,
        *,
        name: str | None = None,
        description: str | None = None,
        registry: AdapterRegistry = BUILTIN_ADAPTERS,
    ) -> None:
        """Replace the document (and optionally rename or describe anew: None keeps the
        name or the description); every update is a new config_version."""
        if name is not None:
            _check_name(name)
        normalized, report = _validated(document, registry)
        self._updated(
            name=self.name if name is None else name,
            document=normalized,
            report=report,
            config_version=self.config_version + 1,
            at=at,
            description=self.description if description is None else description,
        )

    class Updated(Aggregate.Event):
        """Declared, not derived from `_updated`: the library adds no upcaster to those."""

        class_version: ClassVar[int] = 2
        name: str
        document: dict[str, Any]
        report: ValidationReport
        config_version: int
        at: datetime
        description: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["description"] = None  # v1 configs had no description

    @event(Updated)
    def _updated(
        self,
        name: str,
        document: dict[str, Any],
        report: ValidationReport,
        config_version: int,
        at: datetime,
        description: str | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.document = document
        self.report = report
        self.config_version = config_version
        self.updated_at = at

    def delete(self, at: datetime, users: ConfigUsers) -> None:
        """Delete the config, unless `users` still use it (409 ConfigInUse, naming them)."""
        if users:
            raise config_in_use(self.id, users)
        self._deleted(at=at)

    @event("Deleted")
    def _deleted(self, at: datetime) -> None:
        self.deleted = True
        self.updated_at = at

    def validate(self, registry: AdapterRegistry = BUILTIN_ADAPTERS) -> ValidationReport:
        """Re-check the stored document, e.g. against today's registry (a query: no event)."""
        report, _ = validate_config(self.document, registry)
        return report

    @property
    def parsed(self) -> ConfigDocument:
        return ConfigDocument.model_validate(self.document)

    @property
    def init_route(self) -> str:
        route: str = self.document["init_message"]["route"]
        return route

    @property
    def init_payload(self) -> dict[str, Any]:
        """A copy of the init message payload; callers merge their overrides into it."""
        payload: dict[str, Any] = copy.deepcopy(self.document["init_message"]["payload"])
        return payload


def config_in_use(config_id: UUID, users: ConfigUsers) -> DomainError:
    parts = []
    if users.running:
        parts.append(f"{len(users.running)} of its executions are still running")
    if users.pipelines:
        parts.append(f"{len(users.pipelines)} pipeline(s) use it")
    return DomainError(
        CONFIG_IN_USE,
        f"Config {config_id} cannot be deleted: {' and '.join(parts)}. Cancel the "
        "executions (or let them finish) and point the pipelines at another config first.",
        {
            "config_id": str(config_id),
            "running_executions": [
                {"id": execution_id, "status": status}
                for execution_id, status in users.running[:IN_USE_SHOWN]
            ],
            "running_executions_total": len(users.running),
            "pipelines": list(users.pipelines[:IN_USE_SHOWN]),
            "pipelines_total": len(users.pipelines),
        },
        409,
    )


def _check_name(name: str) -> None:
    if not name.strip():
        raise DomainError(INVALID_CONFIG_NAME, "Config name must not be empty", {"name": name})


def _validated(
    document: Mapping[str, Any] | str, registry: AdapterRegistry
) -> tuple[dict[str, Any], ValidationReport]:
    report, parsed = validate_config(document, registry)
    if parsed is None:
        raise DomainError(
            CONFIG_VALIDATION_FAILED,
            "Config validation failed",
            details=report.model_dump(mode="json"),
            http_status=400,
        )
    return parsed.model_dump(mode="json"), report
