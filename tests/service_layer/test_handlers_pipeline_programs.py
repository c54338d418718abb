"""A pipeline's program given as Feldera's `program_code` (docs/pipeline-lifecycle.md,
"Feldera's SDK"), decided through Decider.decide on a real event store: one command
validates it and stores it in the config the pipeline owns, or records why not; and the
pipelines read model, folded from the stored events, shows what the aggregate holds."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import yaml

from contracts import CreateConfig, CreatePipeline, StartPipeline, UpdatePipeline
from contracts.events import LifecycleEvent
from contracts.program_error import program_error
from contracts.statuses import ProgramStatus
from domain.config import Config
from domain.pipeline import Pipeline
from domain.pipeline_program import owned_config_id
from projections import pipelines as pipeline_rows
from projections.rows import Row
from services.runtimes.projector import fetch_events_from
from services.service_layer.decider import Decider
from tests.projections.support import expected_pipeline
from tests.service_layer.decider_support import (
    T0,
    accepted,
    config_document,
    decide,
    decide_one,
    provision,
    rejected,
    stored_pipeline,
)

VALID = yaml.safe_dump(config_document(), sort_keys=False)
INVALID = "routes: [unclosed"
FELDERA_FIELDS: dict[str, Any] = {
    "udf_rust": "// none",
    "program_config": {"profile": "optimized", "runtime_version": None},
    "runtime_config": {"workers": 4, "resources": {"storage_class": None}},
    "tags": ["team:data"],
}


def projected(decider: Decider, pipeline: Pipeline) -> Row:
    """The read model's row, folded from the stored events as the projector folds them."""
    row: Row | None = None
    event: LifecycleEvent
    for event in fetch_events_from(decider.store)(str(pipeline.id), 0):
        row = pipeline_rows.apply(event, row)
    assert row is not None
    row.pop("deleted")
    return row


def owned(decider: Decider, pipeline: Pipeline) -> Config | None:
    config: Config = decider.store.repository.get(owned_config_id(pipeline.id))
    return config


def test_a_valid_program_becomes_the_owned_config_in_the_same_command(decider: Decider) -> None:
    result = accepted(
        decide_one(decider, CreatePipeline(name="p1", program_code=VALID, **FELDERA_FIELDS))
    )
    assert result.http_status == 201
    p = stored_pipeline(decider.store, "p1")
    config = owned(decider, p)
    assert config is not None
    assert (p.config_id, p.program_status, p.program_version) == (
        config.id,
        ProgramStatus.SUCCESS,
        1,
    )
    assert config.document["routes"]["fetch"]["inbound"]["topic"] == "fetch.in"  # normalized
    assert (p.program_code, p.udf_rust, p.tags) == (VALID, "// none", ["team:data"])
    assert p.runtime_config == FELDERA_FIELDS["runtime_config"]
    # The pipeline's and the config's events are the one command's.
    assert {str(p.id), str(config.id)} <= {eid.split(":")[0] for eid in result.event_ids}
    assert projected(decider, p) == expected_pipeline(p)


def test_an_invalid_program_is_a_sql_error_with_the_report_and_no_config(
    decider: Decider,
) -> None:
    accepted(decide_one(decider, CreatePipeline(name="p1", program_code=INVALID)))
    p = stored_pipeline(decider.store, "p1")
    assert (p.program_status, p.config_id, p.program_code) == (
        ProgramStatus.SQL_ERROR,
        None,
        INVALID,
    )
    assert p.program_report is not None and not p.program_report["is_valid"]
    error = program_error(str(p.program_status), p.program_report)
    assert error["sql_compilation"]["exit_code"] == 1
    assert [m["error_type"] for m in error["sql_compilation"]["messages"]] == ["E001"]
    assert error["rust_compilation"] is None and error["system_error"] is None
    assert projected(decider, p)["program_error"] == error
    assert decider.store.recorder.select_events(owned_config_id(p.id)) == []

    refused = rejected(decide_one(decider, StartPipeline(pipeline_name="p1")))
    assert refused.error_code == "CannotStartWithCompilationError"


def test_an_empty_program_is_not_left_pending(decider: Decider) -> None:
    accepted(decide_one(decider, CreatePipeline(name="p1", program_code="")))
    assert stored_pipeline(decider.store, "p1").program_status is ProgramStatus.SQL_ERROR


