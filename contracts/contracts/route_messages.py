"""Messages that flow between the routes of an execution (docs/orchestrator.md).

They use the same CloudEvents binary mode as every other message of ours: `ce_id` is the
message id, `ce_type` is `RouteMessage`, the value is the payload (a JSON object), the key
is the execution id. Three extensions scope a message to its execution: `ce_executionid`,
`ce_route` (the route that produced it, or `init` for an execution's init message) and
`ce_stage` (the adapter step count it left the producing route at; 0 for init).

Ids are derived, never random: the init message's id from its execution, an output's id
from its input, the producing route, the topic and its index. A message produced again
after a crash is therefore the same message, and the ledger counts it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson

from contracts import envelope
from contracts.errors import WireError

ROUTE_MESSAGE_TYPE: Final = "RouteMessage"
CE_EXECUTIONID: Final = "ce_executionid"
CE_ROUTE: Final = "ce_route"
CE_STAGE: Final = "ce_stage"
INIT_ROUTE: Final = "init"
_NAMESPACE: Final = uuid5(NAMESPACE_URL, "urn:pipeline-service:route-message")


def init_message_id(execution_id: UUID) -> UUID:
    return uuid5(_NAMESPACE, f"{execution_id}/init")


def output_message_id(input_id: UUID, route: str, topic: str, index: int) -> UUID:
    return uuid5(_NAMESPACE, f"{input_id}/{route}/{topic}/{index}")


@dataclass(frozen=True)
class RouteMessage:
    id: UUID
    execution_id: UUID
    route: str
    payload: dict[str, Any]
    stage: int = 0
    correlation_id: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def is_init(self) -> bool:
        return self.route == INIT_ROUTE


def encode_route_message(message: RouteMessage) -> envelope.KafkaRecord:
    return envelope.KafkaRecord(
        key=str(message.execution_id).encode(),
        value=orjson.dumps(message.payload),
        headers=envelope.message_headers(
            id=str(message.id),
            source=f"/pipelines/routes/{message.route}",
            type=ROUTE_MESSAGE_TYPE,
            time=message.time,
            extensions=[
                (CE_EXECUTIONID, str(message.execution_id)),
                (CE_ROUTE, message.route),
                (CE_STAGE, str(message.stage)),
                (envelope.CE_CORRELATIONID, message.correlation_id),
            ],
        ),
    )


def decode_route_message(value: bytes | None, headers: envelope.Headers) -> RouteMessage:
    """The message, or a WireError (MalformedMessage) saying what is wrong with it."""
    found = envelope.HeaderMap.of(headers)
    message_id = found.get(envelope.CE_ID)
    envelope.check_envelope(found, message_id)
    kind = found.get(envelope.CE_TYPE)
    if kind is not None and kind != ROUTE_MESSAGE_TYPE:
        raise envelope.malformed(f"Not a route message: ce_type '{kind}'", message_id, ce_type=kind)
    ids = {name: _uuid(found, name, message_id) for name in (envelope.CE_ID, CE_EXECUTIONID)}
    stage_text = found.get(CE_STAGE) or "0"
    if not (stage_text.isascii() and stage_text.isdigit()):  # not '²', which int() refuses
        raise envelope.malformed(f"{CE_STAGE} '{stage_text}' is not a step count", message_id)
    payload = envelope.json_object(value, message_id, ROUTE_MESSAGE_TYPE)
    time_text = found.get(envelope.CE_TIME)
    try:
        time = datetime.fromisoformat(time_text) if time_text else datetime.now(UTC)
    except ValueError:
        raise envelope.malformed(
            f"ce_time '{time_text}' is not an RFC 3339 time", message_id
        ) from None
    return RouteMessage(
        id=ids[envelope.CE_ID],
        execution_id=ids[CE_EXECUTIONID],
        route=found.get(CE_ROUTE) or INIT_ROUTE,
        payload=payload,
        stage=int(stage_text),
        correlation_id=found.get(envelope.CE_CORRELATIONID),
        time=time,
    )


class RouteDeadLetterCode(StrEnum):
    """Why a route dead-lettered a message (`dlq_error_code`). Stable: match on these."""

    MALFORMED_MESSAGE = "MalformedMessage"  # not a route message (contracts.errors)
    ADAPTER_FAILED = "AdapterFailed"  # an adapter step failed on every attempt
    UNKNOWN_EXECUTION = "UnknownExecution"  # its execution never became known


CE_DLQ_ROUTE: Final = "dlq_route"


def encode_route_dead_letter(
    value: bytes | None,
    key: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    *,
    error_code: RouteDeadLetterCode,
    message: str,
    details: Mapping[str, Any],
    route: str,
    topic: str,
    partition: int,
    offset: int,
) -> envelope.KafkaRecord:
    """A message a route gave up on, for its dead-letter topic: key, value and headers as
    they arrived, plus the same `dlq_*` reason headers as the commands DLQ
    (contracts.cloudevents.encode_dead_letter) and `dlq_route`, the route that gave up."""
    return envelope.dead_letter(
        value,
        key,
        headers,
        error_code=error_code.value,
        message=message,
        details=dict(details),
        topic=topic,
        partition=partition,
        offset=offset,
        extensions=[(CE_DLQ_ROUTE, route)],
    )


def _uuid(found: envelope.HeaderMap, name: str, message_id: str | None) -> UUID:
    text = found.get(name)
    if text is None:
        raise envelope.malformed(f"Route message has no {name} header", message_id, header=name)
    try:
        return UUID(text)
    except ValueError:
        raise envelope.malformed(
            f"{name} '{text}' is not a UUID", message_id, header=name
        ) from None


__all__ = [
    "CE_DLQ_ROUTE",
    "CE_EXECUTIONID",
    "CE_ROUTE",
    "CE_STAGE",
    "INIT_ROUTE",
    "ROUTE_MESSAGE_TYPE",
    "RouteDeadLetterCode",
    "RouteMessage",
    "WireError",
    "decode_route_message",
    "encode_route_dead_letter",
    "encode_route_message",
    "init_message_id",
    "output_message_id",
]
