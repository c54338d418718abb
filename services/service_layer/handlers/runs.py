"""Handlers of the run commands: seed 002 (Marquez run verbs), seed 003 (Esper pipeline
runs) and seed 004's CancelExecution. Every run is an Execution aggregate."""

from __future__ import annotations

from uuid import UUID

from contracts import commands as c
from contracts.run_commands import RunTransition
from domain import pipeline_errors as err
from domain import run_status as rs
from domain.base import Aggregate
from domain.config import Config
from domain.errors import DomainError
from domain.execution import Execution
from domain.pipeline import Pipeline
from domain.run_status import MarquezAction
from domain.tag_index import TagIndex
from services.service_layer.handlers.claims import release_key
from services.service_layer.handlers.configs import aggregate_exists, next_run_number
from services.service_layer.handlers.pipelines import find_pipeline
from services.service_layer.handling import Context, Decision
from services.service_layer.replies import execution_response, marquez_run, pipeline_run


def unknown_execution(execution_id: UUID) -> DomainError:
    return DomainError(
        "UnknownExecution",
        f"Execution {execution_id} not found",
        {"execution_id": str(execution_id)},
        404,
    )


def resolve_pipeline(ctx: Context, name_or_id: str) -> Pipeline | None:
    """Seed 003's `pipeline_id` path segment: a pipeline's name first, else its id."""
    pipeline = find_pipeline(ctx, name_or_id)
    if pipeline is not None:
        return pipeline
    try:
        pipeline_id = UUID(name_or_id)
    except ValueError:
        return None
    found = ctx.uow.get(Pipeline, pipeline_id)
    return None if found is None or found.deleted else found


def run_of(ctx: Context, run_id: UUID, pipeline: str | None = None) -> Execution:
    """The live run `run_id`; with `pipeline`, only if it is that pipeline's run."""
    run = ctx.uow.get(Execution, run_id)
    if run is None or run.deleted:
        raise rs.unknown_run(run_id)
    if pipeline is not None:
        owner = resolve_pipeline(ctx, pipeline)
        if owner is None or run.pipeline_id != owner.id:
            raise rs.unknown_run(run_id)
    return run


def pipeline_name_of(ctx: Context, run: Execution) -> str | None:
    owner = None if run.pipeline_id is None else ctx.uow.get(Pipeline, run.pipeline_id)
    return None if owner is None else owner.name


def create_run(cmd: c.CreateRun, ctx: Context) -> Decision:
    pipeline = resolve_pipeline(ctx, cmd.pipeline_id)
    if pipeline is None:
        raise err.unknown_pipeline(cmd.pipeline_id)
    if ctx.uow.get(Aggregate, cmd.run_id) is not None:
        raise aggregate_exists(cmd.run_id, "Run")
    config = None if pipeline.config_id is None else ctx.uow.get(Config, pipeline.config_id)
    run = Execution.for_pipeline(
        execution_id=cmd.run_id,
        pipeline_id=pipeline.id,
        run_number=next_run_number(ctx, pipeline.id),
        at=ctx.now,
        route_ids=[] if config is None else list(config.document["routes"]),
        config_id=None if config is None else config.id,
        config_version=None if config is None else config.config_version,
        args=cmd.args,
        timeout=ctx.run_timeout,
    )
    ctx.uow.add(run)
    return Decision(run.id, pipeline_run(run, pipeline.name), 200)


def _marquez(action: MarquezAction, cmd: RunTransition, ctx: Context) -> Decision:
    run = run_of(ctx, cmd.run_id)
    run.apply_marquez_action(action, at=cmd.at, now=ctx.now)
    return Decision(run.id, marquez_run(run), 200)


def start_run(cmd: c.StartRun, ctx: Context) -> Decision:
    return _marquez(MarquezAction.START, cmd, ctx)


def complete_run(cmd: c.CompleteRun, ctx: Context) -> Decision:
    return _marquez(MarquezAction.COMPLETE, cmd, ctx)


def fail_run(cmd: c.FailRun, ctx: Context) -> Decision:
    return _marquez(MarquezAction.FAIL, cmd, ctx)


def abort_run(cmd: c.AbortRun, ctx: Context) -> Decision:
    return _marquez(MarquezAction.ABORT, cmd, ctx)


def update_run_status(cmd: c.UpdateRunStatus, ctx: Context) -> Decision:
    run = run_of(ctx, cmd.run_id, cmd.pipeline_id)
    run.transition(cmd.status, at=cmd.at, now=ctx.now)
    return Decision(run.id, pipeline_run(run, pipeline_name_of(ctx, run)), 200)


def delete_run(cmd: c.DeleteRun, ctx: Context) -> Decision:
    run = run_of(ctx, cmd.run_id, cmd.pipeline_id)
    run.delete(at=ctx.now)
    if run.tag is not None:
        release_key(ctx, TagIndex, run.tag, run.id)
    return Decision(run.id, pipeline_run(run, pipeline_name_of(ctx, run)), 200)


def cancel_execution(cmd: c.CancelExecution, ctx: Context) -> Decision:
    execution = ctx.uow.get(Execution, cmd.execution_id)
    if execution is None or execution.deleted:
        raise unknown_execution(cmd.execution_id)
    ended = execution.cancel(now=ctx.now)
    # Who ended it, when this cancel did (a repeat's canceller is not the one).
    reply = execution_response(execution, completed_by=ctx.sent_by if ended else None)
    return Decision(execution.id, reply, 200)
