"""Command models: names, defaults, keys, strictness, case-insensitive run status."""

from __future__ import annotations

from uuid import UUID

import pytest
from pydantic import ValidationError

from contracts import (
    COMMANDS,
    BootstrapPolicy,
    Command,
    CreateConfig,
    CreatePipeline,
    CreateRun,
    InitialStatus,
    RunConfig,
    RunStatus,
    StartPipeline,
    StopPipeline,
    UpdateRunStatus,
    ValidateConfig,
)
from contracts.command_base import new_id
from tests.contracts.samples import RUN_ID, SAMPLES, YAML_DOCUMENT

EXPECTED_NAMES = {
    "CreatePipeline", "UpdatePipeline", "DeletePipeline", "StartPipeline", "StopPipeline",
    "PausePipeline", "ResumePipeline", "ActivatePipeline", "CheckpointPipeline",
    "ApprovePipeline",
    "DismissPipelineError", "ClearPipelineStorage",
    "CreateConfig", "UpdateConfig", "DeleteConfig", "ValidateConfig", "RunConfig",
    "CreateRun", "StartRun", "CompleteRun", "FailRun", "AbortRun", "UpdateRunStatus",
    "CancelExecution", "DeleteRun", "ReplayExecution", "RecordRunEvent",
    "DecideExecution", "ReportStageProgress",
    "ReconcilePipeline",
}  # fmt: skip


def test_registry_holds_exactly_the_commands_of_the_brief() -> None:
    assert set(COMMANDS) == EXPECTED_NAMES
    for name, model in COMMANDS.items():
        assert model.__name__ == name
        assert model.command_type() == name


def test_every_command_has_a_sample() -> None:
    assert {type(cmd).command_type() for cmd, _ in SAMPLES} == set(COMMANDS)


@pytest.mark.parametrize(("cmd", "key"), SAMPLES, ids=lambda v: type(v).__name__)
def test_key_is_the_aggregates_natural_key(cmd: Command, key: str | None) -> None:
    assert cmd.key() == key


@pytest.mark.parametrize("model", list(COMMANDS.values()), ids=lambda m: m.__name__)
def test_unknown_fields_are_refused(model: type[Command]) -> None:
    sample = next(cmd for cmd, _ in SAMPLES if type(cmd) is model)
    data = sample.model_dump(mode="json") | {"surprise": 1}
    with pytest.raises(ValidationError, match="surprise"):
        model.model_validate(data)


def test_commands_are_immutable() -> None:
    cmd = StopPipeline(pipeline_name="p")
    with pytest.raises(ValidationError):
        cmd.force = True  # type: ignore[misc]


def test_start_pipeline_defaults_are_feldera_defaults() -> None:
    cmd = StartPipeline(pipeline_name="p")
    assert cmd.initial is InitialStatus.RUNNING
    assert cmd.bootstrap_policy is BootstrapPolicy.AWAIT_APPROVAL
    assert cmd.dismiss_error is True
    assert StopPipeline(pipeline_name="p").force is False


def test_start_pipeline_refuses_an_unknown_initial() -> None:
    with pytest.raises(ValidationError, match="initial"):
        StartPipeline.model_validate({"pipeline_name": "p", "initial": "sprinting"})


def test_empty_pipeline_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        CreatePipeline(name="")


def test_generated_ids_are_distinct_uuid7() -> None:
    a, b = CreateConfig(name="c", document={}), CreateConfig(name="c", document={})
    assert a.config_id != b.config_id
    assert a.config_id.version == 7
    assert type(a.config_id) is UUID
    run = RunConfig(config_id=new_id())
    assert run.execution_id.version == 7
    assert CreateRun(pipeline_id="p").run_id.version == 7


def test_generated_id_survives_a_serialization_round_trip() -> None:
    # The id is made once, when the command is built; re-sending the dump keeps it.
    cmd = CreateRun(pipeline_id="p")
    again = CreateRun.model_validate(cmd.model_dump(mode="json"))
    assert again.run_id == cmd.run_id


def test_config_document_may_be_an_object_or_yaml_text() -> None:
    assert ValidateConfig(document={"version": "1"}).document == {"version": "1"}
    assert ValidateConfig(document=YAML_DOCUMENT).document == YAML_DOCUMENT
    with pytest.raises(ValidationError):
        ValidateConfig.model_validate({"document": ["not", "a", "document"]})


@pytest.mark.parametrize(
    "spelling", ["cancelled", "CANCELLED", "Cancelled", "cAnCeLlEd"]
)  # Esper's spec says lower case, its CLI sends upper case
def test_update_run_status_accepts_any_case(spelling: str) -> None:
    cmd = UpdateRunStatus.model_validate({"run_id": str(RUN_ID), "status": spelling})
    assert cmd.status is RunStatus.CANCELLED


@pytest.mark.parametrize("status", list(RunStatus))
def test_update_run_status_accepts_every_status_upper_case(status: RunStatus) -> None:
    cmd = UpdateRunStatus.model_validate({"run_id": str(RUN_ID), "status": status.upper()})
    assert cmd.status is status


@pytest.mark.parametrize("bad", ["cancel", "", " running", 3])
def test_update_run_status_refuses_unknown_statuses(bad: object) -> None:
    with pytest.raises(ValidationError):
        UpdateRunStatus.model_validate({"run_id": str(RUN_ID), "status": bad})


def test_run_transition_time_is_optional_and_parsed() -> None:
    cmd = UpdateRunStatus.model_validate(
        {"run_id": str(RUN_ID), "status": "running", "at": "2019-05-09T15:17:32.690346Z"}
    )
    assert cmd.at is not None and cmd.at.tzinfo is not None
    assert UpdateRunStatus(run_id=RUN_ID, status=RunStatus.RUNNING).at is None
