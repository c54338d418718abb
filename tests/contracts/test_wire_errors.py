"""Every WireError a command can be refused with on the wire, its rejection, and the dead
letter an undecodable command becomes."""

from __future__ import annotations

import orjson
import pytest

from contracts import (
    DEFAULT_MAX_BYTES,
    StartPipeline,
    WireError,
    WireErrorCode,
    decode_command,
    encode_command,
    encode_dead_letter,
    rejection,
)
from contracts.envelope import KafkaRecord
from tests.contracts.wire_support import headers_of, with_headers

GOOD = encode_command(StartPipeline(pipeline_name="p"), command_id="cmd-7")


def decode_error(
    value: bytes | None, headers: list[tuple[str, bytes]], max_bytes: int = DEFAULT_MAX_BYTES
) -> WireError:
    with pytest.raises(WireError) as caught:
        decode_command(value, headers, max_bytes=max_bytes)
    return caught.value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b"null", "not_object"),
        (None, "empty"),
    ],
)
def test_malformed_value(value: bytes | None, reason: str) -> None:
    error = decode_error(value, GOOD.headers)
    assert error.error_code is WireErrorCode.MALFORMED_MESSAGE
    assert error.details["reason"] == reason
    assert error.command_id == "cmd-7"
    assert error.command_type == "StartPipeline"
    assert error.http_status == 400


@pytest.mark.parametrize(
    "headers",
    [
        with_headers(GOOD, ce_specversion="0.3"),
        with_headers(GOOD, content_type="application/xml"),
        with_headers(GOOD, ce_time="yesterday"),
        [*GOOD.headers, ("ce_source", b"\xff")],
    ],
    ids=["specversion", "content-type", "time", "not-utf8"],
)
def test_malformed_envelope_keeps_the_command_id(headers: list[tuple[str, bytes]]) -> None:
    error = decode_error(GOOD.value, headers)
    assert error.error_code is WireErrorCode.MALFORMED_MESSAGE
    assert error.command_id == "cmd-7"


def test_content_type_parameters_are_allowed() -> None:
    headers = with_headers(GOOD, content_type="application/json; charset=utf-8")
    assert decode_command(GOOD.value, headers).command_id == "cmd-7"


def test_missing_id_without_default_is_malformed() -> None:
    error = decode_error(GOOD.value, with_headers(GOOD, ce_id=None))
    assert error.error_code is WireErrorCode.MALFORMED_MESSAGE
    assert error.command_id is None


@pytest.mark.parametrize("type_value", [None, ""])
def test_missing_command_type(type_value: str | None) -> None:
    error = decode_error(GOOD.value, with_headers(GOOD, ce_type=type_value))
    assert error.error_code is WireErrorCode.MISSING_COMMAND_TYPE
    assert error.command_id == "cmd-7"


@pytest.mark.parametrize("type_value", ["LaunchRocket", "startpipeline", "Command"])
def test_unknown_command_type(type_value: str) -> None:
    error = decode_error(GOOD.value, with_headers(GOOD, ce_type=type_value))
    assert error.error_code is WireErrorCode.UNKNOWN_COMMAND_TYPE
    assert error.command_type == type_value
    assert error.details["command_type"] == type_value
    assert error.command_id == "cmd-7"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["pipeline_name"]),
        ({"pipeline_name": 42}, ["pipeline_name"]),
        ({"pipeline_name": "p", "initial": "sprinting"}, ["initial"]),
        ({"pipeline_name": "p", "extra": True}, ["extra"]),
    ],
)
def test_schema_violation_lists_pydantic_errors_as_json(
    body: dict[str, object], loc: list[str]
) -> None:
    error = decode_error(orjson.dumps(body), GOOD.headers)
    assert error.error_code is WireErrorCode.COMMAND_SCHEMA_VIOLATION
    assert error.command_id == "cmd-7"
    errors = error.details["errors"]
    assert [e["loc"] for e in errors] == [loc]
    assert {"type", "msg"} <= errors[0].keys()
    assert "input" not in errors[0] and "url" not in errors[0]
    orjson.dumps(error.details)  # JSON-safe, or this raises


def test_schema_violation_details_keep_context_and_stay_json_safe() -> None:
    headers = with_headers(GOOD, ce_type="UpdateRunStatus")
    body = {"run_id": "not-a-uuid", "status": "nope", "at": "yesterday"}
    error = decode_error(orjson.dumps(body), headers)
    assert error.error_code is WireErrorCode.COMMAND_SCHEMA_VIOLATION
    errors = error.details["errors"]
    assert {tuple(e["loc"]) for e in errors} == {("run_id",), ("status",), ("at",)}
    assert any("ctx" in e for e in errors)
    assert orjson.loads(orjson.dumps(error.details)) == error.details


def test_message_too_large_is_checked_first() -> None:
    big = b"{" + b" " * 2000 + b"}"
    error = decode_error(big, GOOD.headers, max_bytes=1024)
    assert error.error_code is WireErrorCode.MESSAGE_TOO_LARGE
    assert error.http_status == 413
    assert error.details["max_bytes"] == 1024
    assert error.details["size"] > 2000
    assert error.command_id == "cmd-7"


def test_the_size_limit_counts_headers_too() -> None:
    size = len(GOOD.value) + sum(len(k) + len(v) for k, v in GOOD.headers)
    assert decode_command(GOOD.value, GOOD.headers, max_bytes=size).command_id == "cmd-7"
    error = decode_error(GOOD.value, GOOD.headers, max_bytes=size - 1)
    assert error.error_code is WireErrorCode.MESSAGE_TOO_LARGE


def test_wire_error_becomes_a_rejection() -> None:
    error = decode_error(GOOD.value, with_headers(GOOD, ce_type="LaunchRocket"))
    rejected = rejection(error, command_id="cmd-7", command_type=error.command_type)
    assert rejected.error_code == "UnknownCommandType"
    assert rejected.http_status == 400
    assert rejected.body() == error.body()


def test_dead_letter_keeps_bytes_and_adds_the_reason() -> None:
    raw_headers = with_headers(GOOD, ce_type="LaunchRocket")
    error = decode_error(b"\x00garbage", raw_headers)
    dlq = encode_dead_letter(
        b"\x00garbage", b"k", raw_headers, error, topic="pipelines.commands", partition=3, offset=9
    )
    assert (dlq.key, dlq.value) == (b"k", b"\x00garbage")
    assert dlq.headers[: len(raw_headers)] == raw_headers
    reason = headers_of(KafkaRecord(b"", b"", dlq.headers[len(raw_headers) :]))
    assert reason == {
        "dlq_error_code": "UnknownCommandType",
        "dlq_error_message": "Unknown command type 'LaunchRocket'",
        "dlq_error_details": orjson.dumps(error.details).decode(),
        "dlq_original_topic": "pipelines.commands",
        "dlq_original_partition": "3",
        "dlq_original_offset": "9",
    }
