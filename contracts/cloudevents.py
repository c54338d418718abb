"""The wire format: every Kafka message is a CloudEvents 1.0 event in Kafka *binary*
content mode. Attributes travel as `ce_*` headers, the value is the model's fields as
JSON (orjson), the Kafka key is the aggregate's key.

Headers, in this order: `ce_specversion` ("1.0"), `ce_id`, `ce_source`, `ce_type`,
`ce_time` (RFC 3339, UTC), `content-type` ("application/json"), then for domain events
`ce_subject` (aggregate id) and `ce_sequence` (aggregate version), then the extensions
`ce_correlationid` and `ce_causationid`.

- command: ce_type = command name, ce_id = command id, key = `Command.key()` or,
  for a command without an aggregate, the command id.
- result: ce_type = `CommandAccepted`/`CommandRejected`, ce_id = `<command id>/result`,
  key = command id, causation = command id.
- event: ce_type = event type, ce_id = `<aggregate id>:<version>`, key = aggregate id.

Everything here is pure: encode and decode functions only (the caller may pass `time`
to make an encoding byte-for-byte repeatable).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from contracts.commands import COMMANDS, Command, new_id
from contracts.errors import WireError, WireErrorCode
from contracts.events import LifecycleEvent
from contracts.results import RESULTS, CommandAccepted, CommandRejected

SPEC_VERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
DEFAULT_MAX_BYTES = 1024 * 1024  # Apache Kafka's default message.max.bytes, about 1 MiB

CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_SOURCE = "ce_source"
CE_TYPE = "ce_type"
CE_TIME = "ce_time"
CE_SUBJECT = "ce_subject"
CE_SEQUENCE = "ce_sequence"
CE_CORRELATIONID = "ce_correlationid"
CE_CAUSATIONID = "ce_causationid"
CONTENT_TYPE = "content-type"

COMMAND_SOURCE = "/pipelines/clients"
RESULT_SOURCE = "/pipelines/command-handler"
EVENT_SOURCE = "/pipelines/event-store"

Headers = Iterable[tuple[str, bytes | None]]
_datetime = TypeAdapter(datetime)


@dataclass(frozen=True)
class KafkaRecord:
    """What to hand a producer: `send(topic, value=r.value, key=r.key, headers=r.headers)`."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode()
        return None


class CloudEventAttributes(BaseModel):
    """The `ce_*` headers of one message, read back."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: str | None = None
    type: str
    specversion: str = SPEC_VERSION
    time: datetime | None = None
    datacontenttype: str | None = None
    subject: str | None = None
    sequence: str | None = None
    correlationid: str | None = None
    causationid: str | None = None


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


# --- encoding --------------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    """UTC with a `Z`; a naive datetime is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _json(model: BaseModel) -> bytes:
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
) -> list[tuple[str, bytes]]:
    pairs: list[tuple[str, str | None]] = [
        (CE_SPECVERSION, SPEC_VERSION),
        (CE_ID, id),
        (CE_SOURCE, source),
        (CE_TYPE, type),
        (CE_TIME, rfc3339(time or datetime.now(UTC))),
        (CONTENT_TYPE, JSON_CONTENT_TYPE),
        (CE_SUBJECT, subject),
        (CE_SEQUENCE, None if sequence is None else str(sequence)),
        (CE_CORRELATIONID, correlation_id),
        (CE_CAUSATIONID, causation_id),
    ]
    return [(name, value.encode()) for name, value in pairs if value is not None]


