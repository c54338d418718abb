"""The orchestrator's commands: deterministic decision ids, keys, and every bad field
refused with a CommandSchemaViolation that names it."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import orjson
import pytest

from contracts import WireError, WireErrorCode, decode_command, encode_command
from contracts.orchestrator_commands import (
    DecideExecution,
    ExecutionDecision,
    ReportStageProgress,
    decision_command_id,
)
from tests.contracts.samples import EXECUTION_ID

OTHER_ID = UUID("01890a5d-ac96-774b-bcce-b302099a80ff")


def test_a_decision_id_is_a_uuid5_of_what_it_was_decided_on() -> None:
    first = decision_command_id("orchestrator", EXECUTION_ID, 3, ExecutionDecision.COMPLETE)
    assert first == decision_command_id("orchestrator", EXECUTION_ID, 3, "complete")
    assert first.version == 5
    # The recipe contracts/README.md gives other services; it must never change.
    namespace = uuid5(NAMESPACE_URL, "urn:pipeline-service:orchestrator-decision")
    assert first == uuid5(namespace, f"orchestrator/{EXECUTION_ID}/3/complete")


@pytest.mark.parametrize(
    "changed",
    [
        ("sweeper", EXECUTION_ID, 3, ExecutionDecision.COMPLETE),
        ("orchestrator", OTHER_ID, 3, ExecutionDecision.COMPLETE),
        ("orchestrator", EXECUTION_ID, 4, ExecutionDecision.COMPLETE),
        ("orchestrator", EXECUTION_ID, 3, ExecutionDecision.FAIL),
    ],
)
def test_each_part_of_a_decision_changes_its_id(
    changed: tuple[str, UUID, int, ExecutionDecision],
) -> None:
    base = decision_command_id("orchestrator", EXECUTION_ID, 3, ExecutionDecision.COMPLETE)
    assert decision_command_id(*changed) != base


def test_an_unknown_decision_has_no_id() -> None:
    with pytest.raises(ValueError, match="'finish'"):
        decision_command_id("orchestrator", EXECUTION_ID, 3, "finish")


def test_both_commands_are_keyed_by_the_execution() -> None:
    decide = DecideExecution(execution_id=EXECUTION_ID, decision=ExecutionDecision.START)
    report = ReportStageProgress(
        execution_id=EXECUTION_ID, route="r", messages_in=0, messages_out=0, messages_failed=0
    )
    assert decide.key() == report.key() == str(EXECUTION_ID)
    assert (decide.expected_version, decide.reason, decide.at) == (None, None, None)
    assert (report.finished, report.at) == (None, None)


def test_a_decision_travels_under_its_derived_id() -> None:
    cmd = DecideExecution(
        execution_id=EXECUTION_ID, decision=ExecutionDecision.TIME_OUT, expected_version=2
    )
    command_id = str(decision_command_id("orchestrator", EXECUTION_ID, 2, cmd.decision))
    record = encode_command(cmd, command_id=command_id, source="/orchestrator")
    decoded = decode_command(record.value, record.headers)
    assert (decoded.command, decoded.command_id) == (cmd, command_id)
    assert orjson.loads(record.value)["decision"] == "time_out"


def violation(command_type: str, body: dict[str, Any]) -> WireError:
    record = encode_command(
        DecideExecution(execution_id=EXECUTION_ID, decision=ExecutionDecision.START),
        command_id="cmd-1",
    )
    headers = [(n, command_type.encode() if n == "ce_type" else v) for n, v in record.headers]
    with pytest.raises(WireError) as caught:
        decode_command(orjson.dumps(body), headers)
    assert caught.value.error_code is WireErrorCode.COMMAND_SCHEMA_VIOLATION
    assert caught.value.command_id == "cmd-1"
    return caught.value


def locations(error: WireError) -> set[tuple[str, ...]]:
    return {tuple(str(part) for part in e["loc"]) for e in error.details["errors"]}


DECIDE = {"execution_id": str(uuid4()), "decision": "start"}
REPORT = {
    "execution_id": str(uuid4()),
    "route": "fetch",
    "messages_in": 1,
    "messages_out": 1,
    "messages_failed": 0,
}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**DECIDE, "decision": "finish"}, "decision"),
        ({**DECIDE, "decision": "START"}, "decision"),
        ({**DECIDE, "execution_id": "not-a-uuid"}, "execution_id"),
        ({**DECIDE, "expected_version": 0}, "expected_version"),
        ({**DECIDE, "expected_version": "three"}, "expected_version"),
        ({**DECIDE, "reason": ""}, "reason"),
        ({**DECIDE, "at": "yesterday"}, "at"),
        ({"execution_id": DECIDE["execution_id"]}, "decision"),
        ({**DECIDE, "version": 3}, "version"),
    ],
)
def test_a_bad_decision_names_its_field(body: dict[str, Any], field: str) -> None:
    assert locations(violation("DecideExecution", body)) == {(field,)}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**REPORT, "messages_in": -1}, "messages_in"),
        ({**REPORT, "messages_out": -5}, "messages_out"),
        ({**REPORT, "messages_failed": 1.5}, "messages_failed"),
        ({k: v for k, v in REPORT.items() if k != "messages_out"}, "messages_out"),
        ({**REPORT, "route": ""}, "route"),
        ({**REPORT, "finished": "done"}, "finished"),
        ({**REPORT, "execution_id": None}, "execution_id"),
    ],
)
def test_a_bad_progress_report_names_its_field(body: dict[str, Any], field: str) -> None:
    assert locations(violation("ReportStageProgress", body)) == {(field,)}
