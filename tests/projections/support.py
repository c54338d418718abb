"""Shared pieces of the projection tests: a history driven through the real decider (and
the reconciler and orchestrator steps no command covers), the events as the relay
publishes them, and what each read-model row must say, read off the domain aggregates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from contracts import commands as cmd
from contracts.events import LifecycleEvent
from contracts.program_error import program_error
from contracts.statuses import RunStatus, RuntimeStatus
from domain.config import Config
from domain.execution import Execution
from domain.pipeline import Pipeline
from projections.store import ReadStore
from projections.times import iso
from services.adapters.eventstore import EventStore
from services.runtimes.projector import history
from services.service_layer.decider import Decider
from tests.service_layer.decider_support import (
    T0,
    accepted,
    begin_stopping,
    config_document,
    decide_one,
    opened_decider,
    provision,
    stopped,
    stored_pipeline,
)


@dataclass
class Story:
    """Ids of what `drive` created (pipelines by name, in creation order)."""

    configs: list[UUID] = field(default_factory=list)
    pipelines: list[UUID] = field(default_factory=list)
    executions: list[UUID] = field(default_factory=list)
    deleted_pipelines: list[UUID] = field(default_factory=list)


def _id(decider: Decider, command: Any) -> UUID:
    return UUID(accepted(decide_one(decider, command)).aggregate_id)


def drive(decider: Decider, prefix: str = "") -> Story:
    """A history touching every read-model field: configs (one updated), pipelines through
    start, provisioning, a runtime report, pause, stop and delete/re-create, pipeline runs
    with status changes, a deleted run, tagged config executions with stage runs."""
    store = decider.store
    story = Story()
    c1 = _id(decider, cmd.CreateConfig(name=f"{prefix}c1", document=config_document()))
    c2 = _id(
        decider, cmd.CreateConfig(name=f"{prefix}c2", document=config_document("pass_through"))
    )
    decide_one(
        decider, cmd.UpdateConfig(config_id=c1, document=config_document(), name=f"{prefix}c1b")
    )
    story.configs += [c1, c2]

    a, b, c = (f"{prefix}alpha", f"{prefix}beta", f"{prefix}gamma")
    for name, config in ((a, c1), (b, c2), (c, None)):
        story.pipelines.append(_id(decider, cmd.CreatePipeline(name=name, config_id=config)))
    decide_one(decider, cmd.UpdatePipeline(pipeline_name=b, description="second"))
    decide_one(decider, cmd.StartPipeline(pipeline_name=a))
    provision(store, a, T0 + timedelta(minutes=1))
    decide_one(decider, cmd.PausePipeline(pipeline_name=a))
    pipeline = stored_pipeline(store, a)
    assert pipeline.deployment_id is not None
    pipeline.runtime_status_reported(
        pipeline.deployment_id, RuntimeStatus.PAUSED, at=T0 + timedelta(minutes=2),
        details={"reason": "paused"},
    )  # fmt: skip
    store.save(pipeline)
    decide_one(decider, cmd.StartPipeline(pipeline_name=b, initial="paused"))
    decide_one(decider, cmd.StopPipeline(pipeline_name=b, force=True))
    decide_one(decider, cmd.StartPipeline(pipeline_name=c, initial="standby"))
    decide_one(decider, cmd.StopPipeline(pipeline_name=c, force=True))
    story.deleted_pipelines.append(story.pipelines[2])
    decide_one(decider, cmd.DeletePipeline(pipeline_name=c))
    story.pipelines.append(_id(decider, cmd.CreatePipeline(name=c, description="again")))

    runs = [_id(decider, cmd.CreateRun(pipeline_id=name)) for name in (a, a, b, a)]
    decide_one(decider, cmd.StartRun(run_id=runs[0], at=T0 + timedelta(hours=1)))
    decide_one(decider, cmd.CompleteRun(run_id=runs[0], at=T0 + timedelta(hours=2)))
    decide_one(decider, cmd.UpdateRunStatus(run_id=runs[1], pipeline_id=a, status="QUEUED"))
    decide_one(decider, cmd.StartRun(run_id=runs[2], at=T0 + timedelta(minutes=30)))
    decide_one(decider, cmd.DeleteRun(run_id=runs[3], pipeline_id=a))
    story.executions += runs

    for tag, config in ((f"{prefix}t1", c1), (f"{prefix}t2", c2), (None, c1)):
        story.executions.append(_id(decider, cmd.RunConfig(config_id=config, tag=tag)))
    execution: Execution = store.repository.get(story.executions[4])
    execution.stage_started("fetch", at=T0 + timedelta(hours=3))
    execution.stage_progress("fetch", 5, 4, 1, at=T0 + timedelta(hours=3, minutes=1))
    execution.stage_finished("fetch", "success", at=T0 + timedelta(hours=4), messages_in=6)
    execution.transition(RunStatus.SUCCESS, now=T0 + timedelta(hours=4))
    # Cancelled with one stage running and the rest pending: all of them stop with it.
    cancelled: Execution = store.repository.get(story.executions[5])
    cancelled.stage_started(next(iter(cancelled.routes)), at=T0 + timedelta(hours=3))
    cancelled.cancel(now=T0 + timedelta(hours=4))
    store.save(execution, cancelled)

    begin_stopping(store, a, T0 + timedelta(hours=5))
    stopped(store, a, T0 + timedelta(hours=6))
    decider.drop_cache()
    return story


def events_of(store: EventStore) -> list[LifecycleEvent]:
    """Every stored event, as the relay publishes it, in notification order."""
    return list(history(store))


@contextmanager
def driven(url: str, prefix: str = "") -> Iterator[tuple[Decider, Story]]:
    with opened_decider(url) as decider:
        yield decider, drive(decider, prefix)


# --- what the rows must say, read off the aggregates -------------------------------------------


def _s(value: object) -> str | None:
    return None if value is None else str(value)


def expected_pipeline(p: Pipeline) -> dict[str, Any]:
    return {
        "id": str(p.id),
        "name": p.name,
        "description": p.description,
        "config_id": _s(p.config_id),
        "created_at": iso(p.created_at),
        "version": p.pipeline_version,
        "refresh_version": p.refresh_version,
        "program_status": str(p.program_status),
        "program_status_since": iso(p.program_status_since),
        "deployment_status": str(p.deployment_status),
        "deployment_status_since": iso(p.deployment_status_since),
        "deployment_desired_status": str(p.deployment_desired_status),
        "deployment_desired_status_since": iso(p.deployment_desired_status_since),
        "deployment_desired_status_by": None,  # the driven commands name no sender
        "deployment_error": p.deployment_error,
        "deployment_id": _s(p.deployment_id),
        "deployment_initial": _s(p.deployment_initial),
        "deployment_resources_status": str(p.resources_status),
        "deployment_resources_status_since": iso(p.resources_status_since),
        "deployment_resources_desired_status": str(p.resources_desired_status),
        "deployment_resources_desired_status_since": iso(p.resources_desired_status_since),
        "deployment_runtime_status": _s(p.runtime_status),
        "deployment_runtime_status_details": p.runtime_status_details,
        "deployment_runtime_status_since": iso(p.runtime_status_since),
        "deployment_runtime_desired_status": _s(p.runtime_desired_status),
        "deployment_runtime_desired_status_since": iso(p.runtime_desired_status_since),
        "storage_status": str(p.storage_status),
        "storage_status_since": iso(p.storage_status_since),
        "bootstrap_policy": _s(p.bootstrap_policy),
        "checkpoint_sequence_number": p.checkpoint_sequence_number,
        "program_code": p.program_code,
        "udf_rust": p.udf_rust,
        "udf_toml": p.udf_toml,
        "program_config": p.program_config,
        "runtime_config": p.runtime_config,
        "tags": p.tags,
        "program_version": p.program_version,
        "program_error": program_error(str(p.program_status), p.program_report),
    }


def expected_config(c: Config) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "name": c.name,
        "description": c.description,
        "version": c.config_version,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "document": c.document,
        "validation_report": c.report.model_dump(mode="json"),
    }


def expected_execution(e: Execution, pipeline_name: str | None) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "owner_kind": str(e.owner_kind),
        "pipeline_id": _s(e.pipeline_id),
        "pipeline_name": pipeline_name,
        "config_id": _s(e.config_id),
        "config_version": e.config_version,
        "run_number": e.run_number,
        "tag": e.tag,
        "parent_execution_id": _s(e.parent_execution_id),
        "root_execution_id": _s(e.root_execution_id),
        "replay_source": _s(e.replay_source),
        "skip_init_message": e.skip_init_message,
        "init_route": e.init_route,
        "init_payload": e.init_payload,
        "init_payload_overrides": e.init_payload_overrides,
        "args": e.args,
        "facets": e.facets,
        "nominal_start_time": iso(e.nominal_start_time),
        "nominal_end_time": iso(e.nominal_end_time),
        "timeout_s": e.timeout.total_seconds(),
        "deadline": iso(e.deadline),
        "status": str(e.status),
        "marquez_state": str(e.marquez_state),
        "execution_status": str(e.execution_status),
        "created_at": iso(e.created_at),
        "updated_at": iso(e.updated_at),
        "started_at": iso(e.started_at),
        "ended_at": iso(e.ended_at),
        "duration_ms": e.duration_ms,
        "last_transition_at": iso(e.last_transition_at),
        "created_by": None,  # the driven commands name no sender
        "ended_by": None,
        "stages": [
            {
                "route": s.route,
                "status": str(s.status),
                "messages_in": s.messages_in,
                "messages_out": s.messages_out,
                "messages_failed": s.messages_failed,
                "started_at": iso(s.started_at),
                "ended_at": iso(s.ended_at),
            }
            for s in e.routes.values()
        ],
    }


def assert_matches_aggregates(read: ReadStore, decider: Decider, story: Story) -> None:
    repository = decider.store.repository
    names: dict[str, str] = {}
    for pipeline_id in story.pipelines:
        pipeline: Pipeline = repository.get(pipeline_id)
        names[str(pipeline_id)] = pipeline.name
        if pipeline.deleted:
            assert read.get_pipeline_by_id(str(pipeline_id)) is None
            continue
        assert read.get_pipeline(pipeline.name) == expected_pipeline(pipeline)
        assert read.get_pipeline_by_id(str(pipeline_id)) == expected_pipeline(pipeline)
        assert read.applied_version(str(pipeline_id)) == pipeline.version
    for config_id in story.configs:
        config: Config = repository.get(config_id)
        assert read.get_config(str(config_id)) == expected_config(config)
    for execution_id in story.executions:
        execution: Execution = repository.get(execution_id)
        row = read.get_execution(str(execution_id))
        if execution.deleted:
            assert row is None
            continue
        name = names.get(str(execution.pipeline_id)) if execution.pipeline_id else None
        assert row == expected_execution(execution, name)
        assert read.get_stage_runs(str(execution_id)) == row["stages"]
