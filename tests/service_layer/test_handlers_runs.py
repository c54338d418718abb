"""Run and execution commands (seeds 002, 003, 004) through Decider.decide."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from contracts import (
    AbortRun,
    CancelExecution,
    CompleteRun,
    CreateConfig,
    CreatePipeline,
    CreateRun,
    DeleteRun,
    FailRun,
    RunConfig,
    StartRun,
    UpdateRunStatus,
)
from contracts.run_commands import RunTransition
from contracts.statuses import RunStatus
from services.service_layer.decider import Decider
from tests.service_layer.decider_support import (
    T0,
    accepted,
    config_document,
    decide,
    decide_one,
    rejected,
)

MARQUEZ_KEYS = {
    "id",
    "createdAt",
    "updatedAt",
    "nominalStartTime",
    "nominalEndTime",
    "state",
    "startedAt",
    "endedAt",
    "durationMs",
    "args",
    "facets",
}


@pytest.fixture
def pipeline_id(decider: Decider) -> str:
    config = CreateConfig(name="c", document=config_document())
    results = decide(decider, config, CreatePipeline(name="p1", config_id=config.config_id))
    return str(accepted(results[1]).aggregate_id)


def new_run(decider: Decider, pipeline: str = "p1") -> CreateRun:
    command = CreateRun(pipeline_id=pipeline, args={"retries": "1"})
    accepted(decide_one(decider, command))
    return command


def test_create_run_by_name_answers_the_seed_003_run(decider: Decider, pipeline_id: str) -> None:
    command = CreateRun(pipeline_id="p1", args={"a": 1})
    result = accepted(decide_one(decider, command))
    assert result.http_status == 200
    assert result.reply == {
        "id": str(command.run_id),
        "run_number": 1,
        "pipeline_id": pipeline_id,
        "pipeline_name": "p1",
        "status": "pending",
        "status_meta": {},
        "created_at": result.reply["created_at"],
        "updated_at": result.reply["created_at"],
        "started_at": None,
        "ended_at": None,
    }


def test_create_run_by_id_numbers_runs_per_pipeline(decider: Decider, pipeline_id: str) -> None:
    numbers = [
        accepted(r).reply["run_number"]
        for r in decide(decider, *(CreateRun(pipeline_id=pid) for pid in [pipeline_id, "p1"]))
    ]
    assert numbers == [1, 2]


def test_create_run_of_an_unknown_pipeline_is_404(decider: Decider) -> None:
    for missing in ("nope", str(uuid4())):
        result = rejected(decide_one(decider, CreateRun(pipeline_id=missing)))
        assert (result.error_code, result.http_status) == ("UnknownPipelineName", 404)


@pytest.mark.parametrize(
    ("command_type", "state", "status"),
    [
        (StartRun, "RUNNING", RunStatus.RUNNING),
        (CompleteRun, "COMPLETED", RunStatus.SUCCESS),
        (FailRun, "FAILED", RunStatus.FAILURE),
        (AbortRun, "ABORTED", RunStatus.CANCELLED),
    ],
)
def test_marquez_verbs_answer_the_marquez_run(
    decider: Decider,
    pipeline_id: str,
    command_type: type[RunTransition],
    state: str,
    status: RunStatus,
) -> None:
    run = new_run(decider)
    at = T0 - timedelta(hours=1)
    result = accepted(decide_one(decider, command_type(run_id=run.run_id, at=at)))
    assert result.http_status == 200
    assert set(result.reply) == MARQUEZ_KEYS
    assert (result.reply["id"], result.reply["state"]) == (str(run.run_id), state)
    assert result.reply["args"] == {"retries": "1"}
    if status is RunStatus.RUNNING:
        assert result.reply["startedAt"] == "2026-03-01T11:00:00Z"


def test_a_completed_run_reports_its_duration(decider: Decider, pipeline_id: str) -> None:
    run = new_run(decider)
    accepted(decide_one(decider, StartRun(run_id=run.run_id, at=T0 + timedelta(seconds=10))))
    done = accepted(
        decide_one(decider, CompleteRun(run_id=run.run_id, at=T0 + timedelta(seconds=12.5)))
    )
    assert done.reply["durationMs"] == 2500
    assert done.reply["endedAt"] == "2026-03-01T12:00:12.500000Z"


def test_a_terminal_run_refuses_a_restart(decider: Decider, pipeline_id: str) -> None:
    run = new_run(decider)
    accepted(decide_one(decider, CompleteRun(run_id=run.run_id)))
    result = rejected(decide_one(decider, StartRun(run_id=run.run_id)))
    assert (result.error_code, result.http_status) == ("RunAlreadyTerminal", 409)
    assert result.event_ids == []


@pytest.mark.parametrize("command_type", [StartRun, CompleteRun, FailRun, AbortRun])
def test_an_unknown_run_is_marquez_s_404(
    decider: Decider, command_type: type[RunTransition]
) -> None:
    run_id = uuid4()
    result = rejected(decide_one(decider, command_type(run_id=run_id)))
    assert (result.error_code, result.http_status) == ("UnknownRun", 404)
    assert result.message == f"Run '{run_id}' not found."


def test_update_run_status_takes_any_case(decider: Decider, pipeline_id: str) -> None:
    run = new_run(decider)
    command = UpdateRunStatus.model_validate(
        {"run_id": str(run.run_id), "status": "RUNNING", "pipeline_id": "p1"}
    )
    result = accepted(decide_one(decider, command))
    assert (result.reply["status"], result.reply["pipeline_name"]) == ("running", "p1")
    assert result.reply["started_at"] is not None


def test_update_run_status_of_another_pipeline_s_run_is_unknown(
    decider: Decider, pipeline_id: str
) -> None:
    accepted(decide_one(decider, CreatePipeline(name="other")))
    run = new_run(decider)
    for owner in ("other", "nope"):
        command = UpdateRunStatus(run_id=run.run_id, status=RunStatus.RUNNING, pipeline_id=owner)
        result = rejected(decide_one(decider, command))
        assert (result.error_code, result.http_status) == ("UnknownRun", 404)


def test_delete_run_answers_the_deleted_run_and_forgets_it(
    decider: Decider, pipeline_id: str
) -> None:
    run = new_run(decider)
    result = accepted(decide_one(decider, DeleteRun(run_id=run.run_id, pipeline_id=pipeline_id)))
    assert (result.http_status, result.reply["id"]) == (200, str(run.run_id))
    after = rejected(decide_one(decider, StartRun(run_id=run.run_id)))
    assert after.error_code == "UnknownRun"


def test_deleting_a_tagged_execution_frees_its_tag(decider: Decider) -> None:
    config = CreateConfig(name="c", document=config_document())
    first = RunConfig(config_id=config.config_id, tag="t")
    accepted(decide(decider, config, first)[1])
    accepted(decide_one(decider, DeleteRun(run_id=first.execution_id)))
    accepted(decide_one(decider, RunConfig(config_id=config.config_id, tag="t")))


def test_cancel_execution_answers_the_execution_response(decider: Decider) -> None:
    config = CreateConfig(name="c", document=config_document())
    run = RunConfig(config_id=config.config_id)
    decide(decider, config, run)
    result = accepted(decide_one(decider, CancelExecution(execution_id=run.execution_id)))
    assert (result.http_status, result.reply["status"]) == (200, "cancelled")
    assert result.reply["completed_at"] is not None


def test_cancel_of_an_unknown_execution_is_404(decider: Decider) -> None:
    missing = uuid4()
    result = rejected(decide_one(decider, CancelExecution(execution_id=missing)))
    assert (result.error_code, result.http_status) == ("UnknownExecution", 404)
    assert result.message == f"Execution {missing} not found"
