"""Handlers of the orchestrator's commands (docs/orchestrator.md): its decisions about an
execution and its per-route progress reports. Both answer with the execution in seed
004's shape (ExecutionResponse).

A repeated decision never reaches these functions: its command id is derived from what it
was decided on (`contracts.orchestrator_commands.decision_command_id`), so the decider
answers it from the command records.
"""

from __future__ import annotations

from uuid import UUID

from contracts.orchestrator_commands import DecideExecution, ReportStageProgress
from domain.execution import Execution
from services.service_layer.handlers.runs import unknown_execution
from services.service_layer.handling import Context, Decision
from services.service_layer.replies import execution_response


def live_execution(ctx: Context, execution_id: UUID) -> Execution:
    execution = ctx.uow.get(Execution, execution_id)
    if execution is None or execution.deleted:
        raise unknown_execution(execution_id)
    return execution


def decide_execution(cmd: DecideExecution, ctx: Context) -> Decision:
    execution = live_execution(ctx, cmd.execution_id)
    execution.decide(
        cmd.decision,
        expected_version=cmd.expected_version,
        reason=cmd.reason,
        at=cmd.at,
        now=ctx.now,
    )
    return Decision(execution.id, execution_response(execution), 200)


def report_stage_progress(cmd: ReportStageProgress, ctx: Context) -> Decision:
    execution = live_execution(ctx, cmd.execution_id)
    execution.report_stage(
        cmd.route,
        cmd.messages_in,
        cmd.messages_out,
        cmd.messages_failed,
        finished=cmd.finished,
        at=cmd.at or ctx.now,
    )
    return Decision(execution.id, execution_response(execution), 200)
