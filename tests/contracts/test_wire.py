"""The CloudEvents binary-mode wire format: headers, keys, round trips, every WireError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from contracts import (
    COMMANDS,
    DEFAULT_MAX_BYTES,
    CommandAccepted,
    CommandRejected,
    ErrorBody,
    LifecycleEvent,
    RunStatus,
    StartPipeline,
    UpdateRunStatus,
    ValidateConfig,
    ValidationReport,
    WireError,
    WireErrorCode,
    decode_command,
    decode_event,
    decode_result,
    encode_command,
    encode_dead_letter,
    encode_event,
    encode_result,
    event_id,
    rejection,
)
from contracts.cloudevents import KafkaRecord, rfc3339
from contracts.command_base import Command
from contracts.validation import Severity, ValidationIssue
from tests.contracts.samples import AT, RUN_ID, SAMPLES

COMMAND_HEADERS = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "content-type",
    "ce_correlationid",
    "ce_causationid",
]


def headers_of(record: KafkaRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def with_headers(record: KafkaRecord, **changes: str | None) -> list[tuple[str, bytes]]:
    """The record's headers with some replaced (`None` removes one)."""
    names = {("content-type" if n == "content_type" else n): v for n, v in changes.items()}
    kept = [(n, v) for n, v in record.headers if n not in names]
    return kept + [(n, v.encode()) for n, v in names.items() if v is not None]


# --- commands ------------------------------------------------------------------------


@pytest.mark.parametrize(("cmd", "key"), SAMPLES, ids=lambda v: type(v).__name__)
def test_every_command_round_trips(cmd: Command, key: str | None) -> None:
    record = encode_command(cmd, command_id="cmd-1", correlation_id="corr-1", causation_id="ev-1")
    decoded = decode_command(record.value, record.headers)
    assert decoded.command == cmd
    assert type(decoded.command) is type(cmd)
    assert decoded.command_id == "cmd-1"
    assert decoded.command_type == type(cmd).__name__
    assert decoded.correlation_id == "corr-1"
    assert decoded.attributes.causationid == "ev-1"
    # No aggregate (ValidateConfig): the command id is the key.
    assert record.key == (key or "cmd-1").encode()


def test_command_headers_have_the_exact_names_and_values() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    record = encode_command(
        StartPipeline(pipeline_name="p"),
        command_id="c-9",
        correlation_id="corr",
        causation_id="cause",
        source="/billing",
        time=moment,
    )
    assert [name for name, _ in record.headers] == COMMAND_HEADERS
    assert headers_of(record) == {
        "ce_specversion": "1.0",
        "ce_id": "c-9",
        "ce_source": "/billing",
        "ce_type": "StartPipeline",
        "ce_time": "2026-01-02T03:04:05.000006Z",
        "content-type": "application/json",
        "ce_correlationid": "corr",
        "ce_causationid": "cause",
    }
    assert all(isinstance(v, bytes) for _, v in record.headers)


def test_command_value_is_the_models_fields_as_json() -> None:
    record = encode_command(StartPipeline(pipeline_name="p"))
    assert orjson.loads(record.value) == {
        "pipeline_name": "p",
        "initial": "running",
        "bootstrap_policy": "await_approval",
        "dismiss_error": True,
    }


def test_command_defaults_a_fresh_id_that_is_its_own_correlation() -> None:
    first = headers_of(encode_command(StartPipeline(pipeline_name="p")))
    second = headers_of(encode_command(StartPipeline(pipeline_name="p")))
    assert first["ce_id"] != second["ce_id"]
    assert first["ce_correlationid"] == first["ce_id"]
    assert "ce_causationid" not in first


def test_encoding_with_the_same_id_and_time_is_byte_identical() -> None:
    cmd = SAMPLES[0][0]
    a = encode_command(cmd, command_id="x", time=AT)
    b = encode_command(cmd, command_id="x", time=AT)
    assert a == b


def test_generated_ids_are_on_the_wire() -> None:
    # A re-sent record must name the same aggregate: the default id travels in the value.
    record = encode_command(ValidateConfig(document="x"))
    create = next(cmd for cmd, _ in SAMPLES if type(cmd).__name__ == "CreateRun")
    assert "run_id" in orjson.loads(encode_command(create).value)
    assert record.key == headers_of(record)["ce_id"].encode()


