"""The committed AsyncAPI document (docs/asyncapi.json, .yaml) matches what FastStream
generates from the contracts, and says what the encoders really put on the wire."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from contracts.cloudevents import (
    encode_command,
    encode_dead_letter,
    encode_event,
    encode_result,
)
from contracts.commands import COMMANDS
from contracts.errors import WireError, WireErrorCode
from contracts.events import LifecycleEvent
from contracts.pipeline_commands import StartPipeline
from contracts.results import CommandAccepted, CommandRejected
from contracts.schema import schema_of
from contracts.topics import Topics
from services.entrypoints import asyncapi
from services.entrypoints.cli import app
from services.settings import Settings

DOCUMENT = asyncapi.DOCUMENT
YAML = DOCUMENT.with_suffix(".yaml")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(asyncapi.render_json(asyncapi.specification()))
    return parsed


def message_of(document: dict[str, Any], channel: str) -> dict[str, Any]:
    """The one message of a channel, resolved from components."""
    (reference,) = document["channels"][channel]["messages"].values()
    name = reference["$ref"].rsplit("/", 1)[-1]
    message: dict[str, Any] = document["components"]["messages"][name]
    return message


# --- drift --------------------------------------------------------------------------------


def test_committed_document_matches_the_contracts() -> None:
    stale = asyncapi.drift()
    assert stale == [], (
        f"AsyncAPI document out of date: {[p.name for p in stale]}. "
        "Run `uv run pipelines docs asyncapi` and commit."
    )


def test_yaml_is_the_same_document_as_the_json() -> None:
    assert yaml.safe_load(YAML.read_text()) == orjson.loads(DOCUMENT.read_bytes())


def test_drift_is_detected_and_repaired(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.json"
    shutil.copy(DOCUMENT, target)
    committed = orjson.loads(target.read_bytes())
    del committed["components"]["schemas"]["StartPipeline"]["properties"]["dismiss_error"]
    target.write_bytes(orjson.dumps(committed))  # and no YAML at all

    assert asyncapi.drift(target) == [target, target.with_suffix(".yaml")]
    assert asyncapi.write(target) == [target, target.with_suffix(".yaml")]
    assert asyncapi.drift(target) == []
    assert target.read_bytes() == DOCUMENT.read_bytes()


def test_cli_regenerates_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "out" / "asyncapi.json"

    stale = runner.invoke(app, ["docs", "asyncapi", "--out", str(target), "--check"])
    assert stale.exit_code == 1, stale.output
    assert not target.exists()

    written = runner.invoke(app, ["docs", "asyncapi", "--out", str(target)])
    assert written.exit_code == 0, written.output
    assert f"updated: {target}" in written.output
    assert target.read_bytes() == DOCUMENT.read_bytes()
    assert target.with_suffix(".yaml").read_bytes() == YAML.read_bytes()

    fresh = runner.invoke(app, ["docs", "asyncapi", "--out", str(target), "--check"])
    assert fresh.exit_code == 0, fresh.output


# --- what the document says ---------------------------------------------------------------


def test_channels_are_the_default_topics_of_the_settings(document: dict[str, Any]) -> None:
    default_prefix = Settings.model_fields["topic_prefix"].default
    topics = Topics(prefix=default_prefix)
    assert [c["address"] for c in document["channels"].values()] == list(topics.all())
    actions = {name: op["action"] for name, op in document["operations"].items()}
    assert actions == {
        "commands": "receive",
        "command-results": "send",
        "events": "send",
        "commands-dlq": "send",
    }


def test_another_prefix_moves_every_channel() -> None:
    moved = orjson.loads(asyncapi.render_json(asyncapi.specification(Topics(prefix="acme"))))
    assert [c["address"] for c in moved["channels"].values()] == list(Topics("acme").all())


def test_every_command_is_a_payload_of_the_commands_channel(document: dict[str, Any]) -> None:
    message = message_of(document, "commands")
    payloads = [ref["$ref"].rsplit("/", 1)[-1] for ref in message["payload"]["oneOf"]]
    assert payloads == list(COMMANDS)
    assert message["headers"]["properties"]["ce_type"]["enum"] == list(COMMANDS)
    schemas = document["components"]["schemas"]
    for name, model in COMMANDS.items():
        expected = schema_of(model)
        assert schemas[name]["properties"].keys() == expected["properties"].keys(), name
        assert schemas[name].get("required") == expected.get("required"), name
        assert schemas[name]["additionalProperties"] is False, name


def test_results_events_and_dead_letters_have_their_payloads(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    results = schemas[message_of(document, "command-results")["payload"]["$ref"].split("/")[-1]]
    assert [r["$ref"].split("/")[-1] for r in results["oneOf"]] == [
        "CommandAccepted",
        "CommandRejected",
    ]
    assert results["discriminator"] == "outcome"
    assert message_of(document, "events")["payload"]["$ref"].endswith("/LifecycleEvent")
    dead = message_of(document, "commands-dlq")
    assert schemas[dead["payload"]["$ref"].split("/")[-1]]["format"] == "binary"
    assert dead["contentType"] == "application/octet-stream"


def test_every_message_names_its_key_and_correlation_header(document: dict[str, Any]) -> None:
    for channel in document["channels"]:
        message = message_of(document, channel)
        assert message["bindings"]["kafka"]["key"]["type"] == "string", channel
        assert message["correlationId"]["location"] == "$message.header#/ce_correlationid"


# --- the documented headers are the encoders' headers ----------------------------------------


def header_violations(schema: dict[str, Any], headers: list[tuple[str, bytes]]) -> list[str]:
    """What in `headers` the documented headers schema does not allow (the schemas use
    string types with const, enum, pattern and date-time only)."""
    found = {name: raw.decode() for name, raw in headers}
    problems = [f"missing {name}" for name in schema["required"] if name not in found]
    for name, text in found.items():
        rule = schema["properties"].get(name)
        if rule is None:
            if schema.get("additionalProperties") is not True:
                problems.append(f"undocumented {name}")
            continue
        if "const" in rule and text != rule["const"]:
            problems.append(f"{name}={text!r} is not {rule['const']!r}")
        if "enum" in rule and text not in rule["enum"]:
            problems.append(f"{name}={text!r} not in its enum")
        if "pattern" in rule and not re.search(rule["pattern"], text):
            problems.append(f"{name}={text!r} does not match {rule['pattern']}")
        if rule.get("format") == "date-time":
            datetime.fromisoformat(text)  # raises on a bad time
    return problems


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_command_headers_are_documented(document: dict[str, Any]) -> None:
    schema = message_of(document, "commands")["headers"]
    record = encode_command(StartPipeline(pipeline_name="p1"), time=NOW, causation_id="e-1")
    assert header_violations(schema, record.headers) == []
    assert header_violations(schema, [("ce_type", b"StartPipeline")]) == ["missing ce_id"]
    assert header_violations(schema, [("ce_id", b"1"), ("ce_type", b"Launch")]) == [
        "ce_type='Launch' not in its enum"
    ]


def test_result_headers_are_documented(document: dict[str, Any]) -> None:
    schema = message_of(document, "command-results")["headers"]
    accepted = CommandAccepted(command_id="c-1", command_type="StartPipeline", reply="ok")
    rejected = CommandRejected(
        command_id="c-2", command_type=None, error_code="MissingCommandType", message="no type"
    )
    for result in (accepted, rejected):
        assert header_violations(schema, encode_result(result, time=NOW).headers) == []


def test_event_headers_are_documented(document: dict[str, Any]) -> None:
    schema = message_of(document, "events")["headers"]
    event = LifecycleEvent(
        event_type="StartRequested",
        aggregate_id="a-1",
        aggregate_type="Pipeline",
        version=3,
        time=NOW,
    )
    record = encode_event(event, correlation_id="c-1", causation_id="c-1")
    assert header_violations(schema, record.headers) == []
    assert header_violations(schema, [*record.headers[:-3], ("ce_sequence", b"0")]) == [
        "ce_sequence='0' does not match ^[1-9][0-9]*$"
    ]


def test_dead_letter_headers_are_documented(document: dict[str, Any]) -> None:
    schema = message_of(document, "commands-dlq")["headers"]
    error = WireError(WireErrorCode.MALFORMED_MESSAGE, "not JSON", {"reason": "not_json"})
    record = encode_dead_letter(
        b"{oops", b"p1", [("x-trace", b"t-1")], error, topic="t", partition=0, offset=7
    )
    assert header_violations(schema, record.headers) == []
    assert header_violations(schema, [("x-trace", b"t-1")]) == [
        "missing dlq_error_code",
        "missing dlq_error_message",
        "missing dlq_error_details",
    ]
