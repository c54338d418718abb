"""The CloudEvents envelope in Kafka binary content mode: header names, the record a
producer sends and the headers every encoder writes, a dead letter (and the same read
back, and redriven), the attributes a consumer reads back, and the checks every decoder
shares. `contracts.cloudevents` and
`contracts.route_messages` build their encoders and decoders on these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from contracts.errors import WireError, WireErrorCode

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
# CloudEvents' authcontext extension: who caused the message. The HTTP API sends its
# commands with the API key's name (authtype `api_key`).
CE_AUTHTYPE = "ce_authtype"
CE_AUTHID = "ce_authid"
AUTHTYPE_API_KEY = "api_key"
CONTENT_TYPE = "content-type"

# The attributes every message of ours carries, first and in this order.
CORE_HEADERS = (CE_SPECVERSION, CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, CONTENT_TYPE)

COMMAND_SOURCE = "/pipelines/clients"
RESULT_SOURCE = "/pipelines/command-handler"
EVENT_SOURCE = "/pipelines/event-store"

Headers = Iterable[tuple[str, bytes | None]]
Header = tuple[str, str | None]  # a header to write, as text; `None`: leave it out
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
    authtype: str | None = None
    authid: str | None = None

    @property
    def sent_by(self) -> str | None:
        """Who sent the message: its principal (`ce_authid`, an API key's name) when it
        names one, else its `ce_source`."""
        return self.authid or self.source


def rfc3339(moment: datetime) -> str:
    """UTC with a `Z`; a naive datetime is taken as UTC."""
    offset = moment.utcoffset()
    if offset is None:
        moment = moment.replace(tzinfo=UTC)
    elif offset:  # a zero offset (any tzinfo object) formats as +00:00 already
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def message_headers(
    *, id: str, source: str, type: str, time: datetime, extensions: Iterable[Header] = ()
) -> list[tuple[str, bytes]]:
    """A message's headers: `CORE_HEADERS`, then `extensions` in their order; a header
    whose value is `None` is left out."""
    headers = [
        (CE_SPECVERSION, _SPEC_VERSION_BYTES),
        (CE_ID, id.encode()),
        (CE_SOURCE, source.encode()),
        (CE_TYPE, type.encode()),
        (CE_TIME, rfc3339(time).encode()),
        (CONTENT_TYPE, _JSON_CONTENT_TYPE_BYTES),
    ]
    headers.extend((name, value.encode()) for name, value in extensions if value is not None)
    return headers


# Written on every message: encoded once.
_SPEC_VERSION_BYTES: Final = SPEC_VERSION.encode()
_JSON_CONTENT_TYPE_BYTES: Final = JSON_CONTENT_TYPE.encode()


# A dead letter's reason headers, appended after the message's own (`dead_letter`).
DLQ_ERROR_CODE = "dlq_error_code"
DLQ_ERROR_MESSAGE = "dlq_error_message"
DLQ_ERROR_DETAILS = "dlq_error_details"
DLQ_ORIGINAL_TOPIC = "dlq_original_topic"
DLQ_ORIGINAL_PARTITION = "dlq_original_partition"
DLQ_ORIGINAL_OFFSET = "dlq_original_offset"
# Set by the command handler when the value was too large to keep (its size).
DLQ_VALUE_DROPPED = "dlq_value_dropped_bytes"
# Set on a redriven message: the dead letter it was redriven from, `topic:partition:offset`.
DLQ_REDRIVEN_FROM = "dlq_redriven_from"


def dead_letter(
    value: bytes | None,
    key: bytes | None,
    headers: Headers,
    *,
    error_code: str,
    message: str,
    details: Any,
    topic: str | None,
    partition: int | None,
    offset: int | None,
    extensions: Iterable[Header] = (),
) -> KafkaRecord:
    """A message given up on, for a dead-letter topic: key and value byte for byte, its
    headers as they arrived, and the reason appended as `dlq_*` headers (then
    `extensions`); a reason header whose value is `None` is left out."""
    reason: list[Header] = [
        (DLQ_ERROR_CODE, error_code),
        (DLQ_ERROR_MESSAGE, message),
        (DLQ_ERROR_DETAILS, orjson.dumps(details).decode()),
        (DLQ_ORIGINAL_TOPIC, topic),
        (DLQ_ORIGINAL_PARTITION, None if partition is None else str(partition)),
        (DLQ_ORIGINAL_OFFSET, None if offset is None else str(offset)),
        *extensions,
    ]
    kept = [(name, raw if raw is not None else b"") for name, raw in headers]
    return KafkaRecord(
        key=key or b"",
        value=value or b"",
        headers=kept + [(name, text.encode()) for name, text in reason if text is not None],
    )


def split_dead_letter(
    headers: Headers,
) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """A dead letter's headers as (the message's own, as they arrived; its reason, header
    name -> text). The reason is everything from the last `dlq_error_code` on: a message
    that was redriven and failed again keeps the headers of its redrive before it."""
    pairs = [(name, raw if raw is not None else b"") for name, raw in headers]
    starts = [i for i, (name, _) in enumerate(pairs) if name == DLQ_ERROR_CODE]
    cut = starts[-1] if starts else len(pairs)
    reason = {name: raw.decode(errors="replace") for name, raw in pairs[cut:]}
    return pairs[:cut], reason


@dataclass(frozen=True)
class Redrive:
    """A dead letter made a command message again: `record` for the commands topic,
    under `command_id` (its `ce_id`)."""

    record: KafkaRecord
    command_id: str
    command_type: str | None


def redrive(value: bytes | None, key: bytes | None, headers: Headers, *, position: str) -> Redrive:
    """The message a dead letter at `position` (`topic:partition:offset` of the DLQ) was:
    key and value byte for byte, its own headers, and `dlq_redriven_from: position`.

    The command id stays the one the command handler gave it: its `ce_id`, else (a
    message without one) its original position `topic:partition:offset`, which the
    handler uses in its place and which the redrive then writes as `ce_id`. A redriven
    command is therefore the same command however often it is redriven: the handler
    decides it once and answers every repeat with the stored result."""
    own, reason = split_dead_letter(headers)
    own = [(name, raw) for name, raw in own if name != DLQ_REDRIVEN_FROM]
    found = HeaderMap.of(own)
    command_id = found.get(CE_ID)
    extra: list[tuple[str, bytes]] = []
    if not command_id:
        where = (
            reason.get(DLQ_ORIGINAL_TOPIC),
            reason.get(DLQ_ORIGINAL_PARTITION),
            reason.get(DLQ_ORIGINAL_OFFSET),
        )
        command_id = ":".join(part or "" for part in where) if all(where) else position
        extra.append((CE_ID, command_id.encode()))  # the last of a name wins: replaces ""
    extra.append((DLQ_REDRIVEN_FROM, position.encode()))
    return Redrive(
        KafkaRecord(key=key or b"", value=value or b"", headers=[*own, *extra]),
        command_id,
        found.get(CE_TYPE),
    )


@dataclass(frozen=True)
class HeaderMap:
    """Header name (lower case) -> text; for a repeated header the last one wins."""

    text: dict[str, str]
    not_utf8: list[str]

    @classmethod
    def of(cls, headers: Headers) -> HeaderMap:
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


def malformed(message: str, command_id: str | None, **details: Any) -> WireError:
    return WireError(WireErrorCode.MALFORMED_MESSAGE, message, details, command_id=command_id)


def check_envelope(found: HeaderMap, message_id: str | None) -> None:
    if found.not_utf8:
        raise malformed(
            f"Header(s) {', '.join(found.not_utf8)} are not UTF-8 text",
            message_id,
            headers=found.not_utf8,
        )
    spec = found.get(CE_SPECVERSION)
    if spec is not None and spec != SPEC_VERSION:
        raise malformed(
            f"Unsupported CloudEvents specversion '{spec}' (expected '{SPEC_VERSION}')",
            message_id,
            specversion=spec,
        )
    content_type = found.get(CONTENT_TYPE)
    if content_type is not None and content_type.split(";")[0].strip() != JSON_CONTENT_TYPE:
        raise malformed(
            f"Unsupported content-type '{content_type}' (expected '{JSON_CONTENT_TYPE}')",
            message_id,
            content_type=content_type,
        )


def _time(found: HeaderMap, message_id: str | None) -> datetime | None:
    text = found.get(CE_TIME)
    if text is None:
        return None
    try:
        return _datetime.validate_python(text)
    except ValidationError:
        raise malformed(f"ce_time '{text}' is not an RFC 3339 time", message_id) from None


def read_attributes(found: HeaderMap, id: str, type: str) -> CloudEventAttributes:
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
        authtype=found.get(CE_AUTHTYPE),
        authid=found.get(CE_AUTHID),
    )


def json_object(value: bytes | None, message_id: str | None, type: str | None) -> dict[str, Any]:
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
    # Nesting needs an open bracket per level, and counting bytes runs in C: the walk
    # (a third of decoding a command) only happens for values that could be too deep.
    if _open_brackets(value) > MAX_JSON_DEPTH and _depth(parsed) > MAX_JSON_DEPTH:
        raise WireError(
            WireErrorCode.MALFORMED_MESSAGE,
            f"Message value is nested deeper than {MAX_JSON_DEPTH} levels",
            {"reason": "too_deep", "max_depth": MAX_JSON_DEPTH},
            command_id=message_id,
            command_type=type,
        )
    return parsed


# orjson reads up to 1024 levels but writes only 254 and pydantic serializes about 250:
# a deeper value would decode here and then fail to be stored or answered.
MAX_JSON_DEPTH: Final = 128


def _open_brackets(value: bytes) -> int:
    return value.count(b"{") + value.count(b"[")


def _depth(value: object) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


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
