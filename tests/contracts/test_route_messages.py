"""Route messages: the envelope round-trips, ids are derived, and every malformed
message is refused with a MalformedMessage saying what is wrong."""

from __future__ import annotations

from uuid import uuid4

import pytest

from contracts.envelope import CE_ID, CE_TYPE
from contracts.errors import WireError, WireErrorCode
from contracts.route_messages import (
    CE_EXECUTIONID,
    CE_STAGE,
    RouteMessage,
    decode_route_message,
    encode_route_message,
    init_message_id,
    output_message_id,
)


def _message(**changes: object) -> RouteMessage:
    execution_id = uuid4()
    values: dict[str, object] = {
        "id": init_message_id(execution_id),
        "execution_id": execution_id,
        "route": "init",
        "payload": {"order": {"id": 7}},
        "correlation_id": "corr-1",
    }
    values.update(changes)
    return RouteMessage(**values)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    message = _message(route="enrich", stage=2)
    record = encode_route_message(message)
    assert record.key == str(message.execution_id).encode()
    assert decode_route_message(record.value, record.headers) == message


def test_ids_are_derived_not_random() -> None:
    execution_id, input_id = uuid4(), uuid4()
    assert init_message_id(execution_id) == init_message_id(execution_id)
    assert init_message_id(execution_id) != init_message_id(uuid4())
    first = output_message_id(input_id, "a", "t", 0)
    assert first == output_message_id(input_id, "a", "t", 0)
    others = {
        output_message_id(input_id, "b", "t", 0),
        output_message_id(input_id, "a", "u", 0),
        output_message_id(input_id, "a", "t", 1),
    }
    assert first not in others and len(others) == 3


def _replace(
    headers: list[tuple[str, bytes]], name: str, value: bytes | None
) -> list[tuple[str, bytes]]:
    kept = [(key, raw) for key, raw in headers if key != name]
    return kept if value is None else [*kept, (name, value)]


@pytest.mark.parametrize(
    ("header", "value", "fragment"),
    [
        (CE_EXECUTIONID, None, "no ce_executionid"),
        (CE_EXECUTIONID, b"nope", "is not a UUID"),
        (CE_ID, None, "no ce_id"),
        (CE_STAGE, b"-1", "is not a step count"),
        (CE_TYPE, b"StartPipeline", "Not a route message"),
        ("content-type", b"text/plain", "Unsupported content-type"),
    ],
)
def test_malformed_headers_are_refused(header: str, value: bytes | None, fragment: str) -> None:
    record = encode_route_message(_message())
    with pytest.raises(WireError) as caught:
        decode_route_message(record.value, _replace(record.headers, header, value))
    assert caught.value.error_code is WireErrorCode.MALFORMED_MESSAGE
    assert fragment in str(caught.value)


@pytest.mark.parametrize("value", [None, b"not json", b"[1]"])
def test_a_value_that_is_not_a_json_object_is_refused(value: bytes | None) -> None:
    record = encode_route_message(_message())
    with pytest.raises(WireError) as caught:
        decode_route_message(value, record.headers)
    assert caught.value.error_code is WireErrorCode.MALFORMED_MESSAGE
