"""Pipeline commands through Decider.decide on a real event store (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest
from eventsourcing.application import AggregateNotFoundError

from contracts import (
    COMMANDS,
    ApprovePipeline,
    CheckpointPipeline,
    ClearPipelineStorage,
    CreateConfig,
    CreatePipeline,
    DeletePipeline,
    DismissPipelineError,
    PausePipeline,
    PipelineCommand,
    ResumePipeline,
    StartPipeline,
    StopPipeline,
    UpdatePipeline,
)
from contracts.statuses import ProgramStatus, RuntimeStatus
from domain.name_index import NameIndex, name_index_id
from services.service_layer.decider import Decider
from services.service_layer.handlers import HANDLERS
from tests.service_layer.decider_support import (
    T0,
    accepted,
    begin_stopping,
    config_document,
    decide,
    decide_one,
    provision,
    rejected,
    stopped,
    stored_pipeline,
)

STOPPING_HINT = (
    "Cannot restart the pipeline while it is stopping. "
    "Wait for it to stop before starting a new instance of the pipeline."
)


def create(decider: Decider, name: str = "p1") -> str:
    config = CreateConfig(name="c", document=config_document())
    results = decide(decider, config, CreatePipeline(name=name, config_id=config.config_id))
    return accepted(results[1]).reply["id"]  # type: ignore[no-any-return]


def test_every_command_type_has_exactly_one_handler() -> None:
    assert set(HANDLERS) == set(COMMANDS.values())


def test_create_with_a_config_claims_the_name_and_validates_the_program(
    decider: Decider,
) -> None:
    pipeline_id = create(decider, "p1")
    pipeline = stored_pipeline(decider.store, "p1")
    assert str(pipeline.id) == pipeline_id
    assert pipeline.program_status is ProgramStatus.SUCCESS
    index: NameIndex = decider.store.repository.get(name_index_id("p1"))
    assert str(index.pipeline_id) == pipeline_id


def test_create_answers_201_with_the_pipeline(decider: Decider) -> None:
    result = accepted(decide_one(decider, CreatePipeline(name="bare", description="d")))
    assert result.http_status == 201
    assert result.reply["name"] == "bare"
    assert result.reply["description"] == "d"
    assert result.reply["id"] == result.aggregate_id
    assert result.reply["program_status"] == "Pending"
    assert result.reply["deployment_status"] == "Stopped"


def test_create_with_an_unknown_config_is_404(decider: Decider) -> None:
    missing = CreateConfig(name="c", document=config_document()).config_id
    result = rejected(decide_one(decider, CreatePipeline(name="p", config_id=missing)))
    assert (result.error_code, result.http_status) == ("UnknownConfig", 404)
    assert result.message == f"Config {missing} not found"
    assert decider.store.recorder.max_notification_id() in (None, 0)


def test_a_live_name_cannot_be_created_twice(decider: Decider) -> None:
    first = create(decider, "p1")
    result = rejected(decide_one(decider, CreatePipeline(name="p1")))
    assert (result.error_code, result.http_status) == ("DuplicateName", 409)
    assert result.message == "An entity with this name already exists"
    assert str(stored_pipeline(decider.store, "p1").id) == first


@pytest.mark.parametrize(
    "command_type",
    [c for c in COMMANDS.values() if issubclass(c, PipelineCommand)],
    ids=lambda c: c.command_type(),
)
def test_an_unknown_pipeline_gets_feldera_s_exact_body(
    decider: Decider, command_type: type[PipelineCommand]
) -> None:
    result = rejected(decide_one(decider, command_type(pipeline_name="nope")))
    assert result.http_status == 404
    assert result.body().model_dump(mode="json") == {
        "message": "Unknown pipeline name 'nope'",
        "error_code": "UnknownPipelineName",
        "details": {"pipeline_name": "nope"},
    }


def test_start_while_stopping_gets_feldera_s_exact_body(decider: Decider) -> None:
    create(decider, "p1")
    accepted(decide_one(decider, StartPipeline(pipeline_name="p1")))
    provision(decider.store, "p1", T0)
    accepted(decide_one(decider, StopPipeline(pipeline_name="p1", force=True)))
    begin_stopping(decider.store, "p1", T0)

    result = rejected(decide_one(decider, StartPipeline(pipeline_name="p1")))
    assert result.http_status == 400
    assert result.body().model_dump(mode="json") == {
        "message": "Deployment resources status (current: 'Stopping', desired: 'Stopped') "
        f"cannot have desired changed to 'Provisioned'. {STOPPING_HINT}",
        "error_code": "IllegalPipelineAction",
        "details": {
            "status": "Stopping",
            "current_desired_status": "Stopped",
            "new_desired_status": "Provisioned",
            "hint": STOPPING_HINT,
        },
    }
    assert result.event_ids == []


def test_the_lifecycle_commands_answer_feldera_s_replies_and_statuses(decider: Decider) -> None:
    create(decider, "p1")

    def ok(command: PipelineCommand) -> tuple[object, int]:
        result = accepted(decide_one(decider, command))
        return result.reply, result.http_status

    assert ok(StartPipeline(pipeline_name="p1")) == ("Pipeline is starting", 202)
    deployment = provision(decider.store, "p1", T0)
    assert ok(PausePipeline(pipeline_name="p1")) == (
        "Pipeline transitioning from Running to Paused",
        202,
    )
    assert ok(ResumePipeline(pipeline_name="p1")) == (
        "Pipeline transitioning from Paused to Running",
        202,
    )
    assert ok(CheckpointPipeline(pipeline_name="p1")) == (
        {"checkpoint_sequence_number": 1, "incarnation_uuid": str(deployment)},
        200,
    )
    pipeline = stored_pipeline(decider.store, "p1")
    pipeline.runtime_status_reported(deployment, RuntimeStatus.AWAITING_APPROVAL, at=T0)
    decider.store.save(pipeline)
    assert ok(ApprovePipeline(pipeline_name="p1")) == ("Pipeline bootstrap has been approved", 202)
    assert ok(StopPipeline(pipeline_name="p1", force=True)) == (
        "Pipeline is forcefully stopping",
        202,
    )
    begin_stopping(decider.store, "p1", T0)
    stopped(decider.store, "p1", T0)
    assert ok(DismissPipelineError(pipeline_name="p1")) == (
        "Pipeline deployment error has been dismissed",
        200,
    )
    assert ok(ClearPipelineStorage(pipeline_name="p1")) == (
        "Pipeline storage is being cleared",
        202,
    )
    pipeline = stored_pipeline(decider.store, "p1")
    pipeline.storage_cleared(at=T0)
    decider.store.save(pipeline)
    assert ok(DeletePipeline(pipeline_name="p1")) == (None, 200)


def test_forwarded_actions_on_a_stopped_pipeline_are_rejected(decider: Decider) -> None:
    create(decider, "p1")
    for command in (PausePipeline(pipeline_name="p1"), ApprovePipeline(pipeline_name="p1")):
        result = rejected(decide_one(decider, command))
        assert (result.error_code, result.http_status) == ("PipelineInteractionNotDeployed", 503)


def test_delete_releases_the_name_for_a_new_pipeline(decider: Decider) -> None:
    first = create(decider, "p1")
    accepted(decide_one(decider, DeletePipeline(pipeline_name="p1")))
    gone = rejected(decide_one(decider, StartPipeline(pipeline_name="p1")))
    assert gone.error_code == "UnknownPipelineName"
    second = create(decider, "p1")
    assert second != first
    assert stored_pipeline(decider.store, "p1").version == 2  # Created, ProgramValidated


def test_a_rename_moves_the_name_index(decider: Decider) -> None:
    pipeline_id = create(decider, "old")
    result = accepted(decide_one(decider, UpdatePipeline(pipeline_name="old", name="new")))
    assert (result.reply["name"], result.http_status) == ("new", 200)
    assert str(stored_pipeline(decider.store, "new").id) == pipeline_id
    old: NameIndex = decider.store.repository.get(name_index_id("old"))
    assert old.pipeline_id is None
    assert rejected(decide_one(decider, StopPipeline(pipeline_name="old"))).http_status == 404
    # The old name is free again.
    assert create(decider, "old") != pipeline_id


def test_a_rename_onto_a_live_name_changes_nothing(decider: Decider) -> None:
    create(decider, "a")
    create(decider, "b")
    version = stored_pipeline(decider.store, "a").version
    result = rejected(decide_one(decider, UpdatePipeline(pipeline_name="a", name="b")))
    assert (result.error_code, result.http_status) == ("DuplicateName", 409)
    assert stored_pipeline(decider.store, "a").version == version
    assert stored_pipeline(decider.store, "a").name == "a"


def test_a_rename_while_running_is_refused_and_claims_nothing(decider: Decider) -> None:
    create(decider, "p1")
    accepted(decide_one(decider, StartPipeline(pipeline_name="p1")))
    provision(decider.store, "p1", T0)
    result = rejected(decide_one(decider, UpdatePipeline(pipeline_name="p1", name="p2")))
    assert result.error_code == "UpdateRestrictedToStopped"
    with pytest.raises(AggregateNotFoundError):
        decider.store.repository.get(name_index_id("p2"))
    described = accepted(decide_one(decider, UpdatePipeline(pipeline_name="p1", description="x")))
    assert described.reply["description"] == "x"


def test_an_update_to_a_new_config_validates_the_program(decider: Decider) -> None:
    accepted(decide_one(decider, CreatePipeline(name="p1")))
    config = CreateConfig(name="c", document=config_document())
    results = decide(
        decider, config, UpdatePipeline(pipeline_name="p1", config_id=config.config_id)
    )
    reply = accepted(results[1]).reply
    assert (reply["config_id"], reply["program_status"]) == (str(config.config_id), "Success")


def test_a_pipeline_created_without_a_config_has_no_program_yet(decider: Decider) -> None:
    created = accepted(decide_one(decider, CreatePipeline(name="bare")))
    assert created.reply["config_id"] is None
    assert created.reply["program_status"] == ProgramStatus.PENDING
    # Feldera's early start: accepted while the program is not compiled yet.
    started = accepted(decide_one(decider, StartPipeline(pipeline_name="bare")))
    assert started.reply == "Pipeline is starting"
