"""Handlers of the config commands (seed 004, FactFlow's config endpoints).

An invalid document is refused by the domain with ConfigValidationFailed (the report in
its details); the decider turns that into a rejection carrying the validation report.
RunConfig asks the context's execution gate last (services.runtimes.orchestrator.liveness): no
live orchestrator, or no room for another execution, is a 503.

DeleteConfig asks the read models what uses the config (`Context.usage`): its unfinished
executions and the pipelines naming it, which the Config refuses to be deleted under
(409 ConfigInUse). The read models lag the event store, so the config's run counter
(the truth: one number per execution ever started) checks them: fewer numbered
executions in the read model than numbers handed out means one just started is not
projected yet, and the delete is answered 503 (not recorded: the same command id is
decided again). A deleted config is unknown to every later command (404 UnknownConfig):
no run, update, replay onto it or pipeline naming it. A pipeline created on another
partition in the moment the delete is decided can still name it (the read model did not
show it yet); its reconcile then finds no config.
"""

from __future__ import annotations

from typing import Unpack
from uuid import UUID

from contracts import CreateConfig, RunConfig, UpdateConfig, ValidateConfig
from contracts.config_commands import DeleteConfig
from domain.base import Aggregate
from domain.config import CONFIG_VALIDATION_FAILED, Config, ConfigUsers
from domain.errors import DomainError, RetryableError
from domain.execution import ConfigRunOptions, Execution
from domain.run_counter import RunCounter, run_counter_id
from domain.tag_index import TagIndex
from domain.validation import validate_config
from services.service_layer.handlers.claims import claim_key
from services.service_layer.handlers.pipelines import existing_config
from services.service_layer.handling import Context, Decision
from services.service_layer.replies import config_reply, execution_response


def aggregate_exists(aggregate_id: UUID, what: str) -> DomainError:
    # A re-sent create under a new command id names the same aggregate: refuse it
    # rather than let the save conflict on every attempt.
    return DomainError(
        f"{what}AlreadyExists",
        f"{what} {aggregate_id} already exists",
        {"id": str(aggregate_id)},
        409,
    )


def next_run_number(ctx: Context, owner_id: UUID) -> int:
    counter = ctx.uow.get(RunCounter, run_counter_id(owner_id))
    if counter is None:
        counter = RunCounter(owner_id=owner_id, at=ctx.now)
        ctx.uow.add(counter)
    return counter.next_run_number(at=ctx.now)


def create_config(cmd: CreateConfig, ctx: Context) -> Decision:
    if ctx.uow.get(Aggregate, cmd.config_id) is not None:
        raise aggregate_exists(cmd.config_id, "Config")
    config = Config.create(
        cmd.name,
        cmd.document,
        ctx.now,
        config_id=cmd.config_id,
        description=cmd.description,
        registry=ctx.adapters,
    )
    ctx.uow.add(config)
    return Decision(config.id, config_reply(config), 201)


def update_config(cmd: UpdateConfig, ctx: Context) -> Decision:
    config = existing_config(ctx, cmd.config_id)
    config.update(
        cmd.document,
        ctx.now,
        name=cmd.name,
        description=cmd.description,
        registry=ctx.adapters,
    )
    return Decision(config.id, config_reply(config), 200)


def delete_config(cmd: DeleteConfig, ctx: Context) -> Decision:
    config = existing_config(ctx, cmd.config_id)
    if ctx.usage is None:
        raise RetryableError(
            "ConfigUseUnknown",
            "This command handler cannot see what uses a config (no read models): the "
            "config cannot be deleted here",
            {"config_id": str(config.id)},
        )
    use = ctx.usage.config_use(str(config.id))
    counter = ctx.uow.get(RunCounter, run_counter_id(config.id))
    issued = 0 if counter is None else counter.last_run_number
    if use.numbered_executions < issued:
        raise RetryableError(
            "ConfigExecutionsNotProjected",
            f"{issued - use.numbered_executions} execution(s) of config {config.id} started "
            "a moment ago are not in the read models yet: try again in a moment",
            {
                "config_id": str(config.id),
                "executions_started": issued,
                "executions_projected": use.numbered_executions,
            },
        )
    config.delete(ctx.now, ConfigUsers(running=use.running, pipelines=use.pipelines))
    return Decision(config.id, None, 204)


def validate_config_document(cmd: ValidateConfig, ctx: Context) -> Decision:
    # Seed 004: POST /configs/validate "always returns 200", valid or not.
    report, _ = validate_config(cmd.document, ctx.adapters)
    return Decision(None, report.model_dump(mode="json"), 200)


def run_config(cmd: RunConfig, ctx: Context) -> Decision:
    config = existing_config(ctx, cmd.config_id)
    # Checked against today's adapters: one may have been removed since the config was stored.
    report = config.validate(ctx.adapters)
    if not report.is_valid:
        raise DomainError(
            CONFIG_VALIDATION_FAILED, "Config validation failed", report.model_dump(mode="json")
        )
    execution = new_config_execution(
        ctx,
        config,
        cmd.execution_id,
        tag=cmd.tag,
        init_payload_overrides=cmd.init_payload_overrides,
        init_topic=config.document["routes"][config.init_route]["inbound"]["topic"],
        parent_execution_id=cmd.parent_execution_id,
        root_execution_id=_root_of(ctx, cmd.parent_execution_id),
        replay_source=cmd.replay_source,
        skip_init_message=cmd.skip_init_message,
        facets={"trigger_context": cmd.trigger_context} if cmd.trigger_context else None,
    )
    return Decision(execution.id, execution_response(execution, started_by=ctx.sent_by), 200)


def new_config_execution(
    ctx: Context,
    config: Config,
    execution_id: UUID,
    **options: Unpack[ConfigRunOptions],
) -> Execution:
    """A new execution of `config` (RunConfig, a replay's child), added to the batch: its
    id and tag must be new (409), then an orchestrator must admit it (503)."""
    if ctx.uow.get(Aggregate, execution_id) is not None:
        raise aggregate_exists(execution_id, "Execution")
    # `config` may be an earlier version (a replay's); a deleted config starts nothing.
    existing_config(ctx, config.id)
    tag = options.get("tag")
    if tag is not None:
        claim_key(ctx, TagIndex, tag, execution_id)
    if ctx.gate is not None:
        # After the client's own mistakes (404, 400, 409), which a retry would not fix;
        # a refusal here rolls the tag claim back with the rest of the command.
        ctx.gate.admit(execution_id)
    # What every execution of a config gets, unless the caller says otherwise.
    given: ConfigRunOptions = {
        "init_route": config.init_route,
        "run_number": next_run_number(ctx, config.id),
        "timeout": ctx.run_timeout,
    }
    given.update(options)
    execution = Execution.for_config(
        execution_id=execution_id,
        config_id=config.id,
        config_version=config.config_version,
        at=ctx.now,
        route_ids=list(config.document["routes"]),
        config_init_payload=config.init_payload,
        **given,
    )
    ctx.uow.add(execution)
    return execution


def _root_of(ctx: Context, parent_id: UUID | None) -> UUID | None:
    """The first execution of the chain a run names as its parent (itself if it has
    none); None without a parent. A parent the store does not know is its own root."""
    if parent_id is None:
        return None
    parent = ctx.uow.get(Execution, parent_id)
    return (
        parent_id
        if parent is None or parent.root_execution_id is None
        else parent.root_execution_id
    )