def encode_command(
    cmd: Command,
    *,
    command_id: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    source: str = COMMAND_SOURCE,
    time: datetime | None = None,
) -> KafkaRecord:
    """A command as a record for the commands topic.

    `command_id` defaults to a fresh UUIDv7: to re-send a command (at-least-once), re-send
    the same record, or encode again with the same `command_id`. A command that starts a
    conversation is its own correlation id; one sent in reaction to an event should pass
    the event's correlation id and the event's id as `causation_id`.
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
        headers=_headers(
            id=result_id(result.command_id),
            source=source,
            type=result.result_type(),
            time=time,
            correlation_id=correlation_id or result.command_id,
            causation_id=result.command_id,
        ),
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
    reason: list[tuple[str, str | None]] = [
        ("dlq_error_code", error.error_code.value),
        ("dlq_error_message", error.message),
        ("dlq_error_details", orjson.dumps(error.details).decode()),
        ("dlq_original_topic", topic),
        ("dlq_original_partition", None if partition is None else str(partition)),
        ("dlq_original_offset", None if offset is None else str(offset)),
    ]
    kept = [(name, raw if raw is not None else b"") for name, raw in headers]
    return KafkaRecord(
        key=key or b"",
        value=value or b"",
        headers=kept + [(name, text.encode()) for name, text in reason if text is not None],
    )


# --- decoding --------------------------------------------------------------------------


@dataclass(frozen=True)
class _HeaderMap:
    """Header name (lower case) -> text; for a repeated header the last one wins."""

    text: dict[str, str]
    not_utf8: list[str]

    @classmethod
    def of(cls, headers: Headers) -> _HeaderMap:
        text: dict[str, str] = {}
        not_utf8: list[str] = []
        for name, raw in headers:
            if raw is None:
                continue
            try:
                text[name.lower()] = raw.decode()
            except UnicodeDecodeError:
                not_utf8.append(name)
        return cls(text, not_utf8)

    def get(self, name: str) -> str | None:
        return self.text.get(name)


def _malformed(message: str, command_id: str | None, **details: Any) -> WireError:
    return WireError(WireErrorCode.MALFORMED_MESSAGE, message, details, command_id=command_id)


def _check_envelope(found: _HeaderMap, message_id: str | None) -> None:
    if found.not_utf8:
        raise _malformed(
            f"Header(s) {', '.join(found.not_utf8)} are not UTF-8 text",
            message_id,
            headers=found.not_utf8,
        )
    spec = found.get(CE_SPECVERSION)
    if spec is not None and spec != SPEC_VERSION:
        raise _malformed(
            f"Unsupported CloudEvents specversion '{spec}' (expected '{SPEC_VERSION}')",
            message_id,
            specversion=spec,
        )
    content_type = found.get(CONTENT_TYPE)
    if content_type is not None and content_type.split(";")[0].strip() != JSON_CONTENT_TYPE:
        raise _malformed(
            f"Unsupported content-type '{content_type}' (expected '{JSON_CONTENT_TYPE}')",
            message_id,
            content_type=content_type,
        )


def _time(found: _HeaderMap, message_id: str | None) -> datetime | None:
    text = found.get(CE_TIME)
    if text is None:
        return None
    try:
        return _datetime.validate_python(text)
    except ValidationError:
        raise _malformed(f"ce_time '{text}' is not an RFC 3339 time", message_id) from None


def _attributes(found: _HeaderMap, id: str, type: str) -> CloudEventAttributes:
    return CloudEventAttributes(
        id=id,
        source=found.get(CE_SOURCE),
        type=type,
        specversion=found.get(CE_SPECVERSION) or SPEC_VERSION,
        time=_time(found, id),
        datacontenttype=found.get(CONTENT_TYPE),
        subject=found.get(CE_SUBJECT),
        sequence=found.get(CE_SEQUENCE),
        correlationid=found.get(CE_CORRELATIONID),
        causationid=found.get(CE_CAUSATIONID),
    )


def _json_object(value: bytes | None, message_id: str | None, type: str | None) -> dict[str, Any]:
    if value is None:
        raise WireError(
            WireErrorCode.MALFORMED_MESSAGE,
            "Message has no value",
            {"reason": "empty"},
            command_id=message_id,
            command_type=type,
        )
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise WireError(
            WireErrorCode.MALFORMED_MESSAGE,
            f"Message value is not JSON: {exc}",
            {"reason": "not_json"},
            command_id=message_id,
            command_type=type,
        ) from None
    if not isinstance(parsed, dict):
        raise WireError(
            WireErrorCode.MALFORMED_MESSAGE,
            f"Message value must be a JSON object, not {_json_kind(parsed)}",
            {"reason": "not_object", "json_type": _json_kind(parsed)},
            command_id=message_id,
            command_type=type,
        )
    return parsed


def _json_kind(value: object) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "boolean"),
        (int, "number"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
    )
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return "null"


def schema_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as plain JSON: loc, msg, type and ctx, without the input
    (an input can be the whole message) or documentation links."""
    errors: list[dict[str, Any]] = orjson.loads(exc.json(include_url=False, include_input=False))
    return errors


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
    found = _HeaderMap.of(headers)
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
    _check_envelope(found, command_id)
    if command_id is None:
        raise _malformed("Message has no ce_id header (the command id)", None, header=CE_ID)
    command_type = found.get(CE_TYPE)
    if not command_type:
        raise WireError(
            WireErrorCode.MISSING_COMMAND_TYPE,
            "Message has no ce_type header naming the command",
            {"header": CE_TYPE},
            command_id=command_id,
        )
    model = COMMANDS.get(command_type)
    if model is None:
        raise WireError(
            WireErrorCode.UNKNOWN_COMMAND_TYPE,
            f"Unknown command type '{command_type}'",
            {"command_type": command_type, "known": sorted(COMMANDS)},
            command_id=command_id,
            command_type=command_type,
        )
    attributes = _attributes(found, command_id, command_type)
    body = _json_object(value, command_id, command_type)
    try:
        command = model.model_validate(body)
    except ValidationError as exc:
        raise WireError(
            WireErrorCode.COMMAND_SCHEMA_VIOLATION,
            f"Message is not a valid {command_type}: {exc.error_count()} error(s)",
            {"command_type": command_type, "errors": schema_errors(exc)},
            command_id=command_id,
            command_type=command_type,
        ) from None
    return DecodedCommand(command=command, attributes=attributes)


def _decode_own(
    value: bytes | None, headers: Headers, kind: str
) -> tuple[dict[str, Any], _HeaderMap, str, str]:
    found = _HeaderMap.of(headers)
    _check_envelope(found, None)
    message_id, message_type = found.get(CE_ID), found.get(CE_TYPE)
    if not message_id or not message_type:
        raise _malformed(f"A {kind} needs ce_id and ce_type headers", None)
    return _json_object(value, None, message_type), found, message_id, message_type


def decode_result(value: bytes | None, headers: Headers) -> DecodedResult:
    """A message from the command-results topic. Raises `WireError(MalformedMessage)`."""
    body, found, message_id, message_type = _decode_own(value, headers, "result")
    model = RESULTS.get(message_type)
    if model is None:
        raise _malformed(f"Unknown result type '{message_type}'", None, type=message_type)
    try:
        result = model.model_validate(body)
    except ValidationError as exc:
        raise _malformed(
            f"Message is not a valid {message_type}", None, errors=schema_errors(exc)
        ) from None
    return DecodedResult(result=result, attributes=_attributes(found, message_id, message_type))


def decode_event(value: bytes | None, headers: Headers) -> DecodedEvent:
    """A message from the events topic. Raises `WireError(MalformedMessage)`."""
    body, found, message_id, message_type = _decode_own(value, headers, "event")
    try:
        event = LifecycleEvent.model_validate(body)
    except ValidationError as exc:
        raise _malformed(
            "Message is not a valid LifecycleEvent", None, errors=schema_errors(exc)
        ) from None
    return DecodedEvent(event=event, attributes=_attributes(found, message_id, message_type))
