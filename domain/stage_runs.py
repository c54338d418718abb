"""An Execution's stage bookkeeping: one stage run per route, reported by the orchestrator.

A stage moves pending -> running -> a final status along `run_status.STAGE_TRANSITIONS`.
Its counters (messages in/out/failed) are cumulative totals: a report only raises a
counter, never lowers it, so a redelivered or reordered report is harmless. A terminal
execution accepts no stage report. Every verb checks first and raises before its event,
so a refused report changes nothing; the events themselves live on `Execution`.
"""

from __future__ import annotations

from datetime import datetime

from contracts.run_views import TERMINAL
from contracts.statuses import RunStatus
from domain import run_status as rs
from domain.execution_fields import ExecutionBase, StageRun, aware
from domain.run_status import Verdict

Counts = tuple[int, int, int]


class StageBookkeeping(ExecutionBase):
    """The stage verbs of `Execution` (a mixin: the aggregate holds the state and events)."""

    def stage_started(self, route: str, *, at: datetime) -> bool:
        stage = self._stage_for(route, "stage_started")
        if not self._stage_moves(route, stage, RunStatus.RUNNING):
            return False
        self._stage_started(route=route, at=aware(at))
        return True

    def stage_progress(
        self, route: str, messages_in: int, messages_out: int, messages_failed: int, *, at: datetime
    ) -> bool:
        """Report cumulative counters; only counters that grow are recorded."""
        stage = self._stage_for(route, "stage_progress")
        if stage.status in TERMINAL:
            raise rs.stage_already_finished(self.id, route, stage.status)
        counts = self._checked_counts(route, (messages_in, messages_out, messages_failed))
        if counts == (stage.messages_in, stage.messages_out, stage.messages_failed):
            return False
        self._stage_progressed(route=route, **_named(counts), at=aware(at))
        return True

    def stage_finished(
        self,
        route: str,
        status: RunStatus | str,
        *,
        at: datetime,
        messages_in: int = 0,
        messages_out: int = 0,
        messages_failed: int = 0,
    ) -> bool:
        """A route drained (or failed): its final status and, optionally, final counters."""
        stage = self._stage_for(route, "stage_finished")
        target = self._final_status(route, status)
        if not self._stage_moves(route, stage, target):
            return False
        counts = self._checked_counts(route, (messages_in, messages_out, messages_failed))
        self._stage_finished(route=route, status=target, **_named(counts), at=aware(at))
        return True

    def report_stage(
        self,
        route: str,
        messages_in: int,
        messages_out: int,
        messages_failed: int,
        *,
        finished: RunStatus | str | None = None,
        at: datetime,
    ) -> bool:
        """The orchestrator's ReportStageProgress: a pending stage starts with its first
        report, the counters only grow, and `finished` (a final status) ends the stage.
        Everything is checked before the first event, so a refused report changes nothing."""
        stage = self._stage_for(route, "report_stage")
        outcome = None if finished is None else self._final_status(route, finished)
        self._checked_counts(route, (messages_in, messages_out, messages_failed))
        if outcome is None and stage.status in TERMINAL:
            raise rs.stage_already_finished(self.id, route, stage.status)
        started = stage.status == RunStatus.PENDING and self.stage_started(route, at=at)
        if outcome is None:
            counted = self.stage_progress(route, messages_in, messages_out, messages_failed, at=at)
        else:
            counted = self.stage_finished(
                route,
                outcome,
                at=at,
                messages_in=messages_in,
                messages_out=messages_out,
                messages_failed=messages_failed,
            )
        return started or counted

    # --- guards ---------------------------------------------------------------------------

    def _stage_for(self, route: str, action: str) -> StageRun:
        self._check_live()
        if self.is_terminal:
            raise rs.run_already_finished(self.id, self.status, action)
        stage = self.routes.get(route)
        if stage is None:
            raise rs.unknown_route(self.id, route)
        return stage

    def _final_status(self, route: str, status: RunStatus | str) -> RunStatus:
        target = RunStatus(status)
        if target not in TERMINAL:
            raise rs.invalid_stage_report(self.id, route, f"'{target}' is not a final status")
        return target

    def _stage_moves(self, route: str, stage: StageRun, target: RunStatus) -> bool:
        """True when the stage table lets `stage` move to `target`; False: already there."""
        match rs.stage_verdict(stage.status, target):
            case Verdict.NO_OP:
                return False
            case Verdict.TERMINAL:
                raise rs.stage_already_finished(self.id, route, stage.status)
            case Verdict.ILLEGAL:  # pragma: no cover - a stage may start once and always finish
                raise rs.illegal_stage_transition(self.id, route, stage.status, target)
        return True

    def _checked_counts(self, route: str, given: Counts) -> Counts:
        """The counters after a report of `given`: each the larger of reported and known."""
        if min(given) < 0:
            raise rs.invalid_stage_report(self.id, route, f"negative message counts {list(given)}")
        stage = self.routes[route]
        known = (stage.messages_in, stage.messages_out, stage.messages_failed)
        return (max(given[0], known[0]), max(given[1], known[1]), max(given[2], known[2]))


def _named(counts: Counts) -> dict[str, int]:
    return dict(zip(("messages_in", "messages_out", "messages_failed"), counts, strict=True))
