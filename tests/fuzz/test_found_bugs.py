"""What the fuzzers found, pinned as plain examples (each was a bug; every one fixed, here or in
`contracts`).

1. Config documents (YAML text) that crashed the validator instead of being reported:
   an alias inside the node it names, nesting deeper than the parsers recurse, values
   JSON has no word for (binary, sets, NaN, integers beyond 64 bits) which then could
   not be stored; and mappings nested deeper than the serializers go.
2. A command whose events the store cannot serialize (a value nested ~260 levels deep in
   `runtime_config`, `init_payload_overrides`, `run_facets`, ...) failed the whole batch
   on every redelivery: a poison message. It is now refused alone (CommandNotStorable).
3. A run created in year 9999 had a deadline past `datetime.max`: deciding its timeout
   raised OverflowError (an InternalError answer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from contracts.cloudevents import decode_command, encode_command
from contracts.commands import CreatePipeline, RecordRunEvent, ValidateConfig
from contracts.errors import WireError
from contracts.orchestrator_commands import DecideExecution, ExecutionDecision
from contracts.route_messages import decode_route_message
from domain.adapters import BUILTIN_ADAPTERS
from domain.validation import validate_config
from services.adapters.stores import open_command_store
from services.service_layer.decider import Decider, Item
from tests.domain.config_documents import MAP_STEP, one_route_document
from tests.fuzz.envelopes import envelope, json_bytes
from tests.fuzz.json_schema import nested
from tests.service_layer.decider_support import accepted, decide, opened_decider, rejected

PAYLOAD = "version: '1'\nroutes: {}\ninit_message: {route: r, payload: {v: %s}}"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a: &a [*a]", "refers to a node that contains it"),
        ("&a {x: *a}", "refers to a node that contains it"),
        ("x: " + "[" * 1_500 + "]" * 1_500, "nested too deeply"),
        (PAYLOAD % "!!binary aGk=", "init_message.payload.v is not JSON data: bytes"),
        (PAYLOAD % "!!set {a}", "is not JSON data: set"),
        (PAYLOAD % ".nan", "is not JSON data"),
        (PAYLOAD % "1234567890123456789012345", "is not JSON data"),
    ],
)
def test_yaml_that_is_no_json_data_is_reported_not_raised(text: str, says: str) -> None:
    report, doc = validate_config(text, BUILTIN_ADAPTERS)
    assert doc is None and not report.is_valid
    (found,) = report.issues
    assert found.code == "E001" and says in found.message


def test_a_yaml_date_is_kept_as_its_iso_text() -> None:
    from domain.validation import parse_document

    data, issues = parse_document(PAYLOAD % "2020-01-01")
    assert issues == [] and data is not None
    assert data["init_message"]["payload"] == {"v": "2020-01-01"}


def test_a_mapping_nested_deeper_than_the_serializers_go_is_reported() -> None:
    document: dict[str, Any] = one_route_document([MAP_STEP])
    document["init_message"]["payload"] = nested(300)
    report, doc = validate_config(document, BUILTIN_ADAPTERS)
    assert doc is None
    (found,) = report.issues
    assert found.code == "E001" and "deeper than 64 levels" in found.message


@pytest.fixture
def decider(sqlite_url: str) -> Iterator[Decider]:
    with opened_decider(sqlite_url) as d:
        yield d


def test_a_command_whose_events_cannot_be_stored_is_refused_alone(
    decider: Decider, sqlite_url: str
) -> None:
    unstorable = CreatePipeline(name="deep", runtime_config=nested(300))
    first, refused, after = decide(
        decider, CreatePipeline(name="p1"), unstorable, CreatePipeline(name="p2")
    )
    assert accepted(first).http_status == accepted(after).http_status == 201
    assert rejected(refused).error_code == "CommandNotStorable"
    assert refused.http_status == 400
    # Answered the same again, and the store holds only what was accepted.
    [again] = decider.decide([Item(command_id=refused.command_id, command=unstorable)])
    assert again.result.model_dump(exclude={"message"}) == refused.model_dump(exclude={"message"})
    with open_command_store(sqlite_url) as reopened:
        names = {n.originator_id for n in reopened.recorder.select_notifications(None, 100)}
        for originator_id in names:
            reopened.repository.get(originator_id)


def test_a_run_created_at_the_end_of_time_is_never_due(decider: Decider) -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    run_id = uuid4()
    event = RecordRunEvent(
        run_id=run_id,
        event_time=datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        job_namespace="n",
        job_name="j",
        producer="p",
    )
    timeout = DecideExecution(execution_id=run_id, decision=ExecutionDecision.TIME_OUT)
    created, decided = decide(decider, event, timeout)
    accepted(created)
    assert rejected(decided).error_code == "RunDeadlineNotReached"


def test_a_validate_config_with_a_self_referring_yaml_document_is_answered(
    decider: Decider,
) -> None:
    [result] = decide(decider, ValidateConfig(document="a: &a [*a]"))
    report = accepted(result).reply
    assert report["is_valid"] is False and report["issues"][0]["code"] == "E001"


# --- fixed in contracts ----------------------------------------------------------------


def test_the_decoder_refuses_a_command_nested_deeper_than_it_can_be_encoded() -> None:
    body = {"name": "p", "runtime_config": nested(300)}
    try:
        decoded = decode_command(json_bytes(body), envelope("CreatePipeline", "c-1"))
    except WireError:
        return
    encode_command(decoded.command)


def test_a_route_message_with_a_superscript_stage_is_refused_with_a_wire_error() -> None:
    headers = [
        ("ce_id", b"00000000-0000-0000-0000-000000000001"),
        ("ce_executionid", b"00000000-0000-0000-0000-0000000000e1"),
        ("ce_stage", "²".encode()),
    ]
    with pytest.raises(WireError):
        decode_route_message(b"{}", headers)
