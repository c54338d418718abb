"""The wire format: every Kafka message is a CloudEvents 1.0 event in Kafka *binary*
content mode. Attributes travel as `ce_*` headers, the value is the model's fields as
JSON (orjson), the Kafka key is the aggregate's key.

Headers, in this order: `ce_specversion` ("1.0"), `ce_id`, `ce_source`, `ce_type`,
`ce_time` (RFC 3339, UTC), `content-type` ("application/json"), then for domain events
`ce_subject` (aggregate id) and `ce_sequence` (aggregate version), then the extensions
`ce_correlationid` and `ce_causationid` and, on a command sent over HTTP, the authcontext
extension's `ce_authtype` (`api_key`) and `ce_authid` (the key's name), and last, on a
command sent while tracing, `traceparent` (W3C trace context, the OpenTelemetry way).

- command: ce_type = command name, ce_id = command id, key = `Command.key()` or,
  for a command without an aggregate, the command id.
- result: ce_type = `CommandAccepted`/`CommandRejected`, ce_id = `<command id>/result`,
  key = command id, causation = command id.
- event: ce_type = event type, ce_id = `<aggregate id>:<version>`, key = aggregate id.

The envelope itself (header names, KafkaRecord, attributes) is `contracts.envelope`.
Everything here is pure: encode and decode functions only (the caller may pass `time`
to make an encoding byte-for-byte repeatable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from contracts.commands import COMMANDS, Command, new_id
from contracts.envelope import (
    AUTHTYPE_API_KEY,
    CE_AUTHID,
    CE_AUTHTYPE,
    CE_CAUSATIONID,
    CE_CORRELATIONID,
    CE_ID,
    CE_SEQUENCE,
    CE_SUBJECT,
    CE_TYPE,
    COMMAND_SOURCE,
    DEFAULT_MAX_BYTES,
    EVENT_SOURCE,
    RESULT_SOURCE,
    CloudEventAttributes,
    HeaderMap,
    Headers,
    KafkaRecord,
    check_envelope,
    dead_letter,
    json_object,
    malformed,
    message_headers,
    read_attributes,
    schema_errors,
)
from contracts.errors import WireError, WireErrorCode
from contracts.events import LifecycleEvent
from contracts.results import RESULTS, CommandAccepted, CommandRejected

TRACEPARENT = "traceparent"  # W3C trace context (https://www.w3.org/TR/trace-context/)


@dataclass(frozen=True)
class DecodedCommand:
    command: Command
    attributes: CloudEventAttributes

    @property
    def command_id(self) -> str:
        return self.attributes.id

    @property
    def command_type(self) -> str:
        return self.attributes.type

    @property
    def correlation_id(self) -> str | None:
        return self.attributes.correlationid


@dataclass(frozen=True)
class DecodedResult:
    result: CommandAccepted | CommandRejected
    attributes: CloudEventAttributes


@dataclass(frozen=True)
class DecodedEvent:
    event: LifecycleEvent
    attributes: CloudEventAttributes


# --- encoding ---------------------------------------------------------------------------


def _json(model: BaseModel) -> bytes:
    # orjson, not pydantic-core's writer (which is a little faster): orjson refuses an
    # integer past 64 bits, which is where every consumer of our JSON stops too, so such a
    # value is refused where it enters instead of poisoning whoever reads it later.
    return orjson.dumps(model.model_dump(mode="json"))


def _headers(
    *,
    id: str,
    source: str,
    type: str,
    time: datetime | None,
    subject: str | None = None,
    sequence: int | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    api_key: str | None = None,
    traceparent: str | None = None,
) -> list[tuple[str, bytes]]:
    return message_headers(
        id=id,
        source=source,
        type=type,
        time=time or datetime.now(UTC),
        extensions=[
            (CE_SUBJECT, subject),
            (CE_SEQUENCE, None if sequence is None else str(sequence)),
            (CE_CORRELATIONID, correlation_id),
            (CE_CAUSATIONID, causation_id),
            (CE_AUTHTYPE, None if api_key is None else AUTHTYPE_API_KEY),
            (CE_AUTHID, api_key),
            (TRACEPARENT, traceparent),
        ],
    )


def encode_command(
    cmd: Command,
    *,
    command_id: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    source: str = COMMAND_SOURCE,
    time: datetime | None = None,
    api_key: str | None = None,
    traceparent: str | None = None,
) -> KafkaRecord:
    """A command as a record for the commands topic.

    `command_id` defaults to a fresh UUIDv7: to re-send a command (at-least-once), re-send
    the same record, or encode again with the same `command_id`. A command that starts a
    conversation is its own correlation id; one sent in reaction to an event should pass
    the event's correlation id and the event's id as `causation_id`. `api_key` names the
    key a request came with (`ce_authtype: api_key`, `ce_authid`: the command's sender).
    `traceparent` names the sender's span, which the handler's span of the command continues.
    """
    command_id = command_id or str(new_id())
    return KafkaRecord(
        key=(cmd.key() or command_id).encode(),
        value=_json(cmd),
        headers=_headers(
            id=command_id,
            source=source,
            type=cmd.command_type(),
            time=time,
            correlation_id=correlation_id or command_id,
            causation_id=causation_id,
            api_key=api_key,
            traceparent=traceparent,
        ),
    )


def result_id(command_id: str) -> str:
    return f"{command_id}/result"


def encode_result(
    result: CommandAccepted | CommandRejected,
    *,
    correlation_id: str | None = None,
    source: str = RESULT_SOURCE,
    time: datetime | None = None,
) -> KafkaRecord:
    """A result as a record for the command-results topic, keyed by command id.

    Pass the command's correlation id so the conversation can be followed.
    """
    return KafkaRecord(
        key=result.command_id.encode(),
        value=_json(result),
        headers=result_headers(result, correlation_id=correlation_id, source=source, time=time),
    )


def result_headers(
    result: CommandAccepted | CommandRejected,
    *,
    correlation_id: str | None = None,
    source: str = RESULT_SOURCE,
    time: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """`encode_result`'s headers alone, for a value already encoded (a stored result)."""
    return _headers(
        id=result_id(result.command_id),
        source=source,
        type=result.result_type(),
        time=time,
        correlation_id=correlation_id or result.command_id,
        causation_id=result.command_id,
    )


def encode_event(
    event: LifecycleEvent,
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    source: str = EVENT_SOURCE,
) -> KafkaRecord:
    """A published domain event, keyed by aggregate id; `ce_time` is the event's time."""
    return KafkaRecord(
        key=event.key().encode(),
        value=_json(event),
        headers=_headers(
            id=event.event_id,
            source=source,
            type=event.event_type,
            time=event.time,
            subject=event.aggregate_id,
            sequence=event.version,
            correlation_id=correlation_id,
            causation_id=causation_id,
        ),
    )


def encode_dead_letter(
    value: bytes | None,
    key: bytes | None,
    headers: Headers,
    error: WireError,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> KafkaRecord:
    """An undecodable message for the DLQ: key and value byte for byte, its headers kept,
    and the reason appended as `dlq_*` headers."""
    return dead_letter(
        value,
        key,
        headers,
        error_code=error.error_code.value,
        message=error.message,
        details=error.details,
        topic=topic,
        partition=partition,
        offset=offset,
    )


# --- decoding ---------------------------------------------------------------------------


def decode_command(
    value: bytes | None,
    headers: Headers,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    default_command_id: str | None = None,
) -> DecodedCommand:
    """A message from the commands topic, checked in this order: size, envelope, command
    id, type, JSON, schema. Raises `WireError`; its `command_id` is the message's `ce_id`
    whenever the message had one, so even a bad message can be answered.

    `default_command_id` is used when `ce_id` is missing; pass one derived from the
    message's position (topic, partition, offset) so a redelivery gets the same id.
    """
    headers = list(headers)
    found = HeaderMap.of(headers)
    command_id = found.get(CE_ID) or default_command_id
    size = len(value or b"") + sum(len(k) + len(v or b"") for k, v in headers)
    if size > max_bytes:
        raise WireError(
            WireErrorCode.MESSAGE_TOO_LARGE,
            f"Message of {size} bytes exceeds the limit of {max_bytes} bytes",
            {"size": size, "max_bytes": max_bytes},
            command_id=command_id,
            command_type=found.get(CE_TYPE),
        )
    check_envelope(found, command_id)
    if command_id is None:
        raise malformed("Message has no ce_id header (the command id)", None, header=CE_ID)
    command_type = found.get(CE_TYPE)
    if not command_type:
        raise WireError(
            WireErrorCode.MISSING_COMMAND_TYPE,
            "Message has no ce_type header naming the command",
            {"header": CE_TYPE},
            command_id=command_id,
        )

    def refused(code: WireErrorCode, message: str, **details: Any) -> WireError:
        # From here on, every refusal names the command's id and type.
        details = {"command_type": command_type, **details}
        return WireError(code, message, details, command_id=command_id, command_type=command_type)

    model = COMMANDS.get(command_type)
    if model is None:
        message = f"Unknown command type '{command_type}'"
        raise refused(WireErrorCode.UNKNOWN_COMMAND_TYPE, message, known=sorted(COMMANDS))
    attributes = read_attributes(found, command_id, command_type)
    body = json_object(value, command_id, command_type)
    try:
        command = model.model_validate(body)
    except ValidationError as exc:
        message = f"Message is not a valid {command_type}: {exc.error_count()} error(s)"
        errors = schema_errors(exc)
        raise refused(WireErrorCode.COMMAND_SCHEMA_VIOLATION, message, errors=errors) from None
    return DecodedCommand(command=command, attributes=attributes)


def _decode_own(
    value: bytes | None, headers: Headers, kind: str
) -> tuple[dict[str, Any], HeaderMap, str, str]:
    found = HeaderMap.of(headers)
    check_envelope(found, None)
    message_id, message_type = found.get(CE_ID), found.get(CE_TYPE)
    if not message_id or not message_type:
        raise malformed(f"A {kind} needs ce_id and ce_type headers", None)
    return json_object(value, None, message_type), found, message_id, message_type


def decode_result(value: bytes | None, headers: Headers) -> DecodedResult:
    """A message from the command-results topic. Raises `WireError(MalformedMessage)`."""
    body, found, message_id, message_type = _decode_own(value, headers, "result")
    model = RESULTS.get(message_type)
    if model is None:
        raise malformed(f"Unknown result type '{message_type}'", None, type=message_type)
    try:
        result = model.model_validate(body)
    except ValidationError as exc:
        raise malformed(
            f"Message is not a valid {message_type}", None, errors=schema_errors(exc)
        ) from None
    return DecodedResult(result=result, attributes=read_attributes(found, message_id, message_type))


def decode_event(value: bytes | None, headers: Headers) -> DecodedEvent:
    """A message from the events topic. Raises `WireError(MalformedMessage)`."""
    body, found, message_id, message_type = _decode_own(value, headers, "event")
    try:
        event = LifecycleEvent.model_validate(body)
    except ValidationError as exc:
        raise malformed(
            "Message is not a valid LifecycleEvent", None, errors=schema_errors(exc)
        ) from None
    return DecodedEvent(event=event, attributes=read_attributes(found, message_id, message_type))
