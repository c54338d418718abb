"""Decide a batch of commands and store it in ONE event-store transaction.

For every command of the batch: a command id already processed gets its stored result
back, byte for byte, without calling the domain; a new one is handed to its handler on
the batch's unit of work; its result (accepted or rejected) is recorded with the batch's
events. A 503 rejection is the one exception: it says the command was not processed yet
("retry later", e.g. no orchestrator is alive), so it is answered but not recorded, and
the same command id sent again is decided again.

On a concurrency conflict (another writer got there first, e.g. after a rebalance) the
cache is dropped and the batch is decided again once; if it conflicts again each command
gets its own transaction. Infrastructure errors propagate: the caller does not commit
offsets, so the batch is redelivered. A batch whose events or results cannot be
serialized (input the decoder let through, e.g. nested deeper than the serializers go)
is decided again one command at a time, and the command that cannot be is refused
(CommandNotStorable, not recorded: a function of its bytes, like a wire rejection).

Synchronous, like the eventsourcing library: async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import psycopg
from eventsourcing.application import LRUCache
from eventsourcing.persistence import PersistenceError

from contracts import Command, CommandAccepted, CommandRejected, rejection
from contracts.cloudevents import encode_result, result_headers
from contracts.envelope import KafkaRecord
from contracts.events import event_id
from contracts.results import RESULTS, CommandResult
from contracts.validation import ValidationReport
from domain.adapters import BUILTIN_ADAPTERS, AdapterRegistry
from domain.errors import DomainError
from services.adapters.command_records import PostgresCommandRecorder, SQLiteCommandRecorder
from services.adapters.eventstore import ConcurrencyConflict, EventStore
from services.observability.logs import log_ids
from services.service_layer.handling import (
    DEFAULT_REPLAY_MAX_MESSAGES,
    DEFAULT_RUN_TIMEOUT,
    ConfigUseReader,
    Context,
    ExecutionGate,
    Handler,
)
from services.service_layer.replay_plan import StoredMessages, Unfinished
from services.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

PER_COMMAND_ATTEMPTS = 3
# A handler's reads (the orchestrator gate, the message store, the read models) go to the
# databases beside the event store: their failing is the infrastructure's, never the
# command's. Raised, the batch is not committed and is decided again once the database is
# back; answered as InternalError, it would be recorded and refused for good.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    PersistenceError,
    ConcurrencyConflict,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)
# A rejection with this status is "not now", not an answer: it is not recorded.
RETRY_LATER_STATUS = 503


@dataclass(frozen=True)
class Item:
    """One message of a batch: a decoded command, or a rejection made while decoding it."""

    command_id: str
    correlation_id: str | None = None
    command: Command | None = None
    rejected: CommandRejected | None = None
    # Who sent it (CloudEventAttributes.sent_by): kept on its events and its result.
    sent_by: str | None = None


@dataclass(frozen=True)
class Outcome:
    command_id: str
    correlation_id: str | None
    result: CommandResult
    value: bytes
    repeated: bool = False

    def record(self) -> KafkaRecord:
        """The result record for the results topic; a repeat carries the stored bytes."""
        headers = result_headers(self.result, correlation_id=self.correlation_id)
        return KafkaRecord(key=self.result.command_id.encode(), value=self.value, headers=headers)


def _now() -> datetime:
    return datetime.now(UTC)


class Decider:
    # Told the batch's new outcomes just before they are saved, in the same thread (the
    # command handler's tracing links each event to its command's span there:
    # services.observability.trace_links).
    before_save: Callable[[Sequence[Outcome]], None] | None = None

    def __init__(
        self,
        store: EventStore,
        handlers: Mapping[type[Command], Handler],
        *,
        adapters: AdapterRegistry = BUILTIN_ADAPTERS,
        run_timeout: timedelta = DEFAULT_RUN_TIMEOUT,
        clock: Callable[[], datetime] = _now,
        gate: ExecutionGate | None = None,
        stored: StoredMessages | None = None,
        unfinished: Unfinished | None = None,
        replay_max_messages: int = DEFAULT_REPLAY_MAX_MESSAGES,
        usage: ConfigUseReader | None = None,
    ) -> None:
        self.store = store
        self.usage = usage
        self.stored = stored
        self.unfinished = unfinished
        self.replay_max_messages = replay_max_messages
        self.handlers = handlers
        self.adapters = adapters
        self.run_timeout = run_timeout
        self.clock = clock
        self.gate = gate
        recorder = store.recorder
        if not isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder):
            raise TypeError("The decider needs an event store opened with the command recorder")
        self.recorder = recorder

    def decide(self, items: Sequence[Item]) -> list[Outcome]:
        try:
            return self._decide_with_retries(items)
        except Unstorable as unstorable:
            log.warning("Batch could not be serialized (%s); one command at a time", unstorable)
        outcomes: list[Outcome] = []
        for item in items:
            try:
                outcomes.extend(self._decide_with_retries([item]))
            except Unstorable as unstorable:
                outcomes.extend(self._decide_with_retries([_unstorable(item, unstorable)]))
        return outcomes

    def _decide_with_retries(self, items: Sequence[Item]) -> list[Outcome]:
        try:
            return self._decide_and_save(items)
        except ConcurrencyConflict as conflict:
            log.info("Batch conflicted (%s); deciding it again", conflict)
            self.drop_cache()
        try:
            return self._decide_and_save(items)
        except ConcurrencyConflict:
            self.drop_cache()
        log.warning("Batch conflicted twice; one transaction per command")
        outcomes: list[Outcome] = []
        for item in items:
            outcomes.extend(self._decide_alone(item))
        return outcomes

    def drop_cache(self) -> None:
        """Forget cached aggregates (on rebalance and on conflict)."""
        repository = self.store.repository
        if isinstance(repository.cache, LRUCache):
            repository.cache = LRUCache(maxsize=repository.cache.maxsize)

    def _decide_alone(self, item: Item) -> list[Outcome]:
        for attempt in range(PER_COMMAND_ATTEMPTS):
            try:
                return self._decide_and_save([item])
            except ConcurrencyConflict:
                self.drop_cache()
                if attempt == PER_COMMAND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _decide_and_save(self, items: Sequence[Item]) -> list[Outcome]:
        try:
            return self._decide_and_save_once(items)
        except BaseException:
            # The batch mutated cached aggregates in place and was not saved.
            self.drop_cache()
            raise

    def _decide_and_save_once(self, items: Sequence[Item]) -> list[Outcome]:
        known = self.recorder.select_processed(i.command_id for i in items if i.rejected is None)
        uow = UnitOfWork(self.store)
        outcomes: list[Outcome] = []
        decided: dict[str, Outcome] = {}
        records: list[tuple[str, bytes]] = []
        for item in items:
            if item.rejected is not None:
                # Wire-level rejections are a function of the bytes: not recorded.
                outcomes.append(self._outcome(item, item.rejected))
            elif item.command_id in known:
                outcomes.append(self._repeat(item, known[item.command_id]))
            elif item.command_id in decided:
                first = decided[item.command_id]
                outcomes.append(self._repeat(item, first.value))
            else:
                with log_ids(command_id=item.command_id, correlation_id=item.correlation_id):
                    outcome = self._outcome(item, self._decide_one(item, uow))
                decided[item.command_id] = outcome
                if not _retry_later(outcome.result):
                    records.append((item.command_id, outcome.value))
                outcomes.append(outcome)
        if records:
            if self.before_save is not None:
                self.before_save(list(decided.values()))
            try:
                self.store.save(*uow.aggregates(), processed_commands=records)
            except (ValueError, TypeError) as error:
                # Serializing an event failed (e.g. a value nested deeper than the
                # serializers go): input the decoder let through, never the database's
                # (PersistenceError). Raised again, it would fail the batch on every
                # redelivery; `decide` finds the command and refuses it instead.
                raise Unstorable(f"{type(error).__name__}: {error}") from error
        return outcomes

    def _decide_one(self, item: Item, uow: UnitOfWork) -> CommandResult:
        command = cast(Command, item.command)
        command_type = command.command_type()
        handler = self.handlers.get(type(command))
        if handler is None:
            return _refusal(
                item,
                command_type,
                "CommandNotHandled",
                f"No handler is registered for command type '{command_type}'",
                501,
            )
        mark = uow.mark()
        context = Context(
            uow=uow,
            now=self.clock(),
            command_id=item.command_id,
            sent_by=item.sent_by,
            adapters=self.adapters,
            run_timeout=self.run_timeout,
            gate=self.gate,
            stored=self.stored,
            unfinished=self.unfinished,
            replay_max_messages=self.replay_max_messages,
            usage=self.usage,
        )
        try:
            decision = handler(command, context)
        except DomainError as error:
            uow.rollback_to(mark)
            refused = rejection(
                error,
                command_id=item.command_id,
                command_type=command_type,
                validation_report=_report_of(error),
            )
            return refused.model_copy(update={"sent_by": item.sent_by})
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as error:
            # A bug must not stop the consumer or poison the partition: answer it.
            log.exception("Handler for %s raised", command_type)
            uow.rollback_to(mark)
            return _refusal(
                item,
                command_type,
                "InternalError",
                f"The {command_type} handler failed: {type(error).__name__}",
                500,
            )
        if item.sent_by is not None:
            uow.stamp(mark, item.sent_by)
        raised = uow.new_events_since(mark)
        version = None
        if decision.aggregate_id is not None:
            aggregate = uow.peek(decision.aggregate_id)
            version = aggregate.version if aggregate is not None else None
        return CommandAccepted(
            command_id=item.command_id,
            command_type=command_type,
            aggregate_id=None if decision.aggregate_id is None else str(decision.aggregate_id),
            aggregate_version=version,
            event_ids=[event_id(str(aid), v) for aid, v in raised],
            reply=decision.reply,
            http_status=decision.http_status,
            sent_by=item.sent_by,
        )

    def _outcome(self, item: Item, result: CommandResult) -> Outcome:
        try:
            value = encode_result(result).value
        except (ValueError, TypeError) as error:  # a reply that cannot be serialized
            raise Unstorable(f"{type(error).__name__}: {error}") from error
        return Outcome(item.command_id, item.correlation_id, result, value)

    def _repeat(self, item: Item, value: bytes) -> Outcome:
        result = _parse_result(value)
        return Outcome(item.command_id, item.correlation_id, result, value, repeated=True)


class Unstorable(Exception):
    """A batch whose events or results could not be serialized."""


def _unstorable(item: Item, error: Unstorable) -> Item:
    """`item` answered with a rejection: deciding it alone could not be serialized."""
    command_type = item.command.command_type() if item.command is not None else "unknown"
    refused = _refusal(
        item,
        command_type,
        "CommandNotStorable",
        f"The {command_type} command's events or result cannot be serialized: {error}",
        400,
    )
    return replace(
        item, command=None, rejected=refused.model_copy(update={"sent_by": item.sent_by})
    )


def _refusal(
    item: Item, command_type: str, error_code: str, message: str, http_status: int
) -> CommandRejected:
    """A rejection of the decider's own (no handler, or a handler's bug), not the domain's."""
    return rejection(
        DomainError(error_code, message, {"command_type": command_type}, http_status=http_status),
        command_id=item.command_id,
        command_type=command_type,
    )


def _retry_later(result: CommandResult) -> bool:
    return isinstance(result, CommandRejected) and result.http_status == RETRY_LATER_STATUS


def _parse_result(value: bytes) -> CommandResult:
    data: dict[str, Any] = orjson.loads(value)
    model = RESULTS["CommandAccepted" if data.get("outcome") == "accepted" else "CommandRejected"]
    return model.model_validate(data)


def _report_of(error: DomainError) -> ValidationReport | None:
    if error.error_code == "ConfigValidationFailed" and isinstance(error.details, dict):
        return ValidationReport.model_validate(error.details)
    return None
