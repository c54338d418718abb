"""A dead letter read back and made a command message again (contracts.envelope):
byte for byte, under the command id the handler gave it, however often it comes back."""

from __future__ import annotations

from contracts.cloudevents import decode_command, encode_command, encode_dead_letter
from contracts.envelope import CE_ID, DLQ_REDRIVEN_FROM, HeaderMap, redrive, split_dead_letter
from contracts.errors import WireError, WireErrorCode
from contracts.pipeline_commands import StopPipeline

ORIGIN = ("pipelines.commands", 1, 42)


def dead(value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    error = WireError(WireErrorCode.UNKNOWN_COMMAND_TYPE, "Unknown command type", {})
    topic, partition, offset = ORIGIN
    letter = encode_dead_letter(
        value, key, headers, error, topic=topic, partition=partition, offset=offset
    )
    assert (letter.value, letter.key) == (value, key)
    return letter.headers


def test_a_redriven_command_keeps_its_bytes_and_its_id() -> None:
    record = encode_command(StopPipeline(pipeline_name="p"), command_id="c-1")
    headers = dead(record.value, record.key, record.headers)
    own, reason = split_dead_letter(headers)
    assert own == record.headers
    assert reason["dlq_error_code"] == "UnknownCommandType"

    again = redrive(record.value, record.key, headers, position="pipelines.commands.dlq:0:5")
    assert (again.command_id, again.command_type) == ("c-1", "StopPipeline")
    assert (again.record.value, again.record.key) == (record.value, record.key)
    assert again.record.headers == [
        *record.headers,
        (DLQ_REDRIVEN_FROM, b"pipelines.commands.dlq:0:5"),
    ]
    assert decode_command(again.record.value, again.record.headers).command_id == "c-1"


def test_one_without_a_command_id_gets_the_one_its_first_position_gave_it_for_good() -> None:
    record = encode_command(StopPipeline(pipeline_name="p"))
    no_id = [(name, raw) for name, raw in record.headers if name != CE_ID]
    first = redrive(
        record.value, record.key, dead(record.value, record.key, no_id), position="d:0:1"
    )
    assert first.command_id == "pipelines.commands:1:42"
    # Undecodable again: back on the DLQ with a reason of its own, redriven once more.
    back = encode_dead_letter(
        first.record.value,
        first.record.key,
        first.record.headers,
        WireError(WireErrorCode.MALFORMED_MESSAGE, "still bad", {}),
        topic="pipelines.commands",
        partition=0,
        offset=99,
    )
    second = redrive(back.value, back.key, back.headers, position="d:1:7")
    assert second.command_id == first.command_id
    found = HeaderMap.of(second.record.headers)
    assert (found.get(CE_ID), found.get(DLQ_REDRIVEN_FROM)) == (first.command_id, "d:1:7")
    # No reason and no earlier redrive mark is carried along: only the message's own.
    names = [name for name, _ in second.record.headers]
    assert names.count(DLQ_REDRIVEN_FROM) == 1 and not any(n.startswith("dlq_e") for n in names)
