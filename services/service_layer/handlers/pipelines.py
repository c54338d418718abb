"""Handlers of the pipeline commands (Feldera's pipeline endpoints, seeds 000 and 001).

A pipeline is addressed by its name through its NameIndex; a missing or released name is
Feldera's 404 UnknownPipelineName. Statuses are the ones Feldera answers with.
"""

from __future__ import annotations

from uuid import UUID

from contracts import (
    ApprovePipeline,
    CheckpointPipeline,
    ClearPipelineStorage,
    CreatePipeline,
    DeletePipeline,
    DismissPipelineError,
    PausePipeline,
    ResumePipeline,
    StartPipeline,
    StopPipeline,
    UpdatePipeline,
)
from domain import pipeline_errors as err
from domain.config import Config
from domain.errors import DomainError
from domain.name_index import NameIndex, name_index_id
from domain.pipeline import Pipeline
from services.service_layer.handling import Context, Decision
from services.service_layer.replies import pipeline_reply

# A pipeline created without a config has no program yet: it keeps program_status
# Pending (so it cannot be provisioned) until an update names a real config.


def unknown_config(config_id: UUID) -> DomainError:
    # FactFlow's wording (seed 004: "404 if config not found").
    return DomainError(
        "UnknownConfig", f"Config {config_id} not found", {"config_id": str(config_id)}, 404
    )


def find_pipeline(ctx: Context, name: str) -> Pipeline | None:
    """The live pipeline that holds `name`, if any."""
    index = ctx.uow.get(NameIndex, name_index_id(name))
    if index is None or index.pipeline_id is None:
        return None
    pipeline = ctx.uow.get(Pipeline, index.pipeline_id)
    return None if pipeline is None or pipeline.deleted else pipeline


def pipeline_named(ctx: Context, name: str) -> Pipeline:
    pipeline = find_pipeline(ctx, name)
    if pipeline is None:
        raise err.unknown_pipeline(name)
    return pipeline


def existing_config(ctx: Context, config_id: UUID) -> Config:
    config = ctx.uow.get(Config, config_id)
    if config is None:
        raise unknown_config(config_id)
    return config


def claim_name(ctx: Context, name: str, pipeline_id: UUID) -> None:
    index = ctx.uow.get(NameIndex, name_index_id(name))
    if index is None:
        ctx.uow.add(NameIndex(name=name, pipeline_id=pipeline_id, at=ctx.now))
    else:
        index.claim(pipeline_id, at=ctx.now)


def release_name(ctx: Context, name: str, pipeline_id: UUID) -> None:
    index = ctx.uow.get(NameIndex, name_index_id(name))
    if index is not None:
        index.release(pipeline_id, at=ctx.now)


def create_pipeline(cmd: CreatePipeline, ctx: Context) -> Decision:
    config = None if cmd.config_id is None else existing_config(ctx, cmd.config_id)
    if find_pipeline(ctx, cmd.name) is not None:
        raise err.duplicate_name()
    pipeline = Pipeline(
        name=cmd.name, config_id=cmd.config_id, at=ctx.now, description=cmd.description
    )
    ctx.uow.add(pipeline)
    claim_name(ctx, cmd.name, pipeline.id)
    if config is not None:
        pipeline.program_validated(config.report.is_valid, at=ctx.now)
    return Decision(pipeline.id, pipeline_reply(pipeline), 201)


def update_pipeline(cmd: UpdatePipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    config = None if cmd.config_id is None else existing_config(ctx, cmd.config_id)
    old_name, old_config_id = pipeline.name, pipeline.config_id
    renamed = cmd.name is not None and cmd.name != old_name
    if renamed and cmd.name is not None:
        claim_name(ctx, cmd.name, pipeline.id)
    pipeline.update(at=ctx.now, name=cmd.name, description=cmd.description, config_id=cmd.config_id)
    if renamed:
        release_name(ctx, old_name, pipeline.id)
    if config is not None and config.id != old_config_id:
        pipeline.program_validated(config.report.is_valid, at=ctx.now, config_id=config.id)
    return Decision(pipeline.id, pipeline_reply(pipeline), 200)


def delete_pipeline(cmd: DeletePipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    pipeline.delete(at=ctx.now)
    release_name(ctx, pipeline.name, pipeline.id)
    return Decision(pipeline.id, None, 200)


def start_pipeline(cmd: StartPipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    reply = pipeline.start(cmd.initial, cmd.bootstrap_policy, cmd.dismiss_error, at=ctx.now)
    return Decision(pipeline.id, reply, 202)


def stop_pipeline(cmd: StopPipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    return Decision(pipeline.id, pipeline.stop(cmd.force, at=ctx.now), 202)


def pause_pipeline(cmd: PausePipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    return Decision(pipeline.id, pipeline.pause(at=ctx.now), 202)


def resume_pipeline(cmd: ResumePipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    return Decision(pipeline.id, pipeline.resume(at=ctx.now), 202)


def checkpoint_pipeline(cmd: CheckpointPipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    return Decision(pipeline.id, pipeline.checkpoint(at=ctx.now), 200)


def approve_pipeline(cmd: ApprovePipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    # A forwarded action, answered like /pause and /resume.
    return Decision(pipeline.id, pipeline.approve(at=ctx.now), 202)


def dismiss_pipeline_error(cmd: DismissPipelineError, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    return Decision(pipeline.id, pipeline.dismiss_error(at=ctx.now), 200)


def clear_pipeline_storage(cmd: ClearPipelineStorage, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    return Decision(pipeline.id, pipeline.clear(at=ctx.now), 202)
