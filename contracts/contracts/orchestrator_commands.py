"""Commands the orchestrator sends about the executions it runs (docs/orchestrator.md).

Both are keyed by the execution id, so one execution's decisions and progress reports are
handled in the order they were sent.

A decision says what it was based on: `expected_version` is the execution's version when
it was decided, and a decision on a version the execution has since left is refused
(`StaleDecision`, 409). Its command id is derived, never random (`decision_command_id`):
the same decision on the same version of an execution is the same command however often,
and by whichever orchestrator, it is sent, so the command handler answers a repeat from
its records instead of deciding it again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final
from uuid import UUID

from pydantic import Field, NonNegativeInt

from contracts.command_base import Command, DecidedCommandIds
from contracts.statuses import RunStatus


class ExecutionDecision(StrEnum):
    """What the orchestrator decided about an execution (each moves it to one status)."""

    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    TIME_OUT = "time_out"
    INTERRUPT = "interrupt"


class DecideExecution(Command):
    """An orchestrator decision about one execution.

    `expected_version` (the execution's aggregate version the decision was made on) makes
    a decision that was overtaken by a later change a `StaleDecision`; `None` skips that
    check. `at` is when it was decided (`None`: when handled); `reason` says why, e.g.
    which route dead-lettered, and travels with the status change.
    """

    execution_id: UUID
    decision: ExecutionDecision
    expected_version: int | None = Field(default=None, ge=1)
    reason: str | None = Field(default=None, min_length=1, max_length=4096)
    at: datetime | None = None

    def key(self) -> str:
        return str(self.execution_id)


class ReportStageProgress(Command):
    """One route's progress in one execution: cumulative message counts (a report never
    lowers a count, so a late or repeated report is harmless) and, once the route is done
    with the execution, its final status in `finished` (`success`, `failure`, ...)."""

    execution_id: UUID
    route: str = Field(min_length=1)
    messages_in: NonNegativeInt
    messages_out: NonNegativeInt
    messages_failed: NonNegativeInt
    finished: RunStatus | None = None
    at: datetime | None = None

    def key(self) -> str:
        return str(self.execution_id)


_DECISION_IDS: Final = DecidedCommandIds("orchestrator-decision")


def decision_command_id(
    role: str, execution_id: UUID, version: int, decision: ExecutionDecision | str
) -> UUID:
    """The command id of `decision` by `role` on `execution_id` at `version` (a UUIDv5).

    Deterministic, so a decision re-sent after a crash or made twice by two orchestrators
    is one command."""
    return _DECISION_IDS(role, execution_id, version, ExecutionDecision(decision))


__all__ = ["DecideExecution", "ExecutionDecision", "ReportStageProgress", "decision_command_id"]
