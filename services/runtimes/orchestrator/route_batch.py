"""One batch of a route worker: the records, what became of each, and the pure rules
around them (decoding, lanes, output ids, dead-letter records), kept apart from the
handler in services.runtimes.orchestrator.route_worker so they read on their own.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from contracts.envelope import CE_ID, HeaderMap, KafkaRecord
from contracts.errors import WireError
from contracts.route_messages import (
    CE_EXECUTIONID,
    RouteDeadLetterCode,
    RouteMessage,
    decode_route_message,
    encode_route_dead_letter,
    init_message_id,
    output_message_id,
)
from services.adapters.kafka.engine import Record
from services.adapters.message_store import ToStore
from services.runtimes.orchestrator.execution_info import ExecutionInfo

Infos = Mapping[UUID, ExecutionInfo | None]
LedgerRow = tuple[UUID, str, UUID]
"""(execution id, route, message id)"""


class Fate(StrEnum):
    """What became of one inbound record. Every record gets exactly one."""

    PROCESSED = "processed"  # adapters ran, outputs published, input consumed in the ledger
    FAILED = "failed"  # an adapter failed every attempt: dead-lettered, ledger `failed`
    MALFORMED = "malformed"  # not a route message: dead-lettered
    UNKNOWN = "unknown"  # its execution did not become known in time: dead-lettered
    DUPLICATE = "duplicate"  # this route handled the same message id already: skipped
    FINISHED = "finished"  # its execution is finished (cancelled, timed out, ...): skipped
    FOREIGN = "foreign"  # an execution of another config reading the same topic: skipped


DEAD_LETTERED = frozenset({Fate.FAILED, Fate.MALFORMED, Fate.UNKNOWN})
HANDLED = frozenset({Fate.PROCESSED, Fate.FAILED})  # what the route stores and accounts for


@dataclass(frozen=True)
class RouteScope:
    """Which route of which config a batch belongs to, and who reads its outputs."""

    config_id: UUID
    route_id: str
    consumers_of: Mapping[str, Sequence[str]]  # topic -> the config's routes reading it
    # The config version this worker runs; None runs every version's executions.
    config_version: int | None = None

    def owns(self, info: ExecutionInfo) -> bool:
        """Whether the execution is this worker's: its config, at its version."""
        return info.config_id == self.config_id and (
            self.config_version is None or info.config_version == self.config_version
        )


