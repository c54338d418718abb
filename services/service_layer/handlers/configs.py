"""Handlers of the config commands (seed 004, FactFlow's config endpoints).

An invalid document is refused by the domain with ConfigValidationFailed (the report in
its details); the decider turns that into a rejection carrying the validation report.
RunConfig asks the context's execution gate last (services.runtimes.orchestrator.liveness): no
live orchestrator, or no room for another execution, is a 503.
"""

from __future__ import annotations

from uuid import UUID

from contracts import CreateConfig, RunConfig, UpdateConfig, ValidateConfig
from domain.base import Aggregate
from domain.config import CONFIG_VALIDATION_FAILED, Config
from domain.errors import DomainError
from domain.execution import Execution
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
        cmd.name, cmd.document, ctx.now, config_id=cmd.config_id, registry=ctx.adapters
    )
    ctx.uow.add(config)
    return Decision(config.id, config_reply(config), 201)


def update_config(cmd: UpdateConfig, ctx: Context) -> Decision:
    config = existing_config(ctx, cmd.config_id)
    config.update(cmd.document, ctx.now, name=cmd.name, registry=ctx.adapters)
    return Decision(config.id, config_reply(config), 200)


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
    if ctx.uow.get(Aggregate, cmd.execution_id) is not None:
        raise aggregate_exists(cmd.execution_id, "Execution")
    if cmd.tag is not None:
        claim_key(ctx, TagIndex, cmd.tag, cmd.execution_id)
    if ctx.gate is not None:
        # After the client's own mistakes (404, 400, 409), which a retry would not fix;
        # a refusal here rolls the tag claim back with the rest of the command.
        ctx.gate.admit(cmd.execution_id)
    execution = Execution.for_config(
        execution_id=cmd.execution_id,
        config_id=config.id,
        config_version=config.config_version,
        at=ctx.now,
        route_ids=list(config.document["routes"]),
        config_init_payload=config.init_payload,
        init_payload_overrides=cmd.init_payload_overrides,
        init_route=config.init_route,
        init_topic=config.document["routes"][config.init_route]["inbound"]["topic"],
        run_number=next_run_number(ctx, config.id),
        tag=cmd.tag,
        parent_execution_id=cmd.parent_execution_id,
        replay_source=cmd.replay_source,
        skip_init_message=cmd.skip_init_message,
        timeout=ctx.run_timeout,
    )
    ctx.uow.add(execution)
    return Decision(execution.id, execution_response(execution), 200)
