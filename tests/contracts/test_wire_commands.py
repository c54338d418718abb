"""The CloudEvents binary-mode wire format of commands: headers, keys, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from contracts import (
    COMMANDS,
    RunStatus,
    StartPipeline,
    UpdateRunStatus,
    ValidateConfig,
    decode_command,
    encode_command,
)
from contracts.command_base import Command
from contracts.envelope import rfc3339
from tests.contracts.samples import AT, RUN_ID, SAMPLES
from tests.contracts.wire_support import COMMAND_HEADERS, headers_of


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
