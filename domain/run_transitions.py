"""An Execution's status verbs: a transition and its time rules, seed 002's actions,
cancel, the deadline's timeout and the orchestrator's decisions. The moves themselves are
`domain.run_status.TRANSITIONS`; the event is `Execution`'s (a mixin: the aggregate holds
the state and the events).

Time. The caller passes `now` (its clock); a transition's time is its `at` when given,
else `now`. A late message never rewinds a run:
- the first transition may carry any `at` (seed 002's own example starts a run before
  its `createdAt`), and every later one is compared with the last transition's time;
- a move to a NON-terminal status with `at` earlier than the last transition is refused
  with `StaleRunTransition` (it describes a past the run has already left);
- a move to a TERMINAL status is still accepted when it is late (the run did end, and the
  table already said it may), but its recorded time is clamped to the last transition's
  time, so `started_at <= ended_at` and no timestamp ever moves backwards. The event keeps
  the time the message reported in `reported_at`.
Naive datetimes are taken as UTC.

A run's deadline is `created_at + timeout` (21 days by default, Esper's documented
default): a run stuck before it started should time out too. `time_out(now)` is refused
before the deadline, so a sweep cannot time out a run early.

The orchestrator's decisions (`decide`) are a table, `DECISIONS`, from decision to the
status it moves the execution to. A decision made on a version the execution has since
left is refused (`StaleDecision`, 409) while the execution is still going; once it has
finished, every decision gets the answer any transition gets (a no-op for the status it
already has, `RunAlreadyTerminal` otherwise), whatever version it was made on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

from contracts.orchestrator_commands import ExecutionDecision
from contracts.run_views import TERMINAL
from contracts.run_views import deadline as run_deadline
from contracts.statuses import RunStatus
from domain import run_status as rs
from domain.execution_fields import ExecutionBase, aware
from domain.run_status import MarquezAction, Verdict

# An orchestrator decision -> the status it moves the execution to.
DECISIONS: Final[Mapping[ExecutionDecision, RunStatus]] = {
    ExecutionDecision.START: RunStatus.RUNNING,
    ExecutionDecision.COMPLETE: RunStatus.SUCCESS,
    ExecutionDecision.FAIL: RunStatus.FAILURE,
    ExecutionDecision.TIME_OUT: RunStatus.TIMEOUT,
    ExecutionDecision.INTERRUPT: RunStatus.INTERRUPTED,
}


class RunTransitions(ExecutionBase):
    """The status verbs of `Execution`."""

    # The event these verbs trigger, defined on Execution (its topic names it).
    _status_changed: Callable[..., None]

    @property
    def deadline(self) -> datetime:
        return run_deadline(self.created_at, self.timeout)

    def transition(
        self,
        to: RunStatus | str,
        *,
        at: datetime | None = None,
        now: datetime,
        reason: str | None = None,
    ) -> bool:
        """Move to `to` (see the module docstring for time). False when already there.

        `reason` (why, e.g. the orchestrator's word on a failure) is kept on the event."""
        self._check_live()
        target = RunStatus(to)
        match rs.verdict(self.status, target):
            case Verdict.NO_OP:
                return False
            case Verdict.TERMINAL:
                raise rs.run_already_terminal(self.id, self.status, target)
            case Verdict.ILLEGAL:
                raise rs.illegal_run_transition(self.id, self.status, target)
        if target is RunStatus.INVALID and self.routes:
            raise rs.run_has_routes(self.id, list(self.routes))
        reported = aware(at) if at is not None else None
        when = reported if reported is not None else aware(now)
        last = self.last_transition_at
        if last is not None and when < last:
            if target not in TERMINAL:
                raise rs.stale_run_transition(
                    self.id, self.status, target, when.isoformat(), last.isoformat()
                )
            when = last
        self._status_changed(status=target, at=when, reported_at=reported, reason=reason)
        return True

    def apply_marquez_action(
        self, action: MarquezAction | str, *, at: datetime | None = None, now: datetime
    ) -> bool:
        """Seed 002's start / complete / fail / abort."""
        return self.transition(rs.from_marquez_action(action), at=at, now=now)

    def start(self, *, at: datetime | None = None, now: datetime) -> bool:
        return self.transition(RunStatus.RUNNING, at=at, now=now)

    def cancel(self, *, at: datetime | None = None, now: datetime) -> bool:
        """CancelExecution (seed 004) and Esper's user cancel."""
        return self.transition(RunStatus.CANCELLED, at=at, now=now)

    def time_out(self, *, now: datetime, reason: str | None = None) -> bool:
        """The deadline sweep: only a run past its deadline times out."""
        self._check_live()
        if self.status is RunStatus.TIMEOUT:
            return False
        if self.is_terminal:
            raise rs.run_already_terminal(self.id, self.status, RunStatus.TIMEOUT)
        if aware(now) < self.deadline:
            raise rs.run_deadline_not_reached(self.id, self.deadline, aware(now))
        return self.transition(RunStatus.TIMEOUT, now=now, reason=reason)

    def decide(
        self,
        decision: ExecutionDecision | str,
        *,
        expected_version: int | None = None,
        reason: str | None = None,
        at: datetime | None = None,
        now: datetime,
    ) -> bool:
        """An orchestrator decision (`DECISIONS`). False when it changes nothing.

        A timeout is checked against, and recorded at, `now` (the handler's clock), never
        a reported `at`: the deadline is ours to judge."""
        self._check_live()
        chosen = ExecutionDecision(decision)
        if not self.is_terminal and expected_version not in (None, self.version):
            raise rs.stale_decision(self.id, chosen, expected_version, self.version)
        if chosen is ExecutionDecision.TIME_OUT:
            return self.time_out(now=now, reason=reason)
        return self.transition(DECISIONS[chosen], at=at, now=now, reason=reason)
