"""ReconcilePipeline through Decider.decide on a real event store (SQLite, PostgreSQL), and
its wire checks: every step's data is required, refusals are structured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from contracts import CreateConfig, CreatePipeline, DeletePipeline, StartPipeline, StopPipeline
from contracts.cloudevents import decode_command, encode_command
from contracts.errors import WireError, WireErrorCode
from contracts.reconciler_commands import ReconcilePipeline, ReconcileStep, reconcile_command_id
from contracts.statuses import ResourcesStatus, RuntimeStatus
from services.service_layer.decider import Decider
from tests.service_layer.decider_support import (
    accepted,
    config_document,
    decide,
    decide_one,
    item,
    opened_decider,
    rejected,
    stored_pipeline,
)

S = ReconcileStep


@pytest.fixture
def decider(store_url: str) -> Iterator[Decider]:
    with opened_decider(store_url) as d:
        yield d


def create_and_start(decider: Decider, name: str = "p1") -> UUID:
    config = CreateConfig(name="c", document=config_document())
    results = decide(
        decider,
        config,
        CreatePipeline(name=name, config_id=config.config_id),
        StartPipeline(pipeline_name=name),
    )
    return UUID(accepted(results[1]).reply["id"])


def step(
    decider: Decider, name: str, pipeline_id: UUID, chosen: ReconcileStep, **data: Any
) -> ReconcilePipeline:
    """`chosen` on the pipeline's current version."""
    version = stored_pipeline(decider.store, name).version
    return ReconcilePipeline(
        pipeline_name=name, pipeline_id=pipeline_id, step=chosen, expected_version=version, **data
    )


def test_the_steps_take_a_pipeline_through_its_deployment(decider: Decider) -> None:
    pipeline_id = create_and_start(decider)
    deployment = uuid4()
    replies = []
    steps: list[tuple[ReconcileStep, dict[str, Any]]] = [
        (S.BEGIN_PROVISIONING, {"deployment_id": deployment}),
        (S.PROVISIONED, {"deployment_id": deployment}),
        (S.RUNTIME_STATUS, {"deployment_id": deployment, "runtime_status": "Running"}),
    ]
    for chosen, data in steps:
        result = accepted(decide_one(decider, step(decider, "p1", pipeline_id, chosen, **data)))
        assert result.http_status == 200
        replies.append(result.reply["deployment_status"])
    assert replies == ["Provisioning", "Initializing", "Running"]
    pipeline = stored_pipeline(decider.store, "p1")
    assert pipeline.deployment_id == deployment
    assert pipeline.runtime_status is RuntimeStatus.RUNNING

    decide_one(decider, StopPipeline(pipeline_name="p1", force=True))
    for chosen in (S.BEGIN_STOPPING, S.STOPPED):
        cmd = step(decider, "p1", pipeline_id, chosen, deployment_id=deployment)
        accepted(decide_one(decider, cmd))
    pipeline = stored_pipeline(decider.store, "p1")
    assert pipeline.resources_status is ResourcesStatus.STOPPED
    assert pipeline.deployment_id is None
    assert pipeline.deployment_error is None


def test_a_late_provisioned_for_an_old_deployment_is_refused(decider: Decider) -> None:
    pipeline_id = create_and_start(decider)
    old, new = uuid4(), uuid4()
    accepted(
        decide_one(
            decider, step(decider, "p1", pipeline_id, S.BEGIN_PROVISIONING, deployment_id=old)
        )
    )
    # The old deployment is stopped and the pipeline started again under a new one.
    accepted(decide_one(decider, StopPipeline(pipeline_name="p1", force=True)))
    for chosen in (S.BEGIN_STOPPING, S.STOPPED):
        accepted(decide_one(decider, step(decider, "p1", pipeline_id, chosen, deployment_id=old)))
    accepted(decide_one(decider, StartPipeline(pipeline_name="p1")))
    accepted(
        decide_one(
            decider, step(decider, "p1", pipeline_id, S.BEGIN_PROVISIONING, deployment_id=new)
        )
    )
    late = step(decider, "p1", pipeline_id, S.PROVISIONED, deployment_id=old)
    result = rejected(decide_one(decider, late))
    assert (result.error_code, result.http_status) == ("StaleDeployment", 409)
    assert result.event_ids == []
    assert stored_pipeline(decider.store, "p1").resources_status is ResourcesStatus.PROVISIONING


