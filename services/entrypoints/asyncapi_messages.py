"""What the AsyncAPI document says about each message that FastStream cannot express:
the CloudEvents attributes as Kafka headers (contracts.envelope), the Kafka key, the
message's name and content type. Plain JSON Schema, per channel; services.entrypoints.asyncapi sets
it on FastStream's message objects.
"""

from __future__ import annotations

from typing import Any, Final

from contracts.commands import COMMANDS
from contracts.envelope import (
    AUTHTYPE_API_KEY,
    CE_AUTHID,
    CE_AUTHTYPE,
    CE_CAUSATIONID,
    CE_CORRELATIONID,
    CE_ID,
    CE_SEQUENCE,
    CE_SOURCE,
    CE_SPECVERSION,
    CE_SUBJECT,
    CE_TIME,
    CE_TYPE,
    CONTENT_TYPE,
    CORE_HEADERS,
    DLQ_ERROR_CODE,
    DLQ_ERROR_DETAILS,
    DLQ_ERROR_MESSAGE,
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REDRIVEN_FROM,
    JSON_CONTENT_TYPE,
    SPEC_VERSION,
)
from contracts.errors import WireErrorCode
from contracts.results import RESULTS
from contracts.topics import Topics

# FastStream renders Kafka channel bindings at 0.4.0; the message bindings match them.
KAFKA_BINDING_VERSION: Final = "0.4.0"


def _string(description: str, **schema: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **schema}


def _cloudevent_headers(**overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The CloudEvents attributes as Kafka headers (contracts.envelope), UTF-8 text."""
    headers = {
        CE_SPECVERSION: _string("CloudEvents spec version", const=SPEC_VERSION),
        CE_ID: _string("The message id"),
        CE_SOURCE: _string("URI reference of the sender, e.g. `/billing`"),
        CE_TYPE: _string("The message type"),
        CE_TIME: _string("When the message was produced (RFC 3339, UTC)", format="date-time"),
        CONTENT_TYPE: _string("Media type of the value", const=JSON_CONTENT_TYPE),
        CE_CORRELATIONID: _string(
            "The conversation: a command that starts one uses its own id, and its result "
            "and the events it caused carry it on"
        ),
        CE_CAUSATIONID: _string("The id of the message that caused this one"),
    }
    return {**headers, **overrides}


def _headers_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


COMMAND_HEADERS: Final = _headers_schema(
    _cloudevent_headers(
        ce_id=_string(
            "The command id (any unique string; UUIDv7 by default): a command re-sent with "
            "the same id is applied once and answered with the same result"
        ),
        ce_type=_string(
            "The command's name: the value is the command schema of that name",
            enum=list(COMMANDS),
        ),
        **{
            CE_AUTHTYPE: _string(
                "CloudEvents authcontext: what kind of principal sent it (the HTTP API "
                f"writes `{AUTHTYPE_API_KEY}`)"
            ),
            CE_AUTHID: _string(
                "CloudEvents authcontext: the principal (the API key's name); the command's "
                "`sent_by` is this, else `ce_source`"
            ),
            DLQ_REDRIVEN_FROM: _string(
                "On a redriven dead letter (`pipelines dlq redrive`): its DLQ position, "
                "`topic:partition:offset`"
            ),
        },
    ),
    required=[CE_ID, CE_TYPE],
)

RESULT_HEADERS: Final = _headers_schema(
    _cloudevent_headers(
        ce_id=_string("`<command id>/result`"),
        ce_type=_string("The result's kind", enum=list(RESULTS)),
        ce_causationid=_string("The command id"),
    ),
    required=[*CORE_HEADERS, CE_CORRELATIONID, CE_CAUSATIONID],
)

EVENT_HEADERS: Final = _headers_schema(
    _cloudevent_headers(
        ce_id=_string("`<aggregate id>:<version>`, the same on every re-publication"),
        ce_type=_string("The domain event's name (`event_type`), e.g. `StartRequested`"),
        ce_time=_string("The event's time", format="date-time"),
        ce_subject=_string("The aggregate id"),
        ce_sequence=_string("The aggregate version (decimal)", pattern="^[1-9][0-9]*$"),
    ),
    required=[*CORE_HEADERS, CE_SUBJECT, CE_SEQUENCE],
)

DEAD_LETTER_HEADERS: Final = {
    **_headers_schema(
        {
            DLQ_ERROR_CODE: _string(
                "Why it could not be decoded", enum=[code.value for code in WireErrorCode]
            ),
            DLQ_ERROR_MESSAGE: _string("A human-readable reason"),
            DLQ_ERROR_DETAILS: _string("The reason's details, as JSON"),
            DLQ_ORIGINAL_TOPIC: _string("The topic it was read from"),
            DLQ_ORIGINAL_PARTITION: _string("Its partition (decimal)", pattern="^[0-9]+$"),
            DLQ_ORIGINAL_OFFSET: _string("Its offset (decimal)", pattern="^[0-9]+$"),
        },
        required=[DLQ_ERROR_CODE, DLQ_ERROR_MESSAGE, DLQ_ERROR_DETAILS],
    ),
    # The original headers are kept as they were, whatever they were.
    "additionalProperties": True,
}


def _kafka_key(description: str) -> dict[str, Any]:
    return {"kafka": {"key": _string(description), "bindingVersion": KAFKA_BINDING_VERSION}}


def message_facts(topics: Topics) -> dict[str, dict[str, Any]]:
    """Channel address -> the Message Object fields to set: name, summary, headers, the
    Kafka key (a message binding) and content type."""
    return {
        topics.commands: {
            "name": "Command",
            "summary": "A command; `ce_type` names which",
            "headers": COMMAND_HEADERS,
            "bindings": _kafka_key(
                "The aggregate's natural key (`Command.key()`), or the command id for a "
                "command without an aggregate (`ValidateConfig`)"
            ),
            "contentType": JSON_CONTENT_TYPE,
        },
        topics.command_results: {
            "name": "CommandResult",
            "summary": "The answer to one command",
            "headers": RESULT_HEADERS,
            "bindings": _kafka_key("The command id"),
            "contentType": JSON_CONTENT_TYPE,
        },
        topics.events: {
            "name": "LifecycleEvent",
            "summary": "One domain event",
            "headers": EVENT_HEADERS,
            "bindings": _kafka_key("The aggregate id"),
            "contentType": JSON_CONTENT_TYPE,
        },
        topics.commands_dlq: {
            "name": "DeadLetter",
            "summary": "An undecodable command, as received",
            "headers": DEAD_LETTER_HEADERS,
            "bindings": _kafka_key("The original key"),
            "contentType": "application/octet-stream",
        },
    }


__all__ = [
    "COMMAND_HEADERS",
    "DEAD_LETTER_HEADERS",
    "EVENT_HEADERS",
    "KAFKA_BINDING_VERSION",
    "RESULT_HEADERS",
    "message_facts",
]