def test_naive_and_offset_times_are_written_in_utc() -> None:
    assert rfc3339(datetime(2026, 1, 1, 12)) == "2026-01-01T12:00:00.000000Z"
    plus_two = datetime(2026, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(plus_two) == "2026-01-01T12:00:00.000000Z"


def test_decoding_accepts_any_case_run_status_from_the_wire() -> None:
    value = orjson.dumps({"run_id": str(RUN_ID), "status": "FAILURE"})
    decoded = decode_command(value, [("ce_id", b"c"), ("ce_type", b"UpdateRunStatus")])
    assert isinstance(decoded.command, UpdateRunStatus)
    assert decoded.command.status is RunStatus.FAILURE


def test_headers_without_optional_attributes_decode() -> None:
    # A minimal producer: only id and type (specversion, source, time are optional to us).
    decoded = decode_command(
        b'{"pipeline_name": "p"}', [("ce_id", b"1"), ("ce_type", b"StopPipeline")]
    )
    assert decoded.command == COMMANDS["StopPipeline"].model_validate({"pipeline_name": "p"})
    assert decoded.attributes.time is None


def test_missing_id_uses_the_callers_default() -> None:
    decoded = decode_command(
        b'{"pipeline_name": "p"}', [("ce_type", b"StopPipeline")], default_command_id="t:0:17"
    )
    assert decoded.command_id == "t:0:17"


# --- wire errors ---------------------------------------------------------------------

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


# --- results -------------------------------------------------------------------------

REPORT = ValidationReport.of(
    [
        ValidationIssue(
            severity=Severity.ERROR, code="E103", path="routes.a", message="m", suggestion="s"
        )
    ]
)
RESULTS: list[CommandAccepted | CommandRejected] = [
    CommandAccepted(
        command_id="c1",
        command_type="StartPipeline",
        aggregate_id="01890a5d-ac96-774b-bcce-b302099a8057",
        aggregate_version=3,
        event_ids=["01890a5d-ac96-774b-bcce-b302099a8057:3"],
        reply="Pipeline is starting",
    ),
    CommandAccepted(command_id="c2", command_type="CreateRun", reply={"id": "r"}, http_status=200),
    CommandRejected(
        command_id="c3",
        command_type="CreateConfig",
        error_code="InvalidConfig",
        message="Config validation failed",
        details={"error_count": 1},
        validation_report=REPORT,
    ),
    CommandRejected(
        command_id="c4", command_type=None, error_code="MissingCommandType", message="m"
    ),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: r.command_id)
def test_results_round_trip_keyed_by_command_id(result: CommandAccepted | CommandRejected) -> None:
    record = encode_result(result, correlation_id="corr", time=AT)
    assert record.key == result.command_id.encode()
    headers = headers_of(record)
    assert headers["ce_type"] == type(result).__name__
    assert headers["ce_id"] == f"{result.command_id}/result"
    assert headers["ce_causationid"] == result.command_id
    assert headers["ce_correlationid"] == "corr"
    decoded = decode_result(record.value, record.headers)
    assert decoded.result == result
    assert type(decoded.result) is type(result)


def test_a_result_encodes_byte_for_byte_the_same_again() -> None:
    assert encode_result(RESULTS[0], time=AT) == encode_result(RESULTS[0], time=AT)


def test_accepted_defaults_to_202_and_rejected_to_400() -> None:
    assert CommandAccepted(command_id="c", command_type="T").http_status == 202
    assert (
        CommandRejected(command_id="c", command_type="T", error_code="E", message="m").http_status
        == 400
    )


class _DomainLike:
    """Shaped like domain.errors.DomainError (contracts may not import domain)."""

    error_code = "UnknownPipelineName"
    message = "Unknown pipeline name 'x'"
    details = {"pipeline_name": "x"}
    http_status = 404


def test_rejection_from_an_error_like_or_an_error_body() -> None:
    from_error = rejection(_DomainLike(), command_id="c", command_type="StartPipeline")
    assert (from_error.error_code, from_error.http_status) == ("UnknownPipelineName", 404)
    assert from_error.details == {"pipeline_name": "x"}
    body = ErrorBody(
        message="m", error_code="IllegalPipelineAction", details={"status": "Stopping"}
    )
    from_body = rejection(body, command_id="c", command_type="StartPipeline")
    assert from_body.body() == body and from_body.http_status == 400
    overridden = rejection(body, command_id="c", command_type=None, http_status=503)
    assert overridden.http_status == 503


def test_result_decode_errors() -> None:
    record = encode_result(RESULTS[0])
    with pytest.raises(WireError) as unknown:
        decode_result(record.value, with_headers(record, ce_type="CommandMaybe"))
    with pytest.raises(WireError) as invalid:
        decode_result(b'{"command_id": "c"}', record.headers)
    with pytest.raises(WireError) as no_type:
        decode_result(record.value, with_headers(record, ce_type=None))
    for caught in (unknown, invalid, no_type):
        assert caught.value.error_code is WireErrorCode.MALFORMED_MESSAGE


# --- events --------------------------------------------------------------------------

EVENT = LifecycleEvent(
    event_type="StartRequested",
    aggregate_id="01890a5d-ac96-774b-bcce-b302099a8057",
    aggregate_type="Pipeline",
    version=4,
    time=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
    data={"initial": "running", "nested": {"n": [1, 2]}},
)


def test_event_headers_name_subject_and_sequence() -> None:
    record = encode_event(EVENT, correlation_id="corr", causation_id="cmd")
    assert [n for n, _ in record.headers] == [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "content-type",
        "ce_subject",
        "ce_sequence",
        "ce_correlationid",
        "ce_causationid",
    ]
    headers = headers_of(record)
    assert headers["ce_id"] == event_id(EVENT.aggregate_id, 4) == EVENT.event_id
    assert headers["ce_type"] == "StartRequested"
    assert headers["ce_subject"] == EVENT.aggregate_id
    assert headers["ce_sequence"] == "4"
    assert headers["ce_time"] == "2026-03-01T08:00:00.000000Z"
    assert record.key == EVENT.aggregate_id.encode()


def test_event_round_trips_and_re_encodes_identically() -> None:
    record = encode_event(EVENT)
    assert record == encode_event(EVENT)  # the relay may publish an event twice
    decoded = decode_event(record.value, record.headers)
    assert decoded.event == EVENT
    assert decoded.attributes.sequence == "4"
    assert decoded.attributes.time == EVENT.time


def test_event_decode_refuses_a_bad_body() -> None:
    record = encode_event(EVENT)
    with pytest.raises(WireError) as caught:
        decode_event(b'{"event_type": "X"}', record.headers)
    assert caught.value.error_code is WireErrorCode.MALFORMED_MESSAGE
    assert caught.value.details["errors"]