def test_a_step_on_a_version_the_pipeline_has_left_is_a_stale_decision(decider: Decider) -> None:
    pipeline_id = create_and_start(decider)
    version = stored_pipeline(decider.store, "p1").version
    cmd = ReconcilePipeline(
        pipeline_name="p1",
        pipeline_id=pipeline_id,
        step=S.BEGIN_PROVISIONING,
        expected_version=version - 1,
    )
    result = rejected(decide_one(decider, cmd))
    assert result.http_status == 409
    assert result.body().model_dump(mode="json") == {
        "message": f"Step 'begin_provisioning' on pipeline 'p1' was decided at version "
        f"{version - 1}, but the pipeline is at version {version}",
        "error_code": "StaleDecision",
        "details": {
            "pipeline_name": "p1",
            "step": "begin_provisioning",
            "expected_version": version - 1,
            "version": version,
        },
    }
    assert stored_pipeline(decider.store, "p1").resources_status is ResourcesStatus.STOPPED


def test_a_step_about_a_deleted_pipeline_does_not_touch_its_successor(decider: Decider) -> None:
    old_id = create_and_start(decider)
    decide(
        decider, StopPipeline(pipeline_name="p1", force=True), DeletePipeline(pipeline_name="p1")
    )
    new_id = create_and_start(decider)
    assert new_id != old_id
    stale = ReconcilePipeline(pipeline_name="p1", pipeline_id=old_id, step=S.BEGIN_PROVISIONING)
    result = rejected(decide_one(decider, stale))
    assert (result.error_code, result.http_status) == ("UnknownPipelineName", 404)
    assert stored_pipeline(decider.store, "p1").resources_status is ResourcesStatus.STOPPED


def test_the_same_step_sent_twice_is_decided_once(decider: Decider) -> None:
    pipeline_id = create_and_start(decider)
    version = stored_pipeline(decider.store, "p1").version
    command_id = str(reconcile_command_id("reconciler", pipeline_id, version, S.BEGIN_PROVISIONING))
    first = step(decider, "p1", pipeline_id, S.BEGIN_PROVISIONING, deployment_id=uuid4())
    # A second sweep decided the same step on the same version with another new id.
    again = step(decider, "p1", pipeline_id, S.BEGIN_PROVISIONING, deployment_id=uuid4())
    one = accepted(decider.decide([item(first, command_id)])[0].result)
    two = accepted(decider.decide([item(again, command_id)])[0].result)
    assert two.aggregate_version == one.aggregate_version
    assert stored_pipeline(decider.store, "p1").deployment_id == first.deployment_id


def test_the_error_steps_record_the_deployment_error(decider: Decider) -> None:
    pipeline_id = create_and_start(decider)
    deployment = uuid4()
    decide_one(
        decider, step(decider, "p1", pipeline_id, S.BEGIN_PROVISIONING, deployment_id=deployment)
    )
    timed_out = step(
        decider, "p1", pipeline_id, S.PROVISIONING_TIMED_OUT, deployment_id=deployment, timeout_s=20
    )
    accepted(decide_one(decider, timed_out))
    pipeline = stored_pipeline(decider.store, "p1")
    assert pipeline.resources_status is ResourcesStatus.STOPPING
    assert pipeline.deployment_error is not None
    assert pipeline.deployment_error["error_code"] == "AutomatonProvisioningTimeout"
    assert pipeline.deployment_error["details"] == {"timeout": {"secs": 20, "nanos": 0}}

    create_and_start(decider, "p2")
    error = {"message": "boom", "error_code": "RouteFailed", "details": {"route": "fetch"}}
    p2 = stored_pipeline(decider.store, "p2")
    accepted(decide_one(decider, step(decider, "p2", p2.id, S.START_FAILED, error=error)))
    p2 = stored_pipeline(decider.store, "p2")
    assert (p2.resources_status, p2.deployment_error) == (ResourcesStatus.STOPPED, error)


