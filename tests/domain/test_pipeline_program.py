"""A Pipeline's Feldera program fields and `/activate` (docs/pipeline-lifecycle.md,
"Feldera's SDK" and §2.3), on the aggregate alone."""

from __future__ import annotations

from uuid import uuid4

from contracts.statuses import InitialStatus, ProgramStatus, RuntimeStatus
from contracts.statuses import RuntimeDesiredStatus as RD
from domain.pipeline import Pipeline
from domain.pipeline_program import Program, owned_config_id
from tests.domain.pipeline_builders import body, new_pipeline, now, provisioned, refused


def _events(p: Pipeline) -> list[str]:
    return [type(e).__name__ for e in p.collect_events()]


def test_a_program_counts_its_versions_and_each_kind_of_edit_is_its_own_event() -> None:
    p = Pipeline(name="p1", config_id=None, at=now())
    assert (p.program_version, p.program_status) == (0, ProgramStatus.PENDING)
    p.collect_events()
    owned = owned_config_id(p.id)
    program = Program("routes: {}", config_id=owned, status=ProgramStatus.SUCCESS)
    p.update(program=program, runtime_config={"workers": 2}, tags=["x"], at=now())
    assert _events(p) == ["ProgramChanged", "RuntimeConfigChanged", "TagsChanged"]
    assert (p.program_version, p.config_id, p.program_status) == (1, owned, ProgramStatus.SUCCESS)
    assert p.program == program
    p.update(program=program, runtime_config={"workers": 2}, tags=["x"], at=now())
    assert _events(p) == []  # the same again: nothing to record
    p.update(config_id=uuid4(), at=now())  # a config named by id is the program now
    assert _events(p) == ["Updated"]
    assert (p.program_code, p.program_version, p.program_status) == ("", 2, ProgramStatus.PENDING)


def test_owned_config_ids_are_derived_from_the_pipeline() -> None:
    first, second = uuid4(), uuid4()
    assert owned_config_id(first) == owned_config_id(first) != owned_config_id(second)


def test_a_deployed_pipeline_refuses_program_and_runtime_config_edits_only() -> None:
    p, _ = provisioned()
    for edit in (
        {"program": Program("x", status=ProgramStatus.SQL_ERROR)},
        {"runtime_config": {"workers": 9}},
    ):
        e = refused(p, lambda edit=edit: p.update(at=now(), **edit))  # type: ignore[arg-type]
        assert e.error_code == "UpdateRestrictedToStopped"
    p.update(tags=["live"], description="still running", at=now())
    assert (p.tags, p.description) == (["live"], "still running")


def test_activate_is_the_way_out_of_standby() -> None:
    p, _ = provisioned(InitialStatus.STANDBY, RuntimeStatus.STANDBY)
    assert refused(p, lambda: p.resume(at=now())).error_code == "InvalidTransition"
    assert body(refused(p, lambda: p.activate(RD.STANDBY, at=now()))) == (
        400,
        "InvalidActivateStatus",
        "Invalid activation status Standby (only running and paused are valid)",
        {"initial": "Standby"},
    )
    assert p.activate(RD.PAUSED, at=now()) == "Pipeline transitioning from Standby to Paused"
    assert p.runtime_desired_status is RD.PAUSED
    assert p.activate(at=now()) == "Pipeline transitioning from Paused to Running"
    assert p.activate(at=now()) == "Pipeline transitioning from Running to Running"
    p.stop(at=now())  # a suspend under way: nothing leaves Suspended
    e = refused(p, lambda: p.activate(at=now()))
    assert (e.error_code, e.message) == (
        "InvalidTransition",
        "Cannot execute activate transition starting from Suspended",
    )


def test_activate_needs_a_deployed_pipeline() -> None:
    p = new_pipeline()
    assert refused(p, lambda: p.activate(at=now())).error_code == "PipelineInteractionNotDeployed"
