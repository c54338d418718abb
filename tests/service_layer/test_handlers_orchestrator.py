"""The orchestrator's commands through Decider.decide on a real event store (SQLite and
PostgreSQL): decisions with their derived ids (a repeat is one command and one event),
stale and finished executions, progress reports, and the init topic RunConfig records."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from contracts import CreateConfig, RunConfig
from contracts.orchestrator_commands import (
    DecideExecution,
    ExecutionDecision,
    ReportStageProgress,
    decision_command_id,
)
from contracts.statuses import RunStatus
from domain.execution import Execution
from services.service_layer.decider import Decider, Item
from tests.service_layer.decider_support import (
    T0,
    accepted,
    config_document,
    decide_one,
    item,
    rejected,
    stored_event_count,
)

D = ExecutionDecision
ROLE = "orchestrator"


def new_execution(decider: Decider, **run: object) -> tuple[UUID, int]:
    """A config execution: its id and version."""
    config = CreateConfig(name="crawler", document=config_document())
    accepted(decide_one(decider, config))
    command = RunConfig(config_id=config.config_id, **run)
    result = accepted(decide_one(decider, command))
    assert result.aggregate_version is not None
    return command.execution_id, result.aggregate_version


def decision(execution_id: UUID, version: int, chosen: ExecutionDecision) -> Item:
    """The decision as the orchestrator sends it: under its derived command id."""
    command = DecideExecution(execution_id=execution_id, decision=chosen, expected_version=version)
    return item(command, str(decision_command_id(ROLE, execution_id, version, chosen)))


def stored(decider: Decider, execution_id: UUID) -> Execution:
    execution: Execution = decider.store.repository.get(execution_id)
    return execution


def test_run_config_records_the_init_routes_inbound_topic(decider: Decider) -> None:
    execution_id, _ = new_execution(decider, skip_init_message=True)
    execution = stored(decider, execution_id)
    assert (execution.init_route, execution.init_topic) == ("fetch", "fetch.in")
    assert execution.skip_init_message is True


def test_a_decision_moves_the_execution_and_answers_it_in_seed_004s_shape(
    decider: Decider,
) -> None:
    execution_id, version = new_execution(decider)
    (start,) = decider.decide([decision(execution_id, version, D.START)])
    result = accepted(start.result)
    assert (result.http_status, result.aggregate_id) == (200, str(execution_id))
    assert (result.reply["id"], result.reply["status"]) == (str(execution_id), "running")
    assert result.aggregate_version == version + 1
    assert result.event_ids == [f"{execution_id}:{version + 1}"]
    (complete,) = decider.decide([decision(execution_id, version + 1, D.COMPLETE)])
    assert accepted(complete.result).reply["status"] == "completed"
    assert stored(decider, execution_id).status is RunStatus.SUCCESS


def test_a_repeated_decision_is_one_command_and_one_event(decider: Decider) -> None:
    execution_id, version = new_execution(decider)
    first, twin = decider.decide([decision(execution_id, version, D.START)] * 2)
    (later,) = decider.decide([decision(execution_id, version, D.START)])
    assert (first.repeated, twin.repeated, later.repeated) == (False, True, True)
    assert first.value == twin.value == later.value
    assert stored_event_count(decider.store, execution_id) == version + 1


def test_a_decision_on_an_old_version_is_stale(decider: Decider) -> None:
    execution_id, version = new_execution(decider)
    report = ReportStageProgress(
        execution_id=execution_id, route="fetch", messages_in=1, messages_out=0, messages_failed=0
    )
    accepted(decide_one(decider, report))
    (outcome,) = decider.decide([decision(execution_id, version, D.COMPLETE)])
    result = rejected(outcome.result)
    assert (result.error_code, result.http_status) == ("StaleDecision", 409)
    assert result.details == {
        "execution_id": str(execution_id),
        "decision": "complete",
        "expected_version": version,
        "version": version + 2,
    }
    assert stored(decider, execution_id).status is RunStatus.PENDING


def test_a_finished_execution_takes_the_same_decision_as_a_no_op_and_refuses_others(
    decider: Decider,
) -> None:
    execution_id, version = new_execution(decider)
    accepted(decider.decide([decision(execution_id, version, D.FAIL)])[0].result)
    again = accepted(decider.decide([decision(execution_id, version + 5, D.FAIL)])[0].result)
    assert (again.event_ids, again.reply["status"]) == ([], "failed")
    other = rejected(decider.decide([decision(execution_id, version + 1, D.COMPLETE)])[0].result)
    assert (other.error_code, other.http_status) == ("RunAlreadyTerminal", 409)


def test_a_decision_on_an_unknown_execution_is_404(decider: Decider) -> None:
    missing = uuid4()
    result = rejected(decider.decide([decision(missing, 1, D.START)])[0].result)
    assert (result.error_code, result.http_status, result.details) == (
        "UnknownExecution",
        404,
        {"execution_id": str(missing)},
    )


def test_time_out_waits_for_the_deadline(decider: Decider) -> None:
    execution_id, version = new_execution(decider)
    result = rejected(decider.decide([decision(execution_id, version, D.TIME_OUT)])[0].result)
    assert (result.error_code, result.http_status) == ("RunDeadlineNotReached", 409)


def test_progress_reports_start_count_and_finish_a_stage(decider: Decider) -> None:
    execution_id, _ = new_execution(decider)

    def report(done: RunStatus | None = None, **counts: int) -> ReportStageProgress:
        return ReportStageProgress(
            execution_id=execution_id, route="fetch", finished=done, at=T0, **counts
        )

    first = accepted(decide_one(decider, report(messages_in=1, messages_out=2, messages_failed=0)))
    assert (first.http_status, len(first.event_ids)) == (200, 2)  # started, progressed
    done = report(RunStatus.SUCCESS, messages_in=1, messages_out=3, messages_failed=0)
    accepted(decide_one(decider, done))
    stage = stored(decider, execution_id).routes["fetch"]
    assert (stage.status, stage.messages_out, stage.started_at, stage.ended_at) == (
        RunStatus.SUCCESS,
        3,
        T0,
        T0,
    )
    late = rejected(decide_one(decider, report(messages_in=2, messages_out=3, messages_failed=0)))
    assert (late.error_code, late.http_status) == ("StageAlreadyFinished", 409)


@pytest.mark.parametrize(
    ("route", "finished", "code", "status"),
    [
        ("nope", None, "UnknownRoute", 404),
        ("fetch", RunStatus.WAITING, "InvalidStageReport", 400),
    ],
)
def test_a_bad_progress_report_is_rejected_and_stores_nothing(
    decider: Decider, route: str, finished: RunStatus | None, code: str, status: int
) -> None:
    execution_id, version = new_execution(decider)
    report = ReportStageProgress(
        execution_id=execution_id,
        route=route,
        messages_in=1,
        messages_out=1,
        messages_failed=0,
        finished=finished,
    )
    result = rejected(decide_one(decider, report))
    assert (result.error_code, result.http_status) == (code, status)
    assert stored_event_count(decider.store, execution_id) == version


def test_a_progress_report_on_an_unknown_execution_is_404(decider: Decider) -> None:
    report = ReportStageProgress(
        execution_id=uuid4(), route="fetch", messages_in=0, messages_out=0, messages_failed=0
    )
    assert rejected(decide_one(decider, report)).error_code == "UnknownExecution"