def test_a_step_from_the_wrong_status_is_refused(decider: Decider) -> None:
    pipeline_id = create_and_start(decider)
    decide_one(decider, StopPipeline(pipeline_name="p1", force=True))  # before provisioning
    cmd = step(decider, "p1", pipeline_id, S.BEGIN_PROVISIONING, deployment_id=uuid4())
    result = rejected(decide_one(decider, cmd))
    assert result.error_code == "ReconcilerStepNotApplicable"
    assert result.event_ids == []
    assert stored_pipeline(decider.store, "p1").deployment_id is None
    unknown = step(decider, "p1", pipeline_id, S.STOPPED, deployment_id=uuid4())
    assert rejected(decide_one(decider, unknown)).error_code == "StaleDeployment"


# --- the wire -----------------------------------------------------------------------------

PIPELINE_ID = "01890a5d-ac96-774b-bcce-b302099a8059"
DEPLOYMENT_ID = "01890a5d-ac96-774b-bcce-b302099a805a"


def violation(body: dict[str, Any]) -> WireError:
    record = encode_command(
        ReconcilePipeline(pipeline_name="p", pipeline_id=uuid4(), step=S.BEGIN_PROVISIONING),
        command_id="cmd-1",
    )
    with pytest.raises(WireError) as caught:
        decode_command(orjson.dumps(body), record.headers)
    assert caught.value.error_code is WireErrorCode.COMMAND_SCHEMA_VIOLATION
    assert caught.value.http_status == 400
    return caught.value


BASE = {"pipeline_name": "p", "pipeline_id": PIPELINE_ID}


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({**BASE, "step": "provisioned"}, "deployment_id"),
        ({**BASE, "step": "runtime_status", "deployment_id": DEPLOYMENT_ID}, "runtime_status"),
        ({**BASE, "step": "provisioning_timed_out", "deployment_id": DEPLOYMENT_ID}, "timeout_s"),
        ({**BASE, "step": "start_failed"}, "error"),
        ({**BASE, "step": "begin_stopping"}, "deployment_id"),
        ({**BASE, "step": "stopped"}, "deployment_id"),
    ],
)
def test_a_step_without_its_data_is_a_schema_violation(body: dict[str, Any], missing: str) -> None:
    errors = violation(body).details["errors"]
    assert any(missing in e["msg"] for e in errors), errors


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BASE, "step": "restart"}, "step"),
        ({**BASE, "step": "provisioned", "deployment_id": "nope"}, "deployment_id"),
        ({**BASE, "step": "begin_provisioning", "expected_version": 0}, "expected_version"),
        ({**BASE, "step": "begin_provisioning", "pipeline_id": "x"}, "pipeline_id"),
        (
            {
                **BASE,
                "step": "runtime_status",
                "deployment_id": DEPLOYMENT_ID,
                "runtime_status": "Up",
            },
            "runtime_status",
        ),
        ({**BASE, "step": "begin_provisioning", "extra": 1}, "extra"),
        ({"pipeline_id": PIPELINE_ID, "step": "begin_provisioning"}, "pipeline_name"),
    ],
)
def test_a_malformed_step_names_the_field(body: dict[str, Any], field: str) -> None:
    errors = violation(body).details["errors"]
    assert {tuple(str(p) for p in e["loc"]) for e in errors} == {(field,)}


def test_step_ids_are_derived_from_role_pipeline_version_and_step() -> None:
    pipeline_id = UUID(PIPELINE_ID)
    same = reconcile_command_id("reconciler", pipeline_id, 3, S.PROVISIONED)
    assert same == reconcile_command_id("reconciler", pipeline_id, 3, "provisioned")  # type: ignore[arg-type]
    others = {
        reconcile_command_id("reconciler", pipeline_id, 4, S.PROVISIONED),
        reconcile_command_id("reconciler", pipeline_id, 3, S.BEGIN_STOPPING),
        reconcile_command_id("reconciler", uuid4(), 3, S.PROVISIONED),
        reconcile_command_id("other", pipeline_id, 3, S.PROVISIONED),
    }
    assert same not in others and len(others) == 4
    assert (
        ReconcilePipeline(
            pipeline_name="orders",
            pipeline_id=pipeline_id,
            step=S.STOPPED,
            deployment_id=pipeline_id,
        ).key()
        == "orders"
    )
