"""What the orchestrator role tells the command handler about an execution: progress
reports per route and decisions, as commands with derived ids (pure: no I/O).

Every command id is derived from what it says, never random, so the same report or
decision sent twice (a retry, or two orchestrators reading the same ledger) is one
command, answered from the command records the second time:

- a progress report's id from (execution, route, its counts, its final status);
- a decision's from (role, execution, the version it was decided on, the decision)
  (`contracts.orchestrator_commands.decision_command_id`).

Finishing an execution is its start if it is still pending, its routes' final reports,
then the decision, in that order (a
finished execution refuses reports; both are keyed by the execution id, so they are
handled in the order sent). The decision must carry the version the execution will have
once those reports are applied: `finishing` applies them to a copy of the execution read
from the event store (never saved) and takes the version from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import NAMESPACE_URL, UUID, uuid5

from contracts.orchestrator_commands import (
    DecideExecution,
    ExecutionDecision,
    ReportStageProgress,
    decision_command_id,
)
from contracts.statuses import RunStatus
from domain.errors import DomainError
from domain.execution import Execution
from services.runtimes.orchestrator.ledger import ExecutionProgress, RouteProgress

ROLE: Final = "orchestrator"
"""The role in decision ids: the same for every instance, so two orchestrators deciding
the same thing on the same version send one command."""

_REPORT_NAMESPACE: Final = uuid5(NAMESPACE_URL, "urn:pipeline-service:stage-report")


@dataclass(frozen=True)
class Outgoing:
    """A command to send, with its derived id."""

    command: DecideExecution | ReportStageProgress
    command_id: UUID


def report(
    execution_id: UUID,
    route: str,
    progress: RouteProgress,
    at: datetime,
    finished: RunStatus | None = None,
) -> Outgoing:
    command = ReportStageProgress(
        execution_id=execution_id,
        route=route,
        messages_in=progress.messages_in,
        messages_out=progress.messages_out,
        messages_failed=progress.messages_failed,
        finished=finished,
        at=at,
    )
    key = (
        f"{execution_id}/{route}/{progress.messages_in}/{progress.messages_out}/"
        f"{progress.messages_failed}/{finished or ''}"
    )
    return Outgoing(command, uuid5(_REPORT_NAMESPACE, key))


def decision(
    execution: Execution, chosen: ExecutionDecision, at: datetime, reason: str | None = None
) -> Outgoing:
    """`chosen` on the execution's current version."""
    command = DecideExecution(
        execution_id=execution.id,
        decision=chosen,
        expected_version=execution.version,
        reason=reason,
        at=at,
    )
    return Outgoing(command, decision_command_id(ROLE, execution.id, execution.version, chosen))


def final_stage_status(chosen: ExecutionDecision, progress: RouteProgress) -> RunStatus:
    """A route's final status when its execution ends by `chosen` (complete or fail)."""
    if chosen is ExecutionDecision.COMPLETE:
        return RunStatus.SUCCESS
    if progress.messages_failed:
        return RunStatus.FAILURE  # this route dead-lettered
    if progress.messages_in and not progress.outstanding:
        return RunStatus.SUCCESS  # it did all it was given
    return RunStatus.CANCELLED  # its work for the execution stops unfinished


def finishing(
    execution: Execution,
    progress: ExecutionProgress,
    chosen: ExecutionDecision,
    at: datetime,
    reason: str | None = None,
) -> list[Outgoing]:
    """The final report of every route whose stage it changes, then the decision. Applies
    the reports to `execution` (a copy the caller never saves). A pending execution is
    started first, by the same command as any start on its version (one the role may have
    sent already, not applied yet: it is then answered from the command records), so the
    decision's version counts it whichever arrives first."""
    sent: list[Outgoing] = []
    if execution.status == RunStatus.PENDING:
        sent.append(decision(execution, ExecutionDecision.START, at))
        execution.decide(ExecutionDecision.START, expected_version=execution.version, at=at, now=at)
    for route in execution.routes:
        counts = progress.of(route)
        status = final_stage_status(chosen, counts)
        try:
            changed = execution.report_stage(
                route,
                counts.messages_in,
                counts.messages_out,
                counts.messages_failed,
                finished=status,
                at=at,
            )
        except DomainError:
            # Finished already with another status (an earlier attempt): leave it.
            continue
        if changed:
            sent.append(report(execution.id, route, counts, at, status))
    sent.append(decision(execution, chosen, at, reason))
    return sent


def progress_reports(
    execution_id: UUID,
    progress: ExecutionProgress,
    last: Mapping[str, RouteProgress],
    at: datetime,
) -> list[Outgoing]:
    """A report for every route whose counts moved since `last` (what was reported)."""
    return [
        report(execution_id, route, counts, at)
        for route, counts in progress.routes.items()
        if _counts(counts) != _counts(last.get(route)) and any(_counts(counts))
    ]


def _counts(progress: RouteProgress | None) -> tuple[int, int, int]:
    if progress is None:
        return (0, 0, 0)
    return (progress.messages_in, progress.messages_out, progress.messages_failed)


__all__ = [
    "ROLE",
    "Outgoing",
    "decision",
    "final_stage_status",
    "finishing",
    "progress_reports",
    "report",
]
