"""Handlers of the pipeline commands (Feldera's pipeline endpoints, seeds 000 and 001).

A pipeline is addressed by its name through its NameIndex; a missing or released name is
Feldera's 404 UnknownPipelineName. Statuses are the ones Feldera answers with.

A program given as Feldera's `program_code` is validated here, in the command that gives
it, and a valid one is stored in the same unit of work as the current version of the
config the pipeline owns (domain.pipeline_program): the pipeline's program status and the
config it runs change together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from contracts import (
    CreatePipeline,
    DeletePipeline,
    PipelineCommand,
    StartPipeline,
    StopPipeline,
    UpdatePipeline,
)
from contracts.pipeline_commands import ActivatePipeline
from contracts.statuses import ProgramStatus
from domain import pipeline_errors as err
from domain.config import Config
from domain.errors import DomainError
from domain.name_index import NameIndex, name_index_id
from domain.pipeline import Pipeline
from domain.pipeline_program import Program, owned_config_id
from domain.validation import validate_config
from services.service_layer.handlers.claims import claim_key, release_key
from services.service_layer.handling import Context, Decision, Handler
from services.service_layer.replies import pipeline_reply

# A pipeline created without a program has none yet: it keeps program_status Pending (so
# it cannot be provisioned) until an update names a config or gives a program_code.


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
    if config is None or config.deleted:  # a deleted config takes no command
        raise unknown_config(config_id)
    return config


# --- Feldera's program fields ------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """The fields an edit gives (None: keep), as CreatePipeline and UpdatePipeline carry
    them."""

    name: str | None = None
    description: str | None = None
    config_id: UUID | None = None
    program_code: str | None = None
    udf_rust: str | None = None
    udf_toml: str | None = None
    program_config: dict[str, Any] | None = None
    runtime_config: dict[str, Any] | None = None
    tags: list[str] | None = None

    @classmethod
    def of(cls, cmd: CreatePipeline | UpdatePipeline) -> Edit:
        return cls(
            name=cmd.name,
            description=cmd.description,
            config_id=cmd.config_id,
            program_code=cmd.program_code,
            udf_rust=cmd.udf_rust,
            udf_toml=cmd.udf_toml,
            program_config=cmd.program_config,
            runtime_config=cmd.runtime_config,
            tags=cmd.tags,
        )


@dataclass(frozen=True)
class ProgramEdit:
    program: Program
    # The text to store as the owned config's next version (None: the config is left as
    # it is: the program did not change, or it is not valid).
    document: str | None


def program_edit(ctx: Context, pipeline: Pipeline, edit: Edit) -> ProgramEdit | None:
    """What `edit`'s program fields make of the pipeline's program (None: it gives none).
    A `program_code` is validated when it is new, or when the pipeline has no program
    yet (so an empty one is answered SqlError, not left Pending)."""
    given = (edit.program_code, edit.udf_rust, edit.udf_toml, edit.program_config)
    if all(value is None for value in given):
        return None
    current = pipeline.program
    code = current.program_code if edit.program_code is None else edit.program_code
    status, report, config_id, document = (
        current.status,
        current.report,
        current.config_id,
        None,
    )
    if edit.program_code is not None and (
        edit.program_code != current.program_code or current.status is ProgramStatus.PENDING
    ):
        checked, parsed = validate_config(edit.program_code, ctx.adapters)
        report = checked.model_dump(mode="json")
        if parsed is None:
            status = ProgramStatus.SQL_ERROR
        else:
            status, config_id, document = (
                ProgramStatus.SUCCESS,
                owned_config_id(pipeline.id),
                edit.program_code,
            )
    program = Program(
        program_code=code,
        udf_rust=current.udf_rust if edit.udf_rust is None else edit.udf_rust,
        udf_toml=current.udf_toml if edit.udf_toml is None else edit.udf_toml,
        program_config=(
            current.program_config if edit.program_config is None else edit.program_config
        ),
        config_id=config_id,
        status=status,
        report=report,
    )
    return ProgramEdit(program, document)


def store_program(ctx: Context, pipeline: Pipeline, document: str) -> None:
    """`document` (valid) as the current version of the config the pipeline owns."""
    config_id = owned_config_id(pipeline.id)
    config = ctx.uow.get(Config, config_id)
    if config is None:
        config = Config.create(
            pipeline.name,
            document,
            ctx.now,
            config_id=config_id,
            description=f"The program of pipeline '{pipeline.name}' ({pipeline.id})",
            registry=ctx.adapters,
        )
        ctx.uow.add(config)
    else:
        config.update(document, ctx.now, registry=ctx.adapters)


def apply_edit(ctx: Context, pipeline: Pipeline, edit: Edit) -> None:
    """`edit` on the pipeline: its name claimed anew, its program validated and stored."""
    if edit.program_code is not None and edit.config_id is not None:
        raise err.program_code_with_config_id()
    config = None if edit.config_id is None else existing_config(ctx, edit.config_id)
    program = program_edit(ctx, pipeline, edit)
    old_name, old_config_id = pipeline.name, pipeline.config_id
    renamed = edit.name is not None and edit.name != old_name
    if renamed and edit.name is not None:
        claim_key(ctx, NameIndex, edit.name, pipeline.id)
    pipeline.update(
        at=ctx.now,
        name=edit.name,
        description=edit.description,
        config_id=edit.config_id,
        program=None if program is None else program.program,
        runtime_config=edit.runtime_config,
        tags=edit.tags,
    )
    if renamed:
        release_key(ctx, NameIndex, old_name, pipeline.id)
    if config is not None and config.id != old_config_id:
        pipeline.program_validated(config.report.is_valid, at=ctx.now, config_id=config.id)
    if program is not None and program.document is not None:
        store_program(ctx, pipeline, program.document)


# --- the handlers ----------------------------------------------------------------------------


def new_pipeline(ctx: Context, name: str, edit: Edit) -> Pipeline:
    """A new pipeline named `name`, with `edit`'s fields."""
    if edit.program_code is not None and edit.config_id is not None:
        raise err.program_code_with_config_id()
    config = None if edit.config_id is None else existing_config(ctx, edit.config_id)
    if find_pipeline(ctx, name) is not None:
        raise err.duplicate_name()
    pipeline = Pipeline(
        name=name, config_id=edit.config_id, at=ctx.now, description=edit.description or ""
    )
    ctx.uow.add(pipeline)
    claim_key(ctx, NameIndex, name, pipeline.id)
    if config is not None:
        pipeline.program_validated(config.report.is_valid, at=ctx.now)
    rest = Edit(
        program_code=edit.program_code,
        udf_rust=edit.udf_rust,
        udf_toml=edit.udf_toml,
        program_config=edit.program_config,
        runtime_config=edit.runtime_config,
        tags=edit.tags,
    )
    apply_edit(ctx, pipeline, rest)
    return pipeline


def create_pipeline(cmd: CreatePipeline, ctx: Context) -> Decision:
    pipeline = new_pipeline(ctx, cmd.name, Edit.of(cmd))
    return Decision(pipeline.id, pipeline_reply(pipeline), 201)


def update_pipeline(cmd: UpdatePipeline, ctx: Context) -> Decision:
    """Feldera's PATCH, and with `create_if_missing` its PUT (201 when it created)."""
    edit = Edit.of(cmd)
    pipeline = find_pipeline(ctx, cmd.pipeline_name)
    if pipeline is None and cmd.create_if_missing:
        created = new_pipeline(ctx, cmd.name or cmd.pipeline_name, edit)
        return Decision(created.id, pipeline_reply(created), 201)
    if pipeline is None:
        raise err.unknown_pipeline(cmd.pipeline_name)
    apply_edit(ctx, pipeline, edit)
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


def activate_pipeline(cmd: ActivatePipeline, ctx: Context) -> Decision:
    pipeline = pipeline_named(ctx, cmd.pipeline_name)
    return Decision(pipeline.id, pipeline.activate(cmd.initial, at=ctx.now), 202)


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
