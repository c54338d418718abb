"""A Pipeline's edits, its program's validation result and its deletion."""

from __future__ import annotations

from uuid import uuid4

from contracts.statuses import ProgramStatus
from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from domain.pipeline_errors import unknown_pipeline
from tests.domain.pipeline_builders import body, in_state, new_pipeline, now, provisioned, refused

# --- edits, program, deletion -----------------------------------------------------------


def test_rename_needs_cleared_storage_and_bumps_version() -> None:
    p, _ = in_state(R.STOPPED, D.STOPPED)
    e = refused(p, lambda: p.update(name="p2", at=now()))
    assert body(e) == (
        400,
        "EditRestrictedToClearedStorage",
        "The following pipeline edits are not allowed while storage is not cleared: name",
        {"not_allowed": ["name"]},
    )
    p.clear(at=now())
    p.storage_cleared(at=now())
    p.update(name="p2", at=now())
    assert (p.name, p.pipeline_version) == ("p2", 2)


def test_description_is_editable_while_running_core_fields_are_not() -> None:
    p, _ = provisioned()
    p.update(description="new words", at=now())
    assert (p.description, p.pipeline_version) == ("new words", 2)
    assert refused(p, lambda: p.update(config_id=uuid4(), at=now())).error_code == (
        "UpdateRestrictedToStopped"
    )
    p.collect_events()
    p.update(description="new words", name="p1", at=now())
    assert p.collect_events() == []


def test_new_config_needs_validation_again() -> None:
    p = new_pipeline()
    config = uuid4()
    p.update(config_id=config, at=now())
    assert p.program_status is ProgramStatus.PENDING
    stale = uuid4()
    e = refused(p, lambda: p.program_validated(True, config_id=stale, at=now()))
    assert (e.http_status, e.error_code) == (409, "StaleProgram")
    p.program_validated(True, config_id=config, at=now())
    assert p.program_status is ProgramStatus.SUCCESS


def test_program_status_is_fixed_while_deployed() -> None:
    p, _ = provisioned()
    e = refused(p, lambda: p.program_validated(False, at=now()))
    assert e.error_code == "ProgramStatusUpdateRestrictedToStopped"


def test_deleted_pipeline_answers_unknown_name() -> None:
    p = new_pipeline("gone")
    p.delete(at=now())
    assert p.deleted
    for call in (p.start, p.stop, p.clear, p.delete, p.dismiss_error):
        e = refused(p, lambda call=call: call(at=now()))
        assert e.body().model_dump() == unknown_pipeline("gone").body().model_dump()
        assert e.http_status == 404