def test_each_new_program_is_a_new_config_version_an_invalid_one_leaves_it(
    decider: Decider,
) -> None:
    accepted(decide_one(decider, CreatePipeline(name="p1", program_code=VALID)))
    changed = config_document()
    changed["routes"]["fetch"]["name"] = "Changed"
    edit = UpdatePipeline(pipeline_name="p1", program_code=json.dumps(changed))
    assert accepted(decide_one(decider, edit)).http_status == 200
    p = stored_pipeline(decider.store, "p1")
    config = owned(decider, p)
    assert config is not None
    assert (config.config_version, config.document["routes"]["fetch"]["name"]) == (2, "Changed")
    assert (p.program_version, p.program_status) == (2, ProgramStatus.SUCCESS)

    accepted(decide_one(decider, UpdatePipeline(pipeline_name="p1", program_code=INVALID)))
    p = stored_pipeline(decider.store, "p1")
    again = owned(decider, p)
    assert again is not None and again.config_version == 2
    assert (p.program_status, p.config_id, p.program_version) == (
        ProgramStatus.SQL_ERROR,
        again.id,
        3,
    )
    # Only the fields given change; the same program again changes nothing.
    version = p.version
    accepted(decide_one(decider, UpdatePipeline(pipeline_name="p1", program_code=INVALID)))
    assert stored_pipeline(decider.store, "p1").version == version
    assert projected(decider, p) == expected_pipeline(stored_pipeline(decider.store, "p1"))


def test_put_creates_once_then_replaces(decider: Decider) -> None:
    put = UpdatePipeline(
        pipeline_name="p1", name="p1", program_code=VALID, create_if_missing=True, tags=["a"]
    )
    assert accepted(decide_one(decider, put)).http_status == 201
    version = stored_pipeline(decider.store, "p1").version
    assert accepted(decide_one(decider, put)).http_status == 200
    assert stored_pipeline(decider.store, "p1").version == version  # nothing changed
    replaced = put.model_copy(update={"tags": [], "description": "new"})
    accepted(decide_one(decider, replaced))
    p = stored_pipeline(decider.store, "p1")
    assert (p.tags, p.description, p.program_status) == ([], "new", ProgramStatus.SUCCESS)
    assert projected(decider, p) == expected_pipeline(p)


def test_program_code_and_config_id_together_are_refused(decider: Decider) -> None:
    config = CreateConfig(name="c", document=config_document())
    accepted(decide_one(decider, config))
    both = CreatePipeline(name="p1", program_code=VALID, config_id=config.config_id)
    refusal = rejected(decide_one(decider, both))
    assert (refusal.http_status, refusal.error_code) == (400, "ProgramCodeWithConfigId")
    assert rejected(decide_one(decider, UpdatePipeline(pipeline_name="p1"))).http_status == 404


def test_naming_a_config_replaces_a_program_code(decider: Decider) -> None:
    config = CreateConfig(name="c", document=config_document())
    decide(decider, config, CreatePipeline(name="p1", program_code=INVALID))
    accepted(decide_one(decider, UpdatePipeline(pipeline_name="p1", config_id=config.config_id)))
    p = stored_pipeline(decider.store, "p1")
    assert (p.config_id, p.program_status, p.program_code, p.program_report) == (
        config.config_id,
        ProgramStatus.SUCCESS,
        "",
        None,
    )
    assert projected(decider, p) == expected_pipeline(p)


def test_a_running_pipeline_keeps_its_program_but_takes_metadata(decider: Decider) -> None:
    accepted(decide_one(decider, CreatePipeline(name="p1", program_code=VALID)))
    accepted(decide_one(decider, StartPipeline(pipeline_name="p1")))
    provision(decider.store, "p1", T0)
    for core in (
        {"program_code": INVALID},
        {"runtime_config": {"workers": 8}},
        {"udf_toml": "[dependencies]"},
    ):
        refusal = rejected(decide_one(decider, UpdatePipeline(pipeline_name="p1", **core)))
        assert refusal.error_code == "UpdateRestrictedToStopped", core
    edit = UpdatePipeline(pipeline_name="p1", description="d", tags=["t"])
    accepted(decide_one(decider, edit))
    p = stored_pipeline(decider.store, "p1")
    assert (p.description, p.tags, p.program_status) == ("d", ["t"], ProgramStatus.SUCCESS)
    assert UUID(str(p.config_id)) == owned_config_id(p.id)
