"""Generated messages for every command model through the command decoder.

A message either decodes, and then encodes back to the same command, or is refused with a
`WireError` that is structured all the way: a stable error code, a message, JSON details,
the message's command id (or the handler's position id), a dead letter and a rejection
that can be published. Any other exception would stop nothing (the handler catches only
WireError) but fail the batch, again and again: a poison message.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from hypothesis import event, example, given
from hypothesis import strategies as st

from contracts import Command
from contracts.cloudevents import DecodedCommand, decode_command, encode_command, encode_result
from contracts.envelope import CE_ID, DEFAULT_MAX_BYTES, MAX_JSON_DEPTH, HeaderMap
from contracts.errors import WireError, WireErrorCode
from services.runtimes.command_handler import decode_record
from tests.fuzz.commands import MODELS, any_body, bodies
from tests.fuzz.envelopes import TOPIC, RawHeaders, broken, consumed, envelope, json_bytes, values
from tests.fuzz.json_schema import depth
from tests.fuzz.profiles import FUZZ

POSITION: Final = f"{TOPIC}:0:7"  # the id decode_record gives a message without ce_id
# Model validators the JSON Schema cannot say: a body the schema allows may break them.
_CHECKED_BEYOND_THE_SCHEMA: Final = {"ReplayExecution", "ReconcilePipeline"}


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes | None, RawHeaders, int]:
    model: type[Command] = draw(st.sampled_from(MODELS))
    # Mostly the model's own type: an unknown one stops the decoder before the body.
    unknown = draw(st.integers(0, 5)) == 0
    command_type = draw(st.text(max_size=20)) if unknown else model.command_type()
    command_id = draw(st.uuids().map(str))
    value = draw(values(any_body(model)))
    headers = draw(broken(envelope(command_type, command_id)))
    max_bytes = draw(st.sampled_from([DEFAULT_MAX_BYTES] * 4 + [4096, 64]))
    return value, headers, max_bytes


def assert_structured(error: WireError, headers: RawHeaders) -> None:
    assert isinstance(error.error_code, WireErrorCode)
    assert error.message
    assert error.http_status in (400, 413)
    orjson.dumps(error.body().model_dump(mode="json"))  # the details are JSON
    expected_id = HeaderMap.of(headers).get(CE_ID) or POSITION
    assert error.command_id == expected_id


def assert_round_trip(decoded: DecodedCommand) -> None:
    again = encode_command(decoded.command, command_id=decoded.command_id)
    assert decode_command(again.value, again.headers).command == decoded.command


def assert_answerable(value: bytes | None, headers: RawHeaders, max_bytes: int) -> None:
    """What the command handler makes of the record can be published."""
    item, dead_letter = decode_record(consumed(value, headers), max_bytes=max_bytes)
    assert item is not None  # never unanswered: the position stands in for a missing ce_id
    if item.rejected is not None:
        assert dead_letter is not None
        encode_result(item.rejected)
    else:
        assert dead_letter is None and item.command is not None


@FUZZ
@given(messages())
@example((b'{"name": "p"}', envelope("CreatePipeline", "c-1"), DEFAULT_MAX_BYTES))
@example((b'{"name": "p"}', [], DEFAULT_MAX_BYTES))
@example((b'{"name": "p"}', [("ce_id", b"\xff")], DEFAULT_MAX_BYTES))
def test_a_message_is_decoded_or_refused_with_a_structured_wire_error(
    message: tuple[bytes | None, RawHeaders, int],
) -> None:
    value, headers, max_bytes = message
    try:
        decoded = decode_command(value, headers, max_bytes=max_bytes, default_command_id=POSITION)
    except WireError as error:
        event(f"refused: {error.error_code.value}")  # --hypothesis-show-statistics
        assert_structured(error, headers)
    else:
        event(f"decoded: {decoded.command_type}")
        assert_round_trip(decoded)
    assert_answerable(value, headers, max_bytes)


@st.composite
def schema_valid(draw: st.DrawFn) -> tuple[type[Command], dict[str, Any]]:
    model: type[Command] = draw(st.sampled_from(MODELS))
    return model, draw(bodies(model))


@FUZZ
@given(schema_valid())
def test_a_body_its_json_schema_allows_decodes(
    model_body: tuple[type[Command], dict[str, Any]],
) -> None:
    """The published schemas (contracts/schemas) and the decoder agree: what one allows
    the other takes, but for the model validators no JSON Schema can say."""
    model, body = model_body
    headers = envelope(model.command_type(), "c-1")
    try:
        decoded = decode_command(json_bytes(body), headers)
    except WireError as error:
        if error.details.get("reason") == "too_deep":  # the envelope's limit, like its size
            assert depth(body) > MAX_JSON_DEPTH
            return
        assert error.error_code is WireErrorCode.COMMAND_SCHEMA_VIOLATION, error.details
        assert model.command_type() in _CHECKED_BEYOND_THE_SCHEMA, error.details
    else:
        assert type(decoded.command) is model
        assert_round_trip(decoded)