@dataclass
class Work:
    """One record of the batch and what the worker made of it."""

    record: Record
    message: RouteMessage | None  # None: malformed
    fate: Fate | None = None
    outputs: list[tuple[str, RouteMessage]] = field(default_factory=list)
    error_code: RouteDeadLetterCode | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # A malformed record whose ids could still be read: its ledger row can be failed.
    ids: tuple[UUID, UUID] | None = None

    @property
    def execution_id(self) -> UUID | None:
        if self.message is not None:
            return self.message.execution_id
        return self.ids[0] if self.ids is not None else None

    def settle(
        self,
        fate: Fate,
        *,
        code: RouteDeadLetterCode | None = None,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.fate, self.error_code, self.error = fate, code, error
        self.details = dict(details or {})


def decode(record: Record) -> Work:
    headers = list(record.headers or ())
    try:
        return Work(record, decode_route_message(record.value, headers))
    except WireError as error:
        work = Work(record, None, ids=_readable_ids(headers))
        work.settle(
            Fate.MALFORMED,
            code=RouteDeadLetterCode.MALFORMED_MESSAGE,
            error=error.message,
            details=_as_dict(error.details),
        )
        return work


def execution_id_of(record: Record) -> UUID | None:
    """The record's execution id as its header says (None: none readable), without
    decoding the message (the route pool's dispatch)."""
    ids = _readable_ids(list(record.headers or ()))
    return None if ids is None else ids[0]


def _readable_ids(headers: Sequence[tuple[str, bytes]]) -> tuple[UUID, UUID] | None:
    found = HeaderMap.of(headers)
    try:
        return UUID(found.get(CE_EXECUTIONID) or ""), UUID(found.get(CE_ID) or "")
    except ValueError:
        return None


def _as_dict(details: Any) -> dict[str, Any]:
    if details is None:
        return {}
    return dict(details) if isinstance(details, Mapping) else {"details": details}


def classify(works: Iterable[Work], infos: Infos, scope: RouteScope, grace_s: float) -> None:
    """Settle the records whose execution says to skip or dead-letter them, and repeats of
    a message earlier in the same batch."""
    seen: set[tuple[UUID, UUID]] = set()
    for work in works:
        message = work.message
        if message is None:
            continue
        info = infos[message.execution_id]
        if info is None:
            work.settle(
                Fate.UNKNOWN,
                code=RouteDeadLetterCode.UNKNOWN_EXECUTION,
                error=f"Execution {message.execution_id} is not known (waited {grace_s:g} s)",
                details={"execution_id": str(message.execution_id)},
            )
        elif not scope.owns(info):
            work.fate = Fate.FOREIGN
        elif info.finished:
            work.fate = Fate.FINISHED
        elif (message.execution_id, message.id) in seen:
            work.fate = Fate.DUPLICATE
        seen.add((message.execution_id, message.id))


def expected_rows(works: Iterable[Work], infos: Infos, scope: RouteScope) -> list[LedgerRow]:
    """What the ledger must expect, in the transaction that consumes the batch's inputs:
    each output by every route reading its topic; the init message of each execution the
    batch handled (unless skipped) by its init route, so an execution cannot look drained
    before its init route consumed it; and an init message by this route, which received
    it."""
    rows: set[LedgerRow] = set()
    with_init: set[UUID] = set()  # executions whose init row is in already (one uuid5 each)
    for work in works:
        message = work.message
        if message is None or work.fate not in HANDLED:
            continue
        info = infos[message.execution_id]
        assert info is not None
        if not info.skip_init_message and info.init_route and info.execution_id not in with_init:
            with_init.add(info.execution_id)
            rows.add((message.execution_id, info.init_route, init_message_id(info.execution_id)))
        if message.is_init:
            rows.add((message.execution_id, scope.route_id, message.id))
        for topic, output in work.outputs:
            for route in scope.consumers_of.get(topic, ()):
                rows.add((output.execution_id, route, output.id))
    return sorted(rows)


def consumed_rows(works: Iterable[Work], scope: RouteScope) -> list[LedgerRow]:
    return [
        (w.message.execution_id, scope.route_id, w.message.id)
        for w in works
        if w.fate is Fate.PROCESSED and w.message is not None
    ]


def produced_rows(works: Iterable[Work]) -> list[LedgerRow]:
    """What the batch published, as (execution id, producing route, message id): a route's
    "messages out" (outputs to topics no route of the config reads included)."""
    return [
        (output.execution_id, output.route, output.id)
        for work in works
        if work.fate is Fate.PROCESSED
        for _, output in work.outputs
    ]


def failed_rows(works: Iterable[Work], infos: Infos, scope: RouteScope) -> list[LedgerRow]:
    rows: list[LedgerRow] = []
    for work in works:
        if work.fate is Fate.FAILED and work.message is not None:
            rows.append((work.message.execution_id, scope.route_id, work.message.id))
        elif work.fate is Fate.MALFORMED and work.ids is not None:
            # A malformed message of one of our running executions fails it; otherwise the
            # execution would wait for it forever.
            info = infos.get(work.ids[0])
            if info is not None and scope.owns(info) and not info.finished:
                rows.append((work.ids[0], scope.route_id, work.ids[1]))
    return rows


def stored_items(works: Iterable[Work], inbound_topic: str) -> list[ToStore]:
    """What the batch stores: each handled input (with its error, if it failed) and the
    outputs it produced."""
    items: list[ToStore] = []
    for work in works:
        if work.message is None or work.fate not in HANDLED:
            continue
        items.append(ToStore("in", work.message, inbound_topic, work.error))
        items.extend(ToStore("out", output, topic) for topic, output in work.outputs)
    return items


def lanes(works: Iterable[Work], count: int) -> list[list[Work]]:
    """`count` lanes that may run at once; one execution's messages share a lane, in order."""
    split: list[list[Work]] = [[] for _ in range(max(count, 1))]
    for work in works:
        assert work.message is not None
        split[zlib.crc32(work.message.execution_id.bytes) % len(split)].append(work)
    return [lane for lane in split if lane]


def outputs_of(
    message: RouteMessage,
    route: str,
    outbound: Sequence[str],
    payloads: Sequence[dict[str, Any]],
    stage: int,
) -> list[tuple[str, RouteMessage]]:
    """Every payload to every outbound topic, with ids derived from the input, so a message
    produced again after a crash is the same message."""
    return [
        (
            topic,
            RouteMessage(
                id=output_message_id(message.id, route, topic, index),
                execution_id=message.execution_id,
                route=route,
                payload=payload,
                stage=stage,
                correlation_id=message.correlation_id,
            ),
        )
        for index, payload in enumerate(payloads)
        for topic in outbound
    ]


def dead_letter(work: Work, route: str) -> KafkaRecord:
    assert work.error_code is not None and work.error is not None
    record = work.record
    return encode_route_dead_letter(
        record.value,
        record.key,
        list(record.headers or ()),
        error_code=work.error_code,
        message=work.error,
        details=work.details,
        route=route,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


__all__ = [
    "DEAD_LETTERED",
    "HANDLED",
    "Fate",
    "LedgerRow",
    "RouteScope",
    "Work",
    "classify",
    "consumed_rows",
    "dead_letter",
    "decode",
    "expected_rows",
    "failed_rows",
    "lanes",
    "outputs_of",
    "produced_rows",
    "stored_items",
]
