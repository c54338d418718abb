"""Handlers of the pipeline commands (Feldera's pipeline endpoints, seeds 000 and 001).

A pipeline is addressed by its name through its NameIndex; a missing or released name is
Feldera's 404 UnknownPipelineName. Statuses are the ones Feldera answers with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from contracts import (
    CreatePipeline,
    DeletePipeline,
    PipelineCommand,
    StartPipeline,
    StopPipeline,
    UpdatePipeline,
)
from domain import pipeline_errors as err
from domain.config import Config
from domain.errors import DomainError
from domain.name_index import NameIndex, name_index_id
from domain.pipeline import Pipeline
from services.service_layer.handlers.claims import claim_key, release_key
from services.service_layer.handling import Context, Decision, Handler
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


def create_pipeline(cmd: CreatePipeline, ctx: Context) -> Decision:
    config = None if cmd.config_id is None else existing_config(ctx, cmd.config_id)
    if find_pipeline(ctx, cmd.name) is not None:
        raise err.duplicate_name()
    pipeline = Pipeline(
        name=cmd.name, config_id=cmd.config_id, at=ctx.now, description=cmd.description
    )
    ctx.uow.add(pipeline)
    claim_key(ctx, NameIndex, cmd.name, pipeline.id)
    if config is not None:
        pipeline.program_validated(config.report.is_valid, at=ctx.now)
    return Decision(pipeline.id, pipeline_reply(pipeline), 201)


def update_pipeline(cmd: UpdatePipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    config = None if cmd.config_id is None else existing_config(ctx, cmd.config_id)
    old_name, old_config_id = pipeline.name, pipeline.config_id
    renamed = cmd.name is not None and cmd.name != old_name
    if renamed and cmd.name is not None:
        claim_key(ctx, NameIndex, cmd.name, pipeline.id)
    pipeline.update(at=ctx.now, name=cmd.name, description=cmd.description, config_id=cmd.config_id)
    if renamed:
        release_key(ctx, NameIndex, old_name, pipeline.id)
    if config is not None and config.id != old_config_id:
        pipeline.program_validated(config.report.is_valid, at=ctx.now, config_id=config.id)
    return Decision(pipeline.id, pipeline_reply(pipeline), 200)


def delete_pipeline(cmd: DeletePipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    pipeline.delete(at=ctx.now)
    release_key(ctx, NameIndex, pipeline.name, pipeline.id)
    return Decision(pipeline.id, None, 200)


def start_pipeline(cmd: StartPipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    reply = pipeline.start(cmd.initial, cmd.bootstrap_policy, cmd.dismiss_error, at=ctx.now)
    return Decision(pipeline.id, reply, 202)


def stop_pipeline(cmd: StopPipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    return Decision(pipeline.id, pipeline.stop(cmd.force, at=ctx.now), 202)


class PipelineVerb(Protocol):
    """A user action of `domain.pipeline_actions` that takes nothing but the time."""

    def __call__(self, pipeline: Pipeline, /, *, at: datetime) -> object: ...


def named_pipeline_verb(verb: PipelineVerb, http_status: int) -> Handler:
    """The handler of a command that only names its pipeline: `verb` on that pipeline,
    answered with what the verb returns and `http_status`."""

    def handle(cmd: PipelineCommand, ctx: Context) -> Decision:
        pipeline = pipeline_named(ctx, cmd.pipeline_name)
        return Decision(pipeline.id, verb(pipeline, at=ctx.now), http_status)

    return handle


pause_pipeline = named_pipeline_verb(Pipeline.pause, 202)
resume_pipeline = named_pipeline_verb(Pipeline.resume, 202)
checkpoint_pipeline = named_pipeline_verb(Pipeline.checkpoint, 200)
# A forwarded action, answered like /pause and /resume.
approve_pipeline = named_pipeline_verb(Pipeline.approve, 202)
dismiss_pipeline_error = named_pipeline_verb(Pipeline.dismiss_error, 200)
clear_pipeline_storage = named_pipeline_verb(Pipeline.clear, 202)
